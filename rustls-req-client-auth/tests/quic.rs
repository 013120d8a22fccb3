//! `request_client_auth` over QUIC: quinn 0.11 runs the patched rustls, so
//! `ServerFlags` and `ClientFlags` work unchanged. Loopback UDP, both
//! providers: a bot on the flag path, and a client without the flag that gets
//! no CertificateRequest.
//!
//! quinn does not expose the rustls connection, so the server reads the
//! client's chain from `Connection::peer_identity()`; with a config that does
//! no client authentication of its own (`with_no_client_auth()`), a chain can
//! only have come through the flag path. The client reads its outcome from
//! `ClientOutcomes`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use integration_tests::config;
use integration_tests::pki::SERVER_NAME;
use integration_tests::{each_provider_async, Provider, TestPki};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;
use rustls_req_client_auth::client::{CertificateRequestCause, SentIdentity};
use rustls_req_client_auth::{ClientFlags, ClientOutcomes, ServerFlags};

const ALPN: &[u8] = b"hq-test";

/// A QUIC server with the flag path trusting the bot CA; it accepts one
/// connection, echoes one stream, and returns the client's chain.
fn server(
    pki: &TestPki,
    provider: Provider,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Option<Vec<CertificateDer<'static>>>>,
) {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity");
    tls.alpn_protocols = vec![ALPN.to_vec()];
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut tls)
        .expect("TLS Flags registers its extension type");
    let crypto = QuicServerConfig::try_from(Arc::new(tls)).expect("QUIC server config");
    let endpoint = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(crypto)),
        (Ipv4Addr::LOCALHOST, 0).into(),
    )
    .expect("server endpoint");
    let address = endpoint.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let connection = endpoint
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("server handshake");
        let (mut send, mut recv) = connection.accept_bi().await.expect("stream");
        let request = recv.read_to_end(64).await.expect("read");
        send.write_all(&request).await.expect("write");
        send.finish().expect("finish");
        let chain = connection.peer_identity().map(|identity| {
            *identity
                .downcast::<Vec<CertificateDer<'static>>>()
                .expect("rustls peer identity")
        });
        connection.closed().await;
        endpoint.wait_idle().await;
        chain
    });
    (address, task)
}

/// Connects with `flags` installed, exchanges one stream, and returns the
/// client's outcome record.
async fn client(
    pki: &TestPki,
    provider: Provider,
    flags: ClientFlags,
    server: SocketAddr,
) -> ClientOutcomes {
    let outcomes = flags.outcomes();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(pki.server_ca.roots())
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    flags
        .install(&mut tls)
        .expect("TLS Flags registers its extension type");
    let crypto = QuicClientConfig::try_from(tls).expect("QUIC client config");
    let mut endpoint =
        quinn::Endpoint::client((Ipv4Addr::LOCALHOST, 0).into()).expect("client endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint
        .connect(server, SERVER_NAME)
        .expect("connect")
        .await
        .expect("client handshake");
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    send.write_all(b"ping").await.expect("write");
    send.finish().expect("finish");
    assert_eq!(recv.read_to_end(64).await.expect("read"), b"ping");
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    outcomes
}

#[test]
fn bot_on_the_flag_path_over_quic() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (address, server) = server(pki, provider);
        let flags = ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider));
        let outcomes = client(pki, provider, flags, address).await;
        let outcome = outcomes.get(SERVER_NAME).expect("recorded");
        assert!(outcome.requested_client_auth());
        assert!(outcome.flag_acknowledged());
        assert_eq!(
            outcome.certificate_request(),
            Some(CertificateRequestCause::Flag)
        );
        assert_eq!(outcome.sent_identity(), SentIdentity::FlagIdentity);
        let chain = server.await.expect("server task");
        assert_eq!(chain.as_deref(), Some(&pki.bot.chain[..]));
    });
}

#[test]
fn client_without_the_flag_gets_no_certificate_request_over_quic() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (address, server) = server(pki, provider);
        // TLS Flags installed, but nothing to propose: no flag is sent.
        let outcomes = client(pki, provider, ClientFlags::without_identity(), address).await;
        let outcome = outcomes.get(SERVER_NAME).expect("recorded");
        assert!(!outcome.requested_client_auth());
        assert_eq!(outcome.certificate_request(), None);
        assert_eq!(outcome.sent_identity(), SentIdentity::NotRequested);
        assert_eq!(server.await.expect("server task"), None);
    });
}
