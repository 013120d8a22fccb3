//! The servers, processes and clients of the `rca-connect` tests.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
pub(crate) use integration_tests::local::free_port;
use integration_tests::local::{wait_for_port, PemFiles};
use integration_tests::TestPki;
use rustls::ServerConfig;
use tokio::net::TcpListener;

pub(crate) const PROXY: &str = env!("CARGO_BIN_EXE_rca-proxy");
pub(crate) const CONNECT: &str = env!("CARGO_BIN_EXE_rca-connect");

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// How the uploads to the test server's `/answer-first` ended: `ended` or
/// `failed`, and after how many bytes.
pub(crate) static ANSWER_FIRST_UPLOADS: std::sync::Mutex<Vec<String>> =
    std::sync::Mutex::new(Vec::new());

/// The test server's routes: `/upload` counts the request body,
/// `/answer-first` answers at once and reads the body after,
/// `/request-trailers` names the request's trailers,
/// `/download?n=N` streams N bytes, `/stall` sends part of a body and then
/// nothing for a minute, `/trailers` sends a body and then trailers (one of
/// them a forged outcome), `/switch-without-proof` answers 101
/// without `Sec-WebSocket-Accept`, anything else echoes the request (line
/// per header, the HTTP version, and the client certificate's thumbprint
/// when TLS ended here).
async fn echo(request: Request<Incoming>, client_cert: Option<String>) -> Response<EchoBody> {
    let path = request.uri().path().to_owned();
    if path == "/upload" {
        let mut body = request.into_body();
        let mut received = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            received += frame.data_ref().map_or(0, Bytes::len);
        }
        return Response::new(Full::new(Bytes::from(format!("received {received}"))).boxed());
    }
    if let Some(streamed) = streamed(&path, request.uri().query()) {
        return streamed;
    }
    if path == "/request-trailers" {
        // The names of the request's trailers, one a line.
        let mut names = String::new();
        if let Ok(body) = request.into_body().collect().await {
            for name in body
                .trailers()
                .into_iter()
                .flat_map(|trailers| trailers.keys())
            {
                names.push_str(name.as_str());
                names.push('\n');
            }
        }
        return Response::new(Full::new(Bytes::from(names)).boxed());
    }
    if path == "/answer-first" {
        // Answers at once and reads the upload after: how it ended goes
        // into `ANSWER_FIRST_UPLOADS`.
        let mut body = request.into_body();
        tokio::spawn(async move {
            let mut received = 0usize;
            let ended = loop {
                match body.frame().await {
                    Some(Ok(frame)) => received += frame.data_ref().map_or(0, Bytes::len),
                    Some(Err(_)) => break "failed",
                    None => break "ended",
                }
            };
            ANSWER_FIRST_UPLOADS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{ended} after {received} bytes"));
        });
        return Response::new(Full::new(Bytes::from_static(b"answered")).boxed());
    }
    if path == "/slow" {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    }
    if path == "/slower" {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    if path == "/switch-without-proof" {
        // A 101 for a WebSocket handshake it never read: no
        // Sec-WebSocket-Accept.
        let mut response = Response::new(Full::new(Bytes::new()).boxed());
        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            "upgrade",
            hyper::header::HeaderValue::from_static("websocket"),
        );
        headers.insert(
            "connection",
            hyper::header::HeaderValue::from_static("upgrade"),
        );
        return response;
    }
    let mut echo = format!(
        "{} {}\nversion: {:?}\n",
        request.method(),
        request.uri(),
        request.version()
    );
    for (name, value) in request.headers() {
        let _ = writeln!(echo, "{}: {}", name, value.to_str().unwrap_or("?"));
    }
    let _ = writeln!(
        echo,
        "client-cert: {}",
        client_cert.as_deref().unwrap_or("none")
    );
    let mut response = Response::new(Full::new(Bytes::from(echo)).boxed());
    if path == "/forged-outcome" {
        // A server that claims rca-connect's outcome itself.
        for name in ["rca-connect-outcome", "x-outcome"] {
            response.headers_mut().insert(
                name,
                hyper::header::HeaderValue::from_static("flag=acknowledged; identity=FORGED"),
            );
        }
    }
    if path == "/close" {
        // HTTP/1.1: the connection ends with this answer.
        response.headers_mut().insert(
            "connection",
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The routes whose bodies come in parts: `/download`, `/stall` and
/// `/trailers` (see [`echo`]).
fn streamed(path: &str, query: Option<&str>) -> Option<Response<EchoBody>> {
    if path == "/download" {
        let total: usize = query
            .and_then(|query| query.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'd'; 64 * 1024]);
            let mut left = total;
            while left > 0 {
                let size = chunk.len().min(left);
                if sender.send_data(chunk.slice(..size)).await.is_err() {
                    return;
                }
                left -= size;
            }
        });
        return Some(Response::new(body.boxed()));
    }
    if path == "/stall" {
        // A body that starts, then stops coming for a minute.
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"partial;")).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        });
        return Some(Response::new(body.boxed()));
    }
    if path == "/trailers" {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(2);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"body;")).await;
            let mut trailers = hyper::HeaderMap::new();
            trailers.insert("x-checksum", hyper::header::HeaderValue::from_static("1"));
            trailers.insert(
                "rca-connect-outcome",
                hyper::header::HeaderValue::from_static("flag=acknowledged; identity=FORGED"),
            );
            let _ = sender.send_trailers(trailers).await;
        });
        return Some(Response::new(body.boxed()));
    }
    None
}

/// A plain HTTP server (HTTP/1.1 and h2c) with the echo routes: the
/// upstream behind `rca-proxy`.
pub(crate) async fn plain_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request| async move {
                    Ok::<_, Infallible>(echo(request, None).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    address
}

/// A server for `localhost` (HTTP/1.1) with a certificate `issuer` signed,
/// as [`tls_server`] serves it.
pub(crate) async fn tls_server_signed_by<K: rcgen::SigningKey>(
    issuer: &rcgen::Issuer<'_, K>,
) -> SocketAddr {
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, issuer)
        .expect("server certificate");
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![server_cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    )
    .expect("config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tls_server(config).await
}

/// A TLS server with the echo routes and `config` (a server that does not
/// know the flag, one that asks every client for a certificate, one whose
/// certificate does not verify).
pub(crate) async fn tls_server(config: ServerConfig) -> SocketAddr {
    serve_tls(config, |tls| async move {
        let client_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(rustls_req_client_auth::thumbprint_sha256);
        let service = hyper::service::service_fn(move |request| {
            let client_cert = client_cert.clone();
            async move { Ok::<_, Infallible>(echo(request, client_cert).await) }
        });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), service)
            .await;
    })
    .await
}

/// A TLS server (`config`) that answers every request with the path of the
/// first request its connection carried: which requests shared a
/// connection, as a server that answered one request twice would show it
/// (the extra answer goes to the next request on that connection).
pub(crate) async fn first_on_connection_server(config: ServerConfig) -> SocketAddr {
    serve_tls(config, |tls| async move {
        let first = Arc::new(std::sync::OnceLock::<String>::new());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let first = first
                .get_or_init(|| request.uri().path().to_owned())
                .clone();
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(first)))) }
        });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), service)
            .await;
    })
    .await
}

/// A TLS server (`config`) that answers each connection's first request
/// head with `answer` as written, then closes: for responses hyper's
/// server would never send.
pub(crate) async fn raw_tls_server(config: ServerConfig, answer: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    serve_tls(config, move |mut tls| async move {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            match tls.read_u8().await {
                Ok(byte) => head.push(byte),
                Err(_) => return,
            }
        }
        let _ = tls.write_all(answer).await;
        let _ = tls.shutdown().await;
    })
    .await
}

/// Accepts TLS connections on a free port of 127.0.0.1 with `config` and
/// hands each, its handshake done, to `serve`, each in a task of its own.
async fn serve_tls<F, Serving>(config: ServerConfig, serve: F) -> SocketAddr
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Serving
        + Send
        + Sync
        + 'static,
    Serving: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, serve) = (acceptor.clone(), Arc::clone(&serve));
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls).await;
                }
            });
        }
    });
    address
}

/// The server identity of `pki` with ALPN `alpn`, asking for nothing.
pub(crate) fn plain_tls(pki: &TestPki, alpn: &[&[u8]]) -> ServerConfig {
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(pki.server.chain.clone(), pki.server.key())
    .expect("server config");
    config.alpn_protocols = alpn.iter().map(|alpn| alpn.to_vec()).collect();
    config
}

/// A child process killed on drop.
pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Files of one test: the PKI (see [`PemFiles`]; the normal CA also as
/// `other-ca.pem`), the local CA's state directory, the logs.
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
        pem.write("other-ca.pem", &pki.normal_ca.cert_pem);
        Self { pem }
    }

    /// The local CA certificate clients trust.
    pub(crate) fn local_ca(&self) -> PathBuf {
        self.path("state/ca.pem")
    }

    /// `text` as a `--proxy-auth-file` named `name`, readable by its owner
    /// only (as the README's recipe makes it): its path.
    pub(crate) fn proxy_auth_file(&self, name: &str, text: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.write(name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path.display().to_string()
    }

    /// `rca-proxy` on a free port letting in bots of `bot_ca` (a file
    /// name here), in front of `upstream`.
    pub(crate) fn start_proxy(&self, bot_ca: &str, upstream: SocketAddr) -> (Process, u16) {
        let port = free_port();
        let config = self.write(
            &format!("proxy-{port}.toml"),
            &format!(
                "listen = \"127.0.0.1:{port}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nbot_ca = \"{}\"\n[upstream]\nurl = \"http://{upstream}\"\n",
                self.path("server.pem").display(),
                self.path("server.key").display(),
                self.path(bot_ca).display(),
            ),
        );
        let child = Command::new(PROXY)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rca-proxy");
        wait_for_port(port, "rca-proxy");
        (Process(child), port)
    }

    /// `rca-connect` on a free port with the test bot, trusting only the
    /// test server CA; its connection log in `connect.log`.
    pub(crate) fn start_connect(&self, extra: &[&str]) -> (Process, u16) {
        let port = free_port();
        let child = Command::new(CONNECT)
            .args(["--cert", &self.path("bot.pem").display().to_string()])
            .args(["--key", &self.path("bot.key").display().to_string()])
            .args([
                "--roots",
                "none",
                "--ca",
                &self.path("server-ca.pem").display().to_string(),
            ])
            .args(["--state-dir", &self.path("state").display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(
                std::fs::File::create(self.path("connect.log")).expect("log"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(self.path("connect.err")).expect("log"),
            ))
            .spawn()
            .expect("start rca-connect");
        wait_for_port(port, "rca-connect");
        (Process(child), port)
    }

    /// `rca-connect` with `extra` options and a route from a free port to
    /// `https://localhost:{server_port}`: the process, its proxy port and
    /// the route's port.
    pub(crate) fn start_routed(&self, server_port: u16, extra: &[&str]) -> (Process, u16, u16) {
        let route = free_port();
        let route_option = format!("127.0.0.1:{route}=https://localhost:{server_port}");
        let mut options = vec!["--route", route_option.as_str()];
        options.extend_from_slice(extra);
        let (connect, port) = self.start_connect(&options);
        (connect, port, route)
    }

    /// Sends `connect` SIGHUP and waits (up to 10 s) for its log on
    /// standard error to say `reloaded`, a text of its reload line.
    pub(crate) fn hang_up(&self, connect: &Process, reloaded: &str) {
        let status = Command::new("kill")
            .args(["-HUP", &connect.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.wait_for_diagnostics(reloaded, Duration::from_secs(10));
    }

    /// `rca-connect`'s standard error once it says `needle`, waited for up
    /// to `within` (its lines come from other threads, a little later).
    pub(crate) fn wait_for_diagnostics(&self, needle: &str, within: Duration) -> String {
        let started = std::time::Instant::now();
        loop {
            let log = std::fs::read_to_string(self.path("connect.err")).unwrap_or_default();
            if log.contains(needle) {
                return log;
            }
            assert!(started.elapsed() < within, "no {needle:?} in: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The connection log's lines so far (JSON).
    pub(crate) fn connection_log(&self) -> Vec<serde_json::Value> {
        // The log is written in batches, every 100 ms.
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(self.path("connect.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }
}

/// What a client got.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) protocol: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The echo's line `name: value`.
    pub(crate) fn echoed(&self, name: &str) -> Option<&str> {
        self.body
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// Which real client.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Client {
    CurlHttp1,
    CurlHttp2,
    PythonRequests,
    PythonHttpx,
    PythonScrapy,
    GoNetHttp,
    NodeUndici,
}

/// The installed clients (`install.sh`), or why they are not there.
pub(crate) fn clients_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("RCA_CONNECT_CLIENTS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/connect-clients"),
        PathBuf::from,
    );
    if dir.join("ready").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "{} not installed: run rca-tools/tests/connect/install.sh target/connect-clients (cargo xtask test does)",
            dir.display()
        ))
    }
}

impl Client {
    /// Sends one request for `url` through the proxy on `proxy_port`
    /// (`upload`: POST that many bytes), as a bot author would.
    pub(crate) fn fetch(self, files: &Files, proxy_port: u16, url: &str, upload: usize) -> Answer {
        self.fetch_through(
            files,
            &format!("http://127.0.0.1:{proxy_port}"),
            url,
            upload,
        )
    }

    /// As [`Client::fetch`], through the proxy URL `proxy` (which may hold
    /// `user:password@`).
    pub(crate) fn fetch_through(
        self,
        files: &Files,
        proxy: &str,
        url: &str,
        upload: usize,
    ) -> Answer {
        let proxy = proxy.to_owned();
        let ca = files.local_ca().display().to_string();
        let output = match self {
            Self::CurlHttp1 | Self::CurlHttp2 => {
                let mut command = Command::new("curl");
                command
                    .args(["-sS", "--max-time", "60", "-D", "-", "-o", "-"])
                    .args(["--proxy", &proxy, "--cacert", &ca])
                    .arg(if matches!(self, Self::CurlHttp1) {
                        "--http1.1"
                    } else {
                        "--http2"
                    });
                if upload > 0 {
                    let data = files.path("upload.bin");
                    if !data.exists() {
                        std::fs::write(&data, vec![b'u'; upload]).expect("upload file");
                    }
                    command.args(["--data-binary", &format!("@{}", data.display())]);
                    command.args(["-H", "content-type: application/octet-stream"]);
                }
                let output = command.arg(url).output().expect("run curl");
                return curl_answer(&output);
            }
            Self::PythonRequests | Self::PythonHttpx => {
                let dir = clients_dir().expect("clients");
                let mut command = Command::new(dir.join("venv/bin/python"));
                command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect/client.py"));
                if matches!(self, Self::PythonHttpx) {
                    command.arg("--httpx");
                }
                command
                    .arg(url)
                    .env("HTTPS_PROXY", &proxy)
                    .env("REQUESTS_CA_BUNDLE", &ca);
                if upload > 0 {
                    command.arg(upload.to_string());
                }
                command.output().expect("run python")
            }
            Self::PythonScrapy => {
                // The guide's recipe: the proxy from `https_proxy`; Scrapy
                // verifies no server, so it is given no CA.
                let dir = clients_dir().expect("clients");
                Command::new(dir.join("venv/bin/python"))
                    .arg(
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("tests/connect/scrapy_client.py"),
                    )
                    .arg(url)
                    .env("https_proxy", &proxy)
                    .output()
                    .expect("run the Scrapy client")
            }
            Self::GoNetHttp => {
                let dir = clients_dir().expect("clients");
                Command::new(dir.join("bin/goclient"))
                    .arg(url)
                    .env("HTTPS_PROXY", &proxy)
                    .env("SSL_CERT_FILE", &ca)
                    .output()
                    .expect("run the Go client")
            }
            Self::NodeUndici => {
                let dir = clients_dir().expect("clients");
                Command::new("node")
                    .arg(dir.join("node/client.mjs"))
                    .arg(url)
                    .env("HTTPS_PROXY", &proxy)
                    .env("NODE_EXTRA_CA_CERTS", &ca)
                    .output()
                    .expect("run the Node client")
            }
        };
        assert!(
            output.status.success(),
            "{self:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the client's JSON");
        Answer {
            status: u16::try_from(json["status"].as_u64().unwrap_or(0)).unwrap_or(0),
            headers: json["headers"]
                .as_object()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|(name, value)| {
                            (name.clone(), value.as_str().unwrap_or("").to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: json["body"].as_str().unwrap_or("").to_owned(),
            protocol: json["protocol"].as_str().unwrap_or("HTTP/1.1").to_owned(),
        }
    }
}

/// curl's `-D - -o -`: the proxy's `200 Connection established` head, the
/// server's head, then the body.
fn curl_answer(output: &std::process::Output) -> Answer {
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut rest = text.as_str();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").expect("a response head");
        let status_line = head.lines().next().unwrap_or_default();
        let protocol = status_line.split(' ').next().unwrap_or_default().to_owned();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or(0);
        // The proxy's answer to CONNECT comes first, and a `100 Continue`
        // before the answer to a large upload.
        if (status == 200 || (100..200).contains(&status)) && body.starts_with("HTTP/") {
            rest = body;
            continue;
        }
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        return Answer {
            status,
            headers,
            body: body.chars().take(4096).collect(),
            protocol,
        };
    }
}

/// The body of a plain `GET url` (curl).
pub(crate) fn http_get(url: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A raw client of the route on `route` (plain HTTP/1.1), whose reads
/// give up after 10 s.
pub(crate) fn route_client(route: u16) -> std::net::TcpStream {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", route)).expect("connect to the route");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    tcp
}

/// An HTTP/2 client (hyper's) in a tunnel through `rca-connect` on
/// `proxy_port` to `authority` (`localhost:PORT`), trusting the local CA:
/// its request sender, and the connection's task, which ends when
/// `rca-connect` closes the tunnel.
pub(crate) async fn h2_tunnel(
    files: &Files,
    proxy_port: u16,
    authority: &str,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    h2_tunnel_with(files, proxy_port, authority, "").await
}

/// As [`h2_tunnel`], with `extra` (header lines, each ending in CRLF) on
/// the `CONNECT`, and request bodies of type `B`.
pub(crate) async fn h2_tunnel_with<B>(
    files: &Files,
    proxy_port: u16,
    authority: &str,
    extra: &str,
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<hyper::Result<()>>,
)
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy_port))
        .await
        .expect("connect");
    tcp.write_all(
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n").as_bytes(),
    )
    .await
    .expect("CONNECT");
    // The answer's head, byte by byte: the tunnel's bytes follow it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.expect("the answer to CONNECT"));
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(files.local_ca()).expect("local CA"))
        .expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).expect("server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS in the tunnel");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2");
    (sender, tokio::spawn(connection))
}

/// A `Proxy-Authorization` field line (with its CRLF) giving `credential`
/// (`user:password`) by HTTP Basic.
pub(crate) fn proxy_authorization(credential: &str) -> String {
    use base64::Engine as _;
    format!(
        "Proxy-Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(credential)
    )
}

/// The Python WebSocket server of `websocket.py` (the websockets library)
/// on a free port of 127.0.0.1, from the installed clients in `dir`.
pub(crate) fn websocket_server(dir: &Path) -> (Process, SocketAddr) {
    let port = free_port();
    let child = Command::new(dir.join("venv/bin/python"))
        .arg(websocket_script())
        .args(["serve", &port.to_string()])
        // Quiet about the port probe, a connection without a handshake.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the WebSocket server");
    let process = Process(child);
    wait_for_port(port, "the WebSocket server");
    (process, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Opens the WebSocket `url` with Python's websockets library (`wss://`
/// through the proxy on `proxy_port`, trusting the local CA; `ws://`
/// direct), with `origin` as a web page's, sends `hello`: its JSON report
/// (see `websocket.py`).
pub(crate) fn websocket_client(
    files: &Files,
    (dir, proxy_port): (&Path, u16),
    url: &str,
    origin: Option<&str>,
) -> serde_json::Value {
    let mut command = Command::new(dir.join("venv/bin/python"));
    command
        .arg(websocket_script())
        .args(["connect", url, "hello"])
        .args(origin)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env("SSL_CERT_FILE", files.local_ca());
    let output = command.output().expect("run the WebSocket client");
    // rca-connect's diagnostics too, should the client fail.
    assert!(
        output.status.success(),
        "websocket.py: {}\nrca-connect's standard error:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(files.path("connect.err")).unwrap_or_default()
    );
    serde_json::from_slice(&output.stdout).expect("the WebSocket client's JSON")
}

fn websocket_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect/websocket.py")
}

/// A TCP relay on 127.0.0.1 to `target` whose connections can be made to
/// go silent, as a middlebox that dropped them leaves them: no bytes pass
/// either way and nothing is closed. Connections made after
/// [`TcpRelay::silence`] pass.
pub(crate) struct TcpRelay {
    pub(crate) port: u16,
    /// Connections numbered below this are silent.
    silent_below: Arc<std::sync::atomic::AtomicU64>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl TcpRelay {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let silent_below = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let (silent, counter) = (Arc::clone(&silent_below), Arc::clone(&next));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = counter.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass(client_read, server_write, id, Arc::clone(&silent)));
                tokio::spawn(pass(server_read, client_write, id, Arc::clone(&silent)));
            }
        });
        Self {
            port,
            silent_below,
            next,
        }
    }

    /// The connections open so far go silent.
    pub(crate) fn silence(&self) {
        use std::sync::atomic::Ordering;
        self.silent_below
            .store(self.next.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies `from` to `to` for [`TcpRelay`]'s connection `id`, until it is
/// silenced: then it holds both open and passes nothing.
async fn pass(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    id: u64,
    silent_below: Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let Ok(read @ 1..) = from.read(&mut buf).await else {
            let _ = to.shutdown().await;
            return;
        };
        if id < silent_below.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..read]).await.is_err() {
            return;
        }
    }
}
