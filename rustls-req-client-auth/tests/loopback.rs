//! `request_client_auth` over real TCP loopback: tokio-rustls on both ends,
//! configs from the test PKI, both crypto providers, and HTTP/2 through hyper
//! with the peer identity handed to the handler as a request extension.
//!
//! The central cases are rows of one table ([`scenarios`]), each naming the
//! SPECIFICATION.md rules it checks; the HTTP/2 test names its rule too.

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
use integration_tests::pki::Identity;
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

/// What the server side of a [`Scenario`] ends with.
enum ServerEnd {
    /// The handshake completed: the flag seen or not, the client's path and
    /// chain (the identity it authenticated with).
    Served {
        flag_received: bool,
        path: AuthPath,
        chain: Option<fn(&TestPki) -> &Identity>,
    },
    /// The server refused the client with `error`; the client reads `alert`
    /// (in TLS 1.3 a refusal of the client's certificate arrives after the
    /// client's side of the handshake has completed).
    Refused {
        error: rustls::Error,
        alert: AlertDescription,
    },
}

/// One client against a flag-enabled server over TCP.
struct Scenario {
    /// The rule the row checks (its id first) and who the client is.
    case: &'static str,
    /// The client's TLS Flags (`None`: a browser-like client, no hook).
    flags: Option<fn(&TestPki, Provider) -> ClientFlags>,
    /// `ServerFlags::require_certificate`.
    require_certificate: bool,
    /// Whether the client sent the flag.
    flag_sent: bool,
    /// The CertificateRequest both sides saw (acknowledging iff `Flag`).
    certificate_request: Option<CertificateRequestCause>,
    end: ServerEnd,
}

/// The central cases of SPECIFICATION.md, as a browser and bots see them.
/// Every client has a certificate store that would show a picker (RCA-9's
/// other identity); no row may make it show one.
fn scenarios() -> Vec<Scenario> {
    let flag = Some(CertificateRequestCause::Flag);
    vec![
        Scenario {
            case: "RCA-1: a browser-like client sets no flag, gets no CertificateRequest, sees no picker",
            flags: None,
            require_certificate: false,
            flag_sent: false,
            certificate_request: None,
            end: ServerEnd::Served {
                flag_received: false,
                path: AuthPath::None,
                chain: None,
            },
        },
        Scenario {
            case: "RCA-1: a bot without any certificate does not send the flag",
            flags: Some(|_, _| ClientFlags::request_client_auth_with(config::no_identity())),
            require_certificate: false,
            flag_sent: false,
            certificate_request: None,
            end: ServerEnd::Served {
                flag_received: false,
                path: AuthPath::None,
                chain: None,
            },
        },
        Scenario {
            case: "RCA-2: a bot with a bot-CA certificate, acknowledged and authenticated on the flag path",
            flags: Some(|pki, provider| {
                ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
            }),
            require_certificate: false,
            flag_sent: true,
            certificate_request: flag,
            end: ServerEnd::Served {
                flag_received: true,
                path: AuthPath::Flag,
                chain: Some(|pki| &pki.bot),
            },
        },
        Scenario {
            case: "RCA-10: a bot with a normal-CA certificate; the flag path trusts the bot CA only",
            flags: Some(|pki, provider| {
                ClientFlags::request_client_auth(config::certified_key(&pki.normal_client, provider))
            }),
            require_certificate: false,
            flag_sent: true,
            certificate_request: flag,
            end: ServerEnd::Refused {
                error: rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                alert: AlertDescription::UnknownCA,
            },
        },
        Scenario {
            case: "RCA-5, RCA-14: a flagged bot with nothing suitable sends an empty Certificate and is served anonymously",
            flags: Some(|_, _| ClientFlags::request_client_auth_with(config::nothing_suitable())),
            require_certificate: false,
            flag_sent: true,
            certificate_request: flag,
            end: ServerEnd::Served {
                flag_received: true,
                path: AuthPath::None,
                chain: None,
            },
        },
        Scenario {
            case: "RCA-14: under require_certificate the empty Certificate is refused",
            flags: Some(|_, _| ClientFlags::request_client_auth_with(config::nothing_suitable())),
            require_certificate: true,
            flag_sent: true,
            certificate_request: flag,
            end: ServerEnd::Refused {
                error: rustls::Error::NoCertificatesPresented,
                alert: AlertDescription::CertificateRequired,
            },
        },
    ]
}

fn central_cases_over_tcp(provider: Provider) {
    let pki = TestPki::shared();
    for row in scenarios() {
        let case = row.case;
        let picker = Arc::new(CertificatePicker::default());
        let mut client = config::client(pki, provider);
        client.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        client.client_auth_cert_resolver = picker.clone();
        if let Some(flags) = row.flags {
            flags(pki, provider)
                .install(&mut client)
                .expect("TLS Flags registers its extension type");
        }
        let mut flags = bot_flags(pki, provider);
        if row.require_certificate {
            flags = flags.require_certificate();
        }
        let acknowledged = row.certificate_request == Some(CertificateRequestCause::Flag);
        block_on(async {
            let (listener, address) = listen().await;
            let server_side = accept_one(listener, flag_server(pki, provider, flags));
            let client = connect(address, client).await;
            let server_end = server_side.await.expect("server task");

            assert_eq!(
                picker.shown.load(Ordering::SeqCst),
                0,
                "{case}: a picker was shown"
            );
            assert_eq!(client.flag_sent, row.flag_sent, "{case}");
            assert_eq!(
                client.certificate_request, row.certificate_request,
                "{case}"
            );
            assert_eq!(client.acknowledged, acknowledged, "{case}");
            assert_eq!(client.alpn.as_deref(), Some(&b"h2"[..]), "{case}");
            match row.end {
                ServerEnd::Served {
                    flag_received,
                    path,
                    chain,
                } => {
                    let served =
                        server_end.unwrap_or_else(|error| panic!("{case}: not served: {error}"));
                    assert_eq!(served.flag_received, flag_received, "{case}");
                    assert_eq!(
                        served.certificate_request, row.certificate_request,
                        "{case}"
                    );
                    assert_eq!(served.acknowledged, acknowledged, "{case}");
                    assert_eq!(served.path, path, "{case}");
                    let expected = chain.map(|identity| identity(pki).chain.as_slice());
                    assert_eq!(served.chain.as_deref(), expected, "{case}");
                    assert_eq!(served.alpn.as_deref(), Some(&b"h2"[..]), "{case}");
                    assert_eq!(client.read.expect("greeting"), GREETING, "{case}");
                }
                ServerEnd::Refused { error, alert } => {
                    let refused = server_end.expect_err(case);
                    assert_eq!(tls_error(&refused), error, "{case}");
                    assert_eq!(
                        client.read.expect_err("no data after a refusal"),
                        rustls::Error::AlertReceived(alert),
                        "{case}"
                    );
                }
            }
        });
    }
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

/// RCA-2 over HTTP/2 on a flagged connection: the handler of a hyper server sees
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
    central_cases_over_tcp => central_cases_over_tcp;
    rca2_http2_handler_sees_flag_path_identity => rca2_http2_handler_sees_flag_path_identity;
}
