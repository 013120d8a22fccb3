//! Sessions across proxies and reloads: two proxies with one ticket-key
//! file, and partners' sessions across a change of the partner CA file.

use super::support::*;

/// Two proxies, one ticket-key file: a session from one resumes on the other
/// with the same path; after the key is rotated out, a full handshake (not an
/// error) on the same path.
#[test]
fn a_fleet_resumes_each_others_sessions() {
    use base64::Engine as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let keys = files.write("ticket.keys", &format!("# fleet keys\n{}\n", key(7)));
        let with_keys = |port: u16, name: &str| {
            let ticket_keys = format!("ticket_keys = \"{}\"", keys.display());
            files.config_with(name, port, upstream, "tls", &ticket_keys)
        };
        let (port_a, port_b) = (free_port(), free_port());
        let config_a = with_keys(port_a, "a.toml");
        let config_b = with_keys(port_b, "b.toml");
        let proxy_a = Proxy::start(&config_a, port_a);
        let proxy_b = Proxy::start(&config_b, port_b);

        // One client config: one session store for both proxies.
        let tls = bot(pki, &pki.bot).client_config().expect("bot config");
        let client = || client_over(&tls);
        let seen = echoed;
        let first = get_body(&client(), &proxy_a.url("/")).await;
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

        let second = get_body(&client(), &proxy_b.url("/")).await;
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
        let third = get_body(&client(), &proxy_b.url("/")).await;
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

/// Partners' sessions are bound to the partner CA file (RCA-11): a SIGHUP
/// that loads the same file keeps them, one that loads a changed file makes
/// the partner's next connection a full handshake, verified again.
#[test]
fn a_changed_partner_ca_retires_partner_sessions() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let proxy = Proxy::start(&files.config_with_partners(port, upstream), port);
        let tls = partner_tls(pki);
        let visit = || async {
            let echo = get_body(&client_over(&tls), &proxy.url("/")).await;
            assert_eq!(
                echoed(&echo, "x-client-auth-path").as_deref(),
                Some("normal"),
                "{echo}"
            );
            echoed(&echo, "x-client-session-resumed")
        };
        assert_eq!(visit().await.as_deref(), Some("false"));
        assert_eq!(visit().await.as_deref(), Some("true"));

        proxy.signal("HUP");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(visit().await.as_deref(), Some("true"), "same file");

        // The operator adds a CA to the partner file.
        files.write(
            "partner-ca.pem",
            &format!("{}{}", pki.normal_ca.cert_pem, pki.server_ca.cert_pem),
        );
        proxy.signal("HUP");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(visit().await.as_deref(), Some("false"), "changed file");
        // No session is made for a handshake timeout (2 s) after a change.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(visit().await.as_deref(), Some("false"));
        assert_eq!(visit().await.as_deref(), Some("true"));
    });
}

/// A partner whose CA leaves the partner file gets in no more with a session
/// from before, over TLS 1.2 and TLS 1.3, from the proxy's session cache and
/// from fleet tickets alike. TLS 1.2 sessions carry no record of the CA set
/// that verified them, so the proxy retires every session when the file
/// changes (RCA-11).
#[test]
fn a_partner_whose_ca_left_cannot_resume() {
    use base64::Engine as _;
    runtime().block_on(async {
        let pki = TestPki::shared();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            for tickets in [false, true] {
                let case = format!("{:?}, fleet tickets: {tickets}", version.version);
                let files = Files::new(pki);
                let upstream = start_upstream().await;
                let port = free_port();
                let mut config =
                    std::fs::read_to_string(files.config_with_partners(port, upstream))
                        .expect("config");
                if tickets {
                    let key = base64::engine::general_purpose::STANDARD.encode([9; 32]);
                    let keys = files.write("ticket.keys", &format!("{key}\n"));
                    config = config.replace(
                        "[tls]\n",
                        &format!("[tls]\nticket_keys = \"{}\"\n", keys.display()),
                    );
                }
                let proxy = Proxy::start(&files.write("case.toml", &config), port);
                let tls = Arc::new(partner_tls_with(pki, &[version]));

                let (kind, _) = raw_get(&tls, port).await.expect(&case);
                assert_eq!(kind, rustls::HandshakeKind::Full, "{case}");
                let (kind, echo) = raw_get(&tls, port).await.expect(&case);
                assert_eq!(kind, rustls::HandshakeKind::Resumed, "{case}");
                assert_eq!(
                    echoed(&echo, "x-client-auth-path").as_deref(),
                    Some("normal"),
                    "{case}: {echo}"
                );
                // A resumption in either version is told as one (TLS 1.2's
                // restores no path, yet resumed all the same).
                assert_eq!(
                    echoed(&echo, "x-client-session-resumed").as_deref(),
                    Some("true"),
                    "{case}: {echo}"
                );

                // The partner's CA (the normal CA) leaves the file. Until the
                // reload is done the session still resumes; then the partner's
                // certificate must be refused with an alert.
                files.write("partner-ca.pem", &pki.server_ca.cert_pem);
                proxy.signal("HUP");
                let started = Instant::now();
                let refusal = loop {
                    match raw_get(&tls, port).await {
                        Err(error) => break error,
                        Ok((kind, echo)) => assert!(
                            started.elapsed() < Duration::from_secs(5),
                            "{case}: still admitted ({kind:?}) after its CA left: {echo}"
                        ),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                let alert = refusal
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                assert!(
                    matches!(alert, Some(rustls::Error::AlertReceived(_))),
                    "{case}: refused without an alert: {refusal:?}"
                );
                // The proxy is still up for everyone else.
                drop(tls_connect(pki, port, b"http/1.1").await);
            }
        }
    });
}

/// `tls.session_resumption = false`: a client that would resume (the same
/// session store, which resumes against a proxy with the default) gets a
/// full handshake every time, on the flag path and on the normal one.
#[test]
fn without_session_resumption_every_handshake_is_full() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let (port_on, port_off) = (free_port(), free_port());
        let config_on = files.config_with("on.toml", port_on, upstream, "tls", "");
        let config_off = files.config_with(
            "off.toml",
            port_off,
            upstream,
            "tls",
            "session_resumption = false",
        );
        let proxy_on = Proxy::start(&config_on, port_on);
        let proxy_off = Proxy::start(&config_off, port_off);
        let clients = [
            bot(pki, &pki.bot).client_config().expect("bot config"),
            integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs),
        ];
        for tls in &clients {
            let resumed = |echo: &str| echoed(echo, "x-client-session-resumed");
            let mut on = Vec::new();
            let mut off = Vec::new();
            for _ in 0..3 {
                on.push(resumed(
                    &get_body(&client_over(tls), &proxy_on.url("/")).await,
                ));
                off.push(resumed(
                    &get_body(&client_over(tls), &proxy_off.url("/")).await,
                ));
            }
            let value = |text: &str| Some(text.to_owned());
            assert_eq!(on, [value("false"), value("true"), value("true")]);
            assert_eq!(off, [value("false"), value("false"), value("false")]);
        }
    });
}
