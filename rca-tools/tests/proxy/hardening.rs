//! Hostile input: a flood of malformed `ClientHello`s, and requests crafted
//! to get around the bots-only policy.

use super::support::*;

/// A bounded flood of client hellos with every malformed `tls_flags` form:
/// each gets its alert, the proxy keeps serving, its memory stays flat.
#[test]
fn malformed_client_hello_flood_gets_alerts_and_leaves_memory_flat() {
    use integration_tests::scripted::{ext, ClientScript};
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
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
                            .install(&mut config)
                            .expect("TLS Flags registers its extension type");
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
        let still_serving = get_status(&bot_client_for(pki, &pki.bot), &proxy.url("/")).await;
        assert_eq!(still_serving, 200);
    });
}

/// The bots-only policy holds against every spelling of a protected path, and
/// requests the proxy cannot read safely get 400.
#[test]
fn policy_and_request_checks_hold_against_tricks() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
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
        // HTTP/1.0 without a Host: the upstream is given its own authority.
        let no_host = raw("GET / HTTP/1.0\r\n\r\n".into()).await;
        assert!(no_host.starts_with("HTTP/1.0 200"), "{no_host}");
        assert!(
            no_host
                .to_lowercase()
                .contains(&format!("\nhost: {upstream}\n")),
            "{no_host}"
        );
    });
}

/// What a client sends cannot fill the proxy's standard error through
/// rustls's own warnings: 30 handshakes with an illegal SNI (openssl's
/// `-servername` sends any bytes) wrote 30 `Illegal SNI hostname` lines,
/// one per connection and unbounded (found by an outside trial), which
/// journald's rate limit would answer by dropping the proxy's own lines.
/// `RUST_LOG=info,rustls::=warn` still shows them.
#[test]
fn a_client_cannot_flood_the_log_through_rustls_warnings() {
    runtime().block_on(async {
        let (_pki, files, upstream, port) = setup().await;
        let config = files.config(port, upstream, "");
        // The default level, and an operator's `RUST_LOG=debug`.
        for rust_log in [None, Some("debug")] {
            let log = files.path("diagnostics.log");
            let file = std::fs::File::create(&log).expect("diagnostics file");
            let mut command = std::process::Command::new(PROXY);
            command
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::from(file));
            if let Some(filter) = rust_log {
                command.env("RUST_LOG", filter);
            }
            let proxy = Proxy::spawn(command, &config, port);
            for attempt in 0..30 {
                let output = tokio::task::block_in_place(|| {
                    std::process::Command::new("openssl")
                        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                        .args(["-servername", &format!("bad_sni!{attempt}")])
                        .stdin(std::process::Stdio::null())
                        .output()
                        .expect("openssl")
                });
                let said = String::from_utf8_lossy(&output.stdout);
                assert!(said.contains("CONNECTED"), "{said}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(proxy);
            let lines = std::fs::read_to_string(&log).expect("diagnostics");
            assert_eq!(
                lines.matches("Illegal SNI").count(),
                0,
                "{rust_log:?}: {lines}"
            );
            if rust_log.is_some() {
                assert!(lines.contains("DEBUG"), "{lines}");
            }
        }
    });
}
