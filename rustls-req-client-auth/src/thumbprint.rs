//! A certificate's `x5t#S256` thumbprint (RFC 8705, section 3.1): what the
//! identity of a peer, a refused certificate and an access token bound to
//! a certificate all name it by.

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

/// RFC 8705's `x5t#S256` of `certificate`: the SHA-256 of its DER encoding,
/// base64url without padding.
pub fn thumbprint_sha256(certificate: &CertificateDer<'_>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(certificate.as_ref()))
}
