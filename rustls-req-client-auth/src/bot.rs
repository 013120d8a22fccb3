//! The client side assembled: a bot's identity and trust anchors from PEM
//! files, a `ClientConfig` with the flag and ALPN set, and ready clients for
//! reqwest (feature `reqwest`) and hyper-rustls (feature `hyper-rustls`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};

use crate::client::{ClientFlags, ClientOutcomes};
use crate::pem::{self, PemError};

/// The ALPN protocols a bot offers: HTTP/2, then HTTP/1.1.
pub const BOT_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A bot: its certificate and key, the CAs it trusts for servers, and its
/// TLS Flags policy. Build clients from it with [`BotClient::client_config`],
/// `reqwest_client` (feature `reqwest`) or `https_connector` (feature
/// `hyper-rustls`).
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use rustls_req_client_auth::BotClient;
///
/// let bot = BotClient::from_pem_files("bot.pem", "bot.key")?.trust_pem_file("server-ca.pem")?;
/// let config = bot.client_config()?; // request_client_auth set, ALPN h2 and http/1.1
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BotClient {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    cert_path: PathBuf,
    roots: RootCertStore,
    flags: Option<ClientFlags>,
    outcomes: ClientOutcomes,
    provider: Option<Arc<CryptoProvider>>,
}

impl BotClient {
    /// The bot identity in `cert` (PEM chain, end entity first) and `key`.
    ///
    /// # Errors
    ///
    /// Either file cannot be read or holds no certificate (key).
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, PemError> {
        let cert = cert.as_ref();
        Ok(Self::new(
            pem::load_certificates(cert)?,
            pem::load_private_key(key)?,
            cert,
        ))
    }

    /// A bot identity already in memory.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self::new(chain, key, Path::new("the certificate chain"))
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, path: &Path) -> Self {
        Self {
            chain,
            key: Arc::new(key),
            cert_path: path.to_owned(),
            roots: RootCertStore::empty(),
            flags: None,
            outcomes: ClientOutcomes::default(),
            provider: None,
        }
    }

    /// Also trusts the CA certificates in the PEM file at `path` for servers.
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no usable CA certificate.
    pub fn trust_pem_file(mut self, path: impl AsRef<Path>) -> Result<Self, PemError> {
        let roots = pem::load_roots(path)?;
        self.roots.roots.extend(roots.roots);
        Ok(self)
    }

    /// Also trusts these roots for servers (for example `webpki-roots`').
    #[must_use]
    pub fn trust(mut self, roots: RootCertStore) -> Self {
        self.roots.roots.extend(roots.roots);
        self
    }

    /// Uses `provider` instead of the process default (or, without one, the
    /// provider of this crate's features: aws-lc-rs, else ring).
    #[must_use]
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Adjusts the TLS Flags policy (code points, other requests, ...); the
    /// identity is always this bot's.
    #[must_use]
    pub fn flags(mut self, adjust: impl FnOnce(ClientFlags) -> ClientFlags) -> Self {
        self.flags = Some(adjust(ClientFlags::without_identity()));
        self
    }

    /// The record of what each server did with the flag and which identity
    /// was sent (see [`ClientOutcomes`]); shared by every client built here.
    pub fn outcomes(&self) -> ClientOutcomes {
        self.outcomes.clone()
    }

    /// A `ClientConfig` that trusts the configured CAs, sets
    /// `request_client_auth` with this identity, and offers ALPN `h2`,
    /// `http/1.1`.
    ///
    /// # Errors
    ///
    /// The certificate and key do not make an identity for the provider, or no
    /// CA was configured.
    pub fn client_config(&self) -> Result<ClientConfig, BotConfigError> {
        let provider = self.provider().ok_or(BotConfigError::NoCryptoProvider)?;
        let identity = CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider)
            .map_err(|error| PemError::identity(&self.cert_path, error))?;
        if self.roots.is_empty() {
            return Err(BotConfigError::NoTrustAnchors);
        }
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = BOT_ALPN.iter().map(|p| p.to_vec()).collect();
        let flags = self
            .flags
            .clone()
            .unwrap_or_else(ClientFlags::without_identity)
            .identity(Arc::new(identity))
            .sharing_outcomes(&self.outcomes);
        flags.install(&mut config);
        Ok(config)
    }

    /// A `reqwest::Client` on [`BotClient::client_config`] (HTTP/2 or
    /// HTTP/1.1 by ALPN).
    ///
    /// # Errors
    ///
    /// As [`BotClient::client_config`], or reqwest refuses the config.
    #[cfg(feature = "reqwest")]
    pub fn reqwest_client(&self) -> Result<reqwest::Client, BotConfigError> {
        let config = self.client_config()?;
        Ok(reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()?)
    }

    /// A hyper-rustls connector on [`BotClient::client_config`] (HTTPS only;
    /// HTTP/2 or HTTP/1.1 by ALPN), for hyper-util's legacy `Client`.
    ///
    /// # Errors
    ///
    /// As [`BotClient::client_config`].
    #[cfg(feature = "hyper-rustls")]
    pub fn https_connector(
        &self,
    ) -> Result<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        BotConfigError,
    > {
        let mut config = self.client_config()?;
        // The builder sets ALPN itself (and refuses a config that has it).
        config.alpn_protocols.clear();
        Ok(hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build())
    }

    #[allow(clippy::unnecessary_wraps)] // `None` without a provider feature
    fn provider(&self) -> Option<Arc<CryptoProvider>> {
        if let Some(provider) = &self.provider {
            return Some(Arc::clone(provider));
        }
        if let Some(provider) = CryptoProvider::get_default() {
            return Some(Arc::clone(provider));
        }
        #[cfg(feature = "aws-lc-rs")]
        return Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
        return Some(Arc::new(rustls::crypto::ring::default_provider()));
        #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
        None
    }
}

/// Why [`BotClient`] could not build a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotConfigError {
    /// A PEM file, or the identity in it, is not usable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// No CA was configured to verify servers with.
    #[error("no CA to verify servers with: call BotClient::trust_pem_file or BotClient::trust")]
    NoTrustAnchors,
    /// No crypto provider: none given, none installed as the process default,
    /// and neither the `aws-lc-rs` nor the `ring` feature is on.
    #[error("no crypto provider: enable the aws-lc-rs or ring feature, or call BotClient::crypto_provider")]
    NoCryptoProvider,
    /// rustls refused the configuration.
    #[error("the TLS configuration could not be built: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the TLS configuration.
    #[cfg(feature = "reqwest")]
    #[error("reqwest could not build a client: {0}")]
    Reqwest(#[from] reqwest::Error),
}
