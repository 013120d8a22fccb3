//! `request_client_auth` over real TCP loopback: tokio-rustls on both ends,
//! configs from the test PKI, both crypto providers, and HTTP/2 through hyper
//! with the peer identity handed to the handler as a request extension.
//!
//! Every test names the SPECIFICATION.md rule it checks.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use integration_tests::{config, provider_tests, Provider, TestPki};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, ClientConfig, ServerConfig, SignatureScheme};
use rustls_req_client_auth::client::{self, CertificateRequestCause};
use rustls_req_client_auth::server::{self, AuthPath};
use rustls_req_client_auth::{ClientFlags, ServerFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound for a whole test: a hung handshake fails the test, not CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the server's accept loop gives a client to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sent by the server once the handshake completed, to show the connection
/// is served.
const GREETING: &[u8] = b"served";

const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn block_on<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, test)
                .await
                .expect("the test did not finish in time")
        })
}

/// A flag-enabled server: no client auth for anyone, a CertificateRequest for
/// clients that set the flag, verified against the bot CA only (RCA-10).
fn flag_server(pki: &TestPki, provider: Provider, flags: ServerFlags) -> Arc<ServerConfig> {
    let mut config = config::server(pki, provider);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    flags
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    Arc::new(config)
}

fn bot_flags(pki: &TestPki, provider: Provider) -> ServerFlags {
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
}

/// A client config trusting the test server CA, with ALPN h2/http1.1 and
/// `flags` installed (`None`: a plain rustls client).
fn client_config(pki: &TestPki, provider: Provider, flags: Option<ClientFlags>) -> ClientConfig {
    let mut config = config::client(pki, provider);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    if let Some(flags) = flags {
        flags
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
    }
    config
}

/// A listener on 127.0.0.1, port chosen by the system.
async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    (listener, address)
}

/// What the server saw of one connection.
#[derive(Debug)]
struct Served {
    flag_received: bool,
    certificate_request: Option<CertificateRequestCause>,
    acknowledged: bool,
    path: AuthPath,
    chain: Option<Vec<CertificateDer<'static>>>,
    alpn: Option<Vec<u8>>,
}

/// Accepts one connection with a handshake timeout; on success records what
/// the server saw and sends [`GREETING`].
fn accept_one(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> JoinHandle<Result<Served, io::Error>> {
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(tcp))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
        let conn = stream.get_ref().1;
        let state = server::server_state(conn).expect("ServerFlags is installed");
        let peer = server::peer(conn);
        let served = Served {
            flag_received: state.requested_client_auth(),
            certificate_request: state.certificate_request(),
            acknowledged: !state.acknowledged().is_empty(),
            path: peer.path,
            chain: peer.chain.map(<[_]>::to_vec),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        stream.write_all(GREETING).await?;
        stream.shutdown().await?;
        Ok(served)
    })
}

/// What the client saw of one connection.
#[derive(Debug)]
struct Connected {
    flag_sent: bool,
    certificate_request: Option<CertificateRequestCause>,
    acknowledged: bool,
    alpn: Option<Vec<u8>>,
    /// What the first read returned: the greeting, or the TLS error (in TLS 1.3
    /// a refusal of the client's certificate arrives after the client's
    /// handshake has completed).
    read: Result<Vec<u8>, rustls::Error>,
}

async fn connect(address: SocketAddr, config: ClientConfig) -> Connected {
    let tcp = TcpStream::connect(address).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the client completes its side of the handshake");
    let conn = stream.get_ref().1;
    let state = client::client_state(conn);
    let mut connected = Connected {
        flag_sent: state.is_some_and(client::ClientFlagsState::requested_client_auth),
        certificate_request: state.and_then(client::ClientFlagsState::certificate_request),
        acknowledged: state.is_some_and(|state| !state.acknowledged().is_empty()),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        read: Ok(Vec::new()),
    };
    let mut received = Vec::new();
    connected.read = match stream.read_to_end(&mut received).await {
        Ok(_) => Ok(received),
        Err(error) => Err(tls_error(&error)),
    };
    connected
}

/// The `rustls::Error` tokio-rustls wrapped in `error`.
fn tls_error(error: &io::Error) -> rustls::Error {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {error:?}"))
        .clone()
}

/// A browser's certificate store: it has certificates, and a CertificateRequest
/// would make it show the user a picker. Counts how often that happened.
#[derive(Debug, Default)]
struct CertificatePicker {
    shown: AtomicUsize,
}

impl ResolvesClientCert for CertificatePicker {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.shown.fetch_add(1, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// (a) A browser-like client (plain rustls config, no hook, ALPN h2/http1.1)
/// sets no flag, so a flag-enabled server sends it no CertificateRequest: no
/// picker; it is served anonymously.
fn rca1_browser_without_flag_gets_no_certificate_request(provider: Provider) {
    let pki = TestPki::shared();
    let picker = Arc::new(CertificatePicker::default());
    let mut browser = client_config(pki, provider, None);
    browser.client_auth_cert_resolver = picker.clone();
    block_on(async {
        let (listener, address) = listen().await;
        let server_side = accept_one(
            listener,
            flag_server(pki, provider, bot_flags(pki, provider)),
        );
        let client = connect(address, browser).await;
        let served = server_side
            .await
            .expect("server task")
            .expect("browser served");

        assert_eq!(picker.shown.load(Ordering::SeqCst), 0, "a picker was shown");
        assert!(!served.flag_received);
        assert_eq!(served.certificate_request, None);
        assert_eq!(served.path, AuthPath::None);
        assert!(served.chain.is_none());
        assert_eq!(served.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(client.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(client.read.expect("greeting"), GREETING);
    });
}

/// (b) A bot with a flag-path certificate: the CertificateRequest acknowledges
/// the flag, and the server authenticates the bot on the flag path.
fn rca2_bot_with_bot_ca_certificate_is_authenticated_on_flag_path(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth(config::certified_key(
            &pki.bot, provider,
        ))),
    );
    block_on(async {
        let (listener, address) = listen().await;
        let server_side = accept_one(
            listener,
            flag_server(pki, provider, bot_flags(pki, provider)),
        );
        let client = connect(address, bot).await;
        let served = server_side.await.expect("server task").expect("bot served");

        assert!(client.flag_sent);
        assert_eq!(
            client.certificate_request,
            Some(CertificateRequestCause::Flag)
        );
        assert!(client.acknowledged);
        assert!(served.flag_received);
        assert_eq!(
            served.certificate_request,
            Some(CertificateRequestCause::Flag)
        );
        assert!(served.acknowledged);
        assert_eq!(served.path, AuthPath::Flag);
        assert_eq!(served.chain.as_deref(), Some(pki.bot.chain.as_slice()));
        assert_eq!(client.read.expect("greeting"), GREETING);
    });
}

/// (c) A bot with a certificate from the normal CA: the flag path trusts the
/// bot CA only, so the server refuses the certificate with `unknown_ca`.
fn rca10_bot_with_normal_ca_certificate_is_refused_on_flag_path(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth(config::certified_key(
            &pki.normal_client,
            provider,
        ))),
    );
    block_on(async {
        let (listener, address) = listen().await;
        let server_side = accept_one(
            listener,
            flag_server(pki, provider, bot_flags(pki, provider)),
        );
        let client = connect(address, bot).await;
        let refused = server_side
            .await
            .expect("server task")
            .expect_err("the server must refuse a normal-CA certificate on the flag path");

        assert!(client.flag_sent);
        assert_eq!(
            client.certificate_request,
            Some(CertificateRequestCause::Flag)
        );
        assert_eq!(
            tls_error(&refused),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert_eq!(
            client.read.expect_err("no data after a refusal"),
            rustls::Error::AlertReceived(AlertDescription::UnknownCA)
        );
    });
}

/// (d) A flagged bot that has no certificate to give answers the acknowledging
/// CertificateRequest with an empty Certificate (RCA-5) and is served
/// anonymously, not refused (RCA-14).
fn rca14_flagged_bot_without_certificate_is_served_anonymously(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth_with(
            config::nothing_suitable(),
        )),
    );
    block_on(async {
        let (listener, address) = listen().await;
        let server_side = accept_one(
            listener,
            flag_server(pki, provider, bot_flags(pki, provider)),
        );
        let client = connect(address, bot).await;
        let served = server_side.await.expect("server task").expect("bot served");

        assert!(client.flag_sent);
        assert_eq!(
            client.certificate_request,
            Some(CertificateRequestCause::Flag)
        );
        assert_eq!(
            served.certificate_request,
            Some(CertificateRequestCause::Flag)
        );
        assert_eq!(served.path, AuthPath::None);
        assert!(served.chain.is_none());
        assert_eq!(client.read.expect("greeting"), GREETING);
    });
}

/// (d') RCA-14's "unless the server's policy says so": with
/// `require_certificate`, the empty Certificate is refused with
/// `certificate_required`.
fn rca14_policy_requiring_certificate_refuses_empty_certificate(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth_with(
            config::nothing_suitable(),
        )),
    );
    block_on(async {
        let (listener, address) = listen().await;
        let flags = bot_flags(pki, provider).require_certificate();
        let server_side = accept_one(listener, flag_server(pki, provider, flags));
        let client = connect(address, bot).await;
        let refused = server_side
            .await
            .expect("server task")
            .expect_err("the policy refuses an empty Certificate");

        assert_eq!(tls_error(&refused), rustls::Error::NoCertificatesPresented);
        assert_eq!(
            client.read.expect_err("no data after a refusal"),
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
        );
    });
}

/// (d'') A bot without any certificate does not send the flag (RCA-1): no
/// CertificateRequest, served anonymously.
fn rca1_bot_without_identity_sends_no_flag(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth_with(config::no_identity())),
    );
    block_on(async {
        let (listener, address) = listen().await;
        let server_side = accept_one(
            listener,
            flag_server(pki, provider, bot_flags(pki, provider)),
        );
        let client = connect(address, bot).await;
        let served = server_side.await.expect("server task").expect("bot served");

        assert!(!client.flag_sent);
        assert_eq!(client.certificate_request, None);
        assert!(!served.flag_received);
        assert_eq!(served.certificate_request, None);
        assert_eq!(served.path, AuthPath::None);
        assert_eq!(client.read.expect("greeting"), GREETING);
    });
}

/// The peer identity, read once per connection and inserted into every
/// request as an extension.
#[derive(Clone, Debug)]
struct PeerIdentity {
    path: AuthPath,
    chain: Option<Vec<CertificateDer<'static>>>,
}

/// The application: answers with the trust path of the request's client.
fn who_is_it(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match request.extensions().get::<PeerIdentity>() {
        Some(identity) => format!(
            "path={:?} certificates={}",
            identity.path,
            identity.chain.as_ref().map_or(0, Vec::len)
        ),
        None => "no identity".to_owned(),
    };
    Response::new(Full::new(Bytes::from(body)))
}

/// A real server's accept loop: TCP accept, TLS handshake with a timeout, the
/// identity into an extension, hyper-util's auto builder (h1/h2 by ALPN).
/// Reports each identity on `identities`.
async fn serve_http(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    identities: mpsc::UnboundedSender<PeerIdentity>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let identities = identities.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let peer = server::peer(stream.get_ref().1);
            let identity = PeerIdentity {
                path: peer.path,
                chain: peer.chain.map(<[_]>::to_vec),
            };
            let _ = identities.send(identity.clone());
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(identity.clone());
                std::future::ready(Ok::<_, std::convert::Infallible>(who_is_it(&request)))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// (e) HTTP/2 over a flagged connection: the handler of a hyper server sees
/// the bot as authenticated on the flag path (RCA-2, and RCA-10's "treat
/// flag-authenticated clients apart"), and ALPN negotiated h2.
fn rca2_http2_handler_sees_flag_path_identity(provider: Provider) {
    let pki = TestPki::shared();
    let bot = client_config(
        pki,
        provider,
        Some(ClientFlags::request_client_auth(config::certified_key(
            &pki.bot, provider,
        ))),
    );
    let server_config = flag_server(pki, provider, bot_flags(pki, provider));
    block_on(async {
        let (listener, address) = listen().await;
        let (identities, mut seen) = mpsc::unbounded_channel();
        let server = tokio::spawn(serve_http(listener, server_config, identities));

        let tcp = TcpStream::connect(address).await.expect("TCP connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let stream = TlsConnector::from(Arc::new(bot))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let conn = stream.get_ref().1;
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
        let state = client::client_state(conn).expect("ClientFlags is installed");
        assert_eq!(
            state.certificate_request(),
            Some(CertificateRequestCause::Flag)
        );

        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        let driver = tokio::spawn(connection);
        let request = Request::get("https://localhost/whoami")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.version(), Version::HTTP_2);
        assert!(response.status().is_success());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        assert_eq!(
            std::str::from_utf8(&body).expect("UTF-8 body"),
            format!("path=Flag certificates={}", pki.bot.chain.len())
        );

        let identity = seen.recv().await.expect("the server reports the identity");
        assert_eq!(identity.path, AuthPath::Flag);
        assert_eq!(identity.chain.as_deref(), Some(pki.bot.chain.as_slice()));

        drop(sender);
        driver
            .await
            .expect("client connection task")
            .expect("the HTTP/2 connection closes cleanly");
        server.abort();
    });
}

provider_tests! {
    rca1_browser_without_flag_gets_no_certificate_request => rca1_browser_without_flag_gets_no_certificate_request;
    rca1_bot_without_identity_sends_no_flag => rca1_bot_without_identity_sends_no_flag;
    rca2_bot_with_bot_ca_certificate_is_authenticated_on_flag_path => rca2_bot_with_bot_ca_certificate_is_authenticated_on_flag_path;
    rca2_http2_handler_sees_flag_path_identity => rca2_http2_handler_sees_flag_path_identity;
    rca10_bot_with_normal_ca_certificate_is_refused_on_flag_path => rca10_bot_with_normal_ca_certificate_is_refused_on_flag_path;
    rca14_flagged_bot_without_certificate_is_served_anonymously => rca14_flagged_bot_without_certificate_is_served_anonymously;
    rca14_policy_requiring_certificate_refuses_empty_certificate => rca14_policy_requiring_certificate_refuses_empty_certificate;
}
