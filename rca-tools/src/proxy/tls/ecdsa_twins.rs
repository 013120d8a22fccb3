//! The other encodings of an ECDSA-signed certificate.
//!
//! An ECDSA signature `(r, s)` is as valid as `(r, n - s)`, `n` being the
//! order of the signer's curve, and verifiers (webpki, OpenSSL) take both.
//! So whoever holds a certificate can make a second one that differs only
//! in its signature, without any key: the same subject, serial and public
//! key, another SHA-256 thumbprint. A deny list of thumbprints must match
//! both (found by an outside attack: a denied bot presented its twin and
//! was let in). The signer's curve is not in the certificate, so a twin is
//! made for each curve rustls verifies whose order is above `s`; the ones
//! for the wrong curve are certificates nobody can present.

use std::sync::LazyLock;

use rustls::pki_types::CertificateDer;
use x509_parser::asn1_rs::{Any, FromDer};
use x509_parser::num_bigint::BigUint;

/// The orders of the curves rustls verifies ECDSA signatures on, in hex
/// (SEC 2, sections 2.4.2, 2.5.1 and 2.6.1).
const CURVE_ORDERS_HEX: [&str; 3] = [
    // P-256
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    // P-384
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
     581a0db248b0a77aecec196accc52973",
    // P-521
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
     fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
];

/// [`CURVE_ORDERS_HEX`] as numbers, read once rather than at every
/// handshake the deny list checks.
static CURVE_ORDERS: LazyLock<Vec<BigUint>> = LazyLock::new(|| {
    CURVE_ORDERS_HEX
        .iter()
        .filter_map(|hex| BigUint::parse_bytes(hex.as_bytes(), 16))
        .collect()
});

/// The certificates that differ from `certificate` only by the other
/// valid form of its ECDSA signature; none where it is not signed with
/// ECDSA (or cannot be read).
pub fn ecdsa_twins(certificate: &CertificateDer<'_>) -> Vec<Vec<u8>> {
    let Some(parts) = Parts::of(certificate) else {
        return Vec::new();
    };
    let s = BigUint::from_bytes_be(parts.s);
    CURVE_ORDERS
        .iter()
        .filter(|order| s > BigUint::ZERO && s < **order)
        .map(|order| parts.with_s(&(order - &s)))
        .collect()
}

/// The pieces of an ECDSA-signed certificate a twin is made of, as encoded.
struct Parts<'a> {
    /// `tbsCertificate`, whole.
    tbs: &'a [u8],
    /// `signatureAlgorithm`, whole.
    algorithm: &'a [u8],
    /// The contents of the signature's `r` and `s` INTEGERs.
    r: &'a [u8],
    s: &'a [u8],
}

impl<'a> Parts<'a> {
    fn of(certificate: &'a CertificateDer<'_>) -> Option<Self> {
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
        //                            signatureValue BIT STRING }
        let (_, outer) = Any::from_der(certificate.as_ref()).ok()?;
        let (after_tbs, _) = Any::from_der(outer.data).ok()?;
        let tbs = outer.data.get(..outer.data.len() - after_tbs.len())?;
        let (after_algorithm, algorithm) = Any::from_der(after_tbs).ok()?;
        let algorithm_der = after_tbs.get(..after_tbs.len() - after_algorithm.len())?;
        // ecdsa-with-SHA1, -SHA224, -SHA256, -SHA384, -SHA512: 1.2.840.10045.4.*
        let (_, oid) = Any::from_der(algorithm.data).ok()?;
        if !oid.data.starts_with(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]) {
            return None;
        }
        let (_, signature) = Any::from_der(after_algorithm).ok()?;
        // Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, after the
        // BIT STRING's count of unused bits (0).
        let value = signature.data.strip_prefix(&[0])?;
        let (_, pair) = Any::from_der(value).ok()?;
        let (after_r, r) = Any::from_der(pair.data).ok()?;
        let (_, s) = Any::from_der(after_r).ok()?;
        Some(Self {
            tbs,
            algorithm: algorithm_der,
            r: r.data,
            s: s.data,
        })
    }

    /// The certificate again, its signature's `s` replaced by `s`.
    fn with_s(&self, s: &BigUint) -> Vec<u8> {
        let signature = yasna::construct_der(|writer| {
            writer.write_sequence(|writer| {
                writer.next().write_bigint_bytes(self.r, true);
                writer.next().write_bigint_bytes(&s.to_bytes_be(), true);
            });
        });
        yasna::construct_der(|writer| {
            writer.write_sequence(|writer| {
                writer.next().write_der(self.tbs);
                writer.next().write_der(self.algorithm);
                writer
                    .next()
                    .write_bitvec_bytes(&signature, signature.len() * 8);
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each twin of an ECDSA-signed leaf, P-256 and P-384, is a certificate
    /// its issuer's key verifies (the curve orders are right), with another
    /// thumbprint; an Ed25519-signed one has none.
    #[test]
    fn twins_verify_and_differ() {
        use aws_lc_rs::signature::{self, UnparsedPublicKey};
        for (algorithm, verification) in [
            (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                &signature::ECDSA_P256_SHA256_ASN1,
            ),
            (
                &rcgen::PKCS_ECDSA_P384_SHA384,
                &signature::ECDSA_P384_SHA384_ASN1,
            ),
        ] {
            let pki = integration_tests::TestPki::with_keys(algorithm);
            let leaf = &pki.bot.chain[0];
            let (_, issuer) =
                x509_parser::parse_x509_certificate(&pki.bot.chain[1]).expect("issuer");
            let key = UnparsedPublicKey::new(
                verification,
                issuer.public_key().subject_public_key.data.to_vec(),
            );
            let twins = ecdsa_twins(leaf);
            assert!(!twins.is_empty());
            let verified: Vec<_> = twins
                .iter()
                .filter(|twin| {
                    let (_, parsed) = x509_parser::parse_x509_certificate(twin).expect("a twin");
                    key.verify(
                        parsed.tbs_certificate.as_ref(),
                        &parsed.signature_value.data,
                    )
                    .is_ok()
                })
                .collect();
            assert_eq!(verified.len(), 1, "exactly one twin is valid");
            assert_ne!(verified[0].as_slice(), leaf.as_ref());
            // The twin's twin is the original again.
            let back = ecdsa_twins(&CertificateDer::from(verified[0].clone()));
            assert!(back.iter().any(|twin| twin.as_slice() == leaf.as_ref()));
        }
        let ed25519 = integration_tests::TestPki::with_keys(&rcgen::PKCS_ED25519);
        assert!(ecdsa_twins(&ed25519.bot.chain[0]).is_empty());
    }
}
