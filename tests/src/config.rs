//! Client and server configurations over the test PKI, for one provider.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, SignatureScheme};

use crate::pki::{Authority, Identity, TestPki, SERVER_NAME};
use crate::Provider;

/// A server config with the test server identity and no client authentication.
pub fn server(pki: &TestPki, provider: Provider) -> ServerConfig {
    server_with(pki, provider.crypto(), rustls::DEFAULT_VERSIONS)
}

/// A server config with a given crypto provider and versions.
pub fn server_with(
    pki: &TestPki,
    crypto: Arc<rustls::crypto::CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ServerConfig {
    ServerConfig::builder_with_provider(crypto)
        .with_protocol_versions(versions)
        .expect("versions supported by the provider")
        .with_no_client_auth()
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity")
}

/// A server config that asks every TLS 1.3 client for a certificate checked by
/// `verifier` (plus the TLS 1.2 behaviour of that verifier).
pub fn server_requesting(
    pki: &TestPki,
    provider: Provider,
    verifier: Arc<dyn ClientCertVerifier>,
) -> ServerConfig {
    ServerConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions supported by the provider")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity")
}

/// A client config that trusts the test server CA and has no client certificate.
pub fn client(pki: &TestPki, provider: Provider) -> ClientConfig {
    client_with(pki, provider.crypto(), rustls::DEFAULT_VERSIONS)
}

/// A client config with a given crypto provider and versions.
pub fn client_with(
    pki: &TestPki,
    crypto: Arc<rustls::crypto::CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    ClientConfig::builder_with_provider(crypto)
        .with_protocol_versions(versions)
        .expect("versions supported by the provider")
        .with_root_certificates(pki.server_ca.roots())
        .with_no_client_auth()
}

/// A verifier that accepts client certificates issued by `ca` and, unless
/// `mandatory`, clients without one.
pub fn verifier(
    ca: &Authority,
    provider: Provider,
    mandatory: bool,
) -> Arc<dyn ClientCertVerifier> {
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider.crypto());
    let builder = if mandatory {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().expect("client verifier")
}

/// `identity` as a rustls `CertifiedKey`, its key loaded by `provider`.
pub fn certified_key(identity: &Identity, provider: Provider) -> Arc<CertifiedKey> {
    let key = provider
        .crypto()
        .key_provider
        .load_private_key(identity.key())
        .expect("load client key");
    Arc::new(CertifiedKey::new(identity.chain.clone(), key))
}

/// A resolver that always offers `identity`.
pub fn resolver(identity: &Identity, provider: Provider) -> Arc<dyn ResolvesClientCert> {
    Arc::new(FixedIdentity(certified_key(identity, provider)))
}

/// Offers one certified key to every CertificateRequest.
#[derive(Debug)]
struct FixedIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedIdentity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A fresh client/server connection pair for [`SERVER_NAME`].
pub fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (ClientConnection, ServerConnection) {
    let name = SERVER_NAME.try_into().expect("valid DNS name");
    (
        ClientConnection::new(Arc::clone(client), name).expect("client connection"),
        ServerConnection::new(Arc::clone(server)).expect("server connection"),
    )
}
