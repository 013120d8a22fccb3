//! HTTP/2 at the edge (issue 19): the protocol follows ALPN, a client that
//! opens and cancels streams (rapid reset) is shut out with a GOAWAY and
//! every request of it that reached the upstream is logged, and cookie
//! crumbs reach HTTP/1.1 upstreams joined.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::*;

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// What the proxy sends on a TLS connection offering `alpn` (none if
/// empty) after `bytes`, until it closes or 3 s pass.
async fn answer_to(pki: &TestPki, port: u16, alpn: &[u8], bytes: &[u8]) -> Vec<u8> {
    raw_exchange(pki, port, alpn, bytes, Duration::from_secs(3)).await
}

/// HTTP/2 only where ALPN chose `h2`, HTTP/1.1 only elsewhere: HTTP/2 by
/// prior knowledge on an `http/1.1` (or ALPN-less) connection is not served,
/// and HTTP/1.1 on an `h2` connection gets a GOAWAY (`PROTOCOL_ERROR`).
/// Before, both were served, and prior-knowledge HTTP/2 went without the
/// HTTP/2 guards.
#[test]
fn the_protocol_follows_alpn() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        for alpn in [&b"http/1.1"[..], b""] {
            let answer = answer_to(pki, port, alpn, H2_PREFACE).await;
            // An HTTP/2 server's first frame is its SETTINGS (type 4).
            assert!(
                answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
                "ALPN {:?}: {:?}",
                String::from_utf8_lossy(alpn),
                String::from_utf8_lossy(&answer)
            );
        }
        let answer = answer_to(
            pki,
            port,
            b"h2",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            !answer.windows(8).any(|eight| eight == b"HTTP/1.1"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        // A GOAWAY frame (type 7) for stream 0 with PROTOCOL_ERROR (1).
        let goaway: &[u8] = &[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(
            answer.windows(goaway.len()).any(|frame| frame == goaway),
            "{answer:?}"
        );
    });
}

/// An upstream that counts the requests it gets and answers each after
/// `delay`.
async fn counting_upstream(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (address, count)
}

/// `GET /work` for the HTTP/2 connection of `sender`, once it may send.
async fn send_work(
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    port: u16,
) -> Option<impl std::future::Future<Output = hyper::Result<Response<Incoming>>>> {
    sender.ready().await.ok()?;
    let request = Request::get(format!("https://localhost:{port}/work"))
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    Some(sender.send_request(request))
}

/// Rapid reset (CVE-2023-44487): a client that opens streams and cancels
/// them as fast as it can gets a GOAWAY once it has cancelled more than
/// `limits.http2_max_cancelled_requests` (here 20) within 10 s, so it
/// cannot turn one connection into an unbounded stream of upstream
/// exchanges; each cancelled request that was being answered is logged
/// (status 499). Before, all 600 reached the upstream and none was logged.
#[test]
fn rapid_reset_gets_a_goaway() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (upstream, count) = counting_upstream(Duration::from_millis(500)).await;
        let port = free_port();
        let config = files.config_with(
            "reset.toml",
            port,
            upstream,
            "limits",
            "http2_max_cancelled_requests = 20",
        );
        let log = files.path("access.log");
        let _proxy = Proxy::start_logging(&config, port, &log);
        let (mut sender, connection) = h2_connect(pki, port).await;
        let mut sent = 0;
        for _ in 0..600 {
            let Some(response) = send_work(&mut sender, port).await else {
                break;
            };
            sent += 1;
            // Long enough for the request to reach the upstream, then the
            // response future is dropped: RST_STREAM (CANCEL).
            let _ = tokio::time::timeout(Duration::from_millis(20), response).await;
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
        assert!(
            ended.is_ok(),
            "the proxy kept the connection after {sent} resets"
        );
        let reached = count.load(Ordering::SeqCst);
        assert!(
            reached < 100,
            "{reached} of {sent} requests reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let lines = std::fs::read_to_string(&log).expect("access log");
        let left = lines.matches("\"status\":499").count();
        assert!(left >= 20, "{left} requests logged as 499:\n{lines}");
        // Other connections are served as before.
        let echo = get_body(&browser(pki, false), &format!("https://localhost:{port}/")).await;
        assert_eq!(echo, "ok");
    });
}

/// One HTTP/2 connection holds at most `limits.http2_max_concurrent_streams`
/// upstream exchanges at once (here 10; before, 200, hyper's default): the
/// client is told so in its SETTINGS and further streams wait.
#[test]
fn one_connection_holds_at_most_its_streams_upstream() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (upstream, count) = counting_upstream(Duration::from_millis(1500)).await;
        let port = free_port();
        let config = files.config_with(
            "streams.toml",
            port,
            upstream,
            "limits",
            "http2_max_concurrent_streams = 10",
        );
        let _proxy = Proxy::start(&config, port);
        let (sender, _connection) = h2_connect(pki, port).await;
        let mut requests = Vec::new();
        for _ in 0..40 {
            let mut sender = sender.clone();
            requests.push(tokio::spawn(async move {
                if let Some(response) = send_work(&mut sender, port).await {
                    let _ = response.await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let reached = count.load(Ordering::SeqCst);
        assert!(
            (1..=10).contains(&reached),
            "{reached} exchanges at once on one connection"
        );
        for request in requests {
            request.abort();
        }
    });
}

/// One client address has at most `limits.max_upstream_per_client`
/// requests in progress upstream at once (here 4), over HTTP/2 and
/// HTTP/1.1 alike: the rest get 503 at once and are counted (not as
/// upstream time), and another address is served meanwhile; the
/// slots come back as the exchanges end. Found by an outside attack: nine
/// HTTP/2 connections of 128 streams whose responses were never read held
/// all 1,024 upstream connections, and every other client waited for a
/// minute and got 503.
#[test]
fn one_client_address_holds_at_most_its_share_of_the_upstream() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (upstream, count) = counting_upstream(Duration::from_secs(3)).await;
        let port = free_port();
        let (config, admin) = files.config_with_admin(
            "share.toml",
            port,
            upstream,
            &[("limits", "max_upstream_per_client = 4")],
        );
        let _proxy = Proxy::start(&config, port);
        let mut connections = Vec::new();
        let mut requests = Vec::new();
        for _ in 0..3 {
            let (sender, connection) = h2_connect(pki, port).await;
            connections.push(connection);
            for _ in 0..4 {
                let mut sender = sender.clone();
                requests.push(tokio::spawn(async move {
                    let response = send_work(&mut sender, port).await?.await.ok()?;
                    let status = response.status().as_u16();
                    if status == 503 {
                        // When to try again, over HTTP/2 too.
                        let retry = response.headers().get("retry-after")?;
                        assert_eq!(retry.as_bytes(), b"1");
                    }
                    Some(status)
                }));
            }
        }
        let started = std::time::Instant::now();
        while count.load(Ordering::SeqCst) < 4 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count.load(Ordering::SeqCst), 4, "exchanges of one address");
        // The same address over HTTP/1.1 (the proxy's own path for a
        // simple GET) has no share left either.
        let url = format!("https://localhost:{port}/work");
        assert_eq!(get_status(&browser(pki, true), &url).await, 503);
        // Another address (all of 127.0.0.0/8 is this machine) is served.
        let other = reqwest::Client::builder()
            .tls_backend_preconfigured(integration_tests::config::client(
                pki,
                integration_tests::Provider::AwsLcRs,
            ))
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .expect("client");
        assert_eq!(get_status(&other, &url).await, 200);
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.expect("request"));
        }
        let served = statuses
            .iter()
            .filter(|&&status| status == Some(200))
            .count();
        let refused = statuses
            .iter()
            .filter(|&&status| status == Some(503))
            .count();
        assert_eq!((served, refused), (4, 8), "{statuses:?}");
        // Given back: this address is served again.
        assert_eq!(get_status(&browser(pki, false), &url).await, 200);
        let text = get_body(
            &browser(pki, false),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        assert!(
            text.contains("rca_proxy_client_limit_refusals_total 9"),
            "{text}"
        );
        // The refused requests never went upstream: no upstream time.
        assert!(
            text.contains("rca_proxy_upstream_duration_seconds_count 6"),
            "{text}"
        );
    });
}

/// HTTP/2 cookie crumbs (RFC 9113 section 8.2.3) reach an HTTP/1.1
/// upstream as one `cookie` field joined with `; `; before, they arrived as
/// several, which gunicorn and werkzeug join with `,`.
#[test]
fn cookie_crumbs_are_joined() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let (mut sender, _connection) = h2_connect(pki, port).await;
        let (_, echo) = h2_exchange(
            &mut sender,
            Request::get(format!("https://localhost:{port}/"))
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .header("cookie", "c=3"),
        )
        .await;
        assert!(echo.contains("\ncookie: a=1; b=2; c=3\n"), "{echo}");
        assert_eq!(echo.matches("\ncookie: ").count(), 1, "{echo}");
    });
}

/// An HTTP/2 request that names no host (no `:authority`, no `Host`) gets
/// 400: sent on, it would carry the upstream's own address as its host
/// (found by an outside attack). With either, it is served. So does an
/// HTTP/1.1 request without `Host` (RFC 9112 section 3.2; found by a
/// review); HTTP/1.0 has none to give, and is served.
#[test]
fn a_request_without_a_host_is_refused() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let (mut sender, _connection) = h2_connect(pki, port).await;
        let (status, _) = h2_exchange(&mut sender, Request::get("/")).await;
        assert_eq!(status, 400);
        let (status, echo) =
            h2_exchange(&mut sender, Request::get("/").header("host", "localhost")).await;
        assert_eq!(status, 200, "{echo}");
        let (status, _) = h2_exchange(
            &mut sender,
            Request::get(format!("https://localhost:{port}/")),
        )
        .await;
        assert_eq!(status, 200);
        for (request, status) in [
            (
                &b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
                "HTTP/1.1 400",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
                "HTTP/1.1 400",
            ),
            (b"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200"),
        ] {
            let answer =
                raw_exchange(pki, port, b"http/1.1", request, Duration::from_secs(3)).await;
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with(status), "{answer}");
        }
    });
}

/// The line for a connection shut out for rapid reset is bounded as the
/// refusal lines are (10 a second): a client can cause one per connection,
/// and 30 connections at once wrote 30 lines (found by an outside attack).
#[test]
fn rapid_reset_lines_are_bounded() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (upstream, _count) = counting_upstream(Duration::from_millis(500)).await;
        let port = free_port();
        let config = files.config_with(
            "reset-lines.toml",
            port,
            upstream,
            "limits",
            "http2_max_cancelled_requests = 3",
        );
        let log = files.path("diagnostics.log");
        let _proxy = Proxy::start_with_diagnostics(&config, port, &log);
        let mut connections = Vec::new();
        for _ in 0..30 {
            connections.push(tokio::spawn(async move {
                let (mut sender, connection) = h2_connect(TestPki::shared(), port).await;
                for _ in 0..10 {
                    let Some(response) = send_work(&mut sender, port).await else {
                        break;
                    };
                    let _ = tokio::time::timeout(Duration::from_millis(20), response).await;
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            }));
        }
        for connection in connections {
            connection.await.expect("connection");
        }
        let text = wait_for_line(&log, "rapid reset?");
        let lines = text.matches("rapid reset?").count();
        assert!((1..=12).contains(&lines), "{lines} lines:\n{text}");
    });
}
