//! The upstream, the PKI files, the proxy process and the clients every
//! test here uses.

pub(crate) use bytes::Bytes;
pub(crate) use http_body_util::{BodyExt as _, Full};
pub(crate) use hyper::body::Incoming;
pub(crate) use hyper::{Request, Response};
pub(crate) use hyper_util::rt::TokioIo;
pub(crate) use integration_tests::local::{free_port, runtime, PemFiles};
pub(crate) use integration_tests::pki::{Identity, SERVER_NAME};
pub(crate) use integration_tests::TestPki;
pub(crate) use rustls_req_client_auth::BotClient;
pub(crate) use std::convert::Infallible;
pub(crate) use std::io::Write as _;
pub(crate) use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::{Child, Command, Output, Stdio};
pub(crate) use std::sync::Arc;
pub(crate) use std::time::{Duration, Instant};
pub(crate) use tokio::io::{AsyncReadExt, AsyncWriteExt};
pub(crate) use tokio::net::TcpListener;

pub(crate) const PROXY: &str = env!("CARGO_BIN_EXE_rca-proxy");

/// What most proxy tests start from: the shared PKI, files of their own,
/// an echoing upstream ([`start_upstream`]) and a free port for the proxy.
pub(crate) async fn setup() -> (&'static TestPki, Files, SocketAddr, u16) {
    let pki = TestPki::shared();
    (pki, Files::new(pki), start_upstream().await, free_port())
}

/// Lets the upstream's `/stream` response finish.
pub(crate) static RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// An upstream that answers every request with the request's method, path
/// and headers, one per line, so the test sees what the proxy forwarded; a
/// request that is not HTTP/1.1 adds an `upstream-version` line. It speaks
/// HTTP/1.1 and h2c (told apart by the HTTP/2 preface), as many servers do.
pub(crate) async fn start_upstream() -> SocketAddr {
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
                            let accept = request
                                .headers()
                                .get("sec-websocket-key")
                                .map(|key| websocket_accept(key.as_bytes()))
                                .unwrap_or_default();
                            let flood = request.uri().path() == "/flood";
                            let upgraded = hyper::upgrade::on(&mut request);
                            tokio::spawn(async move {
                                if let Ok(upgraded) = upgraded.await {
                                    let mut io = TokioIo::new(upgraded);
                                    let _ = io.write_all(format!("path={path};").as_bytes()).await;
                                    if flood {
                                        // `/flood`: bytes for as long as they are taken.
                                        let chunk = [b'f'; 16 * 1024];
                                        while io.write_all(&chunk).await.is_ok() {}
                                        return;
                                    }
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
                                .header("sec-websocket-accept", accept)
                                .body(Full::new(Bytes::new()).boxed())
                                .expect("101");
                            return Ok::<_, Infallible>(response);
                        }
                        if let Some(body) = streamed_body(request.uri().path()) {
                            return Ok::<_, Infallible>(Response::new(body));
                        }
                        if request.uri().path() == "/trailers" {
                            return Ok::<_, Infallible>(trailers_echo(request).await);
                        }
                        if request.uri().path() == "/slow" {
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                        }
                        if request.uri().path() == "/form" {
                            // Read before the answer, so the proxy has sent
                            // (and counted) the whole body by the time the
                            // response ends and its log line is written.
                            let _ = request.body_mut().collect().await;
                        }
                        let mut echo = format!("{} {}\n", request.method(), request.uri());
                        for (name, value) in request.headers() {
                            echo.push_str(name.as_str());
                            echo.push_str(": ");
                            echo.push_str(value.to_str().unwrap_or("?"));
                            echo.push('\n');
                        }
                        if request.version() != hyper::Version::HTTP_11 {
                            use std::fmt::Write as _;
                            let _ = writeln!(echo, "upstream-version: {:?}", request.version());
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(echo)).boxed()))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
            });
        }
    });
    address
}

/// The upstream's streamed bodies: `/stream` (in two parts, the second once
/// [`RELEASE`] is notified), `/endless`, `/stall` (a part, then nothing for a
/// minute), `/trickle` (five parts, 400 ms apart) and `/drip` (five parts, a
/// second apart).
fn streamed_body(path: &str) -> Option<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    if path == "/response-trailers" {
        // A body, then trailers with fields a trailer section may not carry.
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(2);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"body")).await;
            let mut trailers = http::HeaderMap::new();
            for (name, value) in [
                ("x-kept", "1"),
                ("content-length", "4"),
                ("host", "elsewhere"),
                ("proxy-authenticate", "Basic"),
            ] {
                trailers.insert(name, http::HeaderValue::from_static(value));
            }
            let _ = sender.send_trailers(trailers).await;
        });
        return Some(body.boxed());
    }
    if path == "/stream" {
        // A body in two parts; the second only once the test
        // has seen the first through the proxy.
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"first;")).await;
            RELEASE.notified().await;
            let _ = sender.send_data(Bytes::from_static(b"second")).await;
        });
        return Some(body.boxed());
    }
    if path == "/endless" {
        // A body that goes on until nobody takes it.
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
        tokio::spawn(async move {
            let chunk = Bytes::from_static(&[b'x'; 16 * 1024]);
            while sender.send_data(chunk.clone()).await.is_ok() {}
        });
        return Some(body.boxed());
    }
    if path == "/stall" {
        // A body that starts, then stops coming (for a
        // minute, past any read timeout the tests set).
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"partial;")).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        return Some(body.boxed());
    }
    if let Some(gap) = match path {
        "/trickle" => Some(Duration::from_millis(400)),
        "/drip" => Some(Duration::from_secs(1)),
        _ => None,
    } {
        // A body in five parts, `gap` apart.
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
        tokio::spawn(async move {
            for part in 0..5 {
                tokio::time::sleep(gap).await;
                let _ = sender.send_data(Bytes::from(format!("{part};"))).await;
            }
        });
        return Some(body.boxed());
    }
    None
}

/// The upstream's answer on `/trailers`: the request line and the
/// request's trailer section, one `trailer name: value` line a field.
async fn trailers_echo(
    request: Request<Incoming>,
) -> Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let mut echo = format!("{} {}\n", request.method(), request.uri());
    if let Ok(body) = request.into_body().collect().await {
        for (name, value) in body.trailers().into_iter().flatten() {
            echo.push_str("trailer ");
            echo.push_str(name.as_str());
            echo.push_str(": ");
            echo.push_str(value.to_str().unwrap_or("?"));
            echo.push('\n');
        }
    }
    Response::new(Full::new(Bytes::from(echo)).boxed())
}

/// The `Sec-WebSocket-Accept` for `key` (RFC 6455 section 4.2.2).
pub(crate) fn websocket_accept(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(context.finish())
}

/// The PKI's files (see [`PemFiles`]; the normal CA also as
/// `partner-ca.pem`) and the proxy's configurations beside them.
pub(crate) struct Files {
    pem: PemFiles,
}

impl std::ops::Deref for Files {
    type Target = PemFiles;

    fn deref(&self) -> &PemFiles {
        &self.pem
    }
}

impl Files {
    pub(crate) fn new(pki: &TestPki) -> Self {
        let pem = PemFiles::new(pki);
        pem.write("partner-ca.pem", &pki.normal_ca.cert_pem);
        Self { pem }
    }

    pub(crate) fn config(&self, port: u16, upstream: SocketAddr, extra: &str) -> PathBuf {
        let config = format!("{}{extra}", self.config_text(port, upstream));
        self.write("proxy.toml", &config)
    }

    /// [`Files::config`] with `lines` at the top of its `[section]`, written
    /// to `name`.
    pub(crate) fn config_with(
        &self,
        name: &str,
        port: u16,
        upstream: SocketAddr,
        section: &str,
        lines: &str,
    ) -> PathBuf {
        let header = format!("[{section}]\n");
        let text = self.config_text(port, upstream);
        assert!(text.contains(&header), "the test config has {header}");
        let config = text.replacen(&header, &format!("{header}{lines}\n"), 1);
        self.write(name, &config)
    }

    /// [`Files::config_with`] `lines` in `[tls]`, written to `name`, with
    /// `bot_ca` as `tls.bot_ca` instead of the test PKI's bot CA.
    pub(crate) fn config_with_bot_ca(
        &self,
        name: &str,
        port: u16,
        upstream: SocketAddr,
        bot_ca: &Path,
        lines: &str,
    ) -> PathBuf {
        let config = self.config_with(name, port, upstream, "tls", lines);
        let text = std::fs::read_to_string(&config).expect("config");
        let own = format!("bot_ca = \"{}\"\n", self.path("bot-ca.pem").display());
        assert!(text.contains(&own), "the test config has {own}");
        let replaced = format!("bot_ca = \"{}\"\n", bot_ca.display());
        std::fs::write(&config, text.replacen(&own, &replaced, 1)).expect("config");
        config
    }

    /// [`Files::config`] with each `(section, lines)` at the top of its
    /// section and an `[admin]` address, written to `name`: the file and
    /// the admin port.
    pub(crate) fn config_with_admin(
        &self,
        name: &str,
        port: u16,
        upstream: SocketAddr,
        sections: &[(&str, &str)],
    ) -> (PathBuf, u16) {
        let admin = free_port();
        let mut text = self.config_text(port, upstream);
        for (section, lines) in sections {
            let header = format!("[{section}]\n");
            assert!(text.contains(&header), "the test config has {header}");
            text = text.replacen(&header, &format!("{header}{lines}\n"), 1);
        }
        let text = format!("{text}[admin]\nlisten = \"127.0.0.1:{admin}\"\n");
        (self.write(name, &text), admin)
    }

    fn config_text(&self, port: u16, upstream: SocketAddr) -> String {
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\nbot_ca = \"{}\"\n\
             [upstream]\nurl = \"http://{upstream}\"\ntimeout_secs = 5\n\
             [policy]\nbots_only = [\"/api/crawl\"]\n\
             [limits]\nhandshake_timeout_secs = 2\n",
            self.path("server.pem").display(),
            self.path("server.key").display(),
            self.path("bot-ca.pem").display(),
        )
    }

    /// [`Files::config`] with `tls.partner_ca` = `partner-ca.pem` (the normal
    /// CA, which issued `partner_tls`'s certificate).
    pub(crate) fn config_with_partners(&self, port: u16, upstream: SocketAddr) -> PathBuf {
        let partner_ca = format!("partner_ca = \"{}\"", self.path("partner-ca.pem").display());
        self.config_with("partners.toml", port, upstream, "tls", &partner_ca)
    }
}

pub(crate) struct Proxy {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Proxy {
    pub(crate) fn start(config: &Path, port: u16) -> Self {
        Self::start_with_stdout(config, port, Stdio::null())
    }

    /// With the access log (standard output) in the file `log`.
    pub(crate) fn start_logging(config: &Path, port: u16, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("access log file");
        Self::start_with_stdout(config, port, Stdio::from(file))
    }

    pub(crate) fn start_with_stdout(config: &Path, port: u16, stdout: Stdio) -> Self {
        let mut command = Command::new(PROXY);
        command.stdout(stdout).stderr(Stdio::null());
        Self::spawn(command, config, port)
    }

    /// With its diagnostics (standard error) in the file `log`, at the
    /// default level whatever `RUST_LOG` the tests run with.
    pub(crate) fn start_with_diagnostics(config: &Path, port: u16, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("diagnostics file");
        let mut command = Command::new(PROXY);
        command
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(file));
        Self::spawn(command, config, port)
    }

    pub(crate) fn spawn(mut command: Command, config: &Path, port: u16) -> Self {
        let child = command
            .arg("--config")
            .arg(config)
            .spawn()
            .expect("start rca-proxy");
        integration_tests::local::wait_for_port(port, "rca-proxy");
        Self { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.port)
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
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

pub(crate) fn browser(pki: &TestPki, http1_only: bool) -> reqwest::Client {
    let mut config = integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
    // reqwest's `http1_only` does not change the ALPN of a preconfigured TLS
    // config: without h2 in it the proxy must answer over HTTP/1.1.
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(CLIENT_TIMEOUT);
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().expect("client")
}

pub(crate) fn bot(pki: &TestPki, identity: &Identity) -> BotClient {
    BotClient::from_der(identity.chain.clone(), identity.key())
        .trust(pki.server_ca.roots())
        .crypto_provider(integration_tests::Provider::AwsLcRs.crypto())
}

pub(crate) const SPOOFED: [(&str, &str); 6] = [
    ("x-client-auth-path", "flag"),
    ("X-Client-Cert-Subject", "CN=admin"),
    ("X-CLIENT-CERT-X5T-S256", "forged"),
    ("x-client-session-resumed", "true"),
    ("x-forwarded-for", "10.6.6.6"),
    ("Forwarded", "for=10.6.6.6"),
];

pub(crate) async fn get_spoofed(client: &reqwest::Client, url: &str) -> (u16, String) {
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

pub(crate) fn bot_client_for(pki: &TestPki, identity: &Identity) -> reqwest::Client {
    bot(pki, identity)
        .reqwest_builder()
        .expect("client")
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("client")
}

/// How long a test client's request may take. None here takes a second; a
/// request hyper-util's pool never completes (seen once in CI, a bot
/// refused right after its handshake over HTTP/2, with no socket left
/// open) then fails the test instead of stalling the run.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A partner's TLS config: no flag, a certificate of the normal CA for any
/// CertificateRequest. Clients built from one config share its session store.
pub(crate) fn partner_tls(pki: &TestPki) -> rustls::ClientConfig {
    partner_tls_with(pki, rustls::DEFAULT_VERSIONS)
}

/// [`partner_tls`] offering only `versions`.
pub(crate) fn partner_tls_with(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = integration_tests::Provider::AwsLcRs;
    let mut partner = integration_tests::config::client_with(pki, provider.crypto(), versions);
    partner.client_auth_cert_resolver =
        integration_tests::config::resolver(&pki.normal_client, provider);
    partner
}

/// A reqwest client over `tls`, each a new connection pool.
pub(crate) fn client_over(tls: &rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .build()
        .expect("client")
}

/// The body of `client`'s GET of `url` (through the proxy: the upstream's echo).
pub(crate) async fn get_body(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        // The whole chain: reqwest's own line says only "error sending
        // request", not what failed under it.
        .unwrap_or_else(|error| panic!("GET {url}: {error:?}"))
        .text()
        .await
        .expect("body")
}

/// The status of `client`'s GET of `url`.
pub(crate) async fn get_status(client: &reqwest::Client, url: &str) -> reqwest::StatusCode {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
        .status()
}

/// The value of header `name` in the upstream's echo.
pub(crate) fn echoed(echo: &str, name: &str) -> Option<String> {
    echo.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
}

pub(crate) fn check(config: &Path) -> Output {
    Command::new(PROXY)
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run rca-proxy")
}

/// The resident memory of process `pid`, in kB (Linux).
pub(crate) fn resident_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A WebSocket upgrade through the proxy on `port`, over raw HTTP/1.1: the
/// TLS stream, and the response head in lower case.
pub(crate) async fn open_tunnel(
    pki: &TestPki,
    port: u16,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    String,
) {
    let mut tls = tls_connect(pki, port, b"http/1.1").await;
    let head = upgrade_to_websocket(&mut tls, "/socket").await;
    (tls, head)
}

/// Asks for a WebSocket at `path` on `tls` (HTTP/1.1): the answer's head,
/// in lower case; the tunnel's bytes follow it.
pub(crate) async fn upgrade_to_websocket(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    path: &str,
) -> String {
    tls.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: \
             websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: \
             13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        assert_eq!(
            tls.read(&mut byte).await.expect("read"),
            1,
            "closed: {head:?}"
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// `GET /` with `Connection: close` over raw HTTP/1.1 to the proxy on
/// `port`: the whole answer, read until the proxy closes.
pub(crate) async fn get_and_close(pki: &TestPki, port: u16) -> String {
    let none: [(&str, &str); 0] = [];
    get_with_headers(pki, port, "/", &none).await
}

/// `GET path` over raw HTTP/1.1 to the proxy on `port`, with `headers`
/// written as given (any spelling of a name) and `Connection: close`: the
/// whole answer, read until the proxy closes.
pub(crate) async fn get_with_headers(
    pki: &TestPki,
    port: u16,
    path: &str,
    headers: &[(impl AsRef<str>, impl AsRef<str>)],
) -> String {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        raw.push_str(name.as_ref());
        raw.push_str(": ");
        raw.push_str(value.as_ref());
        raw.push_str("\r\n");
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut tls = tls_connect(pki, port, b"http/1.1").await;
    tls.write_all(raw.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// An HTTP/2 client (hyper's, default settings) on a TLS connection to the
/// proxy on `port`: its request sender, and the connection's task, which
/// ends when the proxy closes the connection.
pub(crate) async fn h2_connect(
    pki: &TestPki,
    port: u16,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tls = tls_connect(pki, port, b"h2").await;
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2");
    (sender, tokio::spawn(connection))
}

/// `request` as raw bytes on a TLS connection to the proxy on `port`
/// offering `alpn` (see [`tls_connect`]), and what the proxy sends until it
/// closes or `wait` passes.
pub(crate) async fn raw_exchange(
    pki: &TestPki,
    port: u16,
    alpn: &[u8],
    request: &[u8],
    wait: Duration,
) -> Vec<u8> {
    let mut tls = tls_connect(pki, port, alpn).await;
    tls.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, tls.read_to_end(&mut answer)).await;
    answer
}

/// Sends `request` (a GET built with its headers) on the HTTP/2 connection
/// of `sender`: the response's status and its body as text.
pub(crate) async fn h2_exchange(
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    request: http::request::Builder,
) -> (u16, String) {
    let request = request
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A TLS connection to the proxy on `port`, offering only `alpn` (nothing if
/// empty), as a client trusting the test server CA (no client certificate).
pub(crate) async fn tls_connect(
    pki: &TestPki,
    port: u16,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("connect");
    tls_over(pki, tcp, alpn).await
}

/// A TLS connection to the proxy over `tcp`, offering `alpn`.
pub(crate) async fn tls_over(
    pki: &TestPki,
    tcp: tokio::net::TcpStream,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
    config.alpn_protocols = if alpn.is_empty() {
        Vec::new()
    } else {
        vec![alpn.to_vec()]
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(SERVER_NAME.try_into().expect("name"), tcp)
        .await
        .expect("handshake")
}

/// Each line of an access log's `text`, parsed as JSON.
pub(crate) fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// The diagnostics in `log` once they have a line containing `needle`.
pub(crate) fn wait_for_line(log: &Path, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {needle:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET of `/` over a new TLS connection by `tls` to the proxy on `port`
/// (HTTP/1.1 without ALPN): how the handshake went and the raw response.
pub(crate) async fn raw_get(
    tls: &Arc<rustls::ClientConfig>,
    port: u16,
) -> std::io::Result<(rustls::HandshakeKind, String)> {
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(SERVER_NAME.try_into().expect("name"), tcp)
        .await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    if let Err(error) = stream.read_to_end(&mut response).await {
        // A refused certificate is an alert before any response; a close
        // without close_notify after the response is not a refusal.
        if response.is_empty() {
            return Err(error);
        }
    }
    let kind = stream.get_ref().1.handshake_kind().expect("handshake done");
    Ok((kind, String::from_utf8_lossy(&response).into_owned()))
}
