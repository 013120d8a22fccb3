//! `upstream.read_timeout_secs` (nginx's `proxy_read_timeout`): a response
//! body the upstream stops sending is cut short, so the client sees it
//! broken off rather than waiting for ever, and the access log says why and
//! the metrics count it; a body that keeps coming, however slowly, is not
//! cut. Over HTTP/1.1 and h2c to the upstream, to HTTP/1.1 and HTTP/2
//! clients.

use super::support::*;

/// `rca-proxy` with a read timeout of 1 s in front of `upstream` over
/// `protocol`, its access log in `log` and its metrics on the returned
/// admin port.
fn proxy_with_read_timeout(
    files: &Files,
    upstream: SocketAddr,
    protocol: &str,
    log: &Path,
) -> (Proxy, u16) {
    let port = free_port();
    let (config, admin) = files.config_with_admin(
        &format!("read-timeout-{protocol}.toml"),
        port,
        upstream,
        &[(
            "upstream",
            &format!("read_timeout_secs = 1\nprotocol = \"{protocol}\""),
        )],
    );
    (Proxy::start_logging(&config, port, log), admin)
}

#[test]
fn a_stalled_response_body_is_cut_short_logged_and_counted() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        for protocol in ["http1", "h2c"] {
            let log = files.path(&format!("access-{protocol}.log"));
            let (proxy, admin) = proxy_with_read_timeout(&files, upstream, protocol, &log);
            for http1_only in [true, false] {
                let client = browser(pki, http1_only);
                let started = Instant::now();
                let response = client
                    .get(proxy.url("/stall"))
                    .send()
                    .await
                    .expect("the response headers");
                assert_eq!(response.status(), 200);
                let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
                    .await
                    .expect("the body ends within 10 s, not for ever");
                assert!(
                    body.is_err(),
                    "{protocol}, HTTP/1.1 only {http1_only}: cut short, not a whole body: {body:?}"
                );
                assert!(started.elapsed() >= Duration::from_secs(1));
            }
            let cut =
                "response cut short by the upstream: sent nothing of the response body for 1s";
            let started = Instant::now();
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.matches(cut).count() == 2 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{protocol}: both requests logged with why: {text}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let person = browser(pki, true);
            let metrics = get_body(&person, &format!("http://127.0.0.1:{admin}/metrics")).await;
            assert!(
                metrics.contains("rca_proxy_upstream_errors_total{reason=\"read_timeout\"} 2"),
                "{protocol}: {metrics}"
            );
        }
    });
}

#[test]
fn a_slow_but_steady_response_body_is_not_cut() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        for protocol in ["http1", "h2c"] {
            let log = files.path(&format!("steady-{protocol}.log"));
            let (proxy, _admin) = proxy_with_read_timeout(&files, upstream, protocol, &log);
            for http1_only in [true, false] {
                // Two seconds in all, no part more than 400 ms after the last.
                let body = get_body(&browser(pki, http1_only), &proxy.url("/trickle")).await;
                assert_eq!(body, "0;1;2;3;4;", "{protocol}, HTTP/1.1 only {http1_only}");
            }
        }
    });
}
