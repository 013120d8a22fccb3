//! The patched rustls under the libraries users build on: an axum router
//! behind a tokio-rustls accept loop (the peer identity handed to handlers as
//! an `Extension`), called by reqwest with a preconfigured rustls
//! `ClientConfig`, over TCP loopback. Nothing in axum or reqwest knows about
//! the fork: `[patch.crates-io]` makes their rustls the patched one.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use integration_tests::pki::SERVER_NAME;
use integration_tests::{config, provider_tests, Provider, TestPki};
use rustls_req_client_auth::server::{self, AuthPath};
use rustls_req_client_auth::{ClientFlags, ServerFlags};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the accept loop learned about the client, for the handlers.
#[derive(Clone, Copy, Debug)]
struct Peer(AuthPath);

async fn whoami(Extension(Peer(path)): Extension<Peer>) -> String {
    format!("path={path:?}")
}

/// Serves one TLS connection with the axum router; the peer's path goes into
/// every request as an `Extension` (RCA-10: the application tells paths apart).
async fn serve_one(listener: TcpListener, acceptor: TlsAcceptor) {
    let (tcp, _) = listener.accept().await.expect("accept");
    let tls = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let peer = Peer(server::peer(tls.get_ref().1).path);
    let router = Router::new()
        .route("/whoami", get(whoami))
        .layer(Extension(peer));
    auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
        .await
        .expect("serve the connection");
}

/// A reqwest client over `client` (ALPN h2 and http/1.1, as reqwest would set
/// them itself), resolving the test server's name to `address`.
fn reqwest_client(mut client: rustls::ClientConfig, address: SocketAddr) -> reqwest::Client {
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(client)
        .resolve(SERVER_NAME, address)
        .build()
        .expect("reqwest client")
}

async fn request(
    pki: &TestPki,
    provider: Provider,
    client: rustls::ClientConfig,
) -> (reqwest::Version, String) {
    let mut server = config::server(pki, provider);
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local address");
    let server_task = tokio::spawn(serve_one(listener, TlsAcceptor::from(Arc::new(server))));

    let response = reqwest_client(client, address)
        .get(format!("https://{SERVER_NAME}:{}/whoami", address.port()))
        .send()
        .await
        .expect("response");
    let version = response.version();
    let body = response.text().await.expect("body");
    server_task.abort();
    (version, body)
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), future).await })
        .expect("test finishes in time")
}

/// RCA-2 through reqwest and axum: a bot with the flag is authenticated on the
/// flag path, over HTTP/2.
fn rca2_reqwest_bot_reaches_axum_on_the_flag_path(provider: Provider) {
    let pki = TestPki::shared();
    let mut bot = config::client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut bot)
        .expect("TLS Flags registers its extension type");
    let (version, body) = run(request(pki, provider, bot));
    assert_eq!(version, reqwest::Version::HTTP_2);
    assert_eq!(body, "path=Flag");
}

/// RCA-1 through reqwest and axum: a client without the flag (a browser's
/// situation) gets no CertificateRequest and is anonymous.
fn rca1_reqwest_client_without_flag_is_anonymous(provider: Provider) {
    let pki = TestPki::shared();
    let plain = config::client(pki, provider);
    let (version, body) = run(request(pki, provider, plain));
    assert_eq!(version, reqwest::Version::HTTP_2);
    assert_eq!(body, "path=None");
}

provider_tests! {
    rca2_reqwest_bot_reaches_axum_on_the_flag_path => rca2_reqwest_bot_reaches_axum_on_the_flag_path;
    rca1_reqwest_client_without_flag_is_anonymous => rca1_reqwest_client_without_flag_is_anonymous;
}
