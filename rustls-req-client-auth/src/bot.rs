//! The client side assembled: a bot's identity and trust anchors from PEM
//! files, a `ClientConfig` with the flag and ALPN set, and ready clients for
//! reqwest (feature `reqwest`) and hyper-rustls (feature `hyper-rustls`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::client::{ClientFlags, ClientOutcomes};
use crate::config_error::{self, ConfigError};
use crate::pem::{self, PemError};

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

    /// Why a request to `server_name` failed with `error`: the TLS error if
    /// the HTTP stack kept it, else what the connection's outcome says (see
    /// [`crate::client::ClientFlagsState::describe_failure`]).
    pub fn describe_failure(
        &self,
        server_name: &str,
        error: &(dyn std::error::Error + 'static),
    ) -> String {
        match self.outcomes.get(server_name) {
            Some(outcome) => outcome.describe_failure(error),
            None => crate::find_tls_error(error)
                .map_or_else(|| error.to_string(), crate::describe_tls_error),
        }
    }

    /// A `ClientConfig` that trusts the configured CAs, sets
    /// `request_client_auth` with this identity, and offers ALPN `h2`,
    /// `http/1.1`.
    ///
    /// # Errors
    ///
    /// The certificate and key do not make an identity for the provider, or no
    /// CA was configured.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let provider = config_error::provider(self.provider.as_ref())?;
        let identity = pem::certified_key(
            &self.cert_path,
            self.chain.clone(),
            self.key.clone_key(),
            &provider,
        )?;
        if self.roots.is_empty() {
            return Err(ConfigError::NoTrustAnchors);
        }
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = crate::http_alpn();
        let flags = self
            .flags
            .clone()
            .unwrap_or_else(ClientFlags::without_identity)
            .identity(Arc::new(identity))
            .sharing_outcomes(&self.outcomes);
        flags.install(&mut config)?;
        Ok(config)
    }

    /// A `reqwest::Client` on [`BotClient::client_config`] (HTTP/2 or
    /// HTTP/1.1 by ALPN).
    ///
    /// # Errors
    ///
    /// As [`BotClient::client_config`], or reqwest refuses the config.
    #[cfg(feature = "reqwest")]
    pub fn reqwest_client(&self) -> Result<reqwest::Client, ConfigError> {
        Ok(self.reqwest_builder()?.build()?)
    }

    /// A `reqwest::ClientBuilder` already carrying [`BotClient::client_config`],
    /// for a bot that sets its User-Agent, timeouts, proxy and the rest
    /// itself. Leave its TLS settings alone: another TLS option replaces the
    /// configuration that sends the flag.
    ///
    /// ```no_run
    /// # fn demo(bot: rustls_req_client_auth::BotClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = bot
    ///     .reqwest_builder()?
    ///     .user_agent("examplebot/1.0 (+https://example.com/bot)")
    ///     .timeout(std::time::Duration::from_secs(30))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`BotClient::client_config`].
    #[cfg(feature = "reqwest")]
    pub fn reqwest_builder(&self) -> Result<reqwest::ClientBuilder, ConfigError> {
        let config = self.client_config()?;
        Ok(reqwest::Client::builder().tls_backend_preconfigured(config))
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
        ConfigError,
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
}
