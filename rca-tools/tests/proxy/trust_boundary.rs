//! The trust boundary's edges (issue 19): the target the upstream receives
//! is the one the policy judged, in canonical form; headers that re-route a
//! request upstream are the edge's only; a WebSocket 101 is passed on only
//! with the handshake's proof; client trailers never reach an h2c upstream;
//! a `Host` is a host. The differential test against real routers is
//! `tests/routers`.

use crate::support::*;

/// `request` as raw bytes over a TLS connection offering HTTP/1.1 (no
/// client certificate), and everything the proxy sends until it closes.
async fn raw(pki: &TestPki, port: u16, request: &str) -> String {
    let answer = raw_exchange(
        pki,
        port,
        b"http/1.1",
        request.as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET target` (the proxy's own HTTP/1.1 path) and `POST target` with an
/// empty body (hyper's path), with `Host: host` and the field lines
/// `fields`: each method and the answer to it.
async fn on_both_paths(
    pki: &TestPki,
    port: u16,
    target: &str,
    host: &str,
    fields: &str,
) -> [(&'static str, String); 2] {
    let mut answers = [("GET", String::new()), ("POST", String::new())];
    for (method, answer) in &mut answers {
        let body = if *method == "POST" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        *answer = raw(
            pki,
            port,
            &format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{fields}{body}Connection: close\r\n\r\n"),
        )
        .await;
    }
    answers
}

/// The first line of the upstream's echo: `METHOD target`.
fn forwarded_line(answer: &str) -> Option<&str> {
    let body = answer.split("\r\n\r\n").nth(1)?;
    // A chunked echo starts with its chunk size.
    let body = body
        .split_once("\r\n")
        .filter(|(size, _)| size.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .map_or(body, |(_, rest)| rest);
    body.lines().next()
}

/// Targets are rewritten into one form before they are judged and
/// forwarded, on the proxy's own HTTP/1.1 path (GET) and hyper's (a POST
/// with a body, and HTTP/2); what has no canonical form gets 400 and never
/// reaches the upstream. Before, `/api/crawl/..` was judged as `/api` and
/// forwarded as it was, to be routed to `/api/crawl` by routers that do not
/// resolve dot segments.
#[test]
fn targets_reach_the_upstream_in_canonical_form() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let rewritten = [
            ("/api/crawl/..", "/api/"),
            ("/api/crawl/%2e%2E", "/api/"),
            ("/api/crawl%2f..", "/api/"),
            ("/api/crawl/.%2E/x", "/api/x"),
            ("//evil.example/page", "/evil.example/page"),
            ("/a//b///c", "/a/b/c"),
            ("/%7euser/%70age?q=/../x", "/~user/page?q=/../x"),
            ("/plain?q=1", "/plain?q=1"),
            // Raw bytes that are not ASCII are escaped (gunicorn answers
            // 400 to them as sent).
            ("/caf\u{e9}/x?q=\u{e9}", "/caf%C3%A9/x?q=%C3%A9"),
        ];
        for (target, expected) in rewritten {
            for (method, answer) in on_both_paths(pki, port, target, "localhost", "").await {
                assert!(
                    answer.starts_with("HTTP/1.1 200"),
                    "{method} {target}: {answer}"
                );
                assert_eq!(
                    forwarded_line(&answer),
                    Some(format!("{method} {expected}").as_str()),
                    "{method} {target}: {answer}"
                );
            }
        }
        // Canonical, it is judged as the upstream will read it.
        for target in [
            "/api/x/../crawl",
            "/api/crawl/.",
            "/API/%63rawl//x",
            "/api%2Fcrawl",
            "/api/crawl.json",
            "/ap%C4%B1/crawl",
            "/AP%C4%B0/crawl",
            "/ap\u{131}/crawl",
        ] {
            let answer = raw(
                pki,
                port,
                &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(answer.starts_with("HTTP/1.1 403"), "{target}: {answer}");
        }
        for target in [
            "/api/crawl%0a",
            "/api/crawl%0D%0A",
            "/api/crawl%00",
            "/x%09/api/crawl",
            "/api/crawl/..;/",
            "/api/crawl/..%3B/x",
            "/api/crawl/.;x",
            "/api/crawl%",
            "/api/crawl%g1",
            "/api%252Fcrawl",
            "/api/x/%252e%252e/crawl",
        ] {
            for (method, answer) in on_both_paths(pki, port, target, "localhost", "").await {
                assert!(
                    answer.starts_with("HTTP/1.1 400"),
                    "{method} {target}: {answer}"
                );
                assert!(
                    !answer.contains("\nhost: "),
                    "reached the upstream: {answer}"
                );
            }
        }
        // A bot's request is rewritten the same way.
        let bot = bot_client_for(pki, &pki.bot);
        let echo = get_body(&bot, &proxy.url("/api/crawl/a/%2e%2e/b")).await;
        assert!(echo.starts_with("GET /api/crawl/b\n"), "{echo}");
        // HTTP/2: the same rewriting of `:path`.
        let (mut sender, _connection) = h2_connect(pki, port).await;
        for (target, expected) in [("/api/crawl/..", "/api/"), ("/x/%2e/y", "/x/y")] {
            let (status, echo) = h2_exchange(
                &mut sender,
                Request::get(format!("https://localhost:{port}{target}")),
            )
            .await;
            assert_eq!(status, 200, "{target}");
            assert!(
                echo.starts_with(&format!("GET {expected}\n")),
                "{target}: {echo}"
            );
        }
        let (status, _) = h2_exchange(
            &mut sender,
            Request::get(format!("https://localhost:{port}/api/crawl%0a")),
        )
        .await;
        assert_eq!(status, 400);
    });
}

/// A refused target is logged with what is not ASCII escaped, and a user
/// agent with what a viewer acts on escaped: a client's right-to-left
/// override, line separator or escape sequence never reaches a log viewer
/// as a character. A target too long once escaped gets 414.
#[test]
fn refused_targets_are_logged_in_ascii() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let log = files.path("access.log");
        let mut proxy = Proxy::start_logging(&files.config(port, upstream, ""), port, &log);
        let answer = raw(
            pki,
            port,
            "GET /\u{202e}\u{2028}x%zz HTTP/1.1\r\nHost: localhost\r\n\
             User-Agent: bot\u{202e}\u{2028}x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let accented = format!("/{}", "\u{e9}".repeat(20_000));
        let answer = raw(
            pki,
            port,
            &format!("GET {accented} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
        assert!(answer.contains("longer than 65,534 bytes"), "{answer}");
        proxy.signal("TERM");
        assert!(proxy.wait().success());
        let text = std::fs::read_to_string(&log).expect("access log");
        let lines = json_lines(&text);
        let first = &lines[0];
        assert_eq!(first["path"], "/%E2%80%AE%E2%80%A8x%zz", "{first}");
        // The client's user agent too, as a log viewer would not act on it.
        assert_eq!(first["user_agent"], "bot\\u{202e}\\u{2028}x", "{first}");
        assert!(text.is_ascii());
    });
}

/// Request headers that CGI/WSGI servers and framework middlewares read to
/// re-route a request or to learn who it is for never reach the upstream,
/// in any case and spelled with `_` or `-`, on both HTTP/1.1 paths and over
/// HTTP/2. Before, `SCRIPT_NAME: /x` reached gunicorn, which trusts it from
/// 127.0.0.1 and routes `/x/api/crawl` to `/api/crawl`.
#[test]
fn routing_headers_are_the_edges_only() {
    const ROUTING: [(&str, &str); 16] = [
        ("Client-IP", "10.6.6.6-forged"),
        ("CF-Connecting-IP", "10.6.6.7-forged"),
        ("X-Forwarded", "for=10.6.6.8-forged"),
        ("X-Original-Host", "host-forged"),
        ("SCRIPT_NAME", "/sn-forged"),
        ("Script-Name", "/sn2-forged"),
        ("PATH_INFO", "/pi-forged"),
        ("X-Script-Name", "/xsn-forged"),
        ("X-Forwarded-Prefix", "/xfp-forged"),
        ("REMOTE_USER", "ru-forged"),
        ("X-Original-URI", "/xou-forged"),
        ("X-HTTP-Method-Override", "DELETE-forged"),
        ("Request_URI", "/ru-forged"),
        ("Proxy", "http://proxy-forged"),
        ("X-Envoy-Original-Path", "/xeop-forged"),
        ("Front-End-Https", "on-forged"),
    ];
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let forged = ROUTING
            .iter()
            .fold(String::new(), |mut forged, (name, value)| {
                forged.push_str(name);
                forged.push_str(": ");
                forged.push_str(value);
                forged.push_str("\r\n");
                forged
            });
        for (method, answer) in on_both_paths(pki, port, "/x/api/crawl", "localhost", &forged).await
        {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(!answer.contains("forged"), "{method}: {answer}");
        }
        let (mut sender, _connection) = h2_connect(pki, port).await;
        let mut request = Request::get(format!("https://localhost:{port}/x/api/crawl"));
        for (name, value) in ROUTING {
            request = request.header(name.to_lowercase(), value);
        }
        let (status, echo) = h2_exchange(&mut sender, request).await;
        assert_eq!(status, 200);
        assert!(echo.contains("\nx-client-auth-path: none\n"), "{echo}");
        assert!(!echo.contains("forged"), "{echo}");
    });
}

/// An upstream that answers every request with 101 `websocket` (with
/// `accept` as its `Sec-WebSocket-Accept`, if any) and then, as a server
/// that never switched, goes on reading HTTP requests from the connection:
/// it reports on `requests` each further request line it reads.
async fn fake_switch_upstream(
    accept: Option<&'static str>,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (report, requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0; 4096];
                let mut answered = false;
                while let Ok(n @ 1..) = tcp.read(&mut buf).await {
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|four| four == b"\r\n\r\n") {
                        let head: Vec<u8> = seen.drain(..end + 4).collect();
                        let line = String::from_utf8_lossy(&head)
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        if answered {
                            let _ = report.send(line);
                            let _ = tcp
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .await;
                        } else {
                            answered = true;
                            let mut answer = String::from(
                                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                            );
                            if let Some(accept) = accept {
                                answer.push_str("Sec-WebSocket-Accept: ");
                                answer.push_str(accept);
                                answer.push_str("\r\n");
                            }
                            answer.push_str("\r\n");
                            let _ = tcp.write_all(answer.as_bytes()).await;
                        }
                    }
                }
            });
        }
    });
    (address, requests)
}

/// A 101 without the `Sec-WebSocket-Accept` of the client's key (missing,
/// or another key's) is not passed on: the client gets 502 and its
/// connection is closed, so nothing it sends after the handshake reaches an
/// upstream that went on reading HTTP. Before, the 101 was passed on and a
/// request sent through the "tunnel" reached the upstream unjudged, with a
/// forged identity header.
#[test]
fn a_101_without_the_handshakes_proof_is_not_passed_on() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        for accept in [None, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")] {
            let (upstream, mut requests) = fake_switch_upstream(accept).await;
            let port = free_port();
            let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
            let mut tls = tls_connect(pki, port, b"http/1.1").await;
            let smuggled = "GET /api/crawl HTTP/1.1\r\nHost: localhost\r\nX-Client-Auth-Path: flag\r\n\r\n";
            tls.write_all(
                format!(
                    "GET /socket HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n{smuggled}"
                )
                .as_bytes(),
            )
            .await
            .expect("send");
            let mut answer = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer))
                .await
                .expect("the proxy closes the connection");
            drop(read);
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 502"), "{accept:?}: {answer}");
            assert!(answer.to_lowercase().contains("connection: close"), "{answer}");
            assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                requests.try_recv().is_err(),
                "{accept:?}: a request reached the upstream through a fake tunnel"
            );
        }
        // The right proof passes, as `upgrades_pass_through` shows with the
        // test upstream; here the key's accept from RFC 6455's example.
        assert_eq!(websocket_accept(key.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let (upstream, _requests) = fake_switch_upstream(Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")).await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let (_tls, head) = open_tunnel(pki, port).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
    });
}

/// A client's trailer section never reaches an h2c upstream (nor an
/// HTTP/1.1 one, which never got trailers): before, `x-client-auth-path:
/// flag` and a forged subject in the trailers reached an h2c upstream.
#[test]
fn client_trailers_never_reach_the_upstream() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        for protocol in ["h2c", "http1"] {
            let port = free_port();
            let config = files.config_with(
                &format!("{protocol}.toml"),
                port,
                upstream,
                "upstream",
                &format!("protocol = \"{protocol}\""),
            );
            let _proxy = Proxy::start(&config, port);
            let answer = raw(
                pki,
                port,
                "POST /trailers HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
                 Trailer: X-Client-Auth-Path, X-Client-Cert-Subject, X-Other\r\nConnection: close\r\n\r\n\
                 5\r\nhello\r\n0\r\nX-Client-Auth-Path: flag\r\nX-Client-Cert-Subject: CN=forged\r\n\
                 X-Other: 1\r\n\r\n",
            )
            .await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{protocol}: {answer}");
            assert!(answer.contains("/trailers\n"), "{protocol}: {answer}");
            assert!(!answer.contains("trailer "), "{protocol}: {answer}");
        }
    });
}

/// An h2c upstream's trailers reach the client without the fields a
/// trailer section may not carry (framing, routing, hop-by-hop), as its
/// headers reach it without hop-by-hop ones.
#[test]
fn upstream_trailers_lose_what_trailers_may_not_carry() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let config = files.config_with(
            "h2c-trailers.toml",
            port,
            upstream,
            "upstream",
            "protocol = \"h2c\"",
        );
        let _proxy = Proxy::start(&config, port);
        let (mut sender, _connection) = h2_connect(pki, port).await;
        let request = http::Request::get(format!("https://localhost:{port}/response-trailers"))
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        let collected = response.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert!(trailers.contains_key("x-kept"), "{trailers:?}");
        for name in ["content-length", "host", "proxy-authenticate"] {
            assert!(!trailers.contains_key(name), "{name}: {trailers:?}");
        }
        assert_eq!(&collected.to_bytes()[..], b"body");
    });
}

/// A request body in a transfer coding besides `chunked` (`gzip,
/// chunked`) gets 501 and never reaches the upstream: de-chunked and framed
/// anew, its coding would be lost and the compressed bytes read as the
/// body. Chunked twice gets 400.
#[test]
fn transfer_codings_besides_chunked_are_not_passed_on() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        for coding in [
            "gzip, chunked",
            "GZIP,chunked",
            "chunked, chunked, x-custom, chunked",
            "chunked, chunked",
        ] {
            let answer = raw(
                pki,
                port,
                &format!(
                    "POST /coded HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: {coding}\r\n\
                     \r\n5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: localhost\r\n\r\n"
                ),
            )
            .await;
            let status = if coding.contains("x-custom") || coding.to_lowercase().contains("gzip") {
                "HTTP/1.1 501"
            } else {
                "HTTP/1.1 400"
            };
            assert!(answer.starts_with(status), "{coding}: {answer}");
            assert!(answer.contains("connection: close"), "{coding}: {answer}");
            assert!(
                !answer.contains("/coded") && !answer.contains("/after"),
                "{coding}: {answer}"
            );
        }
        // Chunked alone is passed on (to the path whose upstream reads the
        // body: one that answers unread closes with a reset, which can
        // take its answer with it).
        let answer = raw(
            pki,
            port,
            "POST /trailers HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    });
}

/// A `Host` (or an absolute target's authority) is `host[:port]` and
/// nothing else, and an absolute target names the `Host`'s host: userinfo, a
/// list and a second host get 400 and never reach `X-Forwarded-Host`.
#[test]
fn hosts_are_hosts() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let _proxy = Proxy::start(&files.config(port, upstream, ""), port);
        for (target, host) in [
            ("/", "user@localhost"),
            ("/", "localhost,evil.example"),
            ("/", "localhost:443:1"),
            ("http://evil.example/", "localhost"),
            ("http://user@localhost/", "localhost"),
        ] {
            for (method, answer) in on_both_paths(pki, port, target, host, "").await {
                assert!(
                    answer.starts_with("HTTP/1.1 400"),
                    "{method} {target} {host}: {answer}"
                );
                assert!(!answer.contains("x-forwarded-host"), "{answer}");
            }
        }
        // An absolute target that names the Host's host is served in
        // origin form.
        let answer = raw(
            pki,
            port,
            "GET http://localhost/page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(forwarded_line(&answer), Some("GET /page"), "{answer}");
        // Without a path it asks for `/`; without a Host it is refused.
        let answer = raw(
            pki,
            port,
            "GET http://localhost HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(forwarded_line(&answer), Some("GET /"), "{answer}");
        let answer = raw(
            pki,
            port,
            "GET http://evil.example/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(!answer.contains("evil.example"), "{answer}");
    });
}
