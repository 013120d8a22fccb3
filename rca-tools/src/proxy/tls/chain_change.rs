//! A reload whose server chain lost the certificate that issued its leaf.
//! A chain file read while it was being written (or written without its
//! intermediate) can hold the leaf alone, a valid file, and then browsers
//! and curl refuse the server while the reload says it took (found by an
//! outside trial). A leaf issued by a root the clients hold is served
//! alone on purpose, so only a chain that had more than its leaf before
//! and has nothing that issued its leaf now is warned of (the issuer may
//! have changed: a renewal can come from another intermediate).

use rustls::pki_types::CertificateDer;

/// The warning for `now` (the chain just loaded) when `before` (the chain
/// served until now) had certificates beyond its leaf and `now` has none
/// that issued its leaf.
#[must_use]
pub(super) fn lost_issuer(
    before: &[CertificateDer<'_>],
    now: &[CertificateDer<'_>],
) -> Option<String> {
    let (leaf, rest) = now.split_first()?;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let issuer = leaf.issuer();
    if issuer.as_raw() == leaf.subject().as_raw() {
        return None;
    }
    let names_issuer = |chain: &[CertificateDer<'_>]| {
        chain.iter().any(|certificate| {
            x509_parser::parse_x509_certificate(certificate)
                .is_ok_and(|(_, certificate)| certificate.subject().as_raw() == issuer.as_raw())
        })
    };
    (before.len() > 1 && !names_issuer(rest)).then(|| {
        format!(
            "tls.cert: the chain now lacks {issuer}, which issued its leaf, where the chain \
             before had more than its leaf: clients that do not hold it cannot verify this \
             server (was the file read while it was being written? write the new one beside \
             it and rename it over the old, then reload)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf, its intermediate (named `intermediate`) and the root.
    fn chain(intermediate: &str) -> Vec<CertificateDer<'static>> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut root = rcgen::CertificateParams::new(Vec::new()).expect("params");
        root.distinguished_name
            .push(rcgen::DnType::CommonName, "Chain Root");
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root_cert = root.self_signed(&key).expect("root");
        let root_issuer = rcgen::Issuer::new(root, key);
        let middle_key = rcgen::KeyPair::generate().expect("key");
        let mut middle = rcgen::CertificateParams::new(Vec::new()).expect("params");
        middle
            .distinguished_name
            .push(rcgen::DnType::CommonName, intermediate);
        middle.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let middle_cert = middle
            .signed_by(&middle_key, &root_issuer)
            .expect("intermediate");
        let middle_issuer = rcgen::Issuer::new(middle, middle_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &middle_issuer)
            .expect("leaf");
        vec![
            leaf.der().clone(),
            middle_cert.der().clone(),
            root_cert.der().clone(),
        ]
    }

    #[test]
    fn warns_only_of_an_issuer_the_chain_had_and_lost() {
        let full = chain("Chain Intermediate R10");
        let said = lost_issuer(&full, &full[..1]).expect("lost");
        assert!(said.contains("CN=Chain Intermediate R10"), "{said}");
        // A renewal from another intermediate, read half-written.
        let renewed = chain("Chain Intermediate R11");
        let said = lost_issuer(&full, &renewed[..1]).expect("lost");
        assert!(said.contains("CN=Chain Intermediate R11"), "{said}");
        assert_eq!(lost_issuer(&full, &renewed), None);
        // The same chain, or the root left out: its leaf's issuer is there.
        assert_eq!(lost_issuer(&full, &full), None);
        assert_eq!(lost_issuer(&full, &full[..2]), None);
        // A leaf served alone before as now: meant so.
        assert_eq!(lost_issuer(&full[..1], &full[..1]), None);
    }
}
