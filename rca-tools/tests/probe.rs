//! `rca-probe` as a real process against servers that behave differently:
//! the proxy (honours the flag), a server that never asks for a certificate,
//! one that asks everyone, one that asks on the flag without acknowledging it
//! (Cloudflare's 2023 behaviour on 0xFE01, played by the scripted hooks), and
//! one that acknowledges a flag nobody sent. Each gets its verdict and exit code.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;

use integration_tests::config;
use integration_tests::local::{free_port, runtime, wait_for_port, PemFiles};
use integration_tests::scripted::{ext, ServerScript};
use integration_tests::{Provider, TestPki};
use rustls::hooks::HandshakeMessage;
use rustls::ServerConfig;
use rustls_req_client_auth::Acceptor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PROBE: &str = env!("CARGO_BIN_EXE_rca-probe");
const PROXY: &str = env!("CARGO_BIN_EXE_rca-proxy");

/// Serves `config` on loopback: each connection gets one HTTP/1.1 200.
async fn serve(config: ServerConfig) -> SocketAddr {
    serve_answering(config, |_| OK).await
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Serves `config` on loopback: each connection gets one answer, the one
/// `answer` gives for it.
async fn serve_answering(
    config: ServerConfig,
    answer: fn(&rustls::ServerConnection) -> &'static [u8],
) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let acceptor = Acceptor::new(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok((mut tls, _)) = acceptor.accept(tcp).await {
                    let mut request = [0; 1024];
                    let _ = tls.read(&mut request).await;
                    let _ = tls.write_all(answer(tls.get_ref().1)).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    address
}

struct Probed {
    code: Option<i32>,
    json: serde_json::Value,
    text: String,
}

impl Probed {
    /// Asserts that the text report says `needle`, showing it if not.
    fn assert_says(&self, needle: &str) {
        assert!(self.text.contains(needle), "{}", self.text);
    }
}

/// Runs the probe (JSON) against `port`, trusting the test server CA.
async fn probe(pki: &TestPki, port: u16, extra: &[&str]) -> Probed {
    let files = PemFiles::new(pki);
    let (ca, bot, key) = (
        files.path("server-ca.pem"),
        files.path("bot.pem"),
        files.path("bot.key"),
    );
    let mut args: Vec<String> = vec![
        format!("https://localhost:{port}/"),
        "--ca".into(),
        ca.display().to_string(),
        "--json".into(),
    ];
    for arg in extra {
        args.push(match *arg {
            "BOT_CERT" => bot.display().to_string(),
            "BOT_KEY" => key.display().to_string(),
            other => other.to_owned(),
        });
    }
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new(PROBE)
            .args(&args)
            .output()
            .expect("run rca-probe");
        drop(files);
        out
    })
    .await
    .expect("probe task");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Probed {
        code: out.status.code(),
        json,
        text,
    }
}

/// `rca-proxy` as a real process on a free port, letting in bots of the CA
/// in `bot_ca_pem`; killed on drop.
struct RunningProxy {
    child: std::process::Child,
    port: u16,
    _files: PemFiles,
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_proxy(pki: &TestPki, bot_ca_pem: &str) -> RunningProxy {
    let files = PemFiles::new(pki);
    let port = free_port();
    let upstream = serve_plain_http().await;
    let config = files.write(
        "proxy.toml",
        &format!(
            "listen = \"127.0.0.1:{port}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nbot_ca = \"{}\"\n[upstream]\nurl = \"http://{upstream}\"\n",
            files.path("server.pem").display(),
            files.path("server.key").display(),
            files.write("bot-ca.pem", bot_ca_pem).display(),
        ),
    );
    let child = Command::new(PROXY)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rca-proxy");
    wait_for_port(port, "rca-proxy");
    RunningProxy {
        child,
        port,
        _files: files,
    }
}

#[test]
fn the_proxy_honours_the_flag() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let proxy = start_proxy(pki, &pki.bot_ca.cert_pem).await;
        let port = proxy.port;

        let probed = probe(
            pki,
            port,
            &[
                "--code-point",
                "62",
                "--cert",
                "BOT_CERT",
                "--key",
                "BOT_KEY",
            ],
        )
        .await;
        drop(proxy);
        assert_eq!(probed.code, Some(0), "{}", probed.text);
        let report = &probed.json["code_points"][0];
        assert_eq!(probed.json["verdict"], "honours", "{}", probed.text);
        assert_eq!(
            report["without_flag"]["certificate_request"], false,
            "{}",
            probed.text
        );
        assert_eq!(report["with_flag"]["certificate_request"], true);
        assert_eq!(report["with_flag"]["acknowledged"], true);
        assert_eq!(report["with_flag"]["sent"], "sent the flag identity");
        assert_eq!(
            report["with_flag"]["ca_names"][0],
            "CN=test bot CA (flag path)"
        );
        assert_eq!(report["with_flag"]["alpn"], "h2");
        assert_eq!(
            report["with_flag"]["http_status"],
            "HTTP/2 SETTINGS received"
        );
        assert_eq!(report["second"]["resumed"], true, "{}", probed.text);
        assert_eq!(report["second"]["certificate_request"], false);
        assert_eq!(report["with_flag"]["identity_accepted"], true);
    });
}

/// A server that asks every client for a certificate of its own CAs, over
/// `versions`, the answer optional or `mandatory`.
fn asking_server(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    mandatory: bool,
) -> ServerConfig {
    let provider = Provider::AwsLcRs;
    ServerConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(versions)
        .expect("versions")
        .with_client_cert_verifier(config::verifier(&pki.normal_ca, provider, mandatory))
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity")
}

/// TLS 1.2 (nginx 1.22's default with `ssl_verify_client optional`): the
/// probe sees the CertificateRequest there too (it said "no
/// CertificateRequest"), keeps the bot's identity to itself (the request does
/// not acknowledge the flag), and says that the flag needs TLS 1.3.
#[test]
fn a_tls12_server_that_asks_everyone_is_seen_asking() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let address = serve(asking_server(pki, &[&rustls::version::TLS12], false)).await;
        let probed = probe(
            pki,
            address.port(),
            &[
                "--code-point",
                "62",
                "--cert",
                "BOT_CERT",
                "--key",
                "BOT_KEY",
            ],
        )
        .await;
        assert_eq!(probed.code, Some(1), "{}", probed.text);
        let report = &probed.json["code_points"][0];
        for connection in ["without_flag", "with_flag"] {
            assert_eq!(report[connection]["version"], "TLSv1_2", "{}", probed.text);
            assert_eq!(
                report[connection]["certificate_request"], true,
                "{}",
                probed.text
            );
            assert_eq!(report[connection]["acknowledged"], false);
            assert_eq!(report[connection]["sent"], "sent an empty Certificate");
        }
        for finding in [
            "browsers would see a certificate picker",
            "negotiated TLS 1.2, where the flag does nothing (RCA-12)",
        ] {
            assert!(probed.text.contains(finding), "{finding}: {}", probed.text);
        }
    });
}

/// A server that demands a certificate of everyone (ordinary mutual TLS),
/// in TLS 1.3 and in TLS 1.2: said so, not "could not connect".
#[test]
fn a_server_that_demands_a_certificate_is_said_to() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
            let address = serve(asking_server(pki, versions, true)).await;
            let probed = probe(pki, address.port(), &["--code-point", "62"]).await;
            assert_eq!(probed.code, Some(1), "{}", probed.text);
            let report = &probed.json["code_points"][0];
            assert_eq!(
                report["without_flag"]["certificate_required"], true,
                "{}",
                probed.text
            );
            probed.assert_says("demands a certificate of every client (ordinary mutual TLS)");
        }
    });
}

/// A server that asks every client for a certificate and, as nginx with
/// `ssl_verify_client on` does in TLS 1.3, completes the handshake without
/// one and answers its request with 400: the probe says it likely demands a
/// certificate of everyone.
#[test]
fn a_server_that_answers_400_without_a_certificate_is_said_to_demand_one() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let address =
            serve_refusing_anonymous(asking_server(pki, &[&rustls::version::TLS13], false)).await;
        let probed = probe(pki, address.port(), &["--code-point", "62"]).await;
        let report = &probed.json["code_points"][0];
        assert_eq!(
            report["without_flag"]["http_status"], "HTTP/1.1 400 Bad Request",
            "{}",
            probed.text
        );
        probed.assert_says("it likely demands a certificate of every client in HTTP");
    });
}

/// Serves `config` on loopback as nginx's `ssl_verify_client on` does: a
/// 400 to a client that sent no certificate, a 200 to one that did.
async fn serve_refusing_anonymous(config: ServerConfig) -> SocketAddr {
    serve_answering(config, |connection| {
        if connection.peer_certificates().is_some() {
            OK
        } else {
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 38\r\nconnection: close\r\n\r\nNo required SSL certificate was sent\r\n"
        }
    })
    .await
}

/// A port that answers in plain HTTP: the probe says TLS is not spoken
/// there (it said "received corrupt message of type `InvalidContentType`").
#[test]
fn a_plain_http_port_is_said_to_speak_no_tls() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let upstream = serve_plain_http().await;
        let probed = probe(pki, upstream.port(), &["--code-point", "62"]).await;
        assert_eq!(probed.code, Some(4), "{}", probed.text);
        let error = probed.json["code_points"][0]["with_flag"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("the peer does not speak TLS here (plain HTTP on this port?)"),
            "{error}"
        );
    });
}

/// A bot whose CA the proxy does not trust: the proxy honours the flag but
/// refuses the identity, which is its own verdict and exit code (before, the
/// probe said "honours" and exited 0).
#[test]
fn a_refused_identity_is_its_own_verdict() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let proxy = start_proxy(pki, &pki.normal_ca.cert_pem).await;
        let probed = probe(
            pki,
            proxy.port,
            &[
                "--code-point",
                "62",
                "--cert",
                "BOT_CERT",
                "--key",
                "BOT_KEY",
            ],
        )
        .await;
        drop(proxy);
        assert_eq!(probed.code, Some(5), "{}", probed.text);
        assert_eq!(
            probed.json["verdict"], "identity_refused",
            "{}",
            probed.text
        );
        let with_flag = &probed.json["code_points"][0]["with_flag"];
        assert_eq!(with_flag["acknowledged"], true, "{}", probed.text);
        assert_eq!(with_flag["sent"], "sent the flag identity");
        assert_eq!(with_flag["identity_refused"], true, "{}", probed.text);
        // Without an identity, the same server is only "honours".
        let proxy = start_proxy(pki, &pki.normal_ca.cert_pem).await;
        let probed = probe(pki, proxy.port, &["--code-point", "62"]).await;
        drop(proxy);
        assert_eq!(probed.json["verdict"], "honours", "{}", probed.text);
        assert_eq!(probed.code, Some(0));
    });
}

/// A plain HTTP upstream for the proxy.
async fn serve_plain_http() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0; 4096];
                let _ = tcp.read(&mut request).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    address
}

#[test]
fn a_server_that_never_asks_does_not_support_it() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let address = serve(config::server(pki, Provider::AwsLcRs)).await;
        let probed = probe(pki, address.port(), &[]).await;
        assert_eq!(probed.code, Some(1), "{}", probed.text);
        assert_eq!(probed.json["verdict"], "not_supported");
        for report in probed.json["code_points"].as_array().expect("code points") {
            assert_eq!(
                report["with_flag"]["certificate_request"], false,
                "{}",
                probed.text
            );
        }
    });
}

/// The extension types a ClientHello in `record` (one TLS record) offers;
/// empty for anything else.
fn client_hello_extensions(record: &[u8]) -> Vec<u16> {
    let read = || -> Option<Vec<u16>> {
        // Record header (5), handshake header (4), version (2), random (32).
        let mut at = 5 + 4 + 2 + 32;
        let session_id = usize::from(*record.get(at)?);
        at += 1 + session_id;
        let suites = usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
        at += 2 + suites;
        let compression = usize::from(*record.get(at)?);
        at += 1 + compression + 2;
        let mut types = Vec::new();
        while at + 4 <= record.len() {
            types.push(u16::from_be_bytes([record[at], record[at + 1]]));
            at += 4 + usize::from(u16::from_be_bytes([record[at + 2], record[at + 3]]));
        }
        Some(types)
    };
    read().unwrap_or_default()
}

/// A middlebox in front of `server`: it reads each ClientHello and closes
/// the connection when it offers extension `dropped`, as filters that know
/// only the extensions they were written for do; the rest it relays.
async fn dropping_middlebox(server: SocketAddr, dropped: u16) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut header = [0; 5];
                if client.read_exact(&mut header).await.is_err() {
                    return;
                }
                let mut record = header.to_vec();
                record.resize(
                    5 + usize::from(u16::from_be_bytes([header[3], header[4]])),
                    0,
                );
                if client.read_exact(&mut record[5..]).await.is_err() {
                    return;
                }
                if client_hello_extensions(&record).contains(&dropped) {
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await else {
                    return;
                };
                if upstream.write_all(&record).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    address
}

/// A path that closes on every flagged ClientHello (a server that does not
/// ignore the unknown extension) misbehaves: bots setting the flag cannot
/// connect, which "does not support it" would hide.
#[test]
fn a_path_that_drops_flagged_hellos_misbehaves() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let server = serve(config::server(pki, Provider::AwsLcRs)).await;
        let middlebox = dropping_middlebox(server, 62).await;
        let probed = probe(pki, middlebox.port(), &["--code-point", "62"]).await;
        assert_eq!(probed.code, Some(3), "{}", probed.text);
        assert_eq!(probed.json["verdict"], "misbehaves", "{}", probed.text);
        let report = &probed.json["code_points"][0];
        assert_eq!(
            report["without_flag"]["version"], "TLSv1_3",
            "{}",
            probed.text
        );
        probed.assert_says("rejects the TLS Flags extension");
    });
}

#[test]
fn a_server_that_asks_everyone_shows_the_picker_problem() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let config = config::server_requesting(
            pki,
            Provider::AwsLcRs,
            config::verifier(&pki.normal_ca, Provider::AwsLcRs, false),
        );
        let address = serve(config).await;
        let probed = probe(pki, address.port(), &["--code-point", "62"]).await;
        assert_eq!(probed.code, Some(1), "{}", probed.text);
        let report = &probed.json["code_points"][0];
        assert_eq!(report["without_flag"]["certificate_request"], true);
        probed.assert_says("browsers would see a certificate picker");
    });
}

#[test]
fn a_server_that_asks_on_the_flag_without_acknowledging() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let mut config = config::server(pki, Provider::AwsLcRs);
        ServerScript {
            verifier: Some(config::verifier(&pki.bot_ca, Provider::AwsLcRs, false)),
            verifier_if_client_hello_has: Some(0xfe01),
            ..ServerScript::default()
        }
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
        let address = serve(config).await;
        let probed = probe(pki, address.port(), &["--code-point", "0xfe01"]).await;
        assert_eq!(probed.code, Some(0), "{}", probed.text);
        let report = &probed.json["code_points"][0];
        assert_eq!(report["extension_type"], 0xfe01);
        assert_eq!(report["without_flag"]["certificate_request"], false);
        assert_eq!(report["with_flag"]["certificate_request"], true);
        assert_eq!(report["with_flag"]["acknowledged"], false);
        probed.assert_says("Cloudflare's 2023 servers");
        // Given a certificate, the probe says it was not sent.
        let probed = probe(
            pki,
            address.port(),
            &[
                "--code-point",
                "0xfe01",
                "--cert",
                "BOT_CERT",
                "--key",
                "BOT_KEY",
            ],
        )
        .await;
        probed.assert_says("the certificate given with --cert was not sent");
    });
}

#[test]
fn a_server_that_acknowledges_an_unsent_flag_misbehaves() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let mut config = config::server(pki, Provider::AwsLcRs);
        // request_client_auth (flag 80: octet 10, bit 0) in every CertificateRequest.
        let mut acknowledgement = vec![11];
        acknowledgement.extend_from_slice(&[0; 10]);
        acknowledgement.push(1);
        ServerScript {
            verifier: Some(config::verifier(&pki.bot_ca, Provider::AwsLcRs, false)),
            ..ServerScript::default()
        }
        .with(
            HandshakeMessage::CertificateRequest,
            ext(62, &acknowledgement),
        )
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
        let address = serve(config).await;
        let probed = probe(pki, address.port(), &["--code-point", "62"]).await;
        assert_eq!(probed.code, Some(3), "{}", probed.text);
        assert_eq!(probed.json["verdict"], "misbehaves");
        assert_eq!(
            probed.json["code_points"][0]["without_flag"]["rule_broken"], "RCA-6",
            "{}",
            probed.text
        );
    });
}

/// Without `--ca` the server is verified against Mozilla's roots (as
/// `rca-connect` does; it was a usage error): a server of a private CA is
/// then refused, and the error says why.
#[test]
fn without_ca_the_public_roots_verify_the_server() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let address = serve(config::server(pki, Provider::AwsLcRs)).await;
        let url = format!("https://localhost:{}/", address.port());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(PROBE)
                .args([url.as_str(), "--code-point", "62", "--json"])
                .output()
                .expect("run rca-probe")
        })
        .await
        .expect("probe task");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{text}");
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
        // The text report says what to give for a private CA.
        let url = format!("https://localhost:{}/", address.port());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(PROBE)
                .args([url.as_str(), "--code-point", "62"])
                .output()
                .expect("run rca-probe")
        })
        .await
        .expect("probe task");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("give that CA with --ca FILE"), "{text}");
        // The same against the proxy, which asks flagged clients for a
        // certificate before its own certificate is checked (TLS 1.3): the
        // request the probe never answered does not make it "connected".
        let proxy = start_proxy(pki, &pki.bot_ca.cert_pem).await;
        let url = format!("https://localhost:{}/", proxy.port);
        let out = tokio::task::spawn_blocking(move || {
            Command::new(PROBE)
                .args([url.as_str(), "--code-point", "62", "--json"])
                .output()
                .expect("run rca-probe")
        })
        .await
        .expect("probe task");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{text}");
        assert!(text.contains("\"could_not_connect\""), "{text}");
    });
}

/// A server that honours the flag and refuses a flagged client that sends
/// no certificate (its flag path's policy, RCA-14) is not said to demand a
/// certificate of every client.
#[test]
fn a_flag_path_that_requires_a_certificate_is_not_mutual_tls_for_all() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let mut config = config::server(pki, Provider::AwsLcRs);
        rustls_req_client_auth::ServerFlags::request_client_auth(config::verifier(
            &pki.bot_ca,
            Provider::AwsLcRs,
            true,
        ))
        .require_certificate()
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
        let address = serve(config).await;
        let probed = probe(pki, address.port(), &["--code-point", "62"]).await;
        let report = &probed.json["code_points"][0];
        assert_eq!(report["with_flag"]["acknowledged"], true, "{}", probed.text);
        assert_eq!(report["with_flag"]["certificate_required"], false);
        assert!(
            !probed
                .text
                .contains("demands a certificate of every client"),
            "{}",
            probed.text
        );
    });
}

/// A port that is not one is a usage error (2), not a probe of port 443;
/// an IPv6 server is shown in brackets.
#[test]
fn a_url_with_a_port_that_is_not_one_is_refused() {
    for url in [
        "https://localhost:99999/",
        "https://localhost:0/",
        "https://localhost:8443x/",
        "https://localhost:/",
        "https://[::1]:70000/",
        "https://localhost:+8443/",
    ] {
        let out = Command::new(PROBE)
            .arg(url)
            .output()
            .expect("run rca-probe");
        assert_eq!(out.status.code(), Some(2), "{url}: {out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("is not a port (1 to 65535)"), "{url}: {said}");
    }
    let port = free_port();
    let out = Command::new(PROBE)
        .arg(format!("https://[::1]:{port}/"))
        .args(["--code-point", "62"])
        .output()
        .expect("run rca-probe");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("rca-probe [::1]:{port}\n")),
        "{text}"
    );
}

/// A bot certificate sent to a server that is not verified is warned of.
#[test]
fn a_certificate_without_server_verification_is_warned_of() {
    let pki = TestPki::shared();
    let files = PemFiles::new(pki);
    let port = free_port();
    let out = Command::new(PROBE)
        .arg(format!("https://localhost:{port}/"))
        .args(["--code-point", "62", "--insecure-skip-server-verification"])
        .arg("--cert")
        .arg(files.path("bot.pem"))
        .arg("--key")
        .arg(files.path("bot.key"))
        .output()
        .expect("run rca-probe");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("goes to whatever server answers, unverified"),
        "{said}"
    );
}

#[test]
fn nothing_listening_could_not_connect() {
    let port = free_port();
    let pki = TestPki::shared();
    let probed = runtime().block_on(probe(pki, port, &[]));
    assert_eq!(probed.code, Some(4), "{}", probed.text);
    assert_eq!(probed.json["verdict"], "could_not_connect");
    // Both code points are in the report, each connection with the error.
    let code_points = probed.json["code_points"].as_array().expect("code points");
    assert_eq!(code_points.len(), 2, "{}", probed.text);
    for report in code_points {
        for connection in ["without_flag", "with_flag", "second"] {
            assert!(
                report[connection]["error"]
                    .as_str()
                    .is_some_and(|error| error.starts_with("cannot connect to")),
                "{}",
                probed.text
            );
        }
    }
}

/// A server that takes the connection and never answers: one timeout (10
/// s), not one per connection and code point (60 s before).
#[test]
fn a_silent_server_costs_one_timeout() {
    runtime().block_on(async {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let started = std::time::Instant::now();
        let probed = probe(TestPki::shared(), port, &[]).await;
        assert_eq!(probed.code, Some(4), "{}", probed.text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(25),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            probed.json["code_points"][1]["second"]["error"], "no answer within 10s",
            "{}",
            probed.text
        );
        // --timeout-secs sets that wait.
        let probed = probe(TestPki::shared(), port, &["--timeout-secs", "1"]).await;
        assert_eq!(probed.code, Some(4), "{}", probed.text);
        assert_eq!(
            probed.json["code_points"][0]["without_flag"]["error"], "no answer within 1s",
            "{}",
            probed.text
        );
    });
}

/// Given a `--ca` that did not issue the server's certificate, the hint
/// says to give the right one, not to give one.
#[test]
fn a_wrong_ca_gets_its_own_hint() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let address = serve(config::server(pki, Provider::AwsLcRs)).await;
        let files = PemFiles::new(pki);
        let wrong_ca = files.path("bot-ca.pem");
        let url = format!("https://localhost:{}/", address.port());
        let out = tokio::task::spawn_blocking(move || {
            let out = Command::new(PROBE)
                .args([url.as_str(), "--code-point", "62", "--ca"])
                .arg(&wrong_ca)
                .output()
                .expect("run rca-probe");
            drop(files);
            out
        })
        .await
        .expect("probe task");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{text}");
        assert!(
            text.contains("leads to none of the CAs given with --ca"),
            "{text}"
        );
        assert!(!text.contains("give that CA with --ca FILE"), "{text}");
    });
}
