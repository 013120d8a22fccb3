//! `limits.max_connections_per_client`: one client address cannot open every
//! connection the proxy serves. Found by an outside attack: with
//! `max_connections = 50`, one address holding 50 idle keep-alive
//! connections locked every other client out, and at the default 10,000 one
//! Python client had reached 3,821 while the cap was still far off.

use super::support::*;
use tokio_rustls::client::TlsStream;

/// A TLS connection to the proxy on `port` from `local` (all of 127.0.0.0/8
/// is this machine), after `header` (a PROXY protocol header, or nothing):
/// the stream, or why the handshake failed.
async fn connect_from(
    pki: &TestPki,
    port: u16,
    local: Ipv4Addr,
    header: &[u8],
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((local, 0)))?;
    let mut tcp = socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await?;
    tcp.write_all(header).await?;
    let mut config = integration_tests::config::client(pki, integration_tests::Provider::AwsLcRs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(SERVER_NAME.try_into().expect("name"), tcp)
        .await
}

/// The status line of a `GET /` sent on `tls`, which is then closed.
async fn status_line(mut tls: TlsStream<tokio::net::TcpStream>) -> String {
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

/// With `max_connections_per_client = 2`, a third connection from the same
/// address is closed before its handshake, counted and logged (at most a
/// few lines a second), while another address is served; when one of the
/// two closes, the address may connect again.
#[test]
fn a_client_address_gets_its_connections_and_no_more() {
    runtime().block_on(async {
        let pki = TestPki::shared();
        let files = Files::new(pki);
        let upstream = start_upstream().await;
        let port = free_port();
        let (config, admin) = files.config_with_admin(
            "connections.toml",
            port,
            upstream,
            &[("limits", "max_connections_per_client = 2")],
        );
        let log = files.path("diagnostics.log");
        let _proxy = Proxy::start_with_diagnostics(&config, port, &log);
        let here = Ipv4Addr::LOCALHOST;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(
                connect_from(pki, port, here, b"")
                    .await
                    .expect("within the cap"),
            );
        }
        let third = connect_from(pki, port, here, b"").await;
        assert!(third.is_err(), "a third connection was served");
        let elsewhere = connect_from(pki, port, Ipv4Addr::new(127, 0, 0, 2), b"")
            .await
            .expect("another address has connections of its own");
        assert_eq!(status_line(elsewhere).await, "HTTP/1.1 200 OK");

        let lines = wait_for_line(&log, "2 connections open already");
        assert!(
            lines.contains("127.0.0.1:"),
            "the line names the client: {lines}"
        );
        let metrics = get_body(
            &browser(pki, false),
            &format!("http://127.0.0.1:{admin}/metrics"),
        )
        .await;
        let refused = "rca_proxy_handshake_failures_total{reason=\"client_connection_limit\"} 1\n";
        assert!(metrics.contains(refused), "{metrics}");

        // The held connections are served, and closing one gives its slot
        // back (once the proxy has seen it close).
        let first = held.remove(0);
        assert_eq!(status_line(first).await, "HTTP/1.1 200 OK");
        let started = Instant::now();
        let again = loop {
            if let Ok(tls) = connect_from(pki, port, here, b"").await {
                break tls;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no slot given back after a connection closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status_line(again).await, "HTTP/1.1 200 OK");
        drop(held);
    });
}

/// Behind a balancer that sends the PROXY protocol, connections are counted
/// by the client address the header carries, not the balancer's: all of
/// them come from 127.0.0.1 here.
#[test]
fn behind_the_proxy_protocol_the_carried_address_is_counted() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let config = files.config_with(
            "connections-behind.toml",
            port,
            upstream,
            "limits",
            "max_connections_per_client = 1",
        );
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            format!("{text}[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n"),
        )
        .expect("config");
        let _proxy = Proxy::start(&config, port);
        let here = Ipv4Addr::LOCALHOST;
        let header = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 50000 443\r\n");
        let held = connect_from(pki, port, here, header("192.0.2.1").as_bytes())
            .await
            .expect("the first of 192.0.2.1");
        let second = connect_from(pki, port, here, header("192.0.2.1").as_bytes()).await;
        assert!(second.is_err(), "a second of 192.0.2.1 was served");
        let other = connect_from(pki, port, here, header("192.0.2.2").as_bytes())
            .await
            .expect("192.0.2.2 through the same balancer");
        assert_eq!(status_line(other).await, "HTTP/1.1 200 OK");
        assert_eq!(status_line(held).await, "HTTP/1.1 200 OK");
    });
}
