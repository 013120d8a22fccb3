//! The `pki`, `server` and `client` examples as real processes, as the README
//! runs them: a PKI written to PEM files, the one-port server, a bot that is
//! let in, a bot from another CA that is refused and says why, a browser-like
//! request without the flag, and a graceful stop on SIGTERM.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::local::free_port;

/// `target/<profile>/examples/<name>`: cargo builds the examples before it
/// runs the tests, next to the test binary's `deps/` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the {name} example: {error}"))
}

/// A GET like a browser's: ALPN, no flag, no certificate.
fn browser_get(ca: &str, url: &str) -> String {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(rustls_req_client_auth::pem::load_roots(ca).expect("CA"))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            reqwest::Client::builder()
                .tls_backend_preconfigured(config)
                .build()
                .expect("client")
                .get(url)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body")
        })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn server_and_client_examples() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = dir.path().to_str().expect("UTF-8 path");
    let written = run("pki", &[pki]);
    assert!(written.status.success(), "{written:?}");
    let file = |name: &str| format!("{pki}/{name}");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server(
        Command::new(example("server"))
            .args(["--cert", &file("server.pem"), "--key", &file("server.key")])
            .args(["--bot-ca", &file("bot-ca.pem"), "--listen", &listen])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the server example"),
    );
    let started = Instant::now();
    while TcpStream::connect(&listen).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let client = |cert: &str, path: &str| {
        run(
            "client",
            &[
                "--ca",
                &file("server-ca.pem"),
                "--cert",
                &file(&format!("{cert}.pem")),
                "--key",
                &file(&format!("{cert}.key")),
                &url(path),
            ],
        )
    };

    let bot = client("bot", "/api/crawl");
    let stdout = String::from_utf8_lossy(&bot.stdout);
    assert!(bot.status.success(), "{bot:?}");
    assert!(
        stdout.contains("acknowledged {80 (request_client_auth)}"),
        "{stdout}"
    );
    assert!(stdout.contains("sent the flag identity"), "{stdout}");
    assert!(stdout.contains("HTTP/2.0 200 OK"), "{stdout}");
    assert!(
        stdout.contains("crawl granted to CN=crawler.bot.example"),
        "{stdout}"
    );

    // A person: no flag, no certificate, no CertificateRequest.
    let person = std::thread::spawn({
        let ca = file("server-ca.pem");
        let url = url("/");
        move || browser_get(&ca, &url)
    })
    .join()
    .expect("browser thread");
    assert!(
        person.starts_with("hello, anonymous; TLSv1_3 h2"),
        "{person}"
    );

    let stranger = client("normal", "/api/crawl");
    let stderr = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success(), "{stranger:?}");
    assert!(
        stderr.contains("most likely refused that certificate"),
        "{stderr}"
    );

    // SIGTERM: the server stops accepting and exits cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no graceful stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
