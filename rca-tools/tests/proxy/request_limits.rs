//! What a client's request may cost and how its failures are answered
//! (issue 19): a bound on an unfinished head, a body timeout, 400 for a
//! malformed body, no body in answer to HEAD; and a bound on the body.

use std::fmt::Write as _;

use crate::support::*;

/// `request` as raw bytes over TLS (HTTP/1.1), then everything the proxy
/// sends until it closes or `wait` passes.
async fn raw_within(pki: &TestPki, port: u16, request: &[u8], wait: Duration) -> String {
    let answer = raw_exchange(pki, port, b"http/1.1", request, wait).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request head longer than `limits.max_head_bytes` (64 KiB by default)
/// gets 431: an unfinished head holds at most that much. Before, hyper's
/// 417 KiB was the bound, and an 80 KiB head was served.
#[test]
fn a_head_over_the_limit_gets_431() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let filler = "v".repeat(8 * 1024);
        let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
        for index in 0..10 {
            let _ = write!(request, "x-filler-{index}: {filler}\r\n");
        }
        request.push_str("Connection: close\r\n\r\n");
        let answer = raw_within(pki, port, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{}",
            &answer[..answer.len().min(200)]
        );
        // Under the limit, served.
        let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
        for index in 0..5 {
            let _ = write!(request, "x-filler-{index}: {filler}\r\n");
        }
        request.push_str("Connection: close\r\n\r\n");
        let answer = raw_within(pki, port, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{}",
            &answer[..answer.len().min(200)]
        );
    });
}

/// A `limits.max_head_bytes` below 16 KiB holds on the proxy's own path
/// (a plain GET) as on hyper's (a POST): a head over it gets 431 on both.
/// Before, the own path served GET heads up to 16 KiB whatever the
/// setting (found by an outside trial).
#[test]
fn a_small_head_limit_holds_for_plain_gets_too() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(
            &files.config(port, upstream, "max_head_bytes = 8192\n"),
            port,
        );
        let filler = "v".repeat(10 * 1024);
        for method in ["GET", "POST"] {
            let body = if method == "POST" {
                "Content-Length: 0\r\n"
            } else {
                ""
            };
            let request = format!(
                "{method} / HTTP/1.1\r\nHost: localhost\r\nx-filler: {filler}\r\n{body}Connection: close\r\n\r\n"
            );
            let answer = raw_within(pki, port, request.as_bytes(), Duration::from_secs(5)).await;
            assert!(
                answer.starts_with("HTTP/1.1 431"),
                "{method}: {}",
                &answer[..answer.len().min(200)]
            );
        }
    });
}

/// Heads hyper answers by itself (400 for one it cannot parse, 431 for one
/// over the limit) never reach the proxy's service, yet each gets its
/// access-log line, with `-` for the method and path it never read, and
/// is counted in `requests_total`. Before, neither showed anywhere.
#[test]
fn heads_refused_before_the_proxy_are_logged_and_counted() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let (config, admin) = files.config_with_admin("refused.toml", port, upstream, &[]);
        let log = files.path("access.log");
        let _proxy = Proxy::start_logging(&config, port, &log);
        let mut oversized = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
        for index in 0..10 {
            let _ = write!(oversized, "x-filler-{index}: {}\r\n", "v".repeat(8 * 1024));
        }
        oversized.push_str("\r\n");
        for (request, status) in [
            ("GET / HTTP/1.1\r\nHost : localhost\r\n\r\n".to_owned(), 400),
            (oversized, 431),
        ] {
            let answer = raw_within(pki, port, request.as_bytes(), Duration::from_secs(5)).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{}",
                &answer[..answer.len().min(200)]
            );
        }
        let started = Instant::now();
        while std::fs::read_to_string(&log).map_or(0, |text| text.lines().count()) < 2 {
            assert!(started.elapsed() < Duration::from_secs(5), "no lines");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = std::fs::read_to_string(&log).expect("access log");
        let lines = json_lines(&text);
        assert_eq!(lines.len(), 2, "{text}");
        let mut lines: Vec<_> = lines.iter().collect();
        lines.sort_by_key(|line| line["status"].as_u64());
        for (line, status) in lines.into_iter().zip([400, 431]) {
            assert_eq!(line["status"], status, "{text}");
            assert_eq!(line["method"], "-", "{text}");
            assert_eq!(line["path"], "-", "{text}");
            assert_eq!(line["auth"], "none", "{text}");
            assert_eq!(
                line["remote"]
                    .as_str()
                    .map(|remote| remote.starts_with("127.0.0.1:")),
                Some(true)
            );
            assert!(
                line["error"]
                    .as_str()
                    .is_some_and(|error| error.starts_with("the request head was refused: ")),
                "{text}"
            );
        }
        let metrics = get_body(
            &browser(pki, false),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        let refused =
            "rca_proxy_requests_total{status_class=\"4xx\",method=\"other\",path=\"none\"} 2";
        assert!(metrics.lines().any(|line| line == refused), "{metrics}");
        // Not timed: when such a head began to arrive is not known.
        let timed = "rca_proxy_request_duration_seconds_count{path=\"none\"}";
        assert!(!metrics.contains(timed), "{metrics}");
    });
}

/// A request body that sends nothing for `limits.body_timeout_secs` fails
/// with 408 and gives its upstream connection back; a malformed chunked
/// body gets 400, not 502, and is not counted as an upstream error.
/// Before, a trickled body held its upstream slot with no limit, and a
/// broken chunk was the upstream's fault (502).
#[test]
fn a_stalled_body_gets_408_and_a_malformed_one_400() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let admin = free_port();
        let config = files.config(
            port,
            upstream,
            &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
        );
        let config = std::fs::read_to_string(&config)
            .expect("config")
            .replace(
                "[limits]\n",
                "[limits]\nbody_timeout_secs = 1\n",
            );
        let config = files.write("body.toml", &config);
        let _proxy = Proxy::start(&config, port);
        // `/trailers` reads the whole body before it answers.
        let started = Instant::now();
        let answer = raw_within(
            pki,
            port,
            b"POST /trailers HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nx",
            Duration::from_secs(5),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
        let answer = raw_within(
            pki,
            port,
            b"POST /trailers HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
            Duration::from_secs(5),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let metrics = get_body(&browser(pki, true), &format!("http://127.0.0.1:{admin}/metrics")).await;
        assert!(!metrics.contains("rca_proxy_upstream_errors_total{"), "{metrics}");
    });
}

/// When the proxy answers a HEAD itself (here 502: the upstream is down),
/// the answer has the length of its text and no text. Before, the own
/// HTTP/1.1 path sent the 28 bytes, which a keep-alive client reads as the
/// start of the next response.
#[test]
fn the_proxys_own_answer_to_head_has_no_body() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let down: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, down, ""), port);
        for method in ["HEAD", "GET"] {
            let answer = raw_within(
                pki,
                port,
                format!("{method} / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
                Duration::from_secs(5),
            )
            .await;
            assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
            let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
            assert!(
                head.to_lowercase().contains("content-length: 28"),
                "{answer}"
            );
            assert_eq!(body.is_empty(), method == "HEAD", "{method}: {answer}");
        }
    });
}

/// `limits.max_body_bytes` (nginx's `client_max_body_size`): a body over it
/// gets 413, unread when its length is declared (HTTP/1.1 and HTTP/2), and
/// as soon as it passes the limit when it is not (chunked, or an HTTP/2
/// body without `content-length`); one at the limit is served. The access
/// log says why, and no upstream error is counted.
#[test]
fn a_body_over_the_limit_gets_413() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let (config, admin) = files.config_with_admin(
            "max-body.toml",
            port,
            upstream,
            &[("limits", "max_body_bytes = 1000")],
        );
        let log = files.path("max-body.log");
        let proxy = Proxy::start_logging(&config, port, &log);
        let request_to_trailers = |framing: &str, body: &str| {
            format!("POST /trailers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{framing}\r\n{body}")
                .into_bytes()
        };
        let wait = Duration::from_secs(5);
        // Declared, over: refused unread.
        let over = "x".repeat(2000);
        let answer = raw_within(pki, port, &request_to_trailers("Content-Length: 2000\r\n", &over), wait).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.ends_with("the request body is too large\n"), "{answer}");
        // At the limit: served (`/trailers` reads it all).
        let full = "x".repeat(1000);
        let answer = raw_within(pki, port, &request_to_trailers("Content-Length: 1000\r\n", &full), wait).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Chunked, over once the second chunk is in.
        let chunks = format!("2ee\r\n{0}\r\n2ee\r\n{0}\r\n0\r\n\r\n", "y".repeat(750));
        let answer = raw_within(pki, port, &request_to_trailers("Transfer-Encoding: chunked\r\n", &chunks), wait).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

        // HTTP/2: declared (reqwest sends content-length), and streamed.
        let client = browser(pki, false);
        let response = client
            .post(proxy.url("/trailers"))
            .body(over.clone())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 413);
        assert_eq!(post_streamed_h2(pki, port).await, 413);
        // Each refusal logged with why: two declared, two streamed.
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let refused = text
                .matches("the request body is longer than the 1000 bytes allowed")
                .count();
            let declared = text.matches("(limits.max_body_bytes; declared: 2000 bytes)").count();
            if (refused, declared) == (4, 2) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let metrics = get_body(&browser(pki, true), &format!("http://127.0.0.1:{admin}/metrics")).await;
        assert!(!metrics.contains("rca_proxy_upstream_errors_total{"), "{metrics}");
    });
}

/// POSTs 1,600 bytes to `/trailers` over HTTP/2 in four parts, without
/// `content-length`; the status.
async fn post_streamed_h2(pki: &TestPki, port: u16) -> u16 {
    let tls = tls_connect(pki, port, b"h2").await;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2");
    let connection = tokio::spawn(connection);
    let (mut feed, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
    tokio::spawn(async move {
        for _ in 0..4 {
            if feed.send_data(Bytes::from(vec![b'z'; 400])).await.is_err() {
                return;
            }
        }
    });
    let request = Request::post("https://localhost/trailers")
        .body(body)
        .expect("request");
    let response = sender.send_request(request).await.expect("an answer");
    connection.abort();
    response.status().as_u16()
}

/// Over h2c too, a streamed body over the limit gets 413 and counts no
/// upstream error, though hyper's HTTP/2 client keeps the body's error to
/// itself (it resets the stream): the body records why it failed. Before,
/// this was a 502 and an `unreachable` upstream error (and so were a
/// stalled body's 408 and a malformed one's 400).
#[test]
fn a_streamed_body_over_the_limit_gets_413_over_h2c_too() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let (config, admin) = files.config_with_admin(
            "max-body-h2c.toml",
            port,
            upstream,
            &[
                ("upstream", "protocol = \"h2c\""),
                ("limits", "max_body_bytes = 1000"),
            ],
        );
        let _proxy = Proxy::start(&config, port);
        assert_eq!(post_streamed_h2(pki, port).await, 413);
        let metrics = get_body(
            &browser(pki, true),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        assert!(
            !metrics.contains("rca_proxy_upstream_errors_total{"),
            "{metrics}"
        );
    });
}

/// POSTs `size` bytes to `path` over HTTP/1.1 as most clients do (the whole
/// body without waiting, no `Expect: 100-continue`), then reads the start of
/// the answer. Panics if the upload breaks off.
async fn upload_then_read(pki: &TestPki, port: u16, path: &str, size: usize) -> String {
    let mut tls = tls_connect(pki, port, b"http/1.1").await;
    let head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n");
    tls.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'u'; 64 * 1024];
    for _ in 0..size / chunk.len() {
        tls.write_all(&chunk)
            .await
            .unwrap_or_else(|error| panic!("{path}: the upload broke off: {error}"));
    }
    tls.flush().await.expect("flush");
    let mut answer = vec![0; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// A client that sends its body without waiting reads the answer the proxy
/// gave without forwarding it all (413 over `limits.max_body_bytes`, 403 of
/// the bots-only policy, 400 for a target it refuses, 502 when the upstream
/// is down; and, once it was asked for, a body sent after `100 Continue`)
/// after it has sent it all: the proxy reads the body on and throws it
/// away rather than closing with it unread, which made the kernel reset the
/// connection (the upload failed with a broken pipe) and could lose the
/// answer.
#[test]
fn a_client_still_uploading_reads_the_proxys_answer() {
    // More than loopback's socket buffers take: without the fix the
    // upload broke off after about 4 MiB.
    const SIZE: usize = 8 * 1024 * 1024;
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config_with(
            "max-body-upload.toml",
            port,
            upstream,
            "limits",
            "max_body_bytes = 1048576",
        );
        let _proxy = Proxy::start(&config, port);
        for (path, status) in [
            ("/trailers", "413"),
            ("/api/crawl", "403"),
            ("/x%252e", "400"),
        ] {
            let answer = upload_then_read(pki, port, path, SIZE).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{path}: {answer}"
            );
        }
        // A client that waits for `100 Continue` (as curl does for large
        // bodies) and then sends its body chunked: once asked for, the
        // body is read on past the limit too.
        let mut tls = tls_connect(pki, port, b"http/1.1").await;
        tls.write_all(
            b"POST /trailers HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .expect("head");
        let mut interim = vec![0; 25];
        tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut interim))
            .await
            .expect("100 Continue within 10 s")
            .expect("read");
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        let chunk = format!("10000\r\n{}\r\n", "c".repeat(0x10000));
        for _ in 0..SIZE / 0x10000 {
            tls.write_all(chunk.as_bytes())
                .await
                .unwrap_or_else(|error| panic!("100-continue: the upload broke off: {error}"));
        }
        tls.write_all(b"0\r\n\r\n").await.expect("last chunk");
        let mut answer = vec![0; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut answer))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 413"), "100-continue: {answer}");
        let nothing = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let down = free_port();
        let _proxy = Proxy::start(&files.config(down, nothing, ""), down);
        let answer = upload_then_read(pki, down, "/upload", SIZE).await;
        assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    });
}
