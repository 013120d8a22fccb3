//! People and bots on one port: the identity headers the upstream sees,
//! spoofed ones that never reach it, upgrades, partners on the normal path.

use super::support::*;

#[test]
fn people_and_bots_through_the_proxy() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let mut proxy = Proxy::start(&files.config(port, upstream, ""), port);

        // A person over HTTP/2 and HTTP/1.1: anonymous, spoofing stripped.
        for http1_only in [false, true] {
            let (status, echo) =
                get_spoofed(&browser(pki, http1_only), &proxy.url("/page?q=1")).await;
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
                get_spoofed(&browser(pki, http1_only), &proxy.url("/api/crawl/x")).await;
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("request_client_auth"), "{body}");
        }

        // A bot: its verified identity, nothing of what it claimed itself.
        let bot = bot(pki, &pki.bot);
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
        let stranger = bot_client_for(pki, &pki.normal_client);
        assert!(stranger.get(proxy.url("/")).send().await.is_err());

        proxy.signal("TERM");
        assert!(proxy.wait().success());
    });
}

/// A bot whose one common name reads like more of a name (`a, O=Trusted
/// Partner, CN=admin`) cannot pass for that name: the subject header
/// escapes its `,` as RFC 4514 does, so it differs from a certificate that
/// really has those three attributes.
#[test]
fn a_common_name_cannot_pass_for_more_attributes() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let posing = pki.bot_ca.issue(
            "crawler.example, O=Trusted Partner, CN=admin",
            &["crawler.example"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        let client = bot(pki, &posing).reqwest_client().expect("client");
        let (status, echo) = get_spoofed(&client, &proxy.url("/api/crawl")).await;
        assert_eq!(status, 200, "{echo}");
        assert!(
            echo.contains(
                "\nx-client-cert-subject: CN=crawler.example\\, O=Trusted Partner\\, CN=admin\n"
            ),
            "{echo}"
        );
    });
}

/// Raw HTTP/1.1 over TLS, so header names go out exactly as written.
#[test]
fn spoofed_headers_in_any_case_over_raw_http1() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);

        let mut tls = tls_connect(pki, port, b"http/1.1").await;
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

/// Names a CGI-style server reads as identity or edge-only headers (lighttpd
/// turns every symbol into `_`, PHP `.`), and other edges' certificate
/// headers, never reach the upstream: over HTTP/2 and HTTP/1.1 from reqwest,
/// and over raw HTTP/1.1 (the proxy's own path), as sent.
#[test]
fn names_cgi_servers_or_other_edges_read_as_identity_never_reach_the_upstream() {
    const FORGED: [(&str, &str); 16] = [
        ("X.Client.Cert.Subject", "CN=forged-1"),
        ("X~Client~Cert~X5t~S256", "forged-2"),
        ("X!Client!Auth!Path", "forged-3"),
        ("X|Client|Session|Resumed", "forged-4"),
        ("X.Real.IP", "forged-5"),
        ("X+Original+URL", "/forged-6"),
        ("Client-Cert", ":Zm9yZ2VkLTc=:"),
        ("Client-Cert-Chain", ":Zm9yZ2VkLTg=:"),
        ("X-Client-Cert", "forged-9"),
        ("X-ARR-ClientCert", "forged-10"),
        ("X-Amzn-Mtls-Clientcert-Subject", "CN=forged-11"),
        ("SSL_CLIENT_VERIFY", "SUCCESS-forged-12"),
        ("SSL_CLIENT_S_DN", "CN=forged-13"),
        ("X-SSL-Client-DN", "CN=forged-14"),
        ("X-Client-DN", "CN=forged-15"),
        ("X-Client-Verify", "SUCCESS-forged-16"),
    ];
    never_reach_the_upstream(&FORGED);
}

/// The user identity-aware edges (Cloudflare Access, Google IAP, Azure
/// App Service, oauth2-proxy, Pomerium, authentik, Kong, Authelia, auth
/// proxies) authenticated never reaches the upstream from a client: an
/// application moved from behind one may still read it. Found by an
/// outside attack: each of these went through as sent.
#[test]
fn names_identity_aware_edges_give_the_user_never_reach_the_upstream() {
    const FORGED: [(&str, &str); 12] = [
        ("Cf-Access-Authenticated-User-Email", "forged-1@example.com"),
        ("Cf-Access-Jwt-Assertion", "forged-2"),
        (
            "X-Goog-Authenticated-User-Email",
            "accounts.google.com:forged-3",
        ),
        ("X-Goog-Iap-Jwt-Assertion", "forged-4"),
        ("X-MS-CLIENT-PRINCIPAL-NAME", "forged-5"),
        ("X-MS-TOKEN-AAD-ID-TOKEN", "forged-6"),
        ("X-Auth-Request-User", "forged-7"),
        ("X-Pomerium-Claim-Email", "forged-8"),
        ("X-Authentik-Username", "forged-9"),
        ("X-Consumer-Username", "forged-10"),
        ("Remote-Email", "forged-11"),
        ("X-WEBAUTH-USER", "forged-12"),
    ];
    never_reach_the_upstream(&FORGED);
}

/// Sends `forged` over HTTP/2 and HTTP/1.1 from reqwest and over raw
/// HTTP/1.1 (the proxy's own path): none of the values may reach the
/// upstream.
fn never_reach_the_upstream(forged: &[(&str, &str)]) {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut echoes = Vec::new();
        for http1_only in [false, true] {
            let mut request = browser(pki, http1_only).get(proxy.url("/"));
            for (name, value) in forged {
                request = request.header(*name, *value);
            }
            let response = request.send().await.expect("response");
            assert_eq!(response.status(), 200);
            echoes.push(response.text().await.expect("body"));
        }
        let response = get_with_headers(pki, port, "/", forged).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        echoes.push(response);
        for echo in echoes {
            assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
            assert!(
                !echo.contains("forged"),
                "a forged value reached the upstream: {echo}"
            );
            assert!(!echo.contains("Zm9yZ2Vk"), "{echo}");
        }
    });
}

/// Identity headers turned off (`""`) or renamed leave their default names
/// claimed, and every `x-client-cert-*`: an upstream written against the
/// defaults never reads a client's own value there.
#[test]
fn default_identity_names_stay_claimed_when_turned_off_or_renamed() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config(
            port,
            upstream,
            "[headers]\nsans = \"\"\nresumed = \"\"\nsubject = \"x-bot-subject\"\n",
        );
        let _proxy = Proxy::start(&config, port);
        let mut tls = tls_connect(pki, port, b"http/1.1").await;
        tls.write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Client-Cert-Sans: DNS:admin.example\r\n\
              X-Client-Session-Resumed: forged-resumed\r\nX-Client-Cert-Pem: forged-pem\r\n\
              X-Client-Cert-Subject: CN=forged\r\nx_client_cert_serial: forged-serial\r\n\
              Connection: close\r\n\r\n",
        )
        .await
        .expect("send");
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response).to_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{response}");
        assert!(
            response.contains("\nx-client-auth-path: none\n"),
            "{response}"
        );
        for forged in ["admin.example", "forged", "x-client-cert", "x_client_cert"] {
            assert!(
                !response.contains(forged),
                "{forged} reached the upstream: {response}"
            );
        }
    });
}

/// An HTTP/1.1 upgrade (as WebSocket uses) through the proxy: 101 from the
/// upstream, then bytes both ways; the upstream was given the identity.
#[test]
fn upgrades_pass_through() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let (mut tls, head) = open_tunnel(pki, port).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: websocket"), "{head}");
        tls.write_all(b"ping").await.expect("write");
        let mut answer = vec![0; "path=none;ping".len()];
        tls.read_exact(&mut answer).await.expect("echo");
        assert_eq!(&answer[..], b"path=none;ping");
    });
}

/// A partner CA for the normal path beside the bot CA (RCA-10: disjoint).
#[test]
fn partners_on_the_normal_path() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let proxy = Proxy::start(&files.config_with_partners(port, upstream), port);

        // A partner without the flag: its own CA, the normal path.
        let partner = client_over(&partner_tls(pki));
        let echo = get_body(&partner, &proxy.url("/")).await;
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
        let echo = get_body(&bot_client_for(pki, &pki.bot), &proxy.url("/")).await;
        assert!(echo.contains("\nx-client-auth-path: flag\n"), "{echo}");
        let echo = get_body(&browser(pki, false), &proxy.url("/")).await;
        assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
    });
}

#[test]
fn overlapping_partner_and_bot_cas_are_refused() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let config = files.config_with(
        "overlap.toml",
        8443,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        "tls",
        &format!("partner_ca = \"{}\"", files.path("bot-ca.pem").display()),
    );
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls.partner_ca") && stderr.contains("RCA-10"),
        "{stderr}"
    );
}

/// `upstream.protocol = "h2c"`: requests of HTTP/1.1 and HTTP/2 clients reach
/// the upstream as HTTP/2 over plain TCP, with the same identity headers and
/// none of the client's spoofed ones; WebSocket upgrades still go over
/// HTTP/1.1.
#[test]
fn h2c_to_the_upstream() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config =
            files.config_with("h2c.toml", port, upstream, "upstream", "protocol = \"h2c\"");
        let proxy = Proxy::start(&config, port);

        for http1_only in [false, true] {
            let (status, echo) =
                get_spoofed(&browser(pki, http1_only), &proxy.url("/page?q=1")).await;
            assert_eq!(status, 200, "{echo}");
            assert!(echo.contains("\nupstream-version: HTTP/2.0\n"), "{echo}");
            assert!(echo.contains("/page?q=1\n"), "{echo}");
            // `:authority` names the upstream, so no `Host` that differs; the
            // client's host is forwarded.
            assert!(!echo.contains("\nhost: "), "{echo}");
            assert!(echo.contains("\nx-forwarded-host: localhost:"), "{echo}");
            assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
            assert!(echo.contains("\nx-forwarded-proto: https\n"), "{echo}");
            assert!(
                !echo.contains("10.6.6.6")
                    && !echo.contains("CN=admin")
                    && !echo.contains("forged"),
                "{echo}"
            );
        }
        let echo = get_body(&bot_client_for(pki, &pki.bot), &proxy.url("/api/crawl")).await;
        assert!(echo.contains("\nupstream-version: HTTP/2.0\n"), "{echo}");
        assert!(echo.contains("\nx-client-auth-path: flag\n"), "{echo}");

        let (mut tls, head) = open_tunnel(pki, port).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        tls.write_all(b"ping").await.expect("write");
        let mut answer = vec![0; "path=none;ping".len()];
        tls.read_exact(&mut answer).await.expect("echo");
        assert_eq!(&answer[..], b"path=none;ping");
    });
}

/// Why a client that tried to authenticate was not is in the log at the
/// default level, with its address: a bot from another CA (refused in the
/// handshake) and a bot that sets the flag but has no certificate to give
/// (served anonymously, RCA-14). A browser leaves no such line.
#[test]
fn the_log_says_why_a_client_was_not_authenticated() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let log = files.path("diagnostics.log");
        let proxy = Proxy::start_with_diagnostics(&files.config(port, upstream, ""), port, &log);

        let echo = get_body(&browser(pki, true), &proxy.url("/")).await;
        assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
        let refused = bot_client_for(pki, &pki.normal_client)
            .get(proxy.url("/"))
            .send()
            .await;
        assert!(refused.is_err(), "a bot of another CA is refused");
        let provider = integration_tests::Provider::AwsLcRs;
        let mut empty_handed = integration_tests::config::client_with(
            pki,
            provider.crypto(),
            rustls::DEFAULT_VERSIONS,
        );
        rustls_req_client_auth::ClientFlags::request_client_auth_with(
            integration_tests::config::nothing_suitable(),
        )
        .install(&mut empty_handed)
        .expect("install the flag");
        let echo = get_body(&client_over(&empty_handed), &proxy.url("/")).await;
        assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");

        // Written as they happen (standard error is not buffered).
        let started = Instant::now();
        let lines = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<String> = text
                .lines()
                .filter(|line| line.contains("client not authenticated"))
                .map(str::to_owned)
                .collect();
            if lines.len() >= 2 || started.elapsed() > Duration::from_secs(5) {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines.iter().all(|line| line.contains("127.0.0.1:")),
            "{lines:#?}"
        );
        // Matched by content: the two connections may log in either order.
        assert!(
            lines
                .iter()
                .any(|line| line.contains("invalid peer certificate: UnknownIssuer")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|line| line.contains("sent no certificate") && line.contains("RCA-14")),
            "{lines:#?}"
        );
        // The refused bot is named: subject, issuer, thumbprint, SNI; never
        // the certificate itself.
        let refusal = lines
            .iter()
            .find(|line| line.contains("UnknownIssuer"))
            .expect("the refusal line");
        let thumbprint = rustls_req_client_auth::thumbprint_sha256(&pki.normal_client.chain[0]);
        for part in [
            "subject \"CN=partner.client.test\"",
            "issuer \"CN=test client CA (normal path)\"",
            &format!("x5t#S256 {thumbprint}"),
            "SNI \"localhost\"",
            ", on the flag path (",
        ] {
            assert!(refusal.contains(part), "{part} in {refusal}");
        }
        assert!(!refusal.contains("BEGIN CERTIFICATE"), "{refusal}");
    });
}

/// `headers.cert_pem`: a bot's leaf as URL-encoded PEM, the same certificate
/// it presented; a client's own header of that name never reaches the
/// upstream, and a person gets none.
#[test]
fn the_leaf_pem_header_carries_the_bots_certificate() {
    use rustls::pki_types::pem::PemObject as _;
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config(
            port,
            upstream,
            "[headers]\ncert_pem = \"x-client-cert-pem\"\n",
        );
        let _proxy = Proxy::start(&config, port);
        let url = format!("https://{SERVER_NAME}:{port}/");
        let forged = "-----BEGIN%20CERTIFICATE-----forged";

        for _ in 0..2 {
            // Twice: the second request's value is the one kept for the leaf.
            let echo = bot_client_for(pki, &pki.bot)
                .get(&url)
                .header("x-client-cert-pem", forged)
                .send()
                .await
                .expect("bot")
                .text()
                .await
                .expect("body");
            let value = echoed(&echo, "x-client-cert-pem").expect("the PEM header");
            let pem = percent_encoding::percent_decode_str(&value).decode_utf8_lossy();
            let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                .expect("a PEM certificate");
            assert_eq!(der, pki.bot.chain[0], "{echo}");
            assert_eq!(echo.matches("x-client-cert-pem").count(), 1, "{echo}");
        }
        let echo = browser(pki, true)
            .get(&url)
            .header("X-Client-Cert-PEM", forged)
            .send()
            .await
            .expect("person")
            .text()
            .await
            .expect("body");
        assert!(
            !echo.contains("x-client-cert-pem") && !echo.contains("forged"),
            "{echo}"
        );
    });
}

/// A partner refused on the normal path is named too: the certificate's
/// subject and issuer in the refusal line (here a certificate of another
/// CA, presented without the flag).
#[test]
fn a_refused_partner_is_named() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let log = files.path("diagnostics.log");
        let proxy =
            Proxy::start_with_diagnostics(&files.config_with_partners(port, upstream), port, &log);
        let provider = integration_tests::Provider::AwsLcRs;
        let mut stranger = integration_tests::config::client_with(
            pki,
            provider.crypto(),
            rustls::DEFAULT_VERSIONS,
        );
        stranger.client_auth_cert_resolver =
            integration_tests::config::resolver(&pki.bot, provider);
        let refused = client_over(&stranger).get(proxy.url("/")).send().await;
        assert!(refused.is_err(), "{refused:?}");
        let text = wait_for_line(&log, "client not authenticated");
        assert!(text.contains("subject \"CN=crawler.bot.test\""), "{text}");
        assert!(
            text.contains("issuer \"CN=test bot CA (flag path)\""),
            "{text}"
        );
        // Which path refused it, and the name the client asked for (a
        // verifier of the application's own is not told it; the hook is).
        assert!(text.contains(", on the normal path ("), "{text}");
        assert!(text.contains("SNI \"localhost\""), "{text}");
    });
}
