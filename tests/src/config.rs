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

/// A TLS 1.3 client that offers Encrypted Client Hello with a fresh
/// configuration whose public name is [`SERVER_NAME`] (aws-lc-rs only: ring has
/// no HPKE). rustls servers do not implement ECH, so such a server sees the
/// outer ClientHello, and the client fails once it learns ECH was not used.
pub fn ech_client(pki: &TestPki) -> ClientConfig {
    use rustls::client::{EchConfig, EchMode};
    use rustls::crypto::aws_lc_rs::hpke;
    use rustls::crypto::hpke::Hpke;

    let suite = hpke::DH_KEM_X25519_HKDF_SHA256_AES_128;
    let (public_key, _private_key) = suite.generate_key_pair().expect("HPKE key pair");
    // draft-ietf-tls-esni ECHConfigContents: key config, name length, public name, extensions.
    let mut contents = vec![7]; // config_id
    contents.extend_from_slice(&0x0020u16.to_be_bytes()); // DHKEM(X25519, HKDF-SHA256)
    contents.extend_from_slice(
        &u16::try_from(public_key.0.len())
            .expect("key length")
            .to_be_bytes(),
    );
    contents.extend_from_slice(&public_key.0);
    contents.extend_from_slice(&4u16.to_be_bytes()); // one cipher suite:
    contents.extend_from_slice(&0x0001u16.to_be_bytes()); // HKDF-SHA256
    contents.extend_from_slice(&0x0001u16.to_be_bytes()); // AES-128-GCM
    contents.push(0); // maximum_name_length
    contents.push(u8::try_from(SERVER_NAME.len()).expect("name length"));
    contents.extend_from_slice(SERVER_NAME.as_bytes());
    contents.extend_from_slice(&0u16.to_be_bytes()); // no extensions
    let mut config = 0xfe0du16.to_be_bytes().to_vec();
    config.extend_from_slice(&u16::try_from(contents.len()).expect("length").to_be_bytes());
    config.extend_from_slice(&contents);
    let mut list = u16::try_from(config.len())
        .expect("length")
        .to_be_bytes()
        .to_vec();
    list.extend_from_slice(&config);

    let ech = EchConfig::new(list.into(), hpke::ALL_SUPPORTED_SUITES).expect("valid ECH config");
    ClientConfig::builder_with_provider(Provider::AwsLcRs.crypto())
        .with_ech(EchMode::Enable(ech))
        .expect("ECH with TLS 1.3")
        .with_root_certificates(pki.server_ca.roots())
        .with_no_client_auth()
}

/// A resolver with no certificate at all (`has_certs()` is false): a client
/// with it must not set `request_client_auth` (RCA-1).
pub fn no_identity() -> Arc<dyn ResolvesClientCert> {
    Arc::new(Unsuitable { has_certs: false })
}

/// A resolver that has certificates but none that suits any request: a
/// flagged client with it answers with an empty Certificate (RCA-5, RCA-14).
pub fn nothing_suitable() -> Arc<dyn ResolvesClientCert> {
    Arc::new(Unsuitable { has_certs: true })
}

/// Resolves nothing; says whether it has certificates.
#[derive(Debug)]
struct Unsuitable {
    has_certs: bool,
}

impl ResolvesClientCert for Unsuitable {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        self.has_certs
    }
}

/// Two connections between the same configs, each handshake asserted to
/// succeed; the second may resume with a ticket the first received.
#[track_caller]
pub fn connect_twice(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> [(ClientConnection, ServerConnection); 2] {
    [(), ()].map(|()| {
        let (mut c, mut s) = connect(client, server);
        crate::memory::handshake(&mut c, &mut s).assert_ok();
        (c, s)
    })
}
