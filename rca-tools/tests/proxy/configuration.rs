//! What an operator meets in the configuration: relative paths, clashes
//! `--check-config` catches, errors that name the field, the listen
//! backlog, what SIGHUP cannot change, the line SIGTERM writes, and the
//! PROXY protocol's networks.

use crate::support::*;

/// Paths in the file are relative to the file's directory: the check passes
/// from any working directory.
#[test]
fn relative_paths_are_relative_to_the_configuration_file() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let config = files.write(
        "relative.toml",
        "listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"server.pem\"\nkey = \"./server.key\"\nbot_ca = \"bot-ca.pem\"\n[upstream]\nurl = \"http://127.0.0.1:8080\"\n",
    );
    for cwd in ["/", "/tmp"] {
        let out = Command::new(PROXY)
            .current_dir(cwd)
            .args(["--check-config", "--config"])
            .arg(&config)
            .output()
            .expect("run rca-proxy");
        assert!(
            out.status.success(),
            "from {cwd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A listening address without an IP address (`:443`) or with a host name
/// is refused with the field and the form it takes.
#[test]
fn a_listen_address_that_is_not_one_says_what_it_takes() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    for (field, text) in [("listen", ":443"), ("admin.listen", "localhost:9100")] {
        let good = files.config(8443, upstream, "[admin]\nlisten = \"127.0.0.1:9100\"\n");
        let config = std::fs::read_to_string(&good).expect("config");
        let config = if field == "listen" {
            config.replacen(
                "listen = \"127.0.0.1:8443\"",
                &format!("listen = \"{text}\""),
                1,
            )
        } else {
            config.replacen(
                "listen = \"127.0.0.1:9100\"",
                &format!("listen = \"{text}\""),
                1,
            )
        };
        let bad = files.write("bad-listen.toml", &config);
        let out = check(&bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {stderr}");
        assert!(stderr.contains(&format!("{field}: ")), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "\"{text}\" is not an IP address and a port, such as \"0.0.0.0:443\""
            )),
            "{stderr}"
        );
    }
}

/// `admin.listen` on the proxy's own address is refused by the check, with
/// the field named, instead of failing at start.
#[test]
fn check_config_catches_the_admin_address_clashing_with_listen() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    for admin in ["127.0.0.1:8443", "0.0.0.0:8443"] {
        let config = files.config(8443, upstream, &format!("[admin]\nlisten = \"{admin}\"\n"));
        let out = check(&config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{admin}: {stderr}");
        assert!(stderr.contains("admin.listen"), "{stderr}");
    }
    let config = files.config(8443, upstream, "[admin]\nlisten = \"127.0.0.1:9443\"\n");
    assert!(check(&config).status.success());
}

/// A duration or a size written with its unit (`"60s"`, as nginx takes
/// it) is refused with the field and what to write instead: the unit is in
/// the field's name.
#[test]
fn a_unit_in_a_number_field_says_what_to_write() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    for (section, field, value, hint) in [
        (
            "limits",
            "idle_timeout_secs",
            "\"60s\"",
            "a whole number of seconds without quotes, such as 60",
        ),
        (
            "limits",
            "max_head_bytes",
            "\"64k\"",
            "a whole number of bytes without quotes, such as 65536",
        ),
    ] {
        let line = format!("{field} = {value}");
        let config = files.config_with("units.toml", 8443, upstream, section, &line);
        let out = check(&config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {stderr}");
        assert!(stderr.contains(&format!("{section}.{field}: ")), "{stderr}");
        assert!(stderr.contains(hint), "{stderr}");
    }
}

/// A `bot_ca` that holds no certificate names the field, not only the file.
#[test]
fn a_bot_ca_without_certificates_names_the_field() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    files.write("bot-ca.pem", "not a certificate\n");
    let config = files.config(8443, SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)), "");
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tls.bot_ca"), "{stderr}");
}

/// A bot's own certificate given as the bot CA (an operator's slip) lets
/// no bot in: `--check-config` warns, naming the field, the file and the
/// certificate; the real CA gets no warning.
#[test]
fn a_bot_certificate_given_as_the_bot_ca_is_warned_of() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let config = files.config(8443, SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)), "");
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("not a CA certificate"), "{stderr}");
    files.write("bot-ca.pem", &pki.bot.chain_pem);
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not an error: {stderr}"
    );
    assert!(
        stderr.contains("tls.bot_ca: ")
            && stderr.contains("CN=crawler.bot.test, which is not a CA certificate"),
        "{stderr}"
    );
}

/// The listen backlog is `limits.listen_backlog` (4096 by default), as
/// `ss` shows it for a listening socket (Send-Q).
#[test]
fn the_listen_backlog_is_configurable() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let backlog = |port: u16| -> Option<u32> {
        let out = Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().nth(2)?.parse().ok()
    };
    let port = free_port();
    let proxy = Proxy::start(&files.config(port, upstream, ""), port);
    assert_eq!(backlog(port), Some(4096));
    drop(proxy);
    let port = free_port();
    let config = files.config_with(
        "backlog.toml",
        port,
        upstream,
        "limits",
        "listen_backlog = 777",
    );
    let _proxy = Proxy::start(&config, port);
    assert_eq!(backlog(port), Some(777));
}

/// A reload whose certificate file lost the CA certificate that issued
/// the leaf (a chain read while it was being written holds the leaf alone,
/// a valid file) takes it, and warns: clients that lack that CA refuse the
/// server from then on.
#[test]
fn a_reload_that_loses_the_leafs_issuer_warns() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config(port, upstream, "");
        let log = files.path("chain.log");
        let proxy = Proxy::start_with_diagnostics(&config, port, &log);
        let end = "-----END CERTIFICATE-----\n";
        let leaf_only =
            &pki.server.chain_pem[..pki.server.chain_pem.find(end).expect("a block") + end.len()];
        files.write("server.pem", leaf_only);
        proxy.signal("HUP");
        let diagnostics = wait_for_line(&log, "reloaded [tls]");
        let warned = diagnostics
            .lines()
            .find(|line| line.contains("the chain now lacks"))
            .unwrap_or_default();
        assert!(warned.contains("WARN"), "{diagnostics}");
        assert!(warned.contains("tls.cert"), "{diagnostics}");
    });
}

/// A configuration file broken at a reload is refused on one log line,
/// timestamped, with its cause: a TOML error's picture of where it is
/// (several lines) was written as it was, so under the journal the cause
/// lost the error's priority, and elsewhere its time.
#[test]
fn a_broken_configuration_at_reload_is_refused_on_one_line() {
    runtime().block_on(async {
        let (_pki, files, upstream, port) = setup().await;
        let config = files.config(port, upstream, "");
        let log = files.path("broken.log");
        let proxy = Proxy::start_with_diagnostics(&config, port, &log);
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, format!("{text}\nbroken = [\"unclosed\n")).expect("write");
        proxy.signal("HUP");
        let diagnostics = wait_for_line(&log, "reload refused");
        let refused: Vec<&str> = diagnostics
            .lines()
            .skip_while(|line| !line.contains("reload refused"))
            .collect();
        assert_eq!(refused.len(), 1, "{diagnostics}");
        assert!(refused[0].starts_with("[20"), "{diagnostics}");
        assert!(refused[0].contains("ERROR"), "{diagnostics}");
        assert!(refused[0].contains("TOML parse error"), "{diagnostics}");
        assert!(refused[0].contains(" / "), "{diagnostics}");
    });
}

/// SIGHUP with a changed `upstream.url`: a warning names it and both
/// values, the running upstream stays, and `[tls]` is reloaded as ever.
/// SIGTERM then writes the line that says the proxy is draining.
#[test]
fn sighup_names_settings_that_take_a_restart_and_sigterm_says_it_drains() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config(port, upstream, "");
        let log = files.path("diagnostics.log");
        let mut proxy = Proxy::start_with_diagnostics(&config, port, &log);
        let text = std::fs::read_to_string(&config).expect("config");
        let moved = text.replace(&format!("http://{upstream}"), "http://127.0.0.1:9");
        std::fs::write(&config, moved).expect("write");
        proxy.signal("HUP");
        let diagnostics = wait_for_line(&log, "reloaded [tls]");
        assert!(
            diagnostics.contains(&format!(
                "upstream.url (\"http://{upstream}\" -> \"http://127.0.0.1:9\")"
            )),
            "{diagnostics}"
        );
        assert!(diagnostics.contains("takes a restart"), "{diagnostics}");
        // What it read, of what is configured, and the certificate served.
        let reloaded = diagnostics
            .lines()
            .find(|line| line.contains("reloaded [tls]"))
            .unwrap_or_default();
        assert!(
            reloaded.contains(
                "reloaded [tls]: the certificate and key, the bot CA; serving \"CN=localhost\", valid until "
            ),
            "{reloaded}"
        );
        assert!(!reloaded.contains("partner CA"), "{reloaded}");
        // No `[tls]` file was touched, and the line says so.
        assert!(
            reloaded.ends_with("; no file changed since the last load"),
            "{reloaded}"
        );
        // Still the old upstream.
        let echo = get_body(&browser(pki, true), &proxy.url("/still")).await;
        assert!(echo.starts_with("GET /still"), "{echo}");
        proxy.signal("TERM");
        assert!(proxy.wait().success());
        let diagnostics = std::fs::read_to_string(&log).expect("log");
        assert!(
            diagnostics.contains("stopping: no new connections"),
            "{diagnostics}"
        );
    });
}

/// `[proxy_protocol]` names its balancers; an entry that is no address or
/// network is refused by the check, by its index.
#[test]
fn proxy_protocol_networks_are_checked() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let good = files.config(
        8443,
        upstream,
        "[proxy_protocol]\nfrom = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
    );
    let out = check(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (from, names) in [
        (
            "[\"10.0.0.0/8\", \"10.0.0.0/33\"]",
            "proxy_protocol.from[1]",
        ),
        ("[]", "proxy_protocol.from"),
    ] {
        let bad = files.config(
            8443,
            upstream,
            &format!("[proxy_protocol]\nfrom = {from}\n"),
        );
        let out = check(&bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{from}: {stderr}");
        assert!(stderr.contains(names), "{from}: {stderr}");
    }
}

/// A SIGHUP sent the moment the port answers (a `systemctl reload` right
/// after the start) is a reload, not the end of the process: the handler
/// is in place before the listener opens. Installed later, by a task
/// spawned after it, a SIGHUP in between killed the proxy (the signal's
/// default action); one run of this suite in about eighty hit it.
#[test]
fn a_sighup_as_soon_as_the_port_answers_reloads() {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    for round in 0..10 {
        let port = free_port();
        let config = files.config(port, upstream, "");
        let mut child = Command::new(PROXY)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rca-proxy");
        let started = Instant::now();
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "no port");
            std::thread::yield_now();
        }
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid"))
            .expect("a process id");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
        std::thread::sleep(Duration::from_millis(200));
        let exited = child.try_wait().expect("wait");
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            exited.is_none(),
            "round {round}: the SIGHUP ended it: {exited:?}"
        );
    }
}
