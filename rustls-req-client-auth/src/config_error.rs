//! Why a ready-made config ([`crate::BotClient`], [`crate::OnePortConfig`])
//! could not be built.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::pem::PemError;

/// Why [`crate::BotClient`] or [`crate::OnePortConfig`] could not build a config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A PEM file, or the identity in it, is not usable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// No CA was configured to verify servers with.
    #[error("no CA to verify servers with: call BotClient::trust_pem_file or BotClient::trust")]
    NoTrustAnchors,
    /// No crypto provider: none given, none installed as the process default,
    /// and neither the `aws-lc-rs` nor the `ring` feature is on.
    #[error(
        "no crypto provider: enable the aws-lc-rs or ring feature, or pass one with crypto_provider()"
    )]
    NoCryptoProvider,
    /// The bot CA set does not make a client-certificate verifier.
    #[error("the bot CA set does not make a verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the configuration.
    #[error("the TLS configuration could not be built: {0}")]
    Tls(#[from] rustls::Error),
    /// The TLS Flags extension type could not be registered in the config.
    #[error("TLS Flags could not be registered: {0}")]
    Hooks(#[from] rustls::hooks::RegistrationError),
    /// reqwest refused the TLS configuration.
    #[cfg(feature = "reqwest")]
    #[error("reqwest could not build a client: {0}")]
    Reqwest(#[from] reqwest::Error),
}

/// `given`, else the process default, else the provider of this crate's
/// features (aws-lc-rs, then ring).
#[allow(clippy::unnecessary_wraps)] // `Err` without a provider feature
pub(crate) fn provider(
    given: Option<&Arc<CryptoProvider>>,
) -> Result<Arc<CryptoProvider>, ConfigError> {
    if let Some(provider) = given {
        return Ok(Arc::clone(provider));
    }
    if let Some(provider) = CryptoProvider::get_default() {
        return Ok(Arc::clone(provider));
    }
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    // rustls 0.23.48 deprecates ring's provider for its lack of post-quantum
    // key exchange; it is still the only way to build it, and ring stays a
    // provider of this crate (the `ring` feature), used only without aws-lc-rs.
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    #[allow(deprecated)]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    Err(ConfigError::NoCryptoProvider)
}
