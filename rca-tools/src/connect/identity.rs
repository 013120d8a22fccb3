//! The bot identity `rca-connect` answers with: a certificate chain and key
//! from PEM files, read again on SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_req_client_auth::pem;

/// The bot's certificate, key and thumbprint.
#[derive(Clone, Debug)]
pub struct BotIdentity {
    key: Arc<CertifiedKey>,
    thumbprint: String,
    cert_path: PathBuf,
}

impl BotIdentity {
    /// Reads `cert` (PEM chain, end entity first) and `key`.
    ///
    /// # Errors
    ///
    /// Either cannot be read, or they do not make an identity.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let chain =
            pem::load_certificates(cert).map_err(|error| anyhow::anyhow!("--cert: {error}"))?;
        let private_key =
            pem::load_private_key(key).map_err(|error| anyhow::anyhow!("--key: {error}"))?;
        crate::common::key_file::warn_if_others_can_read(key, "--key: the bot's private key");
        for warning in chain.first().map(leaf_warnings).unwrap_or_default() {
            log::warn!("--cert {}: {warning}", cert.display());
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let thumbprint = chain
            .first()
            .map(rustls_req_client_auth::thumbprint_sha256)
            .unwrap_or_default();
        let certified =
            pem::certified_key(cert, chain, private_key, &provider).map_err(|error| {
                anyhow::anyhow!("--cert and --key: {error} (the key: {})", key.display())
            })?;
        Ok(Self {
            key: Arc::new(certified),
            thumbprint,
            cert_path: cert.to_owned(),
        })
    }

    /// The certificate and signing key.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.key)
    }

    /// RFC 8705's `x5t#S256` of the end-entity certificate: what `rca-proxy`
    /// forwards as the bot's thumbprint.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

/// What in the bot certificate `leaf` makes servers refuse it, said when it
/// is loaded (at start and on SIGHUP) rather than learnt from each
/// server's alert: outside its validity period, or not for client
/// authentication. Not an error: a certificate about to be replaced still
/// runs, and the operator reads why requests fail.
fn leaf_warnings(leaf: &rustls::pki_types::CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if validity.not_after < now {
        warnings.push(format!(
            "the bot certificate expired on {}: servers refuse it (certificate_expired)",
            validity.not_after
        ));
    } else if now < validity.not_before {
        warnings.push(format!(
            "the bot certificate is not valid before {}: servers refuse it until then",
            validity.not_before
        ));
    }
    if let Ok(Some(usage)) = parsed.extended_key_usage() {
        if !usage.value.any && !usage.value.client_auth {
            warnings.push(
                "the bot certificate's extended key usage lacks clientAuth, so servers refuse it \
                 as a client certificate (unsupported_certificate): issue it with \
                 extendedKeyUsage = clientAuth"
                    .to_owned(),
            );
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::leaf_warnings;

    fn issued(
        usage: rcgen::ExtendedKeyUsagePurpose,
        not_after: time::OffsetDateTime,
    ) -> rustls::pki_types::CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(vec!["bot.test".to_owned()]).expect("params");
        params.extended_key_usages = vec![usage];
        params.not_before = not_after - time::Duration::days(30);
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("certificate").der().clone()
    }

    #[test]
    fn what_servers_would_refuse_is_said() {
        let now = time::OffsetDateTime::now_utc();
        let good = issued(
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            now + time::Duration::days(30),
        );
        assert!(leaf_warnings(&good).is_empty());
        let expired = issued(
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            now - time::Duration::days(1),
        );
        let warnings = leaf_warnings(&expired);
        assert!(
            warnings.len() == 1 && warnings[0].contains("expired on"),
            "{warnings:?}"
        );
        let server = issued(
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            now + time::Duration::days(30),
        );
        let warnings = leaf_warnings(&server);
        assert!(
            warnings.len() == 1 && warnings[0].contains("lacks clientAuth"),
            "{warnings:?}"
        );
    }
}
