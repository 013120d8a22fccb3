//! The integration layer over TCP loopback, both providers: `serve` with an
//! axum app (people and bots on one port, the identity in the handler, the
//! bots-only extractor, CORS preflights), reqwest and hyper-rustls bots from
//! `BotClient`, the client's outcome record, ALPN, the handshake timeout,
//! reloading the bot CA set, the per-client connection limit, and graceful
//! shutdown.

use std::future::IntoFuture as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use integration_tests::config;
use integration_tests::pki::{Identity, SERVER_NAME};
use integration_tests::{each_provider_async, Provider, TestPki};
use rustls::ServerConfig;
use rustls_req_client_auth::client::SentIdentity;
use rustls_req_client_auth::{
    find_tls_error, Acceptor, AuthPath, Bot, BotClient, FlagVerifier, PeerIdentity, ServerFlags,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The example server's app: who you are on `/`, bots only on `/api/crawl`,
/// and a CORS preflight answer (browsers on other origins send those without
/// certificates).
fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(
                |peer: PeerIdentity, ConnectInfo(remote): ConnectInfo<SocketAddr>| async move {
                    assert!(remote.ip().is_loopback());
                    format!("{}|{}", peer.path(), peer)
                },
            )
            .options(|| async {
                (
                    StatusCode::NO_CONTENT,
                    [("access-control-allow-origin", "*")],
                )
            }),
        )
        .route(
            "/api/crawl",
            get(|Bot(bot): Bot| async move {
                bot.leaf()
                    .map(|leaf| leaf.dns_names().join(","))
                    .unwrap_or_default()
            }),
        )
        // A site that wants bots to say who they are, as well as prove it.
        .route(
            "/api/polite",
            get(|Bot(_): Bot, headers: axum::http::HeaderMap| async move {
                match headers.get(axum::http::header::USER_AGENT) {
                    Some(agent) if agent.as_bytes().starts_with(b"examplebot/") => {
                        (StatusCode::OK, "welcome, examplebot")
                    }
                    _ => (StatusCode::FORBIDDEN, "say who you are"),
                }
            }),
        )
}

struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    bot_ca: FlagVerifier,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.address.port())
    }

    async fn shut_down(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("shutdown in time")
            .expect("server task")
            .expect("serve");
    }
}

/// A one-port server: no client auth for anyone, the flag path for bots of
/// the bot CA. ALPN left empty: `serve` sets `h2, http/1.1`.
/// The one-port server's TLS config (the flag path for the bot CA), and a
/// listener on a free loopback port with its address.
async fn one_port(
    pki: &TestPki,
    provider: Provider,
) -> (ServerConfig, FlagVerifier, TcpListener, SocketAddr) {
    let mut server: ServerConfig = config::server(pki, provider);
    let flags = ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true));
    let bot_ca = flags.flag_verifier();
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    (server, bot_ca, listener, address)
}

async fn start(pki: &TestPki, provider: Provider) -> Running {
    let (server, bot_ca, listener, address) = one_port(pki, provider).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(
        rustls_req_client_auth::serve(listener, Arc::new(server), app())
            .handshake_timeout(Duration::from_millis(500))
            .shutdown_grace(Duration::from_secs(2))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            }),
    );
    Running {
        address,
        stop,
        done,
        bot_ca,
    }
}

fn bot_client(pki: &TestPki, provider: Provider, identity: &Identity) -> BotClient {
    BotClient::from_der(identity.chain.clone(), identity.key())
        .trust(pki.server_ca.roots())
        .crypto_provider(provider.crypto())
}

/// reqwest pointed at the loopback server for `SERVER_NAME`.
fn reqwest_for(
    running: &Running,
    builder: reqwest::ClientBuilder,
    config: rustls::ClientConfig,
) -> reqwest::Client {
    builder
        .tls_backend_preconfigured(config)
        .resolve(SERVER_NAME, running.address)
        .build()
        .expect("reqwest client")
}

/// A browser: plain rustls with ALPN, no flag.
fn browser(pki: &TestPki, provider: Provider, running: &Running) -> reqwest::Client {
    let mut config = config::client(pki, provider);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest_for(running, reqwest::Client::builder(), config)
}

fn bot_reqwest(bot: &BotClient, running: &Running) -> reqwest::Client {
    reqwest_for(
        running,
        reqwest::Client::builder(),
        bot.client_config().expect("bot config"),
    )
}

#[test]
fn browser_and_bot_on_one_port() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let running = start(pki, provider).await;

        // The browser: anonymous, HTTP/2 by ALPN, no access to the bots' API,
        // and its CORS preflight is answered.
        let browser = browser(pki, provider, &running);
        let page = browser.get(running.url("/")).send().await.expect("GET /");
        assert_eq!(page.version(), reqwest::Version::HTTP_2);
        let text = page.text().await.expect("body");
        assert_eq!(text, "none|anonymous; TLSv1_3 h2");
        let api = browser
            .get(running.url("/api/crawl"))
            .send()
            .await
            .expect("GET");
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
        let preflight = browser
            .request(Method::OPTIONS, running.url("/"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .expect("preflight");
        assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

        // The bot: flag path, its names in the handler, HTTP/2.
        let bot = bot_client(pki, provider, &pki.bot);
        let client = bot_reqwest(&bot, &running);
        let page = client.get(running.url("/")).send().await.expect("GET /");
        assert_eq!(page.version(), reqwest::Version::HTTP_2);
        let text = page.text().await.expect("body");
        assert!(
            text.starts_with("flag|bot (flag path) CN=crawler.bot.test, x5t#S256="),
            "{text}"
        );
        assert!(text.ends_with("; TLSv1_3 h2"), "{text}");
        let api = client
            .get(running.url("/api/crawl"))
            .send()
            .await
            .expect("GET");
        assert_eq!(api.status(), StatusCode::OK);
        assert_eq!(api.text().await.expect("body"), "crawler.bot.test");

        // What the bot learns without the connection: acknowledged, its
        // identity sent.
        let outcome = bot.outcomes().get(SERVER_NAME).expect("recorded");
        assert!(outcome.flag_acknowledged());
        assert_eq!(outcome.sent_identity(), SentIdentity::FlagIdentity);

        running.shut_down().await;
    });
}

#[test]
fn bot_clients_from_the_helpers() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let running = start(pki, provider).await;
        let bot = bot_client(pki, provider, &pki.bot);

        // reqwest_client() itself ("localhost" resolves to the loopback server).
        let client = bot.reqwest_client().expect("reqwest client");
        let response = client
            .get(running.url("/api/crawl"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.text().await.expect("body"), "crawler.bot.test");

        // reqwest_builder(): the bot's own User-Agent and timeout, with the
        // TLS configuration that sends the flag.
        let polite = bot
            .reqwest_builder()
            .expect("reqwest builder")
            .user_agent("examplebot/1.0 (+https://example.com/bot)")
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("client");
        let response = polite
            .get(running.url("/api/polite"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.expect("body"), "welcome, examplebot");
        let response = client
            .get(running.url("/api/polite"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);

        // hyper-rustls: the connector sets ALPN h2, http/1.1.
        let connector = bot.https_connector().expect("connector");
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, Empty<bytes::Bytes>>(connector);
        let response = client
            .get(running.url("/api/crawl").parse().expect("uri"))
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"crawler.bot.test");
        assert_eq!(
            bot.outcomes().get(SERVER_NAME).map(|o| o.sent_identity()),
            Some(SentIdentity::FlagIdentity)
        );

        running.shut_down().await;
    });
}

#[test]
fn refused_bot_learns_why() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let running = start(pki, provider).await;
        // A bot whose certificate comes from a CA the flag path does not trust.
        let bot = bot_client(pki, provider, &pki.normal_client);
        let client = bot_reqwest(&bot, &running);
        let error = client
            .get(running.url("/"))
            .send()
            .await
            .expect_err("refused");
        // The outcome says the flag was acknowledged and the identity sent: the
        // server refused that identity.
        let outcome = bot.outcomes().get(SERVER_NAME).expect("recorded");
        assert!(outcome.flag_acknowledged());
        assert_eq!(outcome.sent_identity(), SentIdentity::FlagIdentity);
        // Where the HTTP stack keeps the cause, it is the server's alert.
        if let Some(tls) = find_tls_error(&error) {
            assert_eq!(
                *tls,
                rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)
            );
        }
        running.shut_down().await;
    });
}

#[test]
fn reloaded_bot_ca_over_loopback() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let running = start(pki, provider).await;
        let partner = bot_client(pki, provider, &pki.normal_client);
        assert!(bot_reqwest(&partner, &running)
            .get(running.url("/api/crawl"))
            .send()
            .await
            .is_err());
        running
            .bot_ca
            .replace(config::verifier(&pki.normal_ca, provider, true));
        let response = bot_reqwest(&partner, &running)
            .get(running.url("/api/crawl"))
            .send()
            .await
            .expect("accepted after the swap");
        assert_eq!(response.text().await.expect("body"), "partner.client.test");
        running.shut_down().await;
    });
}

#[test]
fn silent_client_is_dropped_after_the_handshake_timeout() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let running = start(pki, provider).await;
        let mut tcp = TcpStream::connect(running.address).await.expect("connect");
        // Says nothing; the server gives up after 500 ms and closes.
        let mut buf = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("closed by the server within the timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        running.shut_down().await;
    });
}

/// `Serve::max_connections_per_client`: one client address's connection
/// beyond the limit is closed before its handshake and reported to the
/// handshake observer as `AcceptError::ClientLimit`; once one of its
/// connections closes, the address may connect again.
#[test]
fn a_client_over_its_connection_limit_is_closed_and_reported() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (server, _bot_ca, listener, address) = one_port(pki, provider).await;
        let limited = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&limited);
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(
            rustls_req_client_auth::serve(listener, Arc::new(server), app())
                .max_connections_per_client(1)
                .on_handshake(move |outcome| {
                    if matches!(
                        outcome,
                        Err(rustls_req_client_auth::AcceptError::ClientLimit(1))
                    ) {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
                .shutdown_grace(Duration::from_secs(2))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );
        let held = tls_to(pki, provider, address, b"http/1.1").await;
        let mut client = config::client(pki, provider);
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(address).await.expect("connect");
        let refused = connector
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await;
        assert!(
            refused.is_err(),
            "a second connection of one address was served"
        );
        assert_eq!(limited.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(held);
        let started = std::time::Instant::now();
        loop {
            let tcp = TcpStream::connect(address).await.expect("connect");
            let again = connector
                .connect(SERVER_NAME.try_into().expect("name"), tcp)
                .await;
            if again.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the slot did not come back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(());
        done.await.expect("task").expect("served");
    });
}

/// A bot whose certificate comes from a CA the flag path does not trust,
/// connected to `address`: its side of the handshake done (TLS 1.3), the
/// server's refusal still to be read.
async fn refused_bot(
    pki: &'static TestPki,
    provider: Provider,
    address: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let bot = bot_client(pki, provider, &pki.normal_client);
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(bot.client_config().expect("config")));
    let tcp = TcpStream::connect(address).await.expect("connect");
    connector
        .connect(SERVER_NAME.try_into().expect("name"), tcp)
        .await
        .expect("the client's side of the handshake")
}

/// An [`Acceptor`] of a flag-path server on a loopback port, accepting one
/// connection: the address, and the task that yields what `accept` gave.
async fn accept_one_bot(
    pki: &'static TestPki,
    provider: Provider,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<
        Result<
            (tokio_rustls::server::TlsStream<TcpStream>, PeerIdentity),
            rustls_req_client_auth::AcceptError,
        >,
    >,
) {
    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let acceptor = Acceptor::new(Arc::new(server));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        acceptor.accept(tcp).await
    });
    (address, accepted)
}

#[test]
fn acceptor_yields_stream_and_identity() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (address, accepted) = accept_one_bot(pki, provider).await;
        let bot = bot_client(pki, provider, &pki.bot);
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(bot.client_config().expect("config")));
        let tcp = TcpStream::connect(address).await.expect("connect");
        let _client = connector
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("client handshake");
        let (stream, peer) = accepted.await.expect("task").expect("accepted");
        assert_eq!(peer.path(), AuthPath::Flag);
        assert_eq!(peer.chain(), &pki.bot.chain[..]);
        assert_eq!(peer.alpn(), None, "the acceptor leaves ALPN to the config");
        assert!(stream.get_ref().1.peer_certificates().is_some());
    });
}

/// A refused client reads the server's alert even when it went on writing
/// (in TLS 1.3 a client sends its request as soon as its side of the
/// handshake is done): the acceptor closes without a reset, so neither the
/// client's later writes fail with a broken pipe nor is its alert lost.
#[test]
fn a_refused_client_that_keeps_writing_still_reads_the_alert() {
    use tokio::io::AsyncWriteExt;
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (address, accepted) = accept_one_bot(pki, provider).await;
        let mut client = refused_bot(pki, provider, address).await;
        let request = vec![b'x'; 16 * 1024];
        client.write_all(&request).await.expect("first write");
        // Long enough for the refusal, and for a reset to arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .write_all(&request)
            .await
            .expect("a write after the refusal is not reset");
        let mut buf = [0; 16];
        let read = client.read(&mut buf).await.expect_err("refused");
        assert_eq!(
            find_tls_error(&read),
            Some(&rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            )),
            "{read}"
        );
        drop(client);
        let refused = accepted.await.expect("task");
        assert!(
            matches!(
                refused,
                Err(rustls_req_client_auth::AcceptError::Refused(..))
            ),
            "{refused:?}"
        );
    });
}

/// A refused handshake is reported (the handshake observer, and the log
/// line `serve` writes with it) when the alert goes out, not after the
/// connection has lingered for the client to read it (up to a second while
/// the client keeps its socket open): a log line a second late was stamped
/// after a reload that had let the bot in again (found by an outside trial).
#[test]
fn a_refusal_is_reported_when_the_alert_goes_out() {
    use tokio::io::AsyncReadExt as _;
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (server, _bot_ca, listener, address) = one_port(pki, provider).await;
        let (refused, mut refusals) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(
            rustls_req_client_auth::serve(listener, Arc::new(server), app())
                .on_handshake(move |outcome| {
                    if let Err(error) = outcome {
                        if error.is_certificate_refused() {
                            let _ = refused.send(std::time::Instant::now());
                        }
                    }
                })
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );
        let mut client = refused_bot(pki, provider, address).await;
        let mut buf = [0; 16];
        client.read(&mut buf).await.expect_err("refused");
        let alert_read = std::time::Instant::now();
        // The client keeps its socket open, so the server lingers a second.
        let reported = tokio::time::timeout(Duration::from_secs(5), refusals.recv())
            .await
            .expect("reported")
            .expect("a refusal");
        assert!(
            reported < alert_read + Duration::from_millis(700),
            "reported {:?} after the client read the alert",
            reported.duration_since(alert_read)
        );
        drop(client);
        let _ = stop.send(());
        done.await.expect("task").expect("served");
    });
}

/// An `Http1Front` that answers `GET /front` itself (with the client's
/// path) and hands anything else to hyper with what it read.
struct Front;

impl rustls_req_client_auth::Http1Front for Front {
    fn serve(
        &self,
        connection: rustls_req_client_auth::Http1Connection,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = rustls_req_client_auth::Http1Outcome> + Send + '_>,
    > {
        use rustls_req_client_auth::Http1Outcome;
        use tokio::io::AsyncWriteExt;
        Box::pin(async move {
            let mut stream = connection.stream;
            let mut read = Vec::new();
            let ours = b"GET /front HTTP/1.1\r\nhost: x\r\n\r\n";
            loop {
                if read.len() >= ours.len() || !ours.starts_with(&read) {
                    if !read.starts_with(ours) {
                        return Http1Outcome::HandOver { stream, read };
                    }
                    read.drain(..ours.len());
                    let body = format!("front|{}", connection.identity.path());
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return Http1Outcome::Closed;
                    }
                    continue;
                }
                match stream.read_buf(&mut read).await {
                    Ok(1..) => {}
                    _ => return Http1Outcome::Closed,
                }
            }
        })
    }
}

/// An HTTP/1.1 connection goes to the front first: pipelined requests it
/// serves and the ones it hands over are answered in order on one
/// connection, the handed-over bytes read by hyper as if they came first.
/// HTTP/2 connections never reach the front.
#[test]
fn an_http1_front_serves_first_and_hands_the_rest_to_hyper() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (server, _, listener, address) = one_port(pki, provider).await;
        let server = Arc::new(server);
        tokio::spawn(
            rustls_req_client_auth::serve(listener, server, app())
                .http1_front(Front)
                .into_future(),
        );

        let mut client = config::client(pki, provider);
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(address).await.expect("connect");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("handshake");
        let requests = "GET /front HTTP/1.1\r\nhost: x\r\n\r\n\
            GET /front HTTP/1.1\r\nhost: x\r\n\r\n\
            GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        tokio::io::AsyncWriteExt::write_all(&mut tls, requests.as_bytes())
            .await
            .expect("send");
        let mut answers = String::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut answers))
            .await
            .expect("closed after the last request")
            .expect("read");
        assert_eq!(answers.matches("front|none").count(), 2, "{answers}");
        let hyper = answers.find("none|").expect("hyper's answer");
        assert!(answers.rfind("front|none") < Some(hyper), "{answers}");

        let mut h2 = config::client(pki, provider);
        h2.alpn_protocols = vec![b"h2".to_vec()];
        let browser = reqwest::Client::builder()
            .tls_backend_preconfigured(h2)
            .resolve(SERVER_NAME, address)
            .build()
            .expect("reqwest client");
        let url = format!("https://{SERVER_NAME}:{}/front", address.port());
        let response = browser.get(url).send().await.expect("h2");
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "not the front's");
    });
}

/// A front that reads one request head, starts the server's shutdown, waits
/// until the server says it is stopping, and only then hands the request to
/// hyper: the race of a hand-over with the start of shutdown, made certain.
struct HandsOverWhileStopping {
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

impl rustls_req_client_auth::Http1Front for HandsOverWhileStopping {
    fn serve(
        &self,
        connection: rustls_req_client_auth::Http1Connection,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = rustls_req_client_auth::Http1Outcome> + Send + '_>,
    > {
        use rustls_req_client_auth::Http1Outcome;
        Box::pin(async move {
            let rustls_req_client_auth::Http1Connection {
                mut stream,
                mut stopping,
                ..
            } = connection;
            let mut read = Vec::new();
            while !read.windows(4).any(|end| end == b"\r\n\r\n") {
                match stream.read_buf(&mut read).await {
                    Ok(1..) => {}
                    _ => return Http1Outcome::Closed,
                }
            }
            let stop = self.stop.lock().expect("not poisoned").take();
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            stopping.stopped().await;
            assert!(stopping.is_stopping());
            Http1Outcome::HandOver { stream, read }
        })
    }
}

/// A request a front hands over after shutdown has begun has already left
/// the client's socket: hyper still answers it (saying `connection: close`)
/// and then closes, instead of closing without reading it.
#[test]
fn a_request_handed_over_during_shutdown_is_answered() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (server, _, listener, address) = one_port(pki, provider).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(
            rustls_req_client_auth::serve(listener, Arc::new(server), app())
                .shutdown_grace(Duration::from_secs(5))
                .http1_front(HandsOverWhileStopping {
                    stop: std::sync::Mutex::new(Some(stop)),
                })
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );

        let mut client = config::client(pki, provider);
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(address).await.expect("connect");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("handshake");
        tokio::io::AsyncWriteExt::write_all(&mut tls, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("send");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut answer))
            .await
            .expect("closed after the answer")
            .expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("connection: close\r\n"),
            "{answer:?}"
        );
        assert!(answer.contains("\r\n\r\nnone|anonymous"), "{answer:?}");
        tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("shutdown in time")
            .expect("server task")
            .expect("serve");
    });
}

/// `drain_on`: from the drain signal on, and before the stop, a connection
/// closes once it has served a request (an idle HTTP/1.1 keep-alive one at
/// once, an HTTP/2 one after a GOAWAY), one that has sent nothing yet gets
/// its first request answered (HTTP/1.1 with `connection: close`) before it
/// closes, and new connections are still accepted, served and closed.
#[test]
fn draining_closes_connections_once_they_have_served() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let (server, _, listener, address) = one_port(pki, provider).await;
        let (drain, draining) = oneshot::channel::<()>();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(
            rustls_req_client_auth::serve(listener, Arc::new(server), app())
                .drain_on(async {
                    let _ = draining.await;
                })
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );
        let mut kept = Http1Client::connect(pki, provider, address).await;
        assert_eq!(kept.get().await, (200, false));
        let (mut h2, h2_connection) = http2_client(pki, provider, address).await;
        let answer = h2
            .send_request(get_request())
            .await
            .expect("HTTP/2 response");
        assert_eq!(answer.status(), 200);
        let mut fresh = Http1Client::connect(pki, provider, address).await;
        let (mut fresh_h2, fresh_h2_connection) = http2_client(pki, provider, address).await;

        let _ = drain.send(());
        let within = Duration::from_secs(3);
        tokio::time::timeout(within, kept.connection)
            .await
            .expect("the idle HTTP/1.1 connection closed")
            .expect("task")
            .expect("a clean close");
        tokio::time::timeout(within, h2_connection)
            .await
            .expect("the HTTP/2 connection closed (GOAWAY)")
            .expect("task")
            .expect("a clean close");
        assert_eq!(fresh.get().await, (200, true));
        let answer = fresh_h2
            .send_request(get_request())
            .await
            .expect("HTTP/2 response");
        assert_eq!(answer.status(), 200);
        let mut new = Http1Client::connect(pki, provider, address).await;
        assert_eq!(new.get().await, (200, true));
        for (what, connection) in [
            ("HTTP/1.1, begun before", fresh.connection),
            ("HTTP/2, begun before", fresh_h2_connection),
            ("HTTP/1.1, new", new.connection),
        ] {
            tokio::time::timeout(within, connection)
                .await
                .unwrap_or_else(|_| panic!("{what}: not closed after its request"))
                .expect("task")
                .expect("a clean close");
        }
        assert!(!done.is_finished(), "draining is not the stop");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("shutdown in time")
            .expect("server task")
            .expect("serve");
    });
}

/// Heads hyper answers by itself (400 unparseable, 431 too large, 414 a
/// target too long) are reported with the client and the status, as they
/// reach no service; a request it serves, and a connection closed without a
/// request, are not.
#[test]
fn requests_hyper_refuses_are_reported() {
    each_provider_async(|provider| async move {
        let pki = TestPki::shared();
        let mut server = RefusingServer::start(pki, provider, 8192).await;
        let mut fine = Http1Client::connect(pki, provider, server.running.address).await;
        assert_eq!(fine.get().await, (200, false));
        drop(fine);
        drop(tls_to(pki, provider, server.running.address, b"http/1.1").await);
        // Just over the limit: hyper has read it all when it answers, so
        // the answer is not lost to a reset.
        let long = format!(
            "GET / HTTP/1.1\r\nhost: a\r\nx-long: {}\r\n\r\n",
            "a".repeat(9000)
        );
        for (head, status) in [
            ("GET / HTTP/1.1\r\nhost : a\r\n\r\n".to_owned(), 400),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nbad\x01name: b\r\n\r\n".to_owned(),
                400,
            ),
            (long, 431),
        ] {
            server.refuses(pki, provider, &head, status).await;
        }
        server.stop().await;

        // Over hyper's 65,534 bytes for a target, under a head limit above it.
        let mut server = RefusingServer::start(pki, provider, 128 * 1024).await;
        let long_target = format!("GET /{} HTTP/1.1\r\nhost: a\r\n\r\n", "a".repeat(66_000));
        server.refuses(pki, provider, &long_target, 414).await;
        server.stop().await;
    });
}

/// A `serve` server with `http1_max_head(max_head)` whose refused
/// requests are reported on a channel.
struct RefusingServer {
    running: Running,
    reported: tokio::sync::mpsc::UnboundedReceiver<(u16, std::net::IpAddr, AuthPath, String)>,
}

impl RefusingServer {
    async fn start(pki: &TestPki, provider: Provider, max_head: usize) -> Self {
        let (server, bot_ca, listener, address) = one_port(pki, provider).await;
        let (reports, reported) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(
            rustls_req_client_auth::serve(listener, Arc::new(server), app())
                .http1_max_head(max_head)
                .on_refused_request(move |refused| {
                    let _ = reports.send((
                        refused.status.as_u16(),
                        refused.remote.ip(),
                        refused.peer.path(),
                        refused.reason.clone(),
                    ));
                })
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );
        Self {
            running: Running {
                address,
                stop,
                done,
                bot_ca,
            },
            reported,
        }
    }

    /// Sends `head` on a connection of its own: answered with `status`,
    /// and reported once so.
    async fn refuses(&mut self, pki: &TestPki, provider: Provider, head: &str, status: u16) {
        use tokio::io::AsyncWriteExt as _;
        let mut tls = tls_to(pki, provider, self.running.address, b"http/1.1")
            .await
            .into_inner();
        // hyper may answer and close before it has read all of a long head.
        let _ = tls.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        let (reported_status, ip, path, reason) =
            tokio::time::timeout(Duration::from_secs(5), self.reported.recv())
                .await
                .expect("reported")
                .expect("the channel is open");
        assert_eq!(reported_status, status, "{reason}");
        assert!(ip.is_loopback());
        assert_eq!(path, AuthPath::None);
        assert!(!reason.is_empty());
    }

    /// Stops it, once nothing else was reported.
    async fn stop(mut self) {
        assert!(self.reported.try_recv().is_err(), "only the refused heads");
        self.running.shut_down().await;
    }
}

/// `GET /` with no body, as hyper's clients send it.
fn get_request() -> hyper::Request<Empty<bytes::Bytes>> {
    hyper::Request::get("/")
        .header("host", SERVER_NAME)
        .body(Empty::new())
        .expect("request")
}

/// A TLS connection to `address` offering `alpn` only, as a browser.
async fn tls_to(
    pki: &TestPki,
    provider: Provider,
    address: SocketAddr,
    alpn: &[u8],
) -> hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut client = config::client(pki, provider);
    client.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(address).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(SERVER_NAME.try_into().expect("name"), tcp)
        .await
        .expect("handshake");
    hyper_util::rt::TokioIo::new(tls)
}

/// hyper's HTTP/1.1 client on a connection of its own, whose task ends when
/// the server closes it.
struct Http1Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>,
    connection: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl Http1Client {
    async fn connect(pki: &TestPki, provider: Provider, address: SocketAddr) -> Self {
        let io = tls_to(pki, provider, address, b"http/1.1").await;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1");
        Self {
            sender,
            connection: tokio::spawn(connection),
        }
    }

    /// `GET /`: the status, and whether the response said `connection: close`.
    async fn get(&mut self) -> (u16, bool) {
        let response = self
            .sender
            .send_request(get_request())
            .await
            .expect("HTTP/1.1 response");
        let close = response
            .headers()
            .get("connection")
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = response.status().as_u16();
        response.into_body().collect().await.expect("body");
        (status, close)
    }
}

/// hyper's HTTP/2 client on a connection of its own, and its task.
async fn http2_client(
    pki: &TestPki,
    provider: Provider,
    address: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let io = tls_to(pki, provider, address, b"h2").await;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("HTTP/2");
    (sender, tokio::spawn(connection))
}
