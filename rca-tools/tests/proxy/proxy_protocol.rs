//! rca-proxy behind a real layer-4 balancer: HAProxy (Debian's package,
//! installed by `install.sh`, found through `RCA_HAPROXY`) in TCP mode,
//! sending the PROXY protocol, version 2 on one port and version 1 on
//! another. Clients connect from 127.0.0.2, HAProxy from 127.0.0.1: the
//! upstream and the access log must see 127.0.0.2.

use super::support::*;

/// Where a client connects from: not the balancer's address.
const CLIENT_ADDRESS: std::net::IpAddr = std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// HAProxy, or why the test cannot run.
fn haproxy() -> Option<PathBuf> {
    std::env::var_os("RCA_HAPROXY")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")))
        .filter(|path| path.exists())
}

/// A running HAProxy, killed on drop.
struct Balancer(Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HAProxy in TCP mode: `v2` and `v1` forward to the proxy's `port` with
/// `send-proxy-v2` and `send-proxy`.
fn start_haproxy(binary: &Path, files: &Files, port: u16, v2: u16, v1: u16) -> Balancer {
    let config = files.write(
        "haproxy.cfg",
        &format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend v2\n  bind 127.0.0.1:{v2}\n  default_backend rca_v2\n\
             frontend v1\n  bind 127.0.0.1:{v1}\n  default_backend rca_v1\n\
             backend rca_v2\n  server rca 127.0.0.1:{port} send-proxy-v2\n\
             backend rca_v1\n  server rca 127.0.0.1:{port} send-proxy\n"
        ),
    );
    let child = Command::new(binary)
        .args(["-db", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let balancer = Balancer(child);
    integration_tests::local::wait_for_port(v2, "haproxy");
    integration_tests::local::wait_for_port(v1, "haproxy");
    balancer
}

/// A person's client (no flag) connecting from [`CLIENT_ADDRESS`].
fn person_from_elsewhere(pki: &TestPki) -> reqwest::Client {
    let mut config = integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .local_address(CLIENT_ADDRESS)
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("client")
}

/// Through HAProxy, either version: the client's address reaches the
/// upstream and the access log, and a bot still gets the flag path (TLS
/// passes through the balancer). Straight to the proxy, from outside the
/// balancer's network or without a header, the connection is closed.
#[test]
fn the_client_address_comes_through_haproxy() {
    let Some(binary) = haproxy() else {
        eprintln!("skipped: no haproxy (cargo xtask test installs it)");
        return;
    };
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config(port, upstream, "[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n");
        let log = files.path("access.log");
        let mut proxy = Proxy::start_logging(&config, port, &log);
        let (v2, v1) = (free_port(), free_port());
        let _balancer = start_haproxy(&binary, &files, port, v2, v1);
        let via =
            |balancer_port: u16, path: &str| format!("https://{SERVER_NAME}:{balancer_port}{path}");

        for balancer_port in [v2, v1] {
            let echo = get_body(&person_from_elsewhere(pki), &via(balancer_port, "/")).await;
            assert_eq!(
                echoed(&echo, "x-forwarded-for").as_deref(),
                Some("127.0.0.2"),
                "{echo}"
            );
            assert_eq!(echoed(&echo, "x-client-auth-path").as_deref(), Some("none"));
            let forwarded = echoed(&echo, "forwarded").unwrap_or_default();
            assert!(forwarded.starts_with("for=127.0.0.2;"), "{echo}");
            let bot = bot(pki, &pki.bot)
                .reqwest_builder()
                .expect("bot")
                .local_address(CLIENT_ADDRESS)
                .timeout(CLIENT_TIMEOUT)
                .build()
                .expect("bot");
            let echo = get_body(&bot, &via(balancer_port, "/api/crawl")).await;
            assert_eq!(echoed(&echo, "x-client-auth-path").as_deref(), Some("flag"));
            let forwarded = echoed(&echo, "forwarded").unwrap_or_default();
            assert!(forwarded.starts_with("for=127.0.0.2;"), "{echo}");
            assert_eq!(
                echoed(&echo, "x-forwarded-for").as_deref(),
                Some("127.0.0.2"),
                "{echo}"
            );
        }

        // Straight to the proxy: from 127.0.0.2 (not a balancer), and from
        // 127.0.0.1 without a header (a ClientHello where it should be).
        let untrusted = person_from_elsewhere(pki).get(proxy.url("/")).send().await;
        assert!(untrusted.is_err(), "{untrusted:?}");
        let headerless = browser(pki, true).get(proxy.url("/")).send().await;
        assert!(headerless.is_err(), "{headerless:?}");

        proxy.signal("TERM");
        assert!(proxy.wait().success());
        let text = std::fs::read_to_string(&log).expect("access log");
        let remotes: Vec<String> = text
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).expect("JSON");
                line["remote"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(remotes.len(), 4, "{text}");
        assert!(
            remotes
                .iter()
                .all(|remote| remote.starts_with("127.0.0.2:")),
            "{text}"
        );
    });
}

/// The README's health check: HAProxy checks `GET /ready` on the admin
/// address (`option httpchk`, `check port`) and marks the proxy up; after
/// SIGTERM, within `limits.shutdown_delay_secs`, it marks it down while the
/// proxy still runs, so it sends it no new connections before its listener
/// closes.
#[test]
fn haproxy_takes_a_stopping_proxy_out_of_rotation() {
    let Some(binary) = haproxy() else {
        eprintln!("skipped: no haproxy (cargo xtask test installs it)");
        return;
    };
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let (port, front) = (free_port(), free_port());
        let (config, admin) = files.config_with_admin(
            "checked.toml",
            port,
            upstream,
            &[("limits", "shutdown_delay_secs = 4")],
        );
        let text = std::fs::read_to_string(&config).expect("config");
        let config = files.write(
            "checked.toml",
            &format!("{text}[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n"),
        );
        let mut proxy = Proxy::start(&config, port);
        let socket = files.path("haproxy.sock");
        let haproxy_config = files.write(
            "haproxy-checked.cfg",
            &format!(
                "global\n  stats socket {}\n\
                 defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  timeout check 2s\n\
                 frontend people\n  bind 127.0.0.1:{front}\n  default_backend rca\n\
                 backend rca\n  option httpchk GET /ready\n\
                 \x20 server rca1 127.0.0.1:{port} send-proxy-v2 check port {admin} inter 100ms fall 2 rise 1\n",
                socket.display()
            ),
        );
        let child = Command::new(&binary)
            .args(["-db", "-f"])
            .arg(&haproxy_config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let _balancer = Balancer(child);
        integration_tests::local::wait_for_port(front, "haproxy");
        wait_for_status(&socket, "UP").await;
        let echo = get_body(
            &person_from_elsewhere(pki),
            &format!("https://{SERVER_NAME}:{front}/"),
        )
        .await;
        assert!(echo.starts_with("GET /\n"), "{echo}");

        let signalled = Instant::now();
        proxy.signal("TERM");
        wait_for_status(&socket, "DOWN").await;
        assert!(
            signalled.elapsed() < Duration::from_secs(4),
            "marked down only after the delay"
        );
        assert!(proxy.child.try_wait().expect("wait").is_none(), "the proxy still runs");
        assert!(proxy.wait().success());
    });
}

/// Waits (up to 10 s) until HAProxy's stats socket says `wanted` for
/// backend `rca`'s server.
async fn wait_for_status(socket: &Path, wanted: &str) {
    let started = Instant::now();
    loop {
        let stats = tokio::task::block_in_place(|| {
            use std::io::Read as _;
            let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
            stream.write_all(b"show stat\n").ok()?;
            let mut text = String::new();
            stream.read_to_string(&mut text).ok()?;
            Some(text)
        })
        .unwrap_or_default();
        // CSV: proxy name, server name, ..., the status in the 18th field.
        let now = stats
            .lines()
            .find(|line| line.starts_with("rca,rca1,"))
            .and_then(|line| line.split(',').nth(17).map(str::to_owned));
        if now.as_deref() == Some(wanted) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "HAProxy says {now:?}, not {wanted}:\n{stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `handshake_timeout_secs` (2 s in the test configuration) covers the
/// PROXY protocol header and the TLS handshake after it: a balancer's
/// connection that sends its header slowly and then no ClientHello is closed
/// 2 s after it opened, not 2 s after its header (which gave a client twice
/// the timeout). No HAProxy needed: the test speaks the header itself.
#[test]
fn one_handshake_timeout_covers_the_header_and_the_handshake() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let (config, admin) = files.config_with_admin("proxy-protocol.toml", port, upstream, &[]);
        let config_text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            format!("{config_text}[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n"),
        )
        .expect("config");
        let _proxy = Proxy::start(&config, port);

        let opened = std::time::Instant::now();
        let mut tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        tcp.write_all(b"PROXY TCP4 192.0.2.1 ")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tcp.write_all(b"127.0.0.1 50000 443\r\n")
            .await
            .expect("the header's rest is read");
        // No ClientHello: the proxy closes the connection when the one
        // timeout runs out.
        let mut buf = [0; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
        let after = opened.elapsed();
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "the connection was not closed: {closed:?}"
        );
        assert!(
            after >= Duration::from_millis(1900) && after < Duration::from_secs(3),
            "closed {after:?} after it opened; the header took 1.5 s of the 2 s"
        );
        // The header was read: it was the handshake that timed out.
        let metrics = get_body(
            &browser(pki, false),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        assert!(
            metrics.contains("rca_proxy_handshake_failures_total{reason=\"timeout\"} 1"),
            "{metrics}"
        );
    });
}

/// Connections closed for their PROXY protocol header are counted, by
/// reason, with the failed handshakes: one from outside the balancers'
/// networks (`proxy_protocol_untrusted`), one from a balancer without a
/// header (a ClientHello where the header should be:
/// `proxy_protocol_malformed`). Before, only the log's bounded lines said
/// so (found by an outside trial).
#[test]
fn refused_proxy_protocol_connections_are_counted() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let admin = free_port();
        let config = files.config(
            port,
            upstream,
            &format!(
                "[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n"
            ),
        );
        let proxy = Proxy::start(&config, port);
        let untrusted = person_from_elsewhere(pki).get(proxy.url("/")).send().await;
        assert!(untrusted.is_err(), "{untrusted:?}");
        let headerless = browser(pki, true).get(proxy.url("/")).send().await;
        assert!(headerless.is_err(), "{headerless:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = get_body(
            &browser(pki, true),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        // At least one each: a client may try a refused connection again.
        for reason in ["proxy_protocol_untrusted", "proxy_protocol_malformed"] {
            let name = format!("rca_proxy_handshake_failures_total{{reason=\"{reason}\"}} ");
            let count = text
                .lines()
                .find_map(|line| line.strip_prefix(&name)?.parse::<f64>().ok());
            assert!(count.is_some_and(|count| count >= 1.0), "{name} in:\n{text}");
        }
    });
}
