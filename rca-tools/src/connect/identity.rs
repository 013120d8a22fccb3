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
        let chain = pem::load_certificates(cert)?;
        let private_key = pem::load_private_key(key)?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let thumbprint = chain
            .first()
            .map(rustls_req_client_auth::thumbprint_sha256)
            .unwrap_or_default();
        let certified = pem::certified_key(cert, chain, private_key, &provider)
            .map_err(|error| anyhow::anyhow!("{error} (the key: {})", key.display()))?;
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
