//! When what the `[tls]` files hold stops being good, for the metrics an
//! operator alerts on: each certificate's `notAfter` (the server's, the bot
//! and partner CAs'), each CRL's `nextUpdate`. Read with x509-parser from
//! the same bytes the handshakes use.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::proxy::metrics::Expiry;

/// The `notAfter` of each DER certificate in `certificates`, from `file`.
pub(crate) fn of_certificates<'a>(
    file: &'static str,
    certificates: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<Expiry>,
) {
    for der in certificates {
        if let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) {
            out.push(Expiry {
                file,
                name: certificate.subject().to_string(),
                at: certificate.validity().not_after.timestamp(),
            });
        }
    }
}

/// As [`of_certificates`], for the PEM file `pem` (a CA set).
pub(crate) fn of_pem_certificates(file: &'static str, pem: &[u8], out: &mut Vec<Expiry>) {
    let certificates: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    of_certificates(file, certificates.iter().map(AsRef::as_ref), out);
}

/// The `nextUpdate` of each CRL (rustls takes none without one).
pub(crate) fn of_crls(crls: &[CertificateRevocationListDer<'_>], out: &mut Vec<Expiry>) {
    for der in crls {
        if let Ok((_, crl)) = x509_parser::parse_x509_crl(der) {
            if let Some(next_update) = crl.next_update() {
                out.push(Expiry {
                    file: "tls.bot_crl",
                    name: crl.issuer().to_string(),
                    at: next_update.timestamp(),
                });
            }
        }
    }
}
