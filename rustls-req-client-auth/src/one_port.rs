//! The server side assembled: a `ServerConfig` for one port that serves people
//! without client authentication and bots on the flag path, from PEM files.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::code_points::CodePoints;
use crate::config_error::{self, ConfigError};
use crate::pem::{self, PemError};
use crate::server::{FlagVerifier, ServerFlags};

/// A `ServerConfig` for one port, people and bots: no CertificateRequest for
/// clients without the flag, and for clients that set `request_client_auth`
/// an acknowledging CertificateRequest verified against the bot CA set only
/// (RCA-2, RCA-10). ALPN `h2`, `http/1.1`.
///
/// ```no_run
/// # fn demo() -> Result<(), rustls_req_client_auth::ConfigError> {
/// use rustls_req_client_auth::OnePortConfig;
///
/// let config = OnePortConfig::from_pem_files("server.pem", "server.key", "bot-ca.pem")?.build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OnePortConfig {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    bot_roots: RootCertStore,
    code_points: CodePoints,
    require_certificate: bool,
    provider: Option<Arc<CryptoProvider>>,
    cert_path: std::path::PathBuf,
}

impl OnePortConfig {
    /// The server's chain (`cert`, end entity first) and `key`, and the CA
    /// certificates bots' certificates must chain to (`bot_ca`).
    ///
    /// # Errors
    ///
    /// A file cannot be read or does not hold what it should.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        bot_ca: impl AsRef<Path>,
    ) -> Result<Self, PemError> {
        Ok(Self {
            chain: pem::load_certificates(cert.as_ref())?,
            key: Arc::new(pem::load_private_key(key)?),
            bot_roots: pem::load_roots(bot_ca)?,
            code_points: CodePoints::DEFAULT,
            require_certificate: false,
            provider: None,
            cert_path: cert.as_ref().to_owned(),
        })
    }

    /// Uses `provider` instead of the process default (or, without one, the
    /// provider of this crate's features: aws-lc-rs, else ring).
    #[must_use]
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Uses other code points than extension 62 and flag 80.
    #[must_use]
    pub fn code_points(mut self, code_points: CodePoints) -> Self {
        self.code_points = code_points;
        self
    }

    /// Refuses flagged clients that answer with an empty Certificate; see
    /// [`ServerFlags::require_certificate`].
    #[must_use]
    pub fn require_certificate(mut self) -> Self {
        self.require_certificate = true;
        self
    }

    /// The config.
    ///
    /// # Errors
    ///
    /// The key does not belong to the certificate, or no crypto provider.
    pub fn build(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        self.build_reloadable().map(|(config, _)| config)
    }

    /// The config, and the handle that replaces the bot CA set at run time.
    ///
    /// # Errors
    ///
    /// As [`OnePortConfig::build`].
    pub fn build_reloadable(&self) -> Result<(Arc<ServerConfig>, FlagVerifier), ConfigError> {
        let provider = config_error::provider(self.provider.as_ref())?;
        let bots = WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.bot_roots.clone()),
            Arc::clone(&provider),
        )
        .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|error| PemError::identity(&self.cert_path, error))?;
        config.alpn_protocols = crate::http_alpn();
        let verifier = self.install_flags(&mut config, bots)?;
        Ok((Arc::new(config), verifier))
    }

    /// The config, and a [`LiveConfig`] that replaces its certificate and key
    /// and its bot CA set at run time (on SIGHUP, say): new handshakes use
    /// what was swapped in, established connections keep what they have.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use rustls_req_client_auth::OnePortConfig;
    ///
    /// let files = ("server.pem", "server.key", "bot-ca.pem");
    /// let (config, live) = OnePortConfig::from_pem_files(files.0, files.1, files.2)?.build_live()?;
    /// // ... serve with `config`; later, when the files were renewed:
    /// live.replace(&OnePortConfig::from_pem_files(files.0, files.1, files.2)?)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`OnePortConfig::build`].
    pub fn build_live(&self) -> Result<(Arc<ServerConfig>, LiveConfig), ConfigError> {
        let provider = config_error::provider(self.provider.as_ref())?;
        let certificate = Arc::new(LiveCertificate(RwLock::new(self.certified_key(&provider)?)));
        let bots = WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.bot_roots.clone()),
            Arc::clone(&provider),
        )
        .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::<LiveCertificate>::clone(&certificate));
        config.alpn_protocols = crate::http_alpn();
        let bot_ca = self.install_flags(&mut config, bots)?;
        Ok((
            Arc::new(config),
            LiveConfig {
                certificate,
                bot_ca,
            },
        ))
    }

    /// The chain and key as rustls signs with them, checked to belong
    /// together.
    fn certified_key(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, ConfigError> {
        let certified = pem::certified_key(
            &self.cert_path,
            self.chain.clone(),
            self.key.clone_key(),
            provider,
        )?;
        Ok(Arc::new(certified))
    }

    /// Installs `ServerFlags` for `bots` with this config's options; the
    /// handle that replaces `bots`.
    fn install_flags(
        &self,
        config: &mut ServerConfig,
        bots: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    ) -> Result<FlagVerifier, ConfigError> {
        let mut flags = ServerFlags::request_client_auth(bots)
            .code_points(self.code_points)
            .trust_id(&self.trust_id());
        if self.require_certificate {
            flags = flags.require_certificate();
        }
        let verifier = flags.flag_verifier();
        flags.install(config)?;
        Ok(verifier)
    }

    /// Makes `handle` (from [`OnePortConfig::build_reloadable`]) verify bots
    /// against this config's bot CA set from now on: load the files again
    /// with [`OnePortConfig::from_pem_files`], then call this.
    ///
    /// # Errors
    ///
    /// The bot CA set does not make a verifier, or no crypto provider.
    pub fn replace_bot_ca(&self, handle: &FlagVerifier) -> Result<(), ConfigError> {
        let provider = config_error::provider(self.provider.as_ref())?;
        let bots =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.bot_roots.clone()), provider)
                .build()?;
        handle.replace_with_trust_id(bots, &self.trust_id());
        Ok(())
    }

    /// Names the bot CA set by its anchors' names and keys, so tickets issued
    /// under another set are not resumed (see [`FlagVerifier`]).
    fn trust_id(&self) -> Vec<u8> {
        let mut id = Vec::new();
        for anchor in &self.bot_roots.roots {
            for part in [
                anchor.subject.as_ref(),
                anchor.subject_public_key_info.as_ref(),
            ] {
                id.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
                id.extend_from_slice(part);
            }
        }
        id
    }
}

/// The running config of [`OnePortConfig::build_live`]: replaces its
/// certificate and key and its bot CA set. Cheap to clone; each clone
/// replaces the same config.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    certificate: Arc<LiveCertificate>,
    bot_ca: FlagVerifier,
}

impl LiveConfig {
    /// Swaps in `config`'s certificate chain and key and its bot CA set
    /// (load the files again with [`OnePortConfig::from_pem_files`] first).
    /// Nothing changes unless both can be used. New handshakes use them;
    /// established connections keep the certificate they were made with,
    /// and tickets issued under the old bot CA set are not resumed.
    ///
    /// # Errors
    ///
    /// The key does not belong to the certificate, the bot CA set does not
    /// make a verifier, or no crypto provider.
    pub fn replace(&self, config: &OnePortConfig) -> Result<(), ConfigError> {
        let provider = config_error::provider(config.provider.as_ref())?;
        let certified = config.certified_key(&provider)?;
        let bots = WebPkiClientVerifier::builder_with_provider(
            Arc::new(config.bot_roots.clone()),
            provider,
        )
        .build()?;
        *self
            .certificate
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = certified;
        self.bot_ca.replace_with_trust_id(bots, &config.trust_id());
        Ok(())
    }

    /// The handle that replaces the bot CA set alone.
    #[must_use]
    pub fn bot_ca(&self) -> &FlagVerifier {
        &self.bot_ca
    }
}

/// The server's certificate and key, replaceable while connections use the
/// config.
#[derive(Debug)]
struct LiveCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for LiveCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}
