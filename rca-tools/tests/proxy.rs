//! `rca-proxy` as a real process in front of a real upstream (a small hyper
//! server here), over loopback: people and bots on one port, the identity
//! headers the upstream sees, spoofed headers that never reach it (HTTP/1.1
//! in any letter case and repeated, HTTP/2), the bots-only policy, an upstream
//! that is down, configuration errors, SIGHUP reload and SIGTERM.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use integration_tests::pki::{Identity, SERVER_NAME};
use integration_tests::TestPki;
use rustls_req_client_auth::BotClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PROXY: &str = env!("CARGO_BIN_EXE_rca-proxy");

/// Lets the upstream's `/stream` response finish.
static RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// An upstream that answers every request with the request's method, path
/// and headers, one per line, so the test sees what the proxy forwarded.
async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|mut request: Request<Incoming>| async move {
                        if request
                            .headers()
                            .get("upgrade")
                            .is_some_and(|value| value == "websocket")
                        {
                            // An upgrade: 101, then every byte back, prefixed by
                            // the identity header this upstream was given.
                            let path = request
                                .headers()
                                .get("x-client-auth-path")
                                .map(|value| value.to_str().unwrap_or("?").to_owned())
                                .unwrap_or_default();
                            let upgraded = hyper::upgrade::on(&mut request);
                            tokio::spawn(async move {
                                if let Ok(upgraded) = upgraded.await {
                                    let mut io = TokioIo::new(upgraded);
                                    let _ = io.write_all(format!("path={path};").as_bytes()).await;
                                    let mut buf = [0; 64];
                                    while let Ok(n @ 1..) = io.read(&mut buf).await {
                                        if io.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                            let response = Response::builder()
                                .status(101)
                                .header("upgrade", "websocket")
                                .header("connection", "upgrade")
                                .body(Full::new(Bytes::new()).boxed())
                                .expect("101");
                            return Ok::<_, Infallible>(response);
                        }
                        if request.uri().path() == "/stream" {
                            // A body in two parts; the second only once the test
                            // has seen the first through the proxy.
                            let (mut sender, body) =
                                http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
                            tokio::spawn(async move {
                                let _ = sender.send_data(Bytes::from_static(b"first;")).await;
                                RELEASE.notified().await;
                                let _ = sender.send_data(Bytes::from_static(b"second")).await;
                            });
                            return Ok::<_, Infallible>(Response::new(body.boxed()));
                        }
                        if request.uri().path() == "/slow" {
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                        }
                        let mut echo = format!("{} {}\n", request.method(), request.uri());
                        for (name, value) in request.headers() {
                            echo.push_str(name.as_str());
                            echo.push_str(": ");
                            echo.push_str(value.to_str().unwrap_or("?"));
                            echo.push('\n');
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(echo)).boxed()))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    address
}

fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(pki: &TestPki) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files = Self { dir };
        files.write("server.pem", &pki.server.chain_pem);
        files.write("server.key", &pki.server.key_pem);
        files.write("bot-ca.pem", &pki.bot_ca.cert_pem);
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    fn config(&self, port: u16, upstream: SocketAddr, extra: &str) -> PathBuf {
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\nbot_ca = \"{}\"\n\
             [upstream]\nurl = \"http://{upstream}\"\ntimeout_secs = 5\n\
             [policy]\nbots_only = [\"/api/crawl\"]\n\
             [limits]\nhandshake_timeout_secs = 2\n{extra}",
            self.path("server.pem").display(),
            self.path("server.key").display(),
            self.path("bot-ca.pem").display(),
        );
        self.write("proxy.toml", &config)
    }
}

struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(config: &Path, port: u16) -> Self {
        let child = Command::new(PROXY)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rca-proxy");
        let started = Instant::now();
        while StdStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "rca-proxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "rca-proxy did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser(pki: &TestPki, http1_only: bool) -> reqwest::Client {
    let mut config = integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder().tls_backend_preconfigured(config);
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().expect("client")
}

fn bot(pki: &TestPki, identity: &Identity) -> BotClient {
    BotClient::from_der(identity.chain.clone(), identity.key())
        .trust(pki.server_ca.roots())
        .crypto_provider(integration_tests::Provider::AwsLcRs.crypto())
}

const SPOOFED: [(&str, &str); 6] = [
    ("x-client-auth-path", "flag"),
    ("X-Client-Cert-Subject", "CN=admin"),
    ("X-CLIENT-CERT-X5T-S256", "forged"),
    ("x-client-session-resumed", "true"),
    ("x-forwarded-for", "10.6.6.6"),
    ("Forwarded", "for=10.6.6.6"),
];

async fn get_spoofed(client: &reqwest::Client, url: &str) -> (u16, String) {
    let mut request = client.get(url);
    for (name, value) in SPOOFED {
        request = request.header(name, value).header(name, value);
    }
    let response = request.send().await.expect("response");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn people_and_bots_through_the_proxy() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let mut proxy = Proxy::start(&files.config(port, upstream, ""), port);

        // A person over HTTP/2 and HTTP/1.1: anonymous, spoofing stripped.
        for http1_only in [false, true] {
            let (status, echo) =
                get_spoofed(&browser(&pki, http1_only), &proxy.url("/page?q=1")).await;
            assert_eq!(status, 200, "{echo}");
            assert!(echo.starts_with("GET /page?q=1\n"), "{echo}");
            assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
            assert!(
                echo.contains("\nx-client-session-resumed: false\n"),
                "{echo}"
            );
            assert!(
                echo.contains("\nforwarded: for=127.0.0.1;proto=https;host=\"localhost:"),
                "{echo}"
            );
            assert!(echo.contains("\nx-forwarded-for: 127.0.0.1\n"), "{echo}");
            assert!(echo.contains("\nx-forwarded-proto: https\n"), "{echo}");
            assert!(
                !echo.contains("10.6.6.6")
                    && !echo.contains("CN=admin")
                    && !echo.contains("forged"),
                "{echo}"
            );
            assert!(
                !echo.to_lowercase().contains("x-client-cert-subject"),
                "{echo}"
            );
            // The bots-only prefix.
            let (status, body) =
                get_spoofed(&browser(&pki, http1_only), &proxy.url("/api/crawl/x")).await;
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("request_client_auth"), "{body}");
        }

        // A bot: its verified identity, nothing of what it claimed itself.
        let bot = bot(&pki, &pki.bot);
        let (status, echo) = get_spoofed(
            &bot.reqwest_client().expect("client"),
            &proxy.url("/api/crawl"),
        )
        .await;
        assert_eq!(status, 200, "{echo}");
        let leaf = rustls_req_client_auth::LeafCertificate::parse(&pki.bot.chain[0]);
        assert!(echo.contains("\nx-client-auth-path: flag\n"), "{echo}");
        assert!(
            echo.contains("\nx-client-cert-subject: CN=crawler.bot.test\n"),
            "{echo}"
        );
        assert!(
            echo.contains("\nx-client-cert-sans: DNS:crawler.bot.test\n"),
            "{echo}"
        );
        assert!(
            echo.contains(&format!(
                "\nx-client-cert-x5t-s256: {}\n",
                leaf.thumbprint_sha256()
            )),
            "{echo}"
        );
        assert_eq!(echo.matches("x-client-auth-path").count(), 1, "{echo}");
        assert!(
            !echo.contains("CN=admin") && !echo.contains("forged"),
            "{echo}"
        );

        // A bot from another CA is refused in the handshake.
        let stranger = bot_client_for(&pki, &pki.normal_client);
        assert!(stranger.get(proxy.url("/")).send().await.is_err());

        proxy.signal("TERM");
        assert!(proxy.wait().success());
    });
}

fn bot_client_for(pki: &TestPki, identity: &Identity) -> reqwest::Client {
    bot(pki, identity).reqwest_client().expect("client")
}

/// Raw HTTP/1.1 over TLS, so header names go out exactly as written.
#[test]
fn spoofed_headers_in_any_case_over_raw_http1() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);

        let mut config = integration_tests::config::client(&pki, integration_tests::Provider::AwsLcRs);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        let mut tls = connector
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("handshake");
        let mut request = Vec::new();
        write!(
            request,
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Client-Auth-Path: flag\r\nx-CLIENT-auth-PATH: normal\r\n\
             X_Client_Auth_Path: flag\r\nX-Forwarded-Port: 1\r\nX-Original-URL: /api/crawl\r\nTrue-Client-IP: 10.6.6.6\r\n\
             Connection: x-forwarded-for, forwarded, x-client-auth-path\r\n\
             X-Client-Cert-X5t-S256: forged\r\nx-client-cert-sans: DNS:admin\r\nX-Forwarded-For: 10.6.6.6\r\n\
             Connection: close\r\n\r\n"
        )
        .expect("request");
        tls.write_all(&request).await.expect("send");
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response).to_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{response}");
        assert!(response.contains("\nx-client-auth-path: none\n"), "{response}");
        assert_eq!(response.matches("x-client-auth-path").count(), 1, "{response}");
        assert!(response.contains("\nx-forwarded-for: 127.0.0.1\n"), "{response}");
        assert!(response.contains("\nforwarded: for=127.0.0.1;proto=https"), "{response}");
        for forged in [
            "forged",
            "dns:admin",
            "10.6.6.6",
            ": flag",
            ": normal",
            "x_client_auth_path",
            "x-forwarded-port",
            "x-original-url",
        ] {
            assert!(!response.contains(forged), "{forged} reached the upstream: {response}");
        }
    });
}

#[test]
fn upstream_down_gives_502_and_the_proxy_stays_up() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let nothing = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let port = free_port();
        let mut proxy = Proxy::start(&files.config(port, nothing, ""), port);
        for _ in 0..2 {
            let response = browser(&pki, false)
                .get(proxy.url("/"))
                .send()
                .await
                .expect("an answer from the proxy");
            assert_eq!(response.status(), 502);
            let body = response.text().await.expect("body");
            assert_eq!(
                body, "the upstream did not answer\n",
                "no upstream details for clients"
            );
        }
        assert!(
            proxy.child.try_wait().expect("wait").is_none(),
            "the proxy exited"
        );
    });
}

#[test]
fn silent_client_is_closed_after_the_handshake_timeout() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        let mut buf = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("closed within the 2 s handshake timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    });
}

#[test]
fn sighup_reloads_the_bot_ca() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let partner = || bot_client_for(&pki, &pki.normal_client);
        assert!(partner().get(proxy.url("/")).send().await.is_err());

        files.write("bot-ca.pem", &pki.normal_ca.cert_pem);
        proxy.signal("HUP");
        let started = Instant::now();
        loop {
            if let Ok(response) = partner().get(proxy.url("/")).send().await {
                let echo = response.text().await.expect("body");
                assert!(echo.contains("\nx-client-auth-path: flag\n"), "{echo}");
                assert!(echo.contains("CN=partner.client.test"), "{echo}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no reload");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A broken file on the next reload keeps the running set.
        files.write("bot-ca.pem", "not a certificate\n");
        proxy.signal("HUP");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = partner()
            .get(proxy.url("/"))
            .send()
            .await
            .expect("still served");
        assert_eq!(response.status(), 200);
    });
}

fn check(config: &Path) -> Output {
    Command::new(PROXY)
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run rca-proxy")
}

#[test]
fn invalid_configuration_names_the_field() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let valid = files.config(8443, upstream, "");
    let ok = check(&valid);
    assert!(ok.status.success(), "{ok:?}");

    let text = std::fs::read_to_string(&valid).expect("read");
    for (edit, wanted) in [
        (
            text.replace("http://127.0.0.1:8080", "https://127.0.0.1:8080"),
            "upstream.url",
        ),
        (
            text.replace("timeout_secs = 5", "timeout_secs = 0"),
            "upstream.timeout_secs",
        ),
        (
            text.replace("/api/crawl", "api/crawl"),
            "policy.bots_only[0]",
        ),
        (
            text.replace("handshake_timeout_secs = 2", "handshake_timeout_secs = 0"),
            "limits.handshake_timeout_secs",
        ),
        (
            text.replace("[upstream]", "[upstream]\nretries = 3"),
            "retries",
        ),
        (
            text.replace("[tls]", "[tls]\ncode_point = 99"),
            "tls.code_point",
        ),
        (
            format!("{text}\n[headers]\npath = \"bad header\"\n"),
            "headers.path",
        ),
        (
            format!("{text}\n[headers]\nsubject = \"x-forwarded-for\"\n"),
            "headers.subject",
        ),
        (text.replace("127.0.0.1:8443", "localhost"), "listen"),
        (text.replace("bot-ca.pem", "missing.pem"), "missing.pem"),
    ] {
        let path = files.write("edited.toml", &edit);
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{wanted}: {stderr}");
        assert!(stderr.contains(wanted), "expected {wanted:?} in: {stderr}");
        assert!(
            stderr.contains("edited.toml"),
            "expected the file name in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn the_demo_runs() {
    let out = Command::new(PROXY)
        .arg("demo")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("all clients were treated as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("x-client-auth-path=flag, x-client-cert-subject=CN=crawler.bot.example"),
        "{stdout}"
    );
}

/// An HTTP/1.1 upgrade (as WebSocket uses) through the proxy: 101 from the
/// upstream, then bytes both ways; the upstream was given the identity.
#[test]
fn upgrades_pass_through() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut config =
            integration_tests::config::client(&pki, integration_tests::Provider::AwsLcRs);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        let mut tls = connector
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(
            b"GET /socket HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("send");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0; 1];
            assert_eq!(tls.read(&mut byte).await.expect("read"), 1, "closed: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: websocket"), "{head}");
        tls.write_all(b"ping").await.expect("write");
        let mut answer = vec![0; "path=none;ping".len()];
        tls.read_exact(&mut answer).await.expect("echo");
        assert_eq!(&answer[..], b"path=none;ping");
    });
}

/// Two proxies, one ticket-key file: a session from one resumes on the other
/// with the same path; after the key is rotated out, a full handshake (not an
/// error) on the same path.
#[test]
fn a_fleet_resumes_each_others_sessions() {
    use base64::Engine as _;
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let keys = files.write("ticket.keys", &format!("# fleet keys\n{}\n", key(7)));
        let with_keys = |port: u16, name: &str| {
            let config = std::fs::read_to_string(files.config(port, upstream, ""))
                .expect("config")
                .replace(
                    "[tls]\n",
                    &format!("[tls]\nticket_keys = \"{}\"\n", keys.display()),
                );
            files.write(name, &config)
        };
        let (port_a, port_b) = (free_port(), free_port());
        let config_a = with_keys(port_a, "a.toml");
        let config_b = with_keys(port_b, "b.toml");
        let proxy_a = Proxy::start(&config_a, port_a);
        let proxy_b = Proxy::start(&config_b, port_b);

        // One client config: one session store for both proxies.
        let tls = bot(&pki, &pki.bot).client_config().expect("bot config");
        let client = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .build()
                .expect("client")
        };
        let seen = |echo: &str, name: &str| {
            echo.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        let first = client()
            .get(proxy_a.url("/"))
            .send()
            .await
            .expect("A")
            .text()
            .await
            .expect("body");
        assert_eq!(
            seen(&first, "x-client-session-resumed").as_deref(),
            Some("false"),
            "{first}"
        );
        assert_eq!(
            seen(&first, "x-client-auth-path").as_deref(),
            Some("flag"),
            "{first}"
        );

        let second = client()
            .get(proxy_b.url("/"))
            .send()
            .await
            .expect("B")
            .text()
            .await
            .expect("body");
        assert_eq!(
            seen(&second, "x-client-session-resumed").as_deref(),
            Some("true"),
            "{second}"
        );
        assert_eq!(
            seen(&second, "x-client-auth-path").as_deref(),
            Some("flag"),
            "{second}"
        );
        assert_eq!(
            seen(&second, "x-client-cert-x5t-s256"),
            seen(&first, "x-client-cert-x5t-s256"),
            "{second}"
        );

        // B rotates the key out: the bot's tickets no longer open there.
        files.write("ticket.keys", &format!("{}\n", key(8)));
        proxy_b.signal("HUP");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let third = client()
            .get(proxy_b.url("/"))
            .send()
            .await
            .expect("B again")
            .text()
            .await
            .expect("body");
        assert_eq!(
            seen(&third, "x-client-session-resumed").as_deref(),
            Some("false"),
            "{third}"
        );
        assert_eq!(
            seen(&third, "x-client-auth-path").as_deref(),
            Some("flag"),
            "{third}"
        );
    });
}

/// The admin address: handshakes by path, flags seen, certificate requests,
/// verification failures by reason, policy refusals and upstream errors.
#[test]
fn metrics_on_the_admin_address() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let nothing = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let (port, admin) = (free_port(), free_port());
        let config = files.config(
            port,
            nothing,
            &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
        );
        let proxy = Proxy::start(&config, port);
        // A person (upstream down: 502), refused on the bots' path (403).
        let person = browser(&pki, false);
        assert_eq!(
            person
                .get(proxy.url("/"))
                .send()
                .await
                .expect("502")
                .status(),
            502
        );
        assert_eq!(
            person
                .get(proxy.url("/api/crawl"))
                .send()
                .await
                .expect("403")
                .status(),
            403
        );
        // A bot (authenticated, then 502) and a bot from another CA (refused).
        let bot = bot_client_for(&pki, &pki.bot);
        assert_eq!(
            bot.get(proxy.url("/")).send().await.expect("502").status(),
            502
        );
        assert!(bot_client_for(&pki, &pki.normal_client)
            .get(proxy.url("/"))
            .send()
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(200)).await;

        let text = person
            .get(format!("http://127.0.0.1:{admin}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        for line in [
            "rca_proxy_handshakes_total{path=\"none\"} 1",
            "rca_proxy_handshakes_total{path=\"flag\"} 1",
            "rca_proxy_request_client_auth_seen_total 1",
            "rca_proxy_certificate_requests_total{reason=\"flag\"} 1",
            "rca_proxy_handshake_failures_total{reason=\"certificate_unknownissuer\"} 1",
            "rca_proxy_policy_refusals_total 1",
            "rca_proxy_upstream_errors_total{reason=\"unreachable\"} 2",
        ] {
            assert!(text.contains(line), "no {line:?} in:\n{text}");
        }
    });
}

/// SIGTERM while a request is in flight: it completes, then the proxy exits.
#[test]
fn sigterm_drains_in_flight_requests() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let mut proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let client = browser(&pki, false);
        let url = proxy.url("/slow");
        let in_flight = tokio::spawn(async move { client.get(url).send().await });
        // The upstream takes 1.5 s; stop the proxy while it works.
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.signal("TERM");
        let response = in_flight
            .await
            .expect("task")
            .expect("the in-flight request completes");
        assert_eq!(response.status(), 200);
        assert!(response
            .text()
            .await
            .expect("body")
            .starts_with("GET /slow"));
        assert!(proxy.wait().success());
    });
}

/// SIGHUP, again and again, while requests come on new connections: none fails.
#[test]
fn sighup_under_traffic_fails_no_request() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let url = proxy.url("/");
        let traffic = tokio::spawn({
            let pki_bot = bot(&pki, &pki.bot);
            async move {
                let mut failures = Vec::new();
                for _ in 0..60 {
                    // A new client each time: a new connection and handshake.
                    let client = pki_bot.reqwest_client().expect("client");
                    match client.get(&url).send().await {
                        Ok(response) if response.status() == 200 => {}
                        Ok(response) => failures.push(format!("status {}", response.status())),
                        Err(error) => failures.push(format!("{error:?}")),
                    }
                }
                failures
            }
        });
        for _ in 0..10 {
            proxy.signal("HUP");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failures = traffic.await.expect("traffic");
        assert!(failures.is_empty(), "{failures:?}");
    });
}

/// 2,000 sockets that opened TCP and said nothing do not keep a new client
/// from being served.
#[test]
fn idle_sockets_do_not_starve_new_clients() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        // A long handshake timeout: the idle sockets stay for the whole test.
        let config = std::fs::read_to_string(files.config(port, upstream, ""))
            .expect("config")
            .replace("handshake_timeout_secs = 2", "handshake_timeout_secs = 60");
        let proxy = Proxy::start(&files.write("idle.toml", &config), port);
        let mut idle = Vec::new();
        for _ in 0..2000 {
            idle.push(
                tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .await
                    .expect("idle connection"),
            );
        }
        let response = bot_client_for(&pki, &pki.bot)
            .get(proxy.url("/"))
            .send()
            .await
            .expect("a new client is served");
        assert!(response
            .text()
            .await
            .expect("body")
            .contains("x-client-auth-path: flag"));
        drop(idle);
    });
}

/// A partner CA for the normal path beside the bot CA (RCA-10: disjoint).
#[test]
fn partners_on_the_normal_path() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        files.write("partner-ca.pem", &pki.normal_ca.cert_pem);
        let upstream = start_upstream().await;
        let port = free_port();
        let config = std::fs::read_to_string(files.config(port, upstream, ""))
            .expect("config")
            .replace(
                "[tls]\n",
                &format!(
                    "[tls]\npartner_ca = \"{}\"\n",
                    files.path("partner-ca.pem").display()
                ),
            );
        let proxy = Proxy::start(&files.write("partners.toml", &config), port);

        // A partner without the flag: its own CA, the normal path.
        let mut partner =
            integration_tests::config::client(&pki, integration_tests::Provider::AwsLcRs);
        partner.client_auth_cert_resolver = integration_tests::config::resolver(
            &pki.normal_client,
            integration_tests::Provider::AwsLcRs,
        );
        let partner = reqwest::Client::builder()
            .tls_backend_preconfigured(partner)
            .build()
            .expect("client");
        let echo = partner
            .get(proxy.url("/"))
            .send()
            .await
            .expect("partner")
            .text()
            .await
            .expect("body");
        assert!(echo.contains("\nx-client-auth-path: normal\n"), "{echo}");
        assert!(echo.contains("CN=partner.client.test"), "{echo}");
        // Not a bot: the bots-only path stays closed to it.
        let api = partner
            .get(proxy.url("/api/crawl"))
            .send()
            .await
            .expect("partner");
        assert_eq!(api.status(), 403);
        // A bot still comes in on the flag path; a person without a
        // certificate is served anonymously.
        let echo = bot_client_for(&pki, &pki.bot)
            .get(proxy.url("/"))
            .send()
            .await
            .expect("bot")
            .text()
            .await
            .expect("body");
        assert!(echo.contains("\nx-client-auth-path: flag\n"), "{echo}");
        let echo = browser(&pki, false)
            .get(proxy.url("/"))
            .send()
            .await
            .expect("person")
            .text()
            .await
            .expect("body");
        assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
    });
}

#[test]
fn overlapping_partner_and_bot_cas_are_refused() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let config = std::fs::read_to_string(files.config(
        8443,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        "",
    ))
    .expect("config")
    .replace(
        "[tls]\n",
        &format!(
            "[tls]\npartner_ca = \"{}\"\n",
            files.path("bot-ca.pem").display()
        ),
    );
    let out = check(&files.write("overlap.toml", &config));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls.partner_ca") && stderr.contains("RCA-10"),
        "{stderr}"
    );
}

/// The resident memory of process `pid`, in kB (Linux).
fn resident_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A bounded flood of client hellos with every malformed `tls_flags` form:
/// each gets its alert, the proxy keeps serving, its memory stays flat.
#[test]
fn malformed_client_hello_flood_gets_alerts_and_leaves_memory_flat() {
    use integration_tests::scripted::{ext, ClientScript};
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let flood = |rounds: usize| {
            let pki = &pki;
            async move {
                for _ in 0..rounds {
                    for form in integration_tests::malformed::forms() {
                        let mut config = integration_tests::config::client(
                            pki,
                            integration_tests::Provider::AwsLcRs,
                        );
                        ClientScript::default()
                            .with_client_hello(ext(62, &form.bytes))
                            .install(&mut config);
                        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                            .await
                            .expect("connect");
                        let error = tokio_rustls::TlsConnector::from(Arc::new(config))
                            .connect(SERVER_NAME.try_into().expect("name"), tcp)
                            .await
                            .expect_err("refused");
                        let tls = error
                            .get_ref()
                            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                        assert_eq!(
                            tls,
                            Some(&rustls::Error::AlertReceived(form.alert)),
                            "{} {}: {error}",
                            form.rule,
                            form.what
                        );
                    }
                }
            }
        };
        flood(20).await;
        let before = resident_kb(proxy.child.id());
        flood(150).await;
        let after = resident_kb(proxy.child.id());
        eprintln!("rca-proxy resident memory: {before} kB before, {after} kB after");
        // 1,050 refused handshakes: a leak of even 10 kB each would show.
        assert!(
            after < before + 8 * 1024,
            "memory grew from {before} kB to {after} kB"
        );
        let response = bot_client_for(&pki, &pki.bot)
            .get(proxy.url("/"))
            .send()
            .await
            .expect("still serving");
        assert_eq!(response.status(), 200);
    });
}

/// An HTTP/1.1 keep-alive connection that stays idle after a request is
/// closed after the header-read timeout.
#[test]
fn idle_keep_alive_connections_are_closed() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let config = std::fs::read_to_string(files.config(port, upstream, ""))
            .expect("config")
            .replace("[limits]\n", "[limits]\nheader_read_timeout_secs = 1\n");
        let _proxy = Proxy::start(&files.write("idle.toml", &config), port);
        let mut config =
            integration_tests::config::client(&pki, integration_tests::Provider::AwsLcRs);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        let mut first = vec![0; 16];
        tls.read_exact(&mut first).await.expect("a response");
        assert!(first.starts_with(b"HTTP/1.1 200"));
        // Then silence: the proxy closes the connection (EOF), well before 30 s.
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the idle connection was not closed");
    });
}

/// Bodies stream: the first part of a response reaches the client while the
/// upstream has not finished it (a proxy that buffered would wait forever).
#[test]
fn responses_stream_through() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut response = browser(&pki, false)
            .get(format!("https://{SERVER_NAME}:{port}/stream"))
            .send()
            .await
            .expect("response headers before the body is complete");
        let first = response.chunk().await.expect("read").expect("a first part");
        assert_eq!(&first[..], b"first;");
        RELEASE.notify_one();
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.expect("read") {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(&rest[..], b"second");
    });
}

/// The bots-only policy holds against every spelling of a protected path, and
/// requests the proxy cannot read safely get 400.
#[test]
fn policy_and_request_checks_hold_against_tricks() {
    runtime().block_on(async {
        let pki = TestPki::new();
        let files = Files::new(&pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let raw = |request: String| {
            let pki = &pki;
            async move {
                let mut config =
                    integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .await
                    .expect("connect");
                let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(SERVER_NAME.try_into().expect("name"), tcp)
                    .await
                    .expect("handshake");
                tls.write_all(request.as_bytes()).await.expect("send");
                let mut response = Vec::new();
                let _ = tls.read_to_end(&mut response).await;
                String::from_utf8_lossy(&response).into_owned()
            }
        };
        for path in [
            "/api/crawl",
            "/API/crawl",
            "/api/%63rawl",
            "//api/crawl",
            "/x/../api/crawl",
            "/api;x/crawl",
            "/api%2Fcrawl",
            "/api/crawl/more",
        ] {
            let response = raw(format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            ))
            .await;
            assert!(response.starts_with("HTTP/1.1 403"), "{path}: {response}");
        }
        let two_hosts = raw(
            "GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\nConnection: close\r\n\r\n".into(),
        )
        .await;
        assert!(two_hosts.starts_with("HTTP/1.1 400"), "{two_hosts}");
        // An h2c upgrade is not passed on: the upstream answers an ordinary request.
        let h2c = raw(
            "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
                       Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
                .into(),
        )
        .await;
        assert!(h2c.starts_with("HTTP/1.1 200"), "{h2c}");
        let lower = h2c.to_lowercase();
        assert!(
            !lower.contains("upgrade: h2c") && !lower.contains("http2-settings"),
            "{h2c}"
        );
    });
}
