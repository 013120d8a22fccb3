//! The proxy's HTTP/1.1 connections to the upstream (`rca_tools::proxy::back::pool`):
//! reused while the upstream keeps them open, replaced when it closes them,
//! whether it says so (`Connection: close`) or just closes an idle one.

use super::support::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a [`counting_upstream`] treats a connection after its first response.
#[derive(Clone, Copy)]
enum AfterResponse {
    /// Keeps it open for more requests.
    KeepAlive,
    /// Says `Connection: close` in the response, then closes it.
    SaysClose,
    /// Says nothing, waits this long and closes it (an idle timeout).
    ClosesWhenIdle(Duration),
}

/// An HTTP/1.1 upstream answering `ok` to every request, counting the
/// connections it accepted.
async fn counting_upstream(after: AfterResponse) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                loop {
                    let Ok(n @ 1..) = tcp.read(&mut buf).await else {
                        return;
                    };
                    request.extend_from_slice(&buf[..n]);
                    // The proxy sends these GETs without a body.
                    if !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        continue;
                    }
                    request.clear();
                    let close = match after {
                        AfterResponse::SaysClose => "connection: close\r\n",
                        _ => "",
                    };
                    let response =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n{close}\r\nok\n");
                    if tcp.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                    match after {
                        AfterResponse::KeepAlive => {}
                        AfterResponse::SaysClose => return,
                        AfterResponse::ClosesWhenIdle(idle) => {
                            tokio::time::sleep(idle).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, accepted)
}

async fn proxy_in_front_of(after: AfterResponse) -> (Proxy, Files, Arc<AtomicUsize>) {
    let pki = TestPki::shared();
    let files = Files::new(pki);
    let (upstream, accepted) = counting_upstream(after).await;
    let port = free_port();
    let proxy = Proxy::start(&files.config(port, upstream, ""), port);
    (proxy, files, accepted)
}

#[test]
fn one_upstream_connection_serves_a_keep_alive_client() {
    runtime().block_on(async {
        let (proxy, _files, accepted) = proxy_in_front_of(AfterResponse::KeepAlive).await;
        let client = browser(TestPki::shared(), true);
        for _ in 0..20 {
            assert_eq!(get_body(&client, &proxy.url("/")).await, "ok\n");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "each request after the first reuses the idle upstream connection"
        );
    });
}

#[test]
fn a_connection_the_upstream_closes_is_not_reused() {
    runtime().block_on(async {
        let (proxy, _files, accepted) = proxy_in_front_of(AfterResponse::SaysClose).await;
        let client = browser(TestPki::shared(), true);
        for _ in 0..5 {
            assert_eq!(get_body(&client, &proxy.url("/")).await, "ok\n");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5, "a new connection each");
    });
}

#[test]
fn an_idle_connection_the_upstream_closed_is_replaced() {
    runtime().block_on(async {
        let (proxy, _files, accepted) =
            proxy_in_front_of(AfterResponse::ClosesWhenIdle(Duration::from_millis(50))).await;
        let client = browser(TestPki::shared(), true);
        for _ in 0..3 {
            assert_eq!(get_body(&client, &proxy.url("/")).await, "ok\n");
            // Past the upstream's idle timeout: by the next request hyper has
            // seen the close, and the pool skips that connection.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "a new connection each");
    });
}

/// `upstream.idle_timeout_secs`: a connection idle that long is closed by the
/// proxy, not used again (so an upstream with a shorter keep-alive timeout
/// than the default never closes one under a request); one idle for less is
/// reused.
#[test]
fn a_connection_idle_for_the_idle_timeout_is_not_reused() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let (upstream, accepted) = counting_upstream(AfterResponse::KeepAlive).await;
        let port = free_port();
        let config = files.config_with(
            "idle.toml",
            port,
            upstream,
            "upstream",
            "idle_timeout_secs = 2",
        );
        let proxy = Proxy::start(&config, port);
        let client = browser(pki, true);
        for _ in 0..2 {
            assert_eq!(get_body(&client, &proxy.url("/")).await, "ok\n");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "reused while fresh");
        // Well past the timeout, counted from when the connection went back.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(get_body(&client, &proxy.url("/")).await, "ok\n");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the connection idle for the timeout was not used again"
        );
    });
}
