//! `rca-connect` as a real process, with real clients (curl over HTTP/1.1
//! and HTTP/2, Python's requests, httpx, Scrapy and websockets, Go's net/http,
//! Node's undici) in front of it and real servers behind it: `rca-proxy`
//! (the flag acknowledged, the bot let in, or its identity refused; Python's
//! WebSocket server behind it), a server that does not know the flag, one that
//! asks every client for a certificate without acknowledging the flag, and
//! one whose certificate does not verify. The clients are installed by
//! `install.sh` (run by `cargo xtask test`).

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use integration_tests::local::runtime;
use integration_tests::TestPki;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use support::{
    clients_dir, plain_server, plain_tls, tls_server, tls_server_signed_by, Client, Files, CONNECT,
};

const OUTCOME: &str = "rca-connect-outcome";

/// The clients to try: curl always; Python, Go and Node where installed.
fn clients() -> Vec<Client> {
    let mut clients = vec![Client::CurlHttp1, Client::CurlHttp2];
    match clients_dir() {
        Ok(_) => clients.extend([
            Client::PythonRequests,
            Client::PythonHttpx,
            Client::PythonScrapy,
            Client::GoNetHttp,
            Client::NodeUndici,
        ]),
        Err(why) => eprintln!("Python, Go and Node clients skipped: {why}"),
    }
    clients
}

fn bot_thumbprint(pki: &TestPki) -> String {
    rustls_req_client_auth::thumbprint_sha256(&pki.bot.chain[0])
}

#[test]
fn every_client_gets_in_on_the_flag_path_through_rca_connect() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let metrics = support::free_port();
        let (_connect, port) =
            files.start_connect(&["--metrics-listen", &format!("127.0.0.1:{metrics}")]);
        let thumbprint = bot_thumbprint(pki);
        for client in clients() {
            let url = format!("https://localhost:{proxy_port}/hello");
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
            assert_eq!(
                answer.echoed("x-client-auth-path"),
                Some("flag"),
                "{client:?}: {answer:?}"
            );
            assert_eq!(
                answer.echoed("x-client-cert-x5t-s256"),
                Some(thumbprint.as_str())
            );
            let outcome = answer.header(OUTCOME).expect("outcome header");
            assert!(outcome.starts_with("flag=acknowledged; "), "{outcome}");
            assert!(
                outcome.contains(&format!("identity={thumbprint}")),
                "{outcome}"
            );
            assert!(outcome.contains("alpn=h2"), "{outcome}");
            if matches!(client, Client::CurlHttp2 | Client::GoNetHttp) {
                assert!(
                    answer.protocol.starts_with("HTTP/2"),
                    "{client:?}: {}",
                    answer.protocol
                );
            }
        }
        let log = files.connection_log();
        let line = log
            .iter()
            .find(|line| line["host"] == "localhost" && line["port"] == proxy_port)
            .unwrap_or_else(|| panic!("no connection line: {log:?}"));
        assert_eq!(line["event"], "upstream_connection");
        assert_eq!(line["acknowledged"], true, "{line}");
        assert_eq!(line["tls"]["identity"], thumbprint.as_str());
        assert_eq!(line["tls"]["alpn"], "h2");
        assert!(line["refused"].is_null(), "{line}");
        assert!(
            line["time"]
                .as_str()
                .is_some_and(|time| time.ends_with('Z')),
            "{line}"
        );
    });
}

/// The local CA is made on first start: its directory 0700, its key 0600.
#[test]
fn the_local_ca_key_is_readable_by_its_owner_only() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let output = std::process::Command::new(CONNECT)
        .args([
            "--state-dir",
            &files.path("state").display().to_string(),
            "ca",
        ])
        .output()
        .expect("rca-connect ca");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&files.local_ca().display().to_string()),
        "{text}"
    );
    for needle in [
        "curl",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let mode = |name: &str| {
        std::fs::metadata(files.path(name))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("state/ca.key"), 0o600);
    // The local CA's options also after the subcommand, as users write them.
    let after = std::process::Command::new(CONNECT)
        .args([
            "ca",
            "--state-dir",
            &files.path("state").display().to_string(),
        ])
        .output()
        .expect("rca-connect ca --state-dir");
    assert!(after.status.success(), "{after:?}");
    assert_eq!(after.stdout, output.stdout);
    assert_eq!(mode("state"), 0o700);
    assert_eq!(
        mode("state/ca.pem") & 0o077,
        mode("state/ca.pem") & 0o044 & 0o077
    );
}

/// A server that has never heard of the flag: the bot is served
/// anonymously, as any client.
#[test]
fn a_server_without_the_flag_serves_the_bot_anonymously() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        for client in clients() {
            let url = format!("https://localhost:{}/plain", server.port());
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
            assert_eq!(answer.echoed("client-cert"), Some("none"));
            let outcome = answer.header(OUTCOME).expect("outcome header");
            assert!(
                outcome.starts_with("flag=no-certificate-request; identity=none; "),
                "{outcome}"
            );
            assert!(outcome.contains("alpn=http/1.1"), "{outcome}");
        }
    });
}

/// A server that asks every client for a certificate (of the bot CA, so it
/// would take the bot's) and does not know the flag.
fn asks_everyone(pki: &TestPki) -> ServerConfig {
    asking_server(pki, false, rustls::DEFAULT_VERSIONS)
}

/// [`asks_everyone`], refusing a client without a certificate if
/// `required` (ordinary mutual TLS), speaking `versions`.
fn asking_server(
    pki: &TestPki,
    required: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ServerConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.bot_ca.cert.clone()).expect("bot CA");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder.build().expect("verifier");
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("config")
}

/// A server that honours the flag, refuses the bot's certificate (its CA is
/// another) and drops the connection at once, with no lingering close (as
/// many servers do; the kernel then resets it): the 502 names the alert,
/// whichever of the request's write and the first read meets the reset.
/// It said "closed the connection ... (Broken pipe)" when the write did.
#[test]
fn a_refusal_followed_by_a_reset_is_named_by_its_alert() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let mut roots = RootCertStore::empty();
        roots.add(pki.normal_ca.cert.clone()).expect("another CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
        let mut config = plain_tls(pki, &[b"h2", b"http/1.1"]);
        rustls_req_client_auth::ServerFlags::request_client_auth(verifier)
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
        let upstream = tls_server(config).await;
        let (_connect, port) = files.start_connect(&[]);
        for client in [Client::CurlHttp1, Client::CurlHttp2] {
            for _ in 0..3 {
                let url = format!("https://localhost:{}/", upstream.port());
                let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
                assert_eq!(answer.status, 502, "{client:?}: {answer:?}");
                assert!(
                    answer.body.contains("alert UnknownCA"),
                    "{client:?}: {}\n{}",
                    answer.body,
                    std::fs::read_to_string(files.path("connect.err")).unwrap_or_default()
                );
            }
        }
    });
}

/// A server that asks every client for a certificate and does not
/// acknowledge the flag: the bot identity is not sent, though the server
/// would have taken it (RCA-2).
#[test]
fn a_certificate_request_without_the_acknowledgement_gets_no_identity() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let mut config = asks_everyone(pki);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let server = tls_server(config).await;
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("https://localhost:{}/asks", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.echoed("client-cert"), Some("none"), "{answer:?}");
        let outcome = answer.header(OUTCOME).expect("outcome header");
        assert!(
            outcome.starts_with("flag=not-acknowledged; identity=none; "),
            "{outcome}"
        );
        let log = files.connection_log();
        assert_eq!(
            log[0]["tls"]["certificate_request"], "server_policy",
            "{log:?}"
        );
        assert_eq!(log[0]["tls"]["identity_sent"], "sent an empty Certificate");
    });
}

/// A server that requires a certificate of every client and does not know
/// the flag (ordinary mutual TLS) gets none, refuses the connection, and
/// the client reads why: a 502 that says so, with the outcome header.
#[test]
fn a_server_requiring_a_certificate_without_the_flag_is_explained() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let mut config = asking_server(pki, true, rustls::DEFAULT_VERSIONS);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let server = tls_server(config).await;
        let (_connect, port) = files.start_connect(&[]);
        for client in [Client::CurlHttp1, Client::CurlHttp2] {
            let url = format!("https://localhost:{}/requires", server.port());
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 502, "{client:?}: {answer:?}");
            assert!(
                answer
                    .body
                    .contains("asked for a client certificate without acknowledging"),
                "{client:?}: {answer:?}"
            );
            let outcome = answer.header(OUTCOME).expect("outcome header");
            assert!(
                outcome.starts_with("flag=not-acknowledged; identity=none; ")
                    && outcome.ends_with("; refused"),
                "{client:?}: {outcome}"
            );
        }
        // Over TLS 1.2 the handshake itself fails: no connection.
        let mut config = asking_server(pki, true, &[&rustls::version::TLS12]);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server = tls_server(config).await;
        let url = format!("https://localhost:{}/requires", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(answer.body.contains("TLS handshake"), "{answer:?}");
        assert_eq!(
            answer.header(OUTCOME),
            Some("flag=no-connection; identity=none; tls=none"),
            "{answer:?}"
        );
    });
}

/// A server's own `rca-connect-outcome` (or the configured name's) never
/// reaches the client, also with the header turned off or renamed: a
/// client reads it as rca-connect's word.
#[test]
fn a_server_cannot_claim_the_outcome() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let url = format!("https://localhost:{}/forged-outcome", server.port());
        for extra in [
            &[][..],
            &["--no-outcome-header"],
            &["--outcome-header", "x-outcome"],
        ] {
            let (_connect, port) = files.start_connect(extra);
            let answer =
                tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 200, "{extra:?}: {answer:?}");
            // The names rca-connect owns: its default, and the one
            // configured (`x-outcome` is any server header otherwise).
            let owned = |name: &str| name == OUTCOME || (extra.len() == 2 && name == "x-outcome");
            assert!(
                !answer
                    .headers
                    .iter()
                    .any(|(name, value)| owned(name) && value.contains("FORGED")),
                "{extra:?}: {answer:?}"
            );
        }
    });
}

/// A TLS 1.2 server that asks for a certificate: the flag is TLS 1.3's, the
/// request is not observed and nothing is sent (RCA-12); the outcome says
/// `tls12`, not that no request came.
#[test]
fn a_tls12_server_is_said_to_be_one() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let mut config = asking_server(pki, false, &[&rustls::version::TLS12]);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server = tls_server(config).await;
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("https://localhost:{}/tls12", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.echoed("client-cert"), Some("none"), "{answer:?}");
        let outcome = answer.header(OUTCOME).expect("outcome header");
        assert!(
            outcome.starts_with("flag=tls12; identity=none; tls=TLSv1_2; "),
            "{outcome}"
        );
        let log = files.connection_log();
        assert_eq!(log[0]["tls"]["version"], "TLSv1_2", "{log:?}");
    });
}

/// A session in which a CertificateRequest was answered with an empty
/// Certificate is not resumed (Cloudflare's Go fork then waits for a
/// certificate and fails every second connection); one without a
/// CertificateRequest is.
#[test]
fn sessions_answered_with_an_empty_certificate_are_not_resumed() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let mut asks = asks_everyone(pki);
        asks.alpn_protocols = vec![b"http/1.1".to_vec()];
        let asking = tls_server(asks).await;
        let plain = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        for server in [asking, plain] {
            for _ in 0..2 {
                // `/close`: each request needs a new upstream connection.
                let url = format!("https://localhost:{}/close", server.port());
                let answer =
                    tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
                assert_eq!(answer.status, 200, "{answer:?}");
            }
        }
        let log = files.connection_log();
        let resumed = |server: std::net::SocketAddr| -> Vec<bool> {
            log.iter()
                .filter(|line| line["port"] == server.port())
                .map(|line| line["tls"]["resumed"].as_bool().unwrap_or(false))
                .collect()
        };
        assert_eq!(resumed(asking), [false, false], "{log:?}");
        assert_eq!(resumed(plain), [false, true], "{log:?}");
    });
}

/// A server whose certificate does not verify, and one that cannot be
/// reached: 502, and the text says which.
#[test]
fn a_server_that_does_not_verify_gets_a_502_naming_the_cause() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        // The bot's own certificate as a server's: another CA, another name.
        let mut config = ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(pki.bot.chain.clone(), pki.bot.key())
        .expect("config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server = tls_server(config).await;
        let (_connect, port) = files.start_connect(&[]);
        for client in clients() {
            let url = format!("https://localhost:{}/", server.port());
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 502, "{client:?}: {answer:?}");
            assert!(
                answer.body.contains("did not verify"),
                "{client:?}: {}",
                answer.body
            );
        }
        // Nothing listening: 502, "cannot reach", and a log line.
        let closed = support::free_port();
        let url = format!("https://localhost:{closed}/");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(
            answer
                .body
                .contains(&format!("cannot reach localhost:{closed}")),
            "{}",
            answer.body
        );
        // No connection, so nothing was sent: the outcome header says so.
        assert_eq!(
            answer.header(OUTCOME),
            Some("flag=no-connection; identity=none; tls=none"),
            "{answer:?}"
        );
        let log = files.connection_log();
        assert!(
            log.iter()
                .any(|line| line["port"] == closed && line["error"].is_string()),
            "{log:?}"
        );
    });
}

/// `rca-proxy` that does not trust the bot's CA: it acknowledges the flag,
/// takes the certificate, and refuses it with an alert; the client gets a
/// 502 that says so, the header says `refused`, and so does the log.
#[test]
fn a_refused_identity_is_reported_in_the_header_and_the_log() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("other-ca.pem", upstream);
        let metrics = support::free_port();
        let (_connect, port) =
            files.start_connect(&["--metrics-listen", &format!("127.0.0.1:{metrics}")]);
        for client in [Client::CurlHttp1, Client::CurlHttp2] {
            let url = format!("https://localhost:{proxy_port}/");
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 502, "{client:?}: {answer:?}");
            assert!(
                answer.body.contains("refused the bot certificate"),
                "{}",
                answer.body
            );
            let outcome = answer
                .header(OUTCOME)
                .unwrap_or_else(|| panic!("{client:?}: {answer:?}"));
            assert!(
                outcome.starts_with("flag=acknowledged; identity="),
                "{outcome}"
            );
            assert!(outcome.ends_with("; refused"), "{outcome}");
        }
        let log = files.connection_log();
        let refused = log
            .iter()
            .filter(|line| {
                line["refused"]
                    .as_str()
                    .is_some_and(|why| why.contains("refused the bot certificate"))
            })
            .count();
        assert!(refused >= 1, "{log:?}");
        let text = support::http_get(&format!("http://127.0.0.1:{metrics}/metrics"));
        assert!(
            !text.contains("rca_connect_identity_refusals_total 0"),
            "{text}"
        );
        assert!(
            text.contains("rca_connect_identity_refusals_total"),
            "{text}"
        );
    });
}

/// 64 MiB up and 64 MiB down through both TLS hops, streamed: the proxy's
/// peak memory stays far below what buffering a body would take.
#[test]
fn bodies_larger_than_buffers_stream_both_ways() {
    const SIZE: usize = 64 * 1024 * 1024;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let (connect, port) = files.start_connect(&[]);
        let mut uploads = vec![Client::CurlHttp1, Client::CurlHttp2];
        if clients_dir().is_ok() {
            uploads.extend([Client::PythonRequests, Client::PythonHttpx]);
        }
        for client in uploads {
            let url = format!("https://localhost:{proxy_port}/upload");
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, SIZE));
            assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
            assert_eq!(answer.body, format!("received {SIZE}"), "{client:?}");
        }
        for http in ["--http1.1", "--http2"] {
            let output = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "60",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{size_download}",
                    http,
                ])
                .args(["--proxy", &format!("http://127.0.0.1:{port}")])
                .args(["--cacert", &files.local_ca().display().to_string()])
                .arg(format!("https://localhost:{proxy_port}/download?n={SIZE}"))
                .output()
                .expect("curl");
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                format!("200 {SIZE}"),
                "{output:?}"
            );
        }
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", connect.0.id())).expect("status");
        let peak_kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmHWM");
        assert!(peak_kb < 48 * 1024, "rca-connect peaked at {peak_kb} kB");
    });
}

/// `--route`: a client that cannot use a proxy sends plain HTTP to a local
/// port, and reaches the server with the flag.
#[test]
fn a_route_serves_clients_that_cannot_use_a_proxy() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let route = support::free_port();
        let (_connect, _port) = files.start_connect(&[
            "--route",
            &format!("127.0.0.1:{route}=https://localhost:{proxy_port}"),
        ]);
        let output = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://127.0.0.1:{route}/routed"))
            .output()
            .expect("curl");
        let body = String::from_utf8_lossy(&output.stdout);
        assert!(body.contains("x-client-auth-path: flag"), "{body}");
        assert!(
            body.contains(&format!("host: localhost:{proxy_port}")),
            "{body}"
        );
        // A page whose name was rebound to 127.0.0.1 sends its own name.
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", "Host: rebound.example"])
            .arg(format!("http://127.0.0.1:{route}/routed"))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "403");
        // A page of another origin (a browser says so), and one of the
        // route's own origin.
        let own_origin = format!("Origin: http://127.0.0.1:{route}");
        for (header, status) in [
            ("Origin: https://page.example", "403"),
            ("Origin: null", "403"),
            ("Sec-Fetch-Site: cross-site", "403"),
            ("Sec-Fetch-Site: same-site", "403"),
            ("Sec-Fetch-Site: same-origin", "200"),
            ("Sec-Fetch-Site: none", "200"),
            (own_origin.as_str(), "200"),
        ] {
            let output = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "20", "-o", "/dev/null"])
                .args(["-w", "%{http_code}", "-H", header])
                .arg(format!("http://127.0.0.1:{route}/routed"))
                .output()
                .expect("curl");
            assert_eq!(String::from_utf8_lossy(&output.stdout), status, "{header}");
        }
        // Two Hosts, Origins or Sec-Fetch-Sites (which the checks above read
        // one of), as written (curl sends one Host of its own).
        for extra in [
            "Host: rebound.example\r\n".to_owned(),
            format!("{own_origin}\r\nOrigin: https://page.example\r\n"),
            "Sec-Fetch-Site: none\r\nSec-Fetch-Site: cross-site\r\n".to_owned(),
        ] {
            use std::io::{Read as _, Write as _};
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", route)).expect("route");
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .expect("timeout");
            write!(
                tcp,
                "GET /routed HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
            )
            .expect("send");
            let mut answer = String::new();
            let _ = tcp.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 400"), "{extra}: {answer}");
        }
    });
}

/// `--identity-host`: a host outside the list gets no flag, so no identity.
#[test]
fn the_identity_goes_only_to_allowed_hosts() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let (_connect, port) = files.start_connect(&["--identity-host", "*.example.com"]);
        let url = format!("https://localhost:{proxy_port}/");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.echoed("x-client-auth-path"),
            Some("none"),
            "{answer:?}"
        );
        let outcome = answer.header(OUTCOME).expect("outcome header");
        assert!(
            outcome.starts_with("flag=not-sent; identity=none"),
            "{outcome}"
        );
    });
}

/// SIGHUP reads `--cert`/`--key` again: the next new connection answers
/// with the new identity.
#[test]
fn sighup_reloads_the_bot_identity() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        // A second site, whose bot CA issued the identity rotated to.
        let (_proxy, proxy_port) = files.start_proxy("other-ca.pem", upstream);
        let (connect, port) = files.start_connect(&[]);
        files.write("bot.pem", &pki.normal_client.chain_pem);
        files.write("bot.key", &pki.normal_client.key_pem);
        let rotated = rustls_req_client_auth::thumbprint_sha256(&pki.normal_client.chain[0]);
        files.hang_up(&connect, &rotated);
        let url = format!("https://localhost:{proxy_port}/");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.echoed("x-client-cert-x5t-s256"),
            Some(rotated.as_str())
        );
    });
}

/// SIGTERM: no new connections (refused at once), but a request in flight is answered, and
/// the process then exits 0; `GET /ready` on the metrics address says 200
/// before and 503 (`stopping`) from the signal on.
#[test]
fn sigterm_lets_requests_in_flight_finish() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let admin = support::free_port();
        let (mut connect, port) =
            files.start_connect(&["--metrics-listen", &format!("127.0.0.1:{admin}")]);
        let ready = format!("http://127.0.0.1:{admin}/ready");
        assert_eq!(support::http_get(&ready), "ready\n");
        let url = format!("https://localhost:{}/slow", server.port());
        let (answer, draining) = tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let fetch = scope.spawn(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
                std::thread::sleep(std::time::Duration::from_millis(500));
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &connect.0.id().to_string()])
                    .status()
                    .expect("kill");
                assert!(status.success());
                // While the request is in flight: no longer ready.
                let signalled = std::time::Instant::now();
                let mut draining = support::http_get(&ready);
                while draining != "stopping\n"
                    && signalled.elapsed() < std::time::Duration::from_secs(1)
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    draining = support::http_get(&ready);
                }
                // A new client is refused at once, not left waiting in the
                // backlog (found by an outside attack): while the request
                // is still in flight.
                let refused = loop {
                    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
                    if refused || fetch.is_finished() {
                        break refused;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                };
                assert!(refused, "a connection was accepted while draining");
                (fetch.join().expect("the client thread"), draining)
            })
        });
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(draining, "stopping\n");
        let started = std::time::Instant::now();
        let exit = loop {
            if let Some(exit) = connect.0.try_wait().expect("wait") {
                break exit;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(15),
                "still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(exit.success(), "{exit:?}");
        let log = std::fs::read_to_string(files.path("connect.err")).unwrap_or_default();
        assert!(log.contains("stopping"), "{log}");
    });
}

/// A second signal during the drain stops rca-connect at once (status
/// 130), cutting off a request that would have run on.
#[test]
fn a_second_signal_stops_at_once() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (mut connect, port) = files.start_connect(&[]);
        // A response that starts, then stalls for a minute.
        let url = format!("https://localhost:{}/stall", server.port());
        let kill = |pid: u32| {
            let status = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        };
        let exit = tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                // Cut off, so curl itself, not the checking client.
                let _fetch = scope.spawn(|| {
                    std::process::Command::new("curl")
                        .args(["-s", "--max-time", "10", "--proxy"])
                        .arg(format!("http://127.0.0.1:{port}"))
                        .arg("--cacert")
                        .arg(files.local_ca())
                        .arg(&url)
                        .output()
                });
                // In flight: the stalled response has begun (its connection is logged).
                let started = std::time::Instant::now();
                while !files
                    .connection_log()
                    .iter()
                    .any(|line| line["port"] == server.port())
                {
                    assert!(
                        started.elapsed() < std::time::Duration::from_secs(10),
                        "no request in flight"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                kill(connect.0.id());
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert!(connect.0.try_wait().expect("wait").is_none(), "draining");
                kill(connect.0.id());
                let started = std::time::Instant::now();
                loop {
                    if let Some(exit) = connect.0.try_wait().expect("wait") {
                        break exit;
                    }
                    assert!(
                        started.elapsed() < std::time::Duration::from_secs(3),
                        "still running after the second signal"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
        });
        assert_eq!(exit.code(), Some(130), "{exit:?}");
        let log = std::fs::read_to_string(files.path("connect.err")).unwrap_or_default();
        assert!(log.contains("stopped at once, by a second signal"), "{log}");
    });
}

/// A request body that stops arriving gets 408 after `--body-timeout-secs`
/// (here through a route, with a raw client).
#[test]
fn a_stalled_request_body_gets_408() {
    use std::io::{Read as _, Write as _};
    runtime().block_on(async {
        let pki = TestPki::shared();
        // Over HTTP/2 to the server too, whose client (hyper's) keeps the
        // body's error to itself: the body records it.
        for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
            let files = Files::new(pki);
            let server = tls_server(plain_tls(pki, &[alpn])).await;
            let (_connect, _port, route) =
                files.start_routed(server.port(), &["--body-timeout-secs", "1"]);
            let answer = tokio::task::block_in_place(|| {
                let mut tcp = support::route_client(route);
                tcp.write_all(
                    b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nx",
                )
                .expect("write");
                let mut answer = vec![0; 512];
                let read = tcp.read(&mut answer).unwrap_or(0);
                String::from_utf8_lossy(&answer[..read]).into_owned()
            });
            let alpn = String::from_utf8_lossy(alpn);
            assert!(answer.starts_with("HTTP/1.1 408"), "{alpn}: {answer}");
            assert!(
                answer.contains("sent none of the request body"),
                "{alpn}: {answer}"
            );
        }
    });
}

/// A client uploading a large body to a server that cannot be reached
/// reads the 502 that names the cause after it has sent it all: the body is
/// read on and thrown away rather than left unread, which made the kernel
/// reset the connection (the upload failed) and lose the answer.
#[test]
fn a_client_still_uploading_reads_why_there_is_no_answer() {
    use std::io::{Read as _, Write as _};
    const SIZE: usize = 16 * 1024 * 1024;
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let (_connect, _port, route) = files.start_routed(support::free_port(), &[]);
    let mut tcp = support::route_client(route);
    tcp.write_all(
        format!("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {SIZE}\r\n\r\n")
            .as_bytes(),
    )
    .expect("head");
    let chunk = vec![b'u'; 64 * 1024];
    for _ in 0..SIZE / chunk.len() {
        tcp.write_all(&chunk)
            .unwrap_or_else(|error| panic!("the upload broke off: {error}"));
    }
    let mut answer = vec![0; 512];
    let read = tcp.read(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
}

/// A server that stops sending its response body has the response cut
/// short after `--read-timeout-secs` (here through a route, with a raw
/// client), over HTTP/1.1 and HTTP/2 to the server: the client sees the
/// connection close before the body's end, and the log says why.
#[test]
fn a_stalled_response_body_is_cut_short() {
    use std::io::{Read as _, Write as _};
    runtime().block_on(async {
        let pki = TestPki::shared();
        for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
            let files = Files::new(pki);
            let server = tls_server(plain_tls(pki, &[alpn])).await;
            let (_connect, _port, route) =
                files.start_routed(server.port(), &["--read-timeout-secs", "1"]);
            let (answer, ended, took) = tokio::task::block_in_place(|| {
                let started = std::time::Instant::now();
                let mut tcp = support::route_client(route);
                tcp.write_all(b"GET /stall HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .expect("write");
                let mut answer = Vec::new();
                let ended = tcp.read_to_end(&mut answer);
                (
                    String::from_utf8_lossy(&answer).into_owned(),
                    ended,
                    started.elapsed(),
                )
            });
            let alpn = String::from_utf8_lossy(alpn);
            assert!(ended.is_ok(), "{alpn}: closed, not left open: {ended:?}");
            assert!(answer.starts_with("HTTP/1.1 200"), "{alpn}: {answer}");
            assert!(answer.contains("partial;"), "{alpn}: {answer}");
            assert!(
                !answer.ends_with("0\r\n\r\n"),
                "{alpn}: no last chunk, so the client knows: {answer}"
            );
            assert!(
                took >= std::time::Duration::from_secs(1),
                "{alpn}: {took:?}"
            );
            let log = std::fs::read_to_string(files.path("connect.err")).unwrap_or_default();
            assert!(
                log.contains("was cut short: it sent nothing of the response body for 1s"),
                "{alpn}: {log}"
            );
        }
    });
}

/// `--max-connections 1`: the one connection's slot passes to its tunnel,
/// so a tunnel still opens; a target with user information is refused.
#[test]
fn one_connection_slot_still_opens_a_tunnel() {
    use std::io::{Read as _, Write as _};
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&["--max-connections", "1"]);
        let url = format!("https://localhost:{}/one", server.port());
        for _ in 0..2 {
            let answer =
                tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 200, "{answer:?}");
        }
        let answer = tokio::task::block_in_place(|| {
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            tcp.write_all(b"CONNECT user:pw@localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
                .expect("write");
            let mut answer = vec![0; 512];
            let read = tcp.read(&mut answer).unwrap_or(0);
            String::from_utf8_lossy(&answer[..read]).into_owned()
        });
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    });
}

/// No option turns server verification off: `--help` names none.
#[test]
fn no_option_turns_off_server_verification() {
    let output = std::process::Command::new(CONNECT)
        .arg("--help")
        .output()
        .expect("rca-connect --help");
    let help = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
    assert!(help.contains("--roots"), "{help}");
    for word in ["insecure", "skip", "no-verify", "accept-invalid", "danger"] {
        assert!(!help.contains(word), "{word} in --help: {help}");
    }
}

/// A client's HTTP/2 connection with no request open is closed after
/// `--client-idle-timeout-secs` (GOAWAY, then the end of the connection);
/// one with a download still streaming is not idle, however slowly the
/// client reads.
#[test]
fn an_idle_http2_client_connection_is_closed() {
    use std::time::{Duration, Instant};

    use http_body_util::BodyExt as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2"])).await;
        let (_connect, port) = files.start_connect(&["--client-idle-timeout-secs", "1"]);
        let authority = format!("localhost:{}", server.port());
        let (mut sender, connection) = support::h2_tunnel(&files, port, &authority).await;
        let get = |path: &str| {
            http::Request::get(format!("https://{authority}{path}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("request")
        };

        let response = sender
            .send_request(get("/download?n=8000000"))
            .await
            .expect("download");
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = body.frame().await.expect("a frame").expect("data");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mut received = first.data_ref().map_or(0, bytes::Bytes::len);
        while let Some(frame) = body.frame().await {
            received += frame.expect("data").data_ref().map_or(0, bytes::Bytes::len);
        }
        assert_eq!(received, 8_000_000);
        // Still open: a request right after the download is answered.
        let response = sender.send_request(get("/again")).await.expect("again");
        assert_eq!(response.status(), 200);
        drop(response);

        let idle = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(10), connection).await;
        assert!(matches!(closed, Ok(Ok(Ok(())))), "{closed:?}");
        assert!(
            idle.elapsed() >= Duration::from_millis(900),
            "{:?}",
            idle.elapsed()
        );
    });
}

/// A client that grants a response no more window (HTTP/2 flow control)
/// while it answers pings has its tunnel closed after `--send-timeout-secs`:
/// the response counts as in flight, so the idle timeout never came, and
/// such tunnels held their slots for ever (found by an outside trial).
#[test]
fn a_tunnel_whose_client_takes_no_more_of_a_response_is_closed() {
    use std::time::Duration;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2"])).await;
        let (_connect, port) = files.start_connect(&["--send-timeout-secs", "2"]);
        let authority = format!("localhost:{}", server.port());
        let (mut sender, connection) = support::h2_tunnel(&files, port, &authority).await;
        let request = http::Request::get(format!("https://{authority}/download?n=8000000"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("download");
        assert_eq!(response.status(), 200);
        // Held and never read: hyper grants the stream no more window, and
        // its connection task goes on answering pings.
        let closed = tokio::time::timeout(Duration::from_secs(20), connection).await;
        assert!(closed.is_ok(), "the stalled tunnel stayed open");
        drop(response);
    });
}

/// SIGHUP reads each `--ca` again: a server whose CA was not trusted (502)
/// is reached once its CA is in the file and rca-connect was told.
#[test]
fn sighup_reloads_the_server_roots() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        // A server under a CA of its own, for the name the client uses.
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rotated server CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server = tls_server_signed_by(&issuer).await;
        // At first the extra CA file holds another CA.
        let extra = files.write("extra-ca.pem", &pki.normal_ca.cert_pem);
        let (connect, port) = files.start_connect(&["--ca", &extra.display().to_string()]);
        let url = format!("https://localhost:{}/", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(answer.body.contains("did not verify"), "{}", answer.body);

        files.write("extra-ca.pem", &ca_cert.pem());
        files.hang_up(&connect, "server roots for new connections");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
    });
}

/// The local CA never vouches for a server: named by a `--ca`, it is left
/// out with a warning, and a server with a certificate it signed is refused
/// (the bot's identity is not sent there); the only root, through
/// `SSL_CERT_FILE` under `--roots system` as `rca-connect ca` tells clients
/// to set it, it stops the start with an error that says so.
#[test]
fn the_local_ca_never_vouches_for_a_server() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let state = files.path("state");
        let made = std::process::Command::new(CONNECT)
            .args(["ca", "--state-dir", &state.display().to_string()])
            .output()
            .expect("rca-connect ca");
        assert!(made.status.success(), "{made:?}");
        let ca_pem = state.join("ca.pem");
        // A server with a certificate from the local CA, for the name the
        // client uses.
        let issuer = rcgen::Issuer::from_ca_cert_pem(
            &std::fs::read_to_string(&ca_pem).expect("ca.pem"),
            rcgen::KeyPair::from_pem(
                &std::fs::read_to_string(state.join("ca.key")).expect("ca.key"),
            )
            .expect("ca.key"),
        )
        .expect("the local CA");
        let server = tls_server_signed_by(&issuer).await;
        let url = format!("https://localhost:{}/", server.port());
        {
            let (_connect, port) = files.start_connect(&["--ca", &ca_pem.display().to_string()]);
            let warned = std::fs::read_to_string(files.path("connect.err")).expect("connect.err");
            assert!(
                warned.contains("was among the server roots and is left out"),
                "{warned}"
            );
            let answer =
                tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 502, "{answer:?}");
            assert!(answer.body.contains("did not verify"), "{}", answer.body);
        }
        // The same when a SIGHUP finds it in a --ca file.
        let extra = files.write("extra-ca.pem", &pki.normal_ca.cert_pem);
        let (connect, port) = files.start_connect(&["--ca", &extra.display().to_string()]);
        std::fs::copy(&ca_pem, &extra).expect("the local CA into the --ca file");
        files.hang_up(&connect, "reloaded the bot identity");
        let warned = std::fs::read_to_string(files.path("connect.err")).expect("connect.err");
        assert!(
            warned.contains("was among the server roots and is left out"),
            "{warned}"
        );
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(answer.body.contains("did not verify"), "{}", answer.body);
        drop(connect);

        let refused = std::process::Command::new(CONNECT)
            .args(["--cert", &files.path("bot.pem").display().to_string()])
            .args(["--key", &files.path("bot.key").display().to_string()])
            .args([
                "--roots",
                "system",
                "--state-dir",
                &state.display().to_string(),
            ])
            .args(["--listen", &format!("127.0.0.1:{}", support::free_port())])
            .env("SSL_CERT_FILE", &ca_pem)
            .env_remove("SSL_CERT_DIR")
            .output()
            .expect("rca-connect");
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("the only server roots were the local CA"),
            "{said}"
        );
        assert!(said.contains("SSL_CERT_FILE"), "{said}");
    });
}

/// SIGHUP reads the local CA again: once its files hold another CA, new
/// tunnels end with certificates from that one, so a client trusting only
/// the new CA gets through (before, it took a restart). A rotation half
/// done (the new key beside the old certificate) is refused, and the
/// running CA stays.
#[test]
fn sighup_reloads_the_local_ca() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (connect, port) = files.start_connect(&[]);
        let url = format!("https://localhost:{}/", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");

        // Another CA in the state directory's files, which the client
        // trusts from now on (`Files::local_ca`).
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rotated local CA");
        let cert = params.self_signed(&key).expect("CA");
        files.write("state/ca.key", &key.serialize_pem());
        files.hang_up(&connect, "is not the key of the CA certificate");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        files.write("state/ca.pem", &cert.pem());
        files.hang_up(&connect, "reloaded the bot identity");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
    });
}

/// WebSockets go through with the flag: Python's websockets library as the
/// bot (through a tunnel, and through a route) and as the server behind
/// rca-proxy, which gives it the bot's identity at the handshake; messages
/// go both ways. A route refuses a handshake with an `Origin`: a web page's,
/// which no CORS would stop from talking to the server as the bot.
#[test]
fn websockets_go_through_with_the_identity() {
    let Some(setup) = WebSocketSetup::start(&[]) else {
        return;
    };
    let (dir, files) = (setup.dir.as_path(), &setup.files);
    let (proxy_port, route, port) = (setup.proxy_port, setup.route, setup.port);
    let pki = TestPki::shared();
    let thumbprint = bot_thumbprint(pki);
    let tunnel = support::websocket_client(
        files,
        (dir, port),
        &format!("wss://localhost:{proxy_port}/chat"),
        None,
    );
    assert_eq!(tunnel["status"], 101, "{tunnel}");
    assert_eq!(tunnel["first"], format!("path=flag;x5t={thumbprint}"));
    assert_eq!(tunnel["echo"], "hello");
    let outcome = tunnel["headers"][OUTCOME].as_str().unwrap_or_default();
    assert!(outcome.starts_with("flag=acknowledged; "), "{outcome}");
    assert!(
        outcome.contains(&format!("identity={thumbprint}")),
        "{outcome}"
    );
    // HTTP/2 has no Upgrade: the WebSocket's connection offered HTTP/1.1 only.
    assert!(outcome.contains("alpn=http/1.1"), "{outcome}");
    let url = format!("ws://127.0.0.1:{route}/chat");
    let routed = support::websocket_client(files, (dir, port), &url, None);
    assert_eq!(routed["status"], 101, "{routed}");
    assert_eq!(routed["first"], format!("path=flag;x5t={thumbprint}"));
    assert_eq!(routed["echo"], "hello");
    // A connection of its own again, which resumes the first one's session:
    // the server holds the identity that session was authenticated with.
    let outcome = routed["headers"][OUTCOME].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with(&format!("flag=resumed; identity={thumbprint}; ")),
        "{outcome}"
    );
    // And again, on a ticket the resumed connection brought: it keeps the
    // identity of the session it resumed.
    let again = support::websocket_client(files, (dir, port), &url, None);
    assert_eq!(again["first"], format!("path=flag;x5t={thumbprint}"));
    let outcome = again["headers"][OUTCOME].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with(&format!("flag=resumed; identity={thumbprint}; ")),
        "{outcome}"
    );
    let page = support::websocket_client(files, (dir, port), &url, Some("https://page.example"));
    assert_eq!(page["status"], 403, "{page}");
    assert!(
        page["body"]
            .as_str()
            .is_some_and(|body| body.contains("Origin")),
        "{page}"
    );
}

/// A 101 that does not prove the server read the WebSocket handshake (no
/// `Sec-WebSocket-Accept`) gets 502: what the bot sent next could reach a
/// server still reading HTTP.
#[test]
fn a_switch_without_proof_gets_a_502() {
    let Some(dir) = installed_clients() else {
        return;
    };
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2", b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("wss://localhost:{}/switch-without-proof", server.port());
        let answer = tokio::task::block_in_place(|| {
            support::websocket_client(&files, (&dir, port), &url, None)
        });
        assert_eq!(answer["status"], 502, "{answer}");
        assert!(
            answer["body"]
                .as_str()
                .is_some_and(|body| body.contains("Sec-WebSocket-Accept")),
            "{answer}"
        );
    });
}

/// `GET path` from `authority` in an HTTP/2 tunnel of its own through
/// `rca-connect` on `port`: the whole answer, trailers included.
async fn h2_get_collected(
    files: &Files,
    port: u16,
    authority: &str,
    path: &str,
) -> http_body_util::Collected<bytes::Bytes> {
    use http_body_util::BodyExt as _;
    let (mut tunnel, _connection) = support::h2_tunnel(files, port, authority).await;
    let answer = tunnel
        .send_request(
            http::Request::get(format!("https://{authority}{path}"))
                .body(http_body_util::Empty::new())
                .expect("request"),
        )
        .await
        .expect("answer");
    answer.into_body().collect().await.expect("body")
}

/// Trailers lose what a trailer section may not carry, both ways: a
/// server's forged outcome header (the other fields stay), the fields an
/// HTTP/1.1 server's `Connection` named, hop-by-hop, framing and routing
/// fields (an HTTP/2 client reset the stream for some), and a client's
/// `Host`, `Content-Length` and `Authorization` on the way to the server.
#[test]
fn trailers_lose_what_a_trailer_section_may_not_carry() {
    use http_body_util::BodyExt as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2", b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        let authority = format!("localhost:{}", server.port());
        let collected = h2_get_collected(&files, port, &authority, "/trailers").await;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert_eq!(
            trailers.get("x-checksum").map(http::HeaderValue::as_bytes),
            Some(&b"1"[..])
        );
        assert!(trailers.get(OUTCOME).is_none(), "{trailers:?}");
        assert_eq!(&collected.to_bytes()[..], b"body;");
        // A client's trailers lose what a trailer section may not carry.
        let (mut to_server, _server_connection) = support::h2_tunnel_with::<
            http_body_util::channel::Channel<bytes::Bytes, std::convert::Infallible>,
        >(&files, port, &authority, "")
        .await;
        let (mut sending, body) = http_body_util::channel::Channel::new(2);
        let asked = tokio::spawn(
            to_server.send_request(
                http::Request::post(format!("https://{authority}/request-trailers"))
                    .body(body)
                    .expect("request"),
            ),
        );
        sending
            .send_data(bytes::Bytes::from_static(b"abc"))
            .await
            .expect("data");
        let mut trailers = http::HeaderMap::new();
        for (name, value) in [
            ("x-checksum", "1"),
            ("host", "elsewhere"),
            ("content-length", "3"),
            ("authorization", "Basic eDp5"),
        ] {
            trailers.insert(name, http::HeaderValue::from_static(value));
        }
        sending.send_trailers(trailers).await.expect("trailers");
        drop(sending);
        let answer = asked.await.expect("task").expect("answer");
        let names = answer.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&names[..], b"x-checksum\n");

        // An HTTP/1.1 server's trailers lose what a trailer section may not
        // carry, and what its `Connection` named.
        let trailing = support::raw_tls_server(
            plain_tls(pki, &[b"http/1.1"]),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: x-hop\r\n\r\n\
              5\r\nhello\r\n0\r\nX-Hop: 1\r\nContent-Length: 5\r\nHost: elsewhere\r\n\
              Proxy-Authenticate: Basic\r\nTE: trailers\r\nKeep-Alive: 1\r\nSet-Cookie: a=b\r\n\
              X-After: 1\r\n\r\n",
        )
        .await;
        let trailing = format!("localhost:{}", trailing.port());
        let collected = h2_get_collected(&files, port, &trailing, "/").await;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert!(trailers.contains_key("x-after"), "{trailers:?}");
        for name in [
            "x-hop",
            "content-length",
            "host",
            "proxy-authenticate",
            "te",
            "keep-alive",
            "set-cookie",
        ] {
            assert!(!trailers.contains_key(name), "{name}: {trailers:?}");
        }
        assert_eq!(&collected.to_bytes()[..], b"hello");
    });
}

/// What a server sends that would mislead the client is not passed on as
/// sent: a `Content-Length` beside chunked framing is dropped (the client
/// got the body cut to that length, with a 200), hop-by-hop fields stay on
/// the server's hop (a change once dropped them from every pooled
/// response), and a 101 to a request that asked for no upgrade is a 502.
#[test]
fn what_a_server_sends_to_mislead_is_not_passed_on() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (_connect, port) = files.start_connect(&[]);
        let framed_twice = support::raw_tls_server(
            plain_tls(pki, &[b"http/1.1"]),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
              c\r\nhello, world\r\n0\r\n\r\n",
        )
        .await;
        let url = format!("https://localhost:{}/", framed_twice.port());
        for client in [Client::CurlHttp1, Client::CurlHttp2] {
            let answer = tokio::task::block_in_place(|| client.fetch(&files, port, &url, 0));
            assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
            assert_eq!(answer.body, "hello, world", "{client:?}: {answer:?}");
            assert_ne!(answer.header("content-length"), Some("5"), "{answer:?}");
        }

        // Hop-by-hop fields stay on the server's hop, and so do those its
        // `Connection` names.
        let hop_by_hop = support::raw_tls_server(
            plain_tls(pki, &[b"http/1.1"]),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-hop\r\nX-Hop: 1\r\n\
              Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic realm=\"server\"\r\n\
              Upgrade: h2c\r\nX-Kept: 1\r\n\r\nok",
        )
        .await;
        let url = format!("https://localhost:{}/", hop_by_hop.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok"),
            "{answer:?}"
        );
        assert_eq!(answer.header("x-kept"), Some("1"), "{answer:?}");
        for name in [
            "x-hop",
            "keep-alive",
            "proxy-authenticate",
            "upgrade",
            "connection",
        ] {
            assert!(answer.header(name).is_none(), "{name}: {answer:?}");
        }

        // HTTP/1.1: HTTP/2 has no 101.
        let http1 = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let url = format!("https://localhost:{}/switch-without-proof", http1.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(answer.body.contains("asked for no upgrade"), "{answer:?}");
        let outcome = answer.header(OUTCOME).unwrap_or_default();
        assert!(!outcome.contains("refused"), "{outcome}");
    });
}

/// A tunnel that is never used (here: the client goes away after the 200,
/// as one that does not trust the local CA does after its failed
/// handshake) leaves a connection begun ahead that nobody takes. Ten
/// seconds later it is dropped, and `rca-connect` goes on serving: it
/// used to stop for good at that moment.
#[test]
fn a_tunnel_left_unused_does_not_stop_rca_connect() {
    use std::io::{Read as _, Write as _};
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        let authority = format!("localhost:{}", server.port());
        tokio::task::block_in_place(|| {
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            tcp.write_all(
                format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
            )
            .expect("write");
            let mut answer = vec![0; 512];
            let read = tcp.read(&mut answer).unwrap_or(0);
            let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        });
        // Past the ten seconds a connection begun ahead waits.
        tokio::time::sleep(std::time::Duration::from_secs(11)).await;
        let url = format!("https://{authority}/after");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
    });
}

/// An open WebSocket counts under `--max-connections` as the connection it
/// came from did: with one slot, a client waits while a WebSocket is open,
/// and gets in once it closes.
#[test]
fn an_open_websocket_holds_its_connection_slot() {
    let Some(setup) = WebSocketSetup::start(&["--max-connections", "1"]) else {
        return;
    };
    let route = setup.route;
    // Kept open until the client ends: it prints a second line then.
    let (mut held, _stdout) = held_websocket(&setup, 5);
    let status = || {
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{route}/"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // Waits to be accepted, past curl's two seconds.
    assert_eq!(status(), "000");
    assert!(held.0.wait().expect("the WebSocket client").success());
    // The WebSocket server answers a plain GET with 426.
    assert_eq!(status(), "426");
}

/// The Python WebSocket client, connected through `setup`'s route and
/// holding its WebSocket open for `hold_secs` (it has printed the 101), and
/// the rest of what it prints: one more line once it ends.
fn held_websocket(
    setup: &WebSocketSetup,
    hold_secs: u32,
) -> (
    support::Process,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead as _;
    let mut held = std::process::Command::new(setup.dir.join("venv/bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect/websocket.py"))
        .args([
            "connect",
            &format!("ws://127.0.0.1:{}/chat", setup.route),
            "hello",
        ])
        .env("WS_HOLD_SECS", hold_secs.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(support::Process)
        .expect("the WebSocket client");
    let mut stdout = std::io::BufReader::new(held.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the WebSocket client's line");
    assert!(line.contains("\"status\": 101"), "{line}");
    (held, stdout)
}

/// A WebSocket whose server sends nothing for `--read-timeout-secs` is
/// closed, as `rca-proxy` closes its tunnels: an idle one held its
/// connection slot for ever (found by an outside attack: still open after
/// 200 s with every timeout at 5 s).
#[test]
fn a_websocket_the_server_is_silent_on_is_closed() {
    use std::io::BufRead as _;
    let Some(setup) = WebSocketSetup::start(&["--read-timeout-secs", "1"]) else {
        return;
    };
    let (mut held, mut stdout) = held_websocket(&setup, 4);
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the WebSocket client's second line");
    assert!(line.contains("\"closed\": true"), "{line}");
    assert!(held.0.wait().expect("the WebSocket client").success());
    let log = std::fs::read_to_string(setup.files.path("connect.err")).unwrap_or_default();
    assert!(
        log.contains("closed a WebSocket to") && log.contains("--read-timeout-secs"),
        "{log}"
    );
}

/// `--max-upstream-connections` caps the connections to servers: with two
/// places and two slow requests (5 s) to an HTTP/1.1 server holding them, more
/// requests wait `--connect-timeout-secs` for a place and get 503, saying
/// why. Without the cap, one client's HTTP/2 streams to an HTTP/1.1
/// server each opened a connection, and a few clients took every file
/// descriptor (found by an outside attack).
#[test]
fn connections_to_servers_are_capped() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[
            "--max-upstream-connections",
            "2",
            "--connect-timeout-secs",
            "1",
        ]);
        // Held 5 s: the two places stay taken however late a client starts.
        let url = format!("https://localhost:{}/slower", server.port());
        let answers = tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let fetches: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| Client::CurlHttp1.fetch(&files, port, &url, 0)))
                    .collect();
                fetches
                    .into_iter()
                    .map(|fetch| fetch.join().expect("a client thread"))
                    .collect::<Vec<_>>()
            })
        });
        let answered = answers.iter().filter(|answer| answer.status == 200).count();
        let busy: Vec<_> = answers
            .iter()
            .filter(|answer| answer.status == 503)
            .collect();
        assert!(
            answered >= 2 && !busy.is_empty() && answered + busy.len() == 4,
            "{answers:?}"
        );
        for answer in busy {
            assert!(
                answer.body.contains("--max-upstream-connections"),
                "{answer:?}"
            );
        }
    });
}

/// Requests rca-connect cannot carry are refused at once with a status
/// that says so (found by an outside attack): a CONNECT target that is
/// not `host:port` (`http://host:port`, a wildcard: taken, then failed or
/// made the local CA issue a wildcard), a CONNECT on a route (sent to the
/// server, whose 200 closed the client's connection without a word), and
/// a WebSocket handshake with a body (the server waited for the body until
/// the response timeout).
#[test]
fn requests_rca_connect_cannot_carry_are_refused_at_once() {
    use std::io::{Read as _, Write as _};
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let route_port = support::free_port();
    let route = format!("127.0.0.1:{route_port}=https://localhost:1");
    let (_connect, port) = files.start_connect(&["--route", &route]);
    let status_of = |to: u16, request: &str| {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", to)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        tcp.write_all(request.as_bytes()).expect("write");
        let mut answer = vec![0; 12];
        tcp.read_exact(&mut answer).expect("a status line");
        String::from_utf8_lossy(&answer).into_owned()
    };
    for target in [
        "http://localhost:443",
        "*.localhost:443",
        "[localhost]:443",
        "localhost:0",
        "localhost:+443",
    ] {
        let answer = status_of(
            port,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        );
        assert_eq!(answer, "HTTP/1.1 400", "{target}");
    }
    // Each with a line that says so (they had none: found by an outside
    // trial).
    let log = std::fs::read_to_string(files.path("connect.err")).unwrap_or_default();
    assert!(
        log.contains("400 for CONNECT \"localhost:0\": CONNECT needs host:port"),
        "{log}"
    );
    assert!(
        log.contains("400 for CONNECT \"[localhost]:443\": CONNECT needs host:port, with brackets"),
        "{log}"
    );
    let answer = status_of(
        route_port,
        "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n",
    );
    assert_eq!(answer, "HTTP/1.1 405");
    let answer = status_of(
        route_port,
        "GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Content-Length: 5\r\n\r\nhello",
    );
    assert_eq!(answer, "HTTP/1.1 400");
}

/// The lines any client can cause, with or without proxy credentials (TLS
/// spoken on the plain port, a request that does not parse), are bounded
/// per second, and the next one out says how many were left out. Found by
/// an outside attack: one line a connection, 20,000 a second.
#[test]
fn lines_any_client_can_cause_are_bounded() {
    use std::io::{Read as _, Write as _};
    const CONNECTIONS: usize = 200;
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let route_port = support::free_port();
    let route = format!("127.0.0.1:{route_port}=http://127.0.0.1:1");
    let (_connect, port) = files.start_connect(&["--route", &route]);
    let started = std::time::Instant::now();
    // rca-connect's own failure answers too: 200 requests to a server that
    // is not there (one 502 line each before).
    for _ in 0..CONNECTIONS {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", route_port)).expect("connect");
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("write");
        let _ = tcp.read_to_end(&mut Vec::new());
    }
    let slip = |index: usize| {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let opening: &[u8] = if index.is_multiple_of(2) {
            // A TLS handshake record's header.
            &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]
        } else {
            b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"
        };
        tcp.write_all(opening).expect("write");
        let _ = tcp.read_to_end(&mut Vec::new());
    };
    for index in 0..CONNECTIONS {
        slip(index);
    }
    let seconds = started.elapsed().as_secs();
    // A second later, one more: its line says how many were left out.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    slip(0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = std::fs::read_to_string(files.path("connect.err")).unwrap_or_default();
    let lines = log
        .lines()
        .filter(|line| {
            line.contains("began a TLS handshake") || line.contains("not valid HTTP/1.1")
        })
        .count();
    let failures = log
        .lines()
        .filter(|line| line.contains("502 Bad Gateway"))
        .count();
    assert!(
        (1..=usize::try_from(10 * (seconds + 3)).unwrap_or(usize::MAX)).contains(&failures),
        "{failures} failure lines for {CONNECTIONS} requests:\n{log}"
    );
    let bound = usize::try_from(10 * (seconds + 3)).unwrap_or(usize::MAX);
    assert!(
        (1..=bound).contains(&lines),
        "{lines} lines for {CONNECTIONS} connections in {seconds} s:\n{log}"
    );
    assert!(
        log.contains("more lines like it before this one were not logged"),
        "{log}"
    );
}

/// Zero threads or connections is refused with the option named (it would
/// serve nothing), and so are more than the system could start, timeouts of 0 or more than a day (as
/// `rca-proxy`'s; a timer that far off overflows the clock's arithmetic).
#[test]
fn numbers_out_of_range_are_refused() {
    let huge = u64::MAX.to_string();
    for (option, value) in [
        ("--threads", "0"),
        ("--max-connections", "0"),
        // More than the system could start: each panicked (found by an
        // outside attack).
        ("--threads", "100000"),
        ("--max-connections", "2305843009213693952"),
        ("--body-timeout-secs", huge.as_str()),
        ("--connect-timeout-secs", "0"),
        ("--response-timeout-secs", "86401"),
    ] {
        let output = std::process::Command::new(CONNECT)
            .args([option, value, "--cert", "bot.pem", "--key", "bot.key"])
            .output()
            .expect("rca-connect");
        assert!(!output.status.success(), "{option} {value}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains(option), "{error}");
    }
}

/// The openssl recipe of docs/bot-authors.md, run as written: its bot CA
/// in `rca-proxy`'s `bot_ca`, its bot certificate and key in
/// `rca-connect`, and the bot gets in on the flag path, with no warning.
#[test]
fn the_documented_openssl_recipe_makes_a_working_bot() {
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output();
    if !openssl.is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: no openssl to run the recipe with");
        return;
    }
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/bot-authors.md"
    ))
    .expect("docs/bot-authors.md");
    let after_marker = guide
        .split_once("<!-- recipe: bot-certificate")
        .expect("the recipe's marker")
        .1;
    let recipe = after_marker
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the recipe's sh block")
        .0;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let dir = files.path("recipe");
        std::fs::create_dir(&dir).expect("recipe dir");
        let ran = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", recipe])
            .current_dir(&dir)
            .output()
            .expect("bash");
        assert!(ran.status.success(), "{ran:?}");
        for name in ["bot.pem", "bot.key"] {
            std::fs::copy(dir.join(name), files.path(name)).expect("copy");
        }
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("recipe/bot-ca.pem", upstream);
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("https://localhost:{proxy_port}/recipe");
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.echoed("x-client-auth-path"),
            Some("flag"),
            "{answer:?}"
        );
        assert_eq!(
            answer.echoed("x-client-cert-subject"),
            Some("CN=crawler.example"),
            "{answer:?}"
        );
        let stderr = std::fs::read_to_string(files.path("connect.err")).expect("stderr");
        assert!(!stderr.contains("WARN"), "{stderr}");
    });
}

/// An outcome header named after one responses need (framing, redirects,
/// cookies) is refused at start, with the reason; a name of one's own runs.
#[test]
fn an_outcome_header_responses_need_is_refused() {
    for name in [
        "content-length",
        "Transfer_Encoding",
        "connection",
        "location",
        "set-cookie",
        "date",
    ] {
        let refused = std::process::Command::new(CONNECT)
            .args(["--outcome-header", name, "--help"])
            .output()
            .expect("rca-connect");
        assert_eq!(refused.status.code(), Some(2), "{name}: {refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("responses need for themselves"),
            "{name}: {said}"
        );
    }
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let (_connect, _port) = files.start_connect(&["--outcome-header", "x-bot-outcome"]);
}

/// A bot key or local CA key other users can read is warned of at start,
/// naming the file and the fix.
#[test]
fn keys_others_can_read_are_warned_of() {
    use std::os::unix::fs::PermissionsExt as _;
    let pki = TestPki::shared();
    let files = Files::new(pki);
    std::fs::set_permissions(
        files.path("bot.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    {
        // The local CA's key is made on the first start, with mode 0600:
        // no warning.
        let _connect = files.start_connect(&[]);
    }
    let warnings = || std::fs::read_to_string(files.path("connect.err")).expect("stderr");
    assert!(
        !warnings().contains("can be read by every user"),
        "{}",
        warnings()
    );
    for key in ["bot.key", "state/ca.key"] {
        std::fs::set_permissions(files.path(key), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let _connect = files.start_connect(&[]);
    let text = warnings();
    for key in ["bot.key", "state/ca.key"] {
        let path = files.path(key).display().to_string();
        assert!(
            text.contains(&format!("{path} can be read by every user"))
                && text.contains(&format!("chmod 600 {path}")),
            "{key}: {text}"
        );
    }
}

/// `rca-connect ca` gives its recipes for the `--listen` address given
/// (before or after `ca`), and a local CA certificate without its key is
/// refused wherever the option stands.
#[test]
fn the_ca_subcommand_takes_the_options_as_given() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let state = files.path("state").display().to_string();
    for args in [
        ["ca", "--listen", "127.0.0.1:9911", "--state-dir", &state],
        ["--listen", "127.0.0.1:9911", "ca", "--state-dir", &state],
    ] {
        let output = std::process::Command::new(CONNECT)
            .args(args)
            .output()
            .expect("rca-connect ca");
        assert!(output.status.success(), "{args:?}: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("curl --proxy http://127.0.0.1:9911 "),
            "{args:?}: {text}"
        );
        assert!(!text.contains("8118"), "{args:?}: {text}");
    }
    for args in [
        ["--local-ca-cert", "ca.pem", "ca", "--state-dir", &state],
        ["ca", "--local-ca-cert", "ca.pem", "--state-dir", &state],
    ] {
        let output = std::process::Command::new(CONNECT)
            .args(args)
            .output()
            .expect("rca-connect ca");
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("--local-ca-key"), "{args:?}: {error}");
    }
}

/// Mistakes on the command line are named with what to write instead, not
/// left to the operating system's words or to a failure at each client.
#[test]
fn command_line_mistakes_say_what_to_write() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let path = |name: &str| files.path(name).display().to_string();
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let route = format!("{listen}=https://localhost");
    // A route to itself, and URLs that were taken and failed later (found
    // by an outside attack: the first took every connection slot).
    let looped_port = support::free_port();
    let looped = format!("127.0.0.1:{looped_port}=http://localhost:{looped_port}");
    let queried = format!("127.0.0.1:{}=https://localhost?x=1", support::free_port());
    let hostless = format!("127.0.0.1:{}=https://:443", support::free_port());
    let overflowing = format!("127.0.0.1:{}=https://localhost:65536", support::free_port());
    let cases: [(Vec<&str>, &str); 9] = [
        (vec!["--route", &looped], "points at rca-connect's own"),
        (
            vec!["--route", &overflowing],
            "the port must be from 1 to 65535",
        ),
        (vec!["--route", &queried], "without a query or fragment"),
        (vec!["--route", &hostless], "has no host"),
        (
            vec!["--listen", "localhost:8118"],
            "is not an IP address and a port",
        ),
        (
            vec!["--metrics-listen", "localhost:9090"],
            "such as 127.0.0.1:8118",
        ),
        (
            vec!["--listen", &listen, "--route", &route],
            "as --listen does",
        ),
        (vec!["--identity-host", "bücher.example"], "xn--"),
        (
            vec!["--local-ca-cert", "leaf.pem", "--local-ca-key", "leaf.key"],
            "not a CA certificate",
        ),
    ];
    // A leaf that says CA:FALSE, as a bot's certificate may.
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let mut leaf = rcgen::CertificateParams::new(vec!["leaf.example".to_owned()]).expect("params");
    leaf.is_ca = rcgen::IsCa::ExplicitNoCa;
    let leaf = leaf.self_signed(&leaf_key).expect("leaf");
    files.write("leaf.pem", &leaf.pem());
    files.write("leaf.key", &leaf_key.serialize_pem());
    let unused = format!("127.0.0.1:{}", support::free_port());
    for (extra, said) in cases {
        let mut command = std::process::Command::new(CONNECT);
        command
            .args(["--cert", &path("bot.pem"), "--key", &path("bot.key")])
            .args(["--roots", "none", "--ca", &path("server-ca.pem")])
            .args(["--state-dir", &path("state-mistakes")])
            .args(&extra)
            .current_dir(files.path(""));
        if !extra.contains(&"--listen") {
            command.args(["--listen", &unused]);
        }
        let output = output_within(command, std::time::Duration::from_secs(20));
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {output:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains(said), "{extra:?}: {error}");
    }
    // A state directory every user may write to is warned of.
    let open_dir = files.path("state-open");
    std::fs::create_dir(&open_dir).expect("state-open");
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let output = std::process::Command::new(CONNECT)
        .args(["ca", "--state-dir", &open_dir.display().to_string()])
        .output()
        .expect("rca-connect ca");
    assert!(output.status.success(), "{output:?}");
    let warned = String::from_utf8_lossy(&output.stderr);
    assert!(warned.contains("can be written by every user"), "{warned}");
    assert!(warned.contains("chmod go-w"), "{warned}");
}

/// What `command` printed and how it ended; killed if it still runs after
/// `limit` (a mistake it should have refused would otherwise hang the test).
fn output_within(
    mut command: std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

/// A CONNECT target that does not parse (a host name not in ASCII) gets
/// hyper's 400, and the log says why, at the default level.
#[test]
fn an_unparsable_connect_target_is_logged() {
    use std::io::{Read as _, Write as _};
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let (_connect, port) = files.start_connect(&[]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all("CONNECT bücher.example:443 HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes())
        .expect("send");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let log = files.wait_for_diagnostics(
        "400, the request was not valid HTTP/1.1",
        std::time::Duration::from_secs(5),
    );
    assert!(log.contains("xn--"), "{log}");
}

/// `rca-connect ca` reads only the certificate of a CA that exists: a user
/// who may read `ca.pem` but not `ca.key` (the packaged service's group) is
/// told how to trust it, and nothing is made.
#[test]
fn the_ca_subcommand_needs_only_the_certificate() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let state = files.path("state-cert-only");
    let _ = std::fs::remove_dir_all(&state);
    let state_arg = state.display().to_string();
    let made = std::process::Command::new(CONNECT)
        .args(["ca", "--state-dir", &state_arg])
        .output()
        .expect("rca-connect ca");
    assert!(made.status.success(), "{made:?}");
    // The key out of reach; the certificate stays.
    std::fs::remove_file(state.join("ca.key")).expect("ca.key made");
    let output = std::process::Command::new(CONNECT)
        .args(["ca", "--state-dir", &state_arg])
        .output()
        .expect("rca-connect ca");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("--cacert {}", state.join("ca.pem").display())),
        "{text}"
    );
    assert!(!state.join("ca.key").exists(), "a key was made again");
    // Missing, not merely unreadable: the service could not start with it.
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("ca.key is missing"), "{said}");
    // A CA about to expire is warned of, as when the whole CA is loaded.
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let key = rcgen::KeyPair::generate().expect("key");
    let expiring = params.self_signed(&key).expect("certificate");
    std::fs::write(state.join("ca.pem"), expiring.pem()).expect("ca.pem");
    let warned = std::process::Command::new(CONNECT)
        .args(["ca", "--state-dir", &state_arg])
        .output()
        .expect("rca-connect ca");
    assert!(warned.status.success(), "{warned:?}");
    let said = String::from_utf8_lossy(&warned.stderr);
    assert!(said.contains("expires on"), "{said}");
    // A certificate file that holds none is said to.
    std::fs::write(state.join("ca.pem"), "not a certificate\n").expect("ca.pem");
    let broken = std::process::Command::new(CONNECT)
        .args(["ca", "--state-dir", &state_arg])
        .output()
        .expect("rca-connect ca");
    assert_eq!(broken.status.code(), Some(2), "{broken:?}");
    let error = String::from_utf8_lossy(&broken.stderr);
    assert!(error.contains("ca.pem"), "{error}");
}

/// A client that speaks TLS to the plain-HTTP proxy port (`HTTPS_PROXY=
/// https://...`) is closed, and the log says what to give it instead.
#[test]
fn a_client_speaking_tls_to_the_proxy_port_is_told_in_the_log() {
    use std::io::{Read as _, Write as _};
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let (_connect, port) = files.start_connect(&[]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    // The start of a TLS ClientHello record.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])
        .expect("write");
    // Closed without an answer (a reset, as the bytes were left unread).
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    let expected = format!("give the client http://127.0.0.1:{port}, not https://");
    files.wait_for_diagnostics(&expected, std::time::Duration::from_secs(5));
}

/// A plain `http://` URL for a port that speaks TLS gets a 502 that says
/// to use `https://`.
#[test]
fn a_plain_url_for_a_tls_port_says_to_use_https() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"http/1.1"])).await;
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("http://localhost:{}/", server.port());
        let answer = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(answer.status, 502, "{answer:?}");
        assert!(
            answer
                .body
                .contains("if it speaks TLS on that port, use an https:// URL"),
            "{answer:?}"
        );
    });
}

/// An `--identity-host` that could never match a host (so the identity
/// would go nowhere without a word) stops the start, naming the option.
#[test]
fn identity_hosts_that_match_nothing_are_refused() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    for pattern in ["*", "localhost:8443", "https://localhost", "localhost "] {
        let output = std::process::Command::new(CONNECT)
            .args(["--cert", &files.path("bot.pem").display().to_string()])
            .args(["--key", &files.path("bot.key").display().to_string()])
            .args(["--state-dir", &files.path("state").display().to_string()])
            .args(["--listen", "127.0.0.1:0", "--identity-host", pattern])
            .output()
            .expect("rca-connect");
        assert_eq!(output.status.code(), Some(2), "{pattern:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(
            error.contains(&format!("--identity-host: {pattern:?} is not a host name")),
            "{error}"
        );
    }
}

/// The installed clients' directory, or `None` after saying why the test is
/// skipped.
fn installed_clients() -> Option<std::path::PathBuf> {
    clients_dir()
        .inspect_err(|why| eprintln!("skipped: {why}"))
        .ok()
}

/// Python's WebSocket server behind `rca-proxy`, and `rca-connect` (with
/// `extra`) routing `127.0.0.1:route` to the proxy; the processes end with
/// it.
struct WebSocketSetup {
    dir: std::path::PathBuf,
    files: Files,
    proxy_port: u16,
    route: u16,
    /// `rca-connect`'s proxy port.
    port: u16,
    processes: [support::Process; 3],
}

impl WebSocketSetup {
    /// `None` (skipped) without the installed clients.
    fn start(extra: &[&str]) -> Option<Self> {
        Self::start_in(Files::new(TestPki::shared()), extra)
    }

    /// As [`WebSocketSetup::start`], in `files` (which may hold files that
    /// `extra` names).
    fn start_in(files: Files, extra: &[&str]) -> Option<Self> {
        let dir = installed_clients()?;
        let (server_process, server) = support::websocket_server(&dir);
        let (proxy, proxy_port) = files.start_proxy("bot-ca.pem", server);
        let (connect, port, route) = files.start_routed(proxy_port, extra);
        Some(Self {
            dir,
            files,
            proxy_port,
            route,
            port,
            processes: [connect, proxy, server_process],
        })
    }
}

/// A pooled HTTP/2 connection to a server that goes silent (a middlebox
/// dropped it: no reset) is pinged, found dead and closed, so the next
/// request gets a new connection instead of waiting on the dead one until
/// the response timeout (60 s) and a 504. Takes the ping interval and its
/// timeout (20 s each).
#[test]
fn a_silent_pooled_connection_is_replaced() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2", b"http/1.1"])).await;
        let relay = support::TcpRelay::start(server).await;
        let (_connect, port) = files.start_connect(&[]);
        let url = format!("https://localhost:{}/pooled", relay.port);
        let first = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(first.status, 200, "{first:?}");
        assert!(first
            .header(OUTCOME)
            .is_some_and(|outcome| outcome.contains("alpn=h2")));
        relay.silence();
        tokio::time::sleep(std::time::Duration::from_secs(42)).await;
        let second = tokio::task::block_in_place(|| Client::CurlHttp1.fetch(&files, port, &url, 0));
        assert_eq!(second.status, 200, "{second:?}");
    });
}

/// Raw requests on one connection to the proxy port (the last with
/// `Connection: close`), and everything answered until it closes.
fn raw_proxy_answer(port: u16, requests: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(requests.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// One raw request on the proxy port, and the answer's head.
fn raw_proxy_head(port: u16, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 4096];
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        match tcp.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// `--proxy-auth-file`: every real client gets in with `user:password@` in
/// its proxy URL, and the server never sees the credentials; a `CONNECT`
/// or absolute-form request without them, or with wrong ones, gets 407
/// with a `Proxy-Authenticate` challenge, a log line that names the user
/// and not the password, and a count (the metrics pass `promtool check
/// metrics` where it is installed); SIGHUP reads the file again.
#[test]
fn proxy_credentials_guard_the_proxy_port() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let auth = files.proxy_auth_file("proxy-auth", "# the bot's clients\ncrawler:s3cret\n");
        let metrics = support::free_port();
        let (connect, port) = files.start_connect(&[
            "--proxy-auth-file",
            &auth,
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ]);
        let url = format!("https://localhost:{proxy_port}/hello");
        let with_credentials = format!("http://crawler:s3cret@127.0.0.1:{port}");
        for client in clients() {
            let answer = tokio::task::block_in_place(|| {
                client.fetch_through(&files, &with_credentials, &url, 0)
            });
            assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
            assert_eq!(
                answer.echoed("x-client-auth-path"),
                Some("flag"),
                "{client:?}"
            );
            assert_eq!(
                answer.echoed("proxy-authorization"),
                None,
                "{client:?}: {answer:?}"
            );
        }

        // No credentials: a CONNECT and an absolute-form request.
        let refused = raw_proxy_head(
            port,
            &format!(
                "CONNECT localhost:{proxy_port} HTTP/1.1\r\nHost: localhost:{proxy_port}\r\n\r\n"
            ),
        );
        assert!(refused.starts_with("HTTP/1.1 407"), "{refused}");
        assert!(
            refused
                .to_ascii_lowercase()
                .contains("proxy-authenticate: basic realm=\"rca-connect\""),
            "{refused}"
        );
        let refused = raw_proxy_head(
            port,
            &format!("GET http://{upstream}/hello HTTP/1.1\r\nHost: {upstream}\r\n\r\n"),
        );
        assert!(refused.starts_with("HTTP/1.1 407"), "{refused}");
        // Wrong credentials, from curl: the tunnel is refused.
        let wrong = format!("http://crawler:not-it@127.0.0.1:{port}");
        let curl = |proxy: &str| {
            std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_connect}",
                ])
                .args(["--proxy", proxy, "--cacert"])
                .arg(files.local_ca())
                .arg(&url)
                .output()
                .expect("curl")
        };
        let output = tokio::task::block_in_place(|| curl(&wrong));
        assert!(!output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "407", "{output:?}");
        let log = files.wait_for_diagnostics(
            "wrong password for user \"crawler\"",
            std::time::Duration::from_secs(5),
        );
        assert!(log.contains("407 for CONNECT"), "{log}");
        assert!(log.contains("no proxy credentials"), "{log}");
        assert!(!log.contains("not-it"), "the password is not logged: {log}");
        let text = support::http_get(&format!("http://127.0.0.1:{metrics}/metrics"));
        assert!(
            text.contains("rca_connect_proxy_auth_refusals_total 3"),
            "{text}"
        );
        // As Prometheus's own checker reads it (its parser and its lint of
        // the naming conventions), where promtool is installed.
        let checked =
            tokio::task::block_in_place(|| integration_tests::local::promtool_check_metrics(&text));
        if let Some(checked) = checked {
            assert!(
                checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
                "promtool check metrics: {checked:?}\n{text}"
            );
        }

        // SIGHUP reads the file again: the old password is refused.
        files.write("proxy-auth", "crawler:n3w\nsecond:pw\n");
        files.hang_up(&connect, "2 proxy credentials");
        let output = tokio::task::block_in_place(|| curl(&with_credentials));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "407", "{output:?}");
        let renewed = format!("http://second:pw@127.0.0.1:{port}");
        let answer = tokio::task::block_in_place(|| {
            Client::CurlHttp2.fetch_through(&files, &renewed, &url, 0)
        });
        assert_eq!(answer.status, 200, "{answer:?}");
    });
}

/// With `--proxy-auth-file`, each request on a connection is judged (a 407,
/// then an absolute-form request with credentials, whose server never sees
/// them), and a tunnel opened with a credential that a reload removes gets
/// 403 for its next request.
#[test]
fn each_request_is_judged_and_a_removed_credential_ends_its_tunnel() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let (_proxy, proxy_port) = files.start_proxy("bot-ca.pem", upstream);
        let auth = files.proxy_auth_file("proxy-auth-tunnel", "crawler:s3cret\n");
        let (connect, port) =
            files.start_connect(&["--proxy-auth-file", &auth]);
        // On one connection each request is judged: a 407, then an
        // absolute-form request with credentials, whose server never sees
        // them.
        let basic = support::proxy_authorization("crawler:s3cret");
        let both = raw_proxy_answer(
            port,
            &format!(
                "GET http://{upstream}/hello HTTP/1.1\r\nHost: {upstream}\r\n\r\n\
                 GET http://{upstream}/hello HTTP/1.1\r\nHost: {upstream}\r\n{basic}Connection: close\r\n\r\n"
            ),
        );
        let second = both.find("HTTP/1.1 200").unwrap_or_else(|| panic!("{both}"));
        assert!(both.starts_with("HTTP/1.1 407"), "{both}");
        assert!(!both[second..].to_ascii_lowercase().contains("proxy-authorization"), "{both}");
        // A tunnel opened with credentials a reload then removes: its next
        // request is refused.
        let authority = format!("localhost:{proxy_port}");
        let (mut tunnel, _connection) =
            support::h2_tunnel_with(&files, port, &authority, &basic).await;
        let request = || {
            http::Request::get(format!("https://{authority}/hello"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("request")
        };
        let before = tunnel.send_request(request()).await.expect("answer");
        assert_eq!(before.status(), 200);

        files.write("proxy-auth-tunnel", "second:pw\n");
        files.hang_up(&connect, "1 proxy credentials");
        let after = tunnel.send_request(request()).await.expect("answer");
        assert_eq!(after.status(), 403);
        files.wait_for_diagnostics(
            "a tunnel's proxy credentials are no longer in --proxy-auth-file",
            std::time::Duration::from_secs(5),
        );
    });
}

/// Each `--proxy-auth-file` user has a pool of upstream connections of its
/// own: a user's request never goes out on a connection that carried
/// another's (where a server that answered one request twice would hand
/// the other user the extra answer), over HTTP/1.1 and HTTP/2 alike; a
/// user's own requests still share one. A reload that removes a user
/// leaves the others' pools as they were, and drops the removed user's.
#[test]
fn each_proxy_user_has_upstream_connections_of_its_own() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let auth = files.proxy_auth_file("proxy-auth-pools", "alice:one\nbob:two\n");
        let (connect, port) = files.start_connect(&["--proxy-auth-file", &auth]);
        let alice = format!("http://alice:one@127.0.0.1:{port}");
        let bob = format!("http://bob:two@127.0.0.1:{port}");
        let mut servers = Vec::new();
        for alpn in [&b"http/1.1"[..], b"h2"] {
            servers.push(support::first_on_connection_server(plain_tls(pki, &[alpn])).await);
        }
        let first_on_connection = |server: std::net::SocketAddr, proxy: &str, path: &str| {
            let url = format!("https://localhost:{}{path}", server.port());
            let answer = tokio::task::block_in_place(|| {
                Client::CurlHttp1.fetch_through(&files, proxy, &url, 0)
            });
            assert_eq!(answer.status, 200, "{answer:?}");
            answer.body
        };
        for &server in &servers {
            for (proxy, path, first) in [
                (&alice, "/alice-1", "/alice-1"),
                (&alice, "/alice-2", "/alice-1"),
                (&bob, "/bob-1", "/bob-1"),
                (&alice, "/alice-3", "/alice-1"),
                (&bob, "/bob-2", "/bob-1"),
            ] {
                assert_eq!(first_on_connection(server, proxy, path), first, "{server}");
            }
        }
        files.write("proxy-auth-pools", "bob:two\n");
        files.hang_up(&connect, "1 proxy credentials");
        for &server in &servers {
            assert_eq!(
                first_on_connection(server, &bob, "/bob-3"),
                "/bob-1",
                "{server}"
            );
        }
        // Put back, a user starts on new connections: its pool went with it.
        files.write("proxy-auth-pools", "bob:two\nalice:one\n");
        files.hang_up(&connect, "2 proxy credentials");
        for &server in &servers {
            assert_eq!(
                first_on_connection(server, &alice, "/alice-4"),
                "/alice-4",
                "{server}"
            );
        }
    });
}

/// A reload removes a proxy credential even when the rest of it is refused
/// (here the bot's key, mid-rotation, does not match its certificate), and
/// a file left with no credential admits no one: the credentials fail
/// closed. Before, both kept every running credential.
#[test]
fn a_removed_credential_is_refused_whatever_else_the_reload_finds() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = plain_server().await;
        let auth = files.proxy_auth_file("proxy-auth-closed", "crawler:s3cret\nother:pw\n");
        let (connect, port) = files.start_connect(&["--proxy-auth-file", &auth]);
        let status = |credential: &str| {
            let basic = support::proxy_authorization(credential);
            let answer = raw_proxy_answer(
                port,
                &format!(
                    "GET http://{upstream}/hello HTTP/1.1\r\nHost: {upstream}\r\n\
                     {basic}Connection: close\r\n\r\n"
                ),
            );
            answer.get(..12).unwrap_or_default().to_owned()
        };
        assert_eq!(status("other:pw"), "HTTP/1.1 200");

        files.write("bot.key", &pki.server.key_pem);
        files.write("proxy-auth-closed", "crawler:s3cret\n");
        files.hang_up(&connect, "reload refused, keeping the running identity");
        files.wait_for_diagnostics(
            "reloaded 1 proxy credentials",
            std::time::Duration::from_secs(5),
        );
        assert_eq!(status("other:pw"), "HTTP/1.1 407");
        // The running identity is kept: the bot still gets through.
        assert_eq!(status("crawler:s3cret"), "HTTP/1.1 200");

        files.write("proxy-auth-closed", "# every credential removed\n");
        files.hang_up(&connect, "every request on the proxy port gets 407");
        assert_eq!(status("crawler:s3cret"), "HTTP/1.1 407");
    });
}

/// What is under way in a tunnel when a reload removes its credential is
/// cut off: an upload still being sent gets 403, a response still coming
/// ends in an error, and an upload the server answered before it ended
/// ends in an error at the server. Before, each ran on as the bot until it
/// ended of itself.
#[test]
fn a_removed_credential_cuts_off_what_is_under_way() {
    use bytes::Bytes;
    use http_body_util::channel::Channel;
    use http_body_util::BodyExt as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2", b"http/1.1"])).await;
        let auth = files.proxy_auth_file("proxy-auth-under-way", "crawler:s3cret\n");
        let (connect, port) = files.start_connect(&["--proxy-auth-file", &auth]);
        let basic = support::proxy_authorization("crawler:s3cret");
        let authority = format!("localhost:{}", server.port());
        let (mut tunnel, _connection) = support::h2_tunnel_with::<
            Channel<Bytes, std::convert::Infallible>,
        >(&files, port, &authority, &basic)
        .await;
        // A response that sends a part, then nothing for a minute.
        let (no_more, empty) = Channel::new(1);
        drop(no_more);
        let stalled = tunnel
            .send_request(
                http::Request::get(format!("https://{authority}/stall"))
                    .body(empty)
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(stalled.status(), 200);
        let mut stalled = stalled.into_body();
        let first = stalled.frame().await.expect("a frame").expect("data");
        assert_eq!(first.data_ref().map(Bytes::as_ref), Some(&b"partial;"[..]));
        // An upload whose end is never sent.
        let (mut more, upload) = Channel::new(1);
        more.send_data(Bytes::from_static(b"first part"))
            .await
            .expect("send");
        let uploading = tokio::spawn(
            tunnel.send_request(
                http::Request::post(format!("https://{authority}/upload"))
                    .body(upload)
                    .expect("request"),
            ),
        );
        // An upload the server answered at once and goes on reading.
        let (mut more_after, upload_after) = Channel::new(1);
        more_after
            .send_data(Bytes::from_static(b"first part"))
            .await
            .expect("send");
        let answered = tunnel
            .send_request(
                http::Request::post(format!("https://{authority}/answer-first"))
                    .body(upload_after)
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(answered.status(), 200);
        let answered = answered.into_body().collect().await.expect("body");
        assert_eq!(&answered.to_bytes()[..], b"answered");
        // Admitted and on its way before the reload.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;

        files.write("proxy-auth-under-way", "second:pw\n");
        files.hang_up(&connect, "1 proxy credentials");
        let within = std::time::Duration::from_secs(10);
        let uploaded = tokio::time::timeout(within, uploading)
            .await
            .expect("the upload cut off")
            .expect("task")
            .expect("answer");
        assert_eq!(uploaded.status(), 403);
        // Refused as under way, not as a request that came after.
        let text = uploaded
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("before the server answered"), "{text}");
        let rest = tokio::time::timeout(within, stalled.frame())
            .await
            .expect("the response cut off");
        assert!(matches!(rest, Some(Err(_))), "{rest:?}");
        // The upload the server had answered ends too, at the server.
        let ended = async {
            loop {
                let uploads = support::ANSWER_FIRST_UPLOADS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if let Some(ended) = uploads.first() {
                    return ended.clone();
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let ended = tokio::time::timeout(within, ended)
            .await
            .expect("the answered upload cut off");
        assert!(ended.starts_with("failed after 10 bytes"), "{ended}");
        files.wait_for_diagnostics(
            "a request's proxy credentials are no longer in --proxy-auth-file",
            std::time::Duration::from_secs(5),
        );
        drop((more, more_after));
    });
}

/// A credential removed and put back at once still ends what was admitted
/// with it before the removal: a response still coming, and the tunnel's
/// next request (403); new tunnels with it work. Before, a second reload
/// hid the first from what had not looked in between.
#[test]
fn a_credential_removed_and_put_back_still_ends_what_it_admitted() {
    use bytes::Bytes;
    use http_body_util::BodyExt as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let server = tls_server(plain_tls(pki, &[b"h2", b"http/1.1"])).await;
        let both = "crawler:s3cret\nother:pw\n";
        let auth = files.proxy_auth_file("proxy-auth-put-back", both);
        let (connect, port) = files.start_connect(&["--proxy-auth-file", &auth]);
        let basic = support::proxy_authorization("crawler:s3cret");
        let authority = format!("localhost:{}", server.port());
        let request = |path: &str| {
            http::Request::get(format!("https://{authority}{path}"))
                .body(http_body_util::Empty::<Bytes>::new())
                .expect("request")
        };
        let (mut tunnel, _connection) =
            support::h2_tunnel_with(&files, port, &authority, &basic).await;
        let stalled = tunnel
            .send_request(request("/stall"))
            .await
            .expect("answer");
        assert_eq!(stalled.status(), 200);
        let mut stalled = stalled.into_body();
        stalled.frame().await.expect("a frame").expect("data");

        files.write("proxy-auth-put-back", "other:pw\n");
        files.hang_up(&connect, "reloaded 1 proxy credentials");
        files.write("proxy-auth-put-back", both);
        files.hang_up(&connect, "reloaded 2 proxy credentials");
        let rest = tokio::time::timeout(std::time::Duration::from_secs(10), stalled.frame())
            .await
            .expect("the response cut off");
        assert!(matches!(rest, Some(Err(_))), "{rest:?}");
        let next = tunnel
            .send_request(request("/hello"))
            .await
            .expect("answer");
        assert_eq!(next.status(), 403);
        let (mut again, _again_connection) =
            support::h2_tunnel_with(&files, port, &authority, &basic).await;
        let fresh = again.send_request(request("/hello")).await.expect("answer");
        assert_eq!(fresh.status(), 200);
    });
}

/// A WebSocket opened in a tunnel with proxy credentials is closed when a
/// reload removes them: it carries no requests that could get the 403, and
/// it speaks as the bot. Before, it ran on until either end closed it.
#[test]
fn a_websocket_ends_when_its_proxy_credential_is_removed() {
    use std::io::BufRead as _;
    let files = Files::new(TestPki::shared());
    let auth = files.proxy_auth_file("proxy-auth-websocket", "crawler:s3cret\n");
    let Some(setup) = WebSocketSetup::start_in(files, &["--proxy-auth-file", &auth]) else {
        return;
    };
    let (dir, files) = (&setup.dir, &setup.files);
    let mut held = std::process::Command::new(dir.join("venv/bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect/websocket.py"))
        .args([
            "connect",
            &format!("wss://localhost:{}/chat", setup.proxy_port),
            "hello",
        ])
        .env(
            "HTTPS_PROXY",
            format!("http://crawler:s3cret@127.0.0.1:{}", setup.port),
        )
        .env("SSL_CERT_FILE", files.local_ca())
        .env("WS_HOLD_SECS", "30")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(support::Process)
        .expect("the WebSocket client");
    let mut lines = std::io::BufReader::new(held.0.stdout.take().expect("stdout")).lines();
    let mut next_line = || {
        lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the WebSocket client ended early"))
    };
    let opened = next_line();
    assert!(opened.contains("\"status\": 101"), "{opened}");
    files.write("proxy-auth-websocket", "second:pw\n");
    files.hang_up(&setup.processes[0], "1 proxy credentials");
    // Printed as soon as the server side closed it; `false` after 30 s.
    let closed = next_line();
    assert_eq!(closed, "{\"closed\": true}");
    files.wait_for_diagnostics(
        "a WebSocket's proxy credentials are no longer in --proxy-auth-file",
        std::time::Duration::from_secs(5),
    );
    assert!(held.0.wait().expect("the WebSocket client").success());
}

/// A WebSocket handshake the server has not answered when a reload removes
/// its proxy credential gets the 403 of any request not answered yet: the
/// server here reads the handshake and holds its answer until the end.
#[test]
fn a_websocket_handshake_not_answered_when_its_credential_goes_gets_403() {
    use tokio::io::AsyncReadExt as _;
    runtime().block_on(async {
        let files = Files::new(TestPki::shared());
        let auth = files.proxy_auth_file("proxy-auth-handshake", "crawler:s3cret\n");
        let (connect, port) = files.start_connect(&["--proxy-auth-file", &auth]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = listener.local_addr().expect("address");
        let (read, mut handshake_read) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        tokio::spawn(async move {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                match tcp.read_u8().await {
                    Ok(byte) => head.push(byte),
                    Err(_) => return,
                }
            }
            let _ = read.send(head).await;
            // Held, never answered, until the test ends.
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            drop(tcp);
        });
        let basic = support::proxy_authorization("crawler:s3cret");
        let request = format!(
            "GET http://{server}/chat HTTP/1.1\r\nHost: {server}\r\n{basic}\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let client = tokio::task::spawn_blocking(move || raw_proxy_head(port, &request));
        let head = tokio::time::timeout(std::time::Duration::from_secs(10), handshake_read.recv())
            .await
            .expect("the handshake reached the server")
            .expect("the handshake");
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.contains("upgrade: websocket"), "{head}");
        assert!(!head.contains("proxy-authorization"), "{head}");

        files.write("proxy-auth-handshake", "second:pw\n");
        files.hang_up(&connect, "1 proxy credentials");
        let answer = client.await.expect("the client");
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        files.wait_for_diagnostics(
            "a request's proxy credentials are no longer in --proxy-auth-file",
            std::time::Duration::from_secs(5),
        );
    });
}

/// With `--proxy-auth-file`, routes still take no credentials: said at
/// start. A file that is not `user:password` lines is refused at start,
/// with its line.
#[test]
fn proxy_credentials_are_checked_at_start() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let auth = files.proxy_auth_file("proxy-auth-routes", "crawler:s3cret\n");
    let (_connect, _port, _route) = files.start_routed(443, &["--proxy-auth-file", &auth]);
    files.wait_for_diagnostics(
        "--proxy-auth-file covers the proxy port only",
        std::time::Duration::from_secs(5),
    );
    let bad = files.write("proxy-auth-bad", "crawler:s3cret\njust-a-password\n");
    let mut command = std::process::Command::new(CONNECT);
    command
        .args(["--cert", &files.path("bot.pem").display().to_string()])
        .args(["--key", &files.path("bot.key").display().to_string()])
        .args(["--state-dir", &files.path("state").display().to_string()])
        .args(["--listen", "127.0.0.1:0", "--proxy-auth-file"])
        .arg(&bad);
    let output = output_within(command, std::time::Duration::from_secs(20));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2: expected user:password"),
        "{stderr}"
    );
}
