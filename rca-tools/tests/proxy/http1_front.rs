//! The proxy's own HTTP/1.1 path for simple requests and its hand-over to
//! hyper: one connection carrying both kinds, in order, with the identity
//! headers set and the client's removed on either path.

use crate::support::*;

/// Three pipelined requests in one write: a GET (the proxy's own path), a
/// POST with a body (handed to hyper with the bytes read after it), a GET
/// (hyper's now). Each answer comes in order, and the upstream saw the
/// identity the proxy set, not the one the client sent.
#[test]
fn simple_requests_and_the_rest_share_a_connection_in_order() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut tls = tls_connect(pki, port, b"http/1.1").await;
        let requests = "GET /first HTTP/1.1\r\nHost: localhost\r\nX-Client-Auth-Path: flag\r\n\r\n\
            POST /second HTTP/1.1\r\nHost: localhost\r\nx_client_auth_path: flag\r\nContent-Length: 5\r\n\r\nhello\
            GET /third HTTP/1.1\r\nHost: localhost\r\nX-CLIENT-AUTH-PATH: flag\r\nConnection: close\r\n\r\n";
        tls.write_all(requests.as_bytes()).await.expect("send");
        let mut answers = String::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut answers))
            .await
            .expect("the proxy closes after the last request")
            .expect("read");
        assert_eq!(answers.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{answers}");
        let first = answers.find("GET /first").expect("the first echo");
        let second = answers.find("POST /second").expect("the second echo");
        let third = answers.find("GET /third").expect("the third echo");
        assert!(first < second && second < third, "{answers}");
        let paths: Vec<&str> = answers
            .lines()
            .filter(|line| line.to_ascii_lowercase().starts_with("x-client-auth-path"))
            .collect();
        assert_eq!(paths, ["x-client-auth-path: none"; 3], "{answers}");
        assert_eq!(echoed(&answers, "x_client_auth_path"), None);
    });
}

/// A response of unknown length from the upstream (an HTTP/1.0 server
/// that ends it by closing) reaches the client chunked, and the client's
/// connection stays open for the next request.
#[test]
fn a_response_ended_by_the_upstream_closing_goes_on_chunked() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let upstream = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for tcp in listener.incoming().take(2) {
                let Ok(mut tcp) = tcp else { return };
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if std::io::Read::read(&mut tcp, &mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = tcp.write_all(b"HTTP/1.0 200 OK\r\nx-up: 1\r\n\r\nuntil the end");
            }
        });
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let mut tls = tls_connect(pki, port, b"http/1.1").await;
        let mut answers = Vec::new();
        for request in [
            "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "GET /b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        ] {
            tls.write_all(request.as_bytes()).await.expect("send");
            let mut answer = Vec::new();
            while !answer.ends_with(b"0\r\n\r\n") {
                let mut buf = [0; 1024];
                let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
                    .await
                    .expect("an answer")
                    .expect("read");
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
                answer.extend_from_slice(&buf[..n]);
            }
            answers.push(String::from_utf8_lossy(&answer).into_owned());
        }
        // The upstream sent no `Date`: the proxy adds one (RFC 9110 section 6.6.1).
        let (head, chunks) = answers[0].split_once("\r\n\r\n").expect(&answers[0]);
        let (head, date) = head.split_once("\r\ndate: ").expect(head);
        assert_eq!(head, "HTTP/1.1 200 OK\r\nx-up: 1");
        assert!(
            date.ends_with(" GMT\r\ntransfer-encoding: chunked"),
            "{date}"
        );
        assert_eq!(dechunked(chunks), "until the end");
        assert!(
            answers[1].contains("connection: close\r\n"),
            "{}",
            answers[1]
        );
    });
}

/// The data of a chunked body (sizes without extensions).
fn dechunked(mut chunks: &str) -> String {
    let mut data = String::new();
    loop {
        let (size, rest) = chunks.split_once("\r\n").expect("a chunk-size line");
        let size = usize::from_str_radix(size, 16).expect("a hex size");
        if size == 0 {
            assert_eq!(rest, "\r\n");
            return data;
        }
        data.push_str(&rest[..size]);
        chunks = rest[size..]
            .strip_prefix("\r\n")
            .expect("CRLF after the data");
    }
}

/// A client that goes away while its response is still coming lets go of
/// the upstream connection at once: with one upstream connection allowed,
/// the next client is served instead of waiting for a body that never ends
/// (and getting 503).
#[test]
fn a_client_that_leaves_frees_its_upstream_connection() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config_with(
            "one.toml",
            port,
            upstream,
            "upstream",
            "max_connections = 1",
        );
        let _proxy = Proxy::start(&config, port);
        let mut leaving = tls_connect(pki, port, b"http/1.1").await;
        leaving
            .write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("first;") {
            let mut buf = [0; 1024];
            let n = leaving.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        // Gone without a word (no close_notify); the upstream's body is still open.
        drop(leaving);
        let answer = get_and_close(pki, port).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    });
}

/// A head longer than the proxy's own path reads (16 KiB) goes to hyper
/// whole: sent in pieces it is still answered, and one that never ends is
/// closed once the header-read timeout that began with it runs out, not a
/// second timeout later (hyper's timer would start again at the hand-over).
#[test]
fn a_long_head_keeps_the_time_it_began_with() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config_with(
            "long.toml",
            port,
            upstream,
            "limits",
            "header_read_timeout_secs = 1",
        );
        let _proxy = Proxy::start(&config, port);
        let value = "v".repeat(10 * 1024);

        let mut pieces = tls_connect(pki, port, b"http/1.1").await;
        for piece in [
            format!("GET /long HTTP/1.1\r\nHost: localhost\r\nx-one: {value}\r\n"),
            format!("x-two: {value}\r\n"),
            "Connection: close\r\n\r\n".to_owned(),
        ] {
            pieces.write_all(piece.as_bytes()).await.expect("send");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), pieces.read_to_string(&mut answer))
            .await
            .expect("answered and closed")
            .expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:.200}");
        assert_eq!(echoed(&answer, "x-two").as_deref(), Some(value.as_str()));

        let mut endless = tls_connect(pki, port, b"http/1.1").await;
        let began = Instant::now();
        endless
            .write_all(b"GET /long HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .expect("send");
        // Past 16 KiB late in the timeout; the head never ends.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let rest = format!("x-one: {value}\r\nx-two: {value}\r\n");
        let _ = endless.write_all(rest.as_bytes()).await;
        let mut seen = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), endless.read_to_end(&mut seen)).await;
        assert!(closed.is_ok(), "never closed");
        let after = began.elapsed();
        assert!(seen.is_empty(), "{:?}", String::from_utf8_lossy(&seen));
        assert!(
            after < Duration::from_millis(1600),
            "closed {after:?} after the head began: the timeout began again"
        );
    });
}
