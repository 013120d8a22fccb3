//! Code shared by the examples: the PKI generator, the flag-enabled HTTPS
//! server (accept loop and handler) and the bot client. `server`, `client`
//! and `demo` run exactly this code, so the demo shows what the server
//! example does.

// Each example uses a part of this module.
#![allow(dead_code)]

pub(crate) mod client;
pub(crate) mod pki;
pub(crate) mod server;

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// The crypto provider of the examples: the crate's default, aws-lc-rs (ring
/// when built without it). Configs are built with `builder_with_provider`, so
/// nothing depends on a process-wide default.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// The name of [`crypto_provider`], for messages.
pub(crate) const PROVIDER_NAME: &str = if cfg!(feature = "aws-lc-rs") {
    "aws-lc-rs"
} else {
    "ring"
};

/// Every certificate in the PEM file at `path` (a chain: end entity first).
pub(crate) fn load_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certificates.is_empty() {
        bail!("no CERTIFICATE found in {}", path.display());
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub(crate) fn load_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read a private key from {}", path.display()))
}

/// A root store with every certificate in the PEM file at `path`.
pub(crate) fn load_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    roots(load_certificates(path)?)
        .with_context(|| format!("bad trust anchor in {}", path.display()))
}

/// A root store holding `anchors`.
pub(crate) fn roots(anchors: Vec<CertificateDer<'static>>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for anchor in anchors {
        roots.add(anchor)?;
    }
    Ok(roots)
}

/// The TLS error inside `error`, wherever hyper, tokio-rustls or `io::Error`
/// put it in the chain of causes.
pub(crate) fn tls_error(error: &anyhow::Error) -> Option<&rustls::Error> {
    error.chain().find_map(|cause| {
        cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        })
    })
}

/// A one-line account of a TLS error: the alert (received or sent) and, for a
/// TLS Flags rule, which rule was broken.
pub(crate) fn describe_tls_error(error: &rustls::Error) -> String {
    if let Some(flags) = rustls_req_client_auth::FlagsError::from_rustls(error) {
        return format!("{flags} [alert {:?}]", flags.alert());
    }
    match error {
        rustls::Error::AlertReceived(alert) => format!("received fatal alert {alert:?}"),
        other => other.to_string(),
    }
}
