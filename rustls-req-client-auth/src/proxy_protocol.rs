//! The PROXY protocol (HAProxy's, versions 1 and 2) in front of the TLS
//! handshake: a layer-4 load balancer says which client a connection is
//! for, so the address logged and forwarded is the client's, not the
//! balancer's. Headers are parsed by the `ppp` crate; this module reads
//! exactly the header's bytes off the socket, so the TLS handshake that
//! follows starts where it should.
//!
//! Only connections from the configured networks may send a header, and
//! each of them must: a header from anyone else would let a client claim
//! any address, and a balancer's connection without one is a
//! misconfiguration better refused than served under the balancer's
//! address.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest header read: a version 1 header is at most 107 bytes; a
/// version 2 one is 16 bytes and its addresses and TLVs, which balancers
/// keep to a few hundred (HAProxy's own limit for what it accepts is 536,
/// its TLVs included).
const MAX_HEADER: usize = 1024;

/// How long to wait before looking again at a header that has come in
/// part (`peek` returns at once while any byte is waiting): at first, and
/// at most, doubling in between, so a header sent in pieces is read at
/// once and one that trickles costs little.
const PARTIAL_WAIT: Duration = Duration::from_millis(5);
const PARTIAL_WAIT_MAX: Duration = Duration::from_millis(100);

/// The longest version 1 header, its `\r\n` included.
const MAX_V1_HEADER: usize = 107;

/// Who may send a PROXY protocol header.
#[derive(Clone, Debug)]
pub(crate) struct ProxyProtocol {
    pub(crate) from: Vec<IpNet>,
}

/// Why a connection was closed before its handshake.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It came from outside the configured networks.
    Untrusted,
    /// Its header was missing, malformed or too long.
    Malformed(String),
    /// No whole header came within the time.
    TimedOut(Duration),
    /// The socket failed.
    Io(io::Error),
}

impl Refused {
    /// Why, in one word: `untrusted`, `malformed`, `timeout` or `io`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Malformed(_) => "malformed",
            Self::TimedOut(_) => "timeout",
            Self::Io(_) => "io",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untrusted => f.write_str(
                "connection closed: not from a network allowed to send the PROXY protocol",
            ),
            Self::Malformed(why) => write!(f, "connection closed: PROXY protocol header {why}"),
            Self::TimedOut(timeout) => write!(
                f,
                "connection closed: no whole PROXY protocol header within {timeout:?}"
            ),
            Self::Io(error) => write!(f, "connection closed reading the PROXY protocol: {error}"),
        }
    }
}

impl ProxyProtocol {
    /// Reads the header `tcp` from `peer` starts with; the client address it
    /// carries, or `peer` for a header that names none (a balancer's own
    /// health check: v2 `LOCAL`, v1 `UNKNOWN`). It must be done by
    /// `deadline`, `timeout` after the connection came (said in the error).
    pub(crate) async fn read(
        &self,
        tcp: &mut TcpStream,
        peer: SocketAddr,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<SocketAddr, Refused> {
        if !self.allows(peer.ip()) {
            return Err(Refused::Untrusted);
        }
        match tokio::time::timeout_at(deadline, read_header(tcp)).await {
            // `::ffff:a.b.c.d` as `a.b.c.d`, as it is logged and forwarded
            // for a direct client.
            Ok(Ok(Some(client))) => Ok(SocketAddr::new(client.ip().to_canonical(), client.port())),
            Ok(Ok(None)) => Ok(peer),
            Ok(Err(refused)) => Err(refused),
            Err(_) => Err(Refused::TimedOut(timeout)),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 balancer seen through an IPv6 socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.from
            .iter()
            .any(|net| net.contains(&ip) || canonical(*net).is_some_and(|net| net.contains(&ip)))
    }
}

/// `net` if it is written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`), as
/// the IPv4 network it means: peers are matched as IPv4.
fn canonical(net: IpNet) -> Option<IpNet> {
    let IpNet::V6(v6) = net else {
        return None;
    };
    let v4 = v6.addr().to_ipv4_mapped()?;
    let prefix = v6.prefix_len().checked_sub(96)?;
    ipnet::Ipv4Net::new(v4, prefix).ok().map(IpNet::V4)
}

/// The header's client address (none for a header without one), its bytes
/// taken off the socket and nothing after them.
async fn read_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, Refused> {
    let mut buf = vec![0; MAX_HEADER];
    let mut wait = PARTIAL_WAIT;
    loop {
        let seen = tcp.peek(&mut buf).await.map_err(Refused::Io)?;
        if seen == 0 {
            return Err(Refused::Malformed(
                "missing: the connection closed".to_owned(),
            ));
        }
        let parsed = parse(&buf[..seen]);
        if parsed.is_incomplete() || unfinished_v1(&buf[..seen]) {
            if seen == MAX_HEADER {
                return Err(Refused::Malformed(format!(
                    "longer than {MAX_HEADER} bytes"
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(PARTIAL_WAIT_MAX);
            continue;
        }
        let (length, client) = match parsed {
            HeaderResult::V2(Ok(header)) => {
                // ppp reads TLVs only when asked: one running past the
                // header's end was taken (found by an outside trial).
                if let Some(Err(error)) = header.tlvs().find(Result::is_err) {
                    return Err(Refused::Malformed(format!(
                        "version 2 header with a malformed TLV: {error}"
                    )));
                }
                (header.len(), v2_client(&header))
            }
            HeaderResult::V1(Ok(header)) => (header.header.len(), v1_client(&header)),
            HeaderResult::V2(Err(v2::ParseError::Version(byte))) => {
                // ppp prints the version's whole byte, in hex ("30").
                return Err(Refused::Malformed(format!(
                    "version 2 signature with version {} (only 2 exists)",
                    byte >> 4
                )));
            }
            HeaderResult::V2(Err(error)) => {
                return Err(Refused::Malformed(format!(
                    "malformed version 2 header: {error}"
                )))
            }
            HeaderResult::V1(Err(error)) => {
                return Err(Refused::Malformed(format!("missing or malformed: {error}")))
            }
        };
        let mut header = vec![0; length];
        tcp.read_exact(&mut header).await.map_err(Refused::Io)?;
        return Ok(client);
    }
}

/// `bytes` parsed as the header they begin: as version 2 when they begin
/// with its signature (ppp's own dispatch would try version 1 after a
/// version 2 error, and report that instead of what is wrong).
fn parse(bytes: &[u8]) -> HeaderResult<'_> {
    if bytes.starts_with(v2::PROTOCOL_PREFIX) {
        HeaderResult::V2(v2::Header::try_from(bytes))
    } else {
        HeaderResult::parse(bytes)
    }
}

/// Whether `bytes` are the start of a version 1 header still short of its
/// line end: ppp takes some of these cut points (right after the space
/// that follows the source port) for a malformed header rather than an
/// incomplete one. (A header with a CR or LF is ppp's to judge.)
fn unfinished_v1(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PROXY ")
        && bytes.len() < MAX_V1_HEADER
        && !bytes.iter().any(|&byte| byte == b'\r' || byte == b'\n')
}

fn v2_client(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v2::Addresses::IPv6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

fn v1_client(header: &v1::Header<'_>) -> Option<SocketAddr> {
    match header.addresses {
        v1::Addresses::Tcp4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v1::Addresses::Tcp6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v1::Addresses::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Sends `bytes` in `pieces` and what follows; what the reader saw.
    async fn exchange(from: &[&str], pieces: &[&[u8]]) -> (Result<SocketAddr, Refused>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|piece| piece.to_vec()).collect();
        let sender = tokio::spawn(async move {
            let mut tcp = TcpStream::connect(address).await.expect("connect");
            for piece in pieces {
                tcp.write_all(&piece).await.expect("write");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tcp.write_all(b"after").await.expect("write");
            tcp.shutdown().await.expect("shutdown");
        });
        let (mut tcp, peer) = listener.accept().await.expect("accept");
        let protocol = ProxyProtocol {
            from: from
                .iter()
                .map(|net| net.parse().expect("network"))
                .collect(),
        };
        let timeout = Duration::from_secs(5);
        let deadline = tokio::time::Instant::now() + timeout;
        let read = protocol.read(&mut tcp, peer, deadline, timeout).await;
        let mut rest = Vec::new();
        if read.is_ok() {
            tcp.read_to_end(&mut rest).await.expect("rest");
        }
        sender.await.expect("sender");
        (read, rest)
    }

    #[tokio::test]
    async fn headers_are_read_exactly_in_either_version_and_in_pieces() {
        let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 40123 443\r\n";
        let (client, rest) = exchange(&["127.0.0.0/8"], &[&v1[..10], &v1[10..]]).await;
        assert_eq!(client.expect("v1").to_string(), "192.0.2.7:40123");
        assert_eq!(rest, b"after");
        // Cut at every point, right after the source port among them.
        for cut in 1..v1.len() {
            let (client, rest) = exchange(&["127.0.0.0/8"], &[&v1[..cut], &v1[cut..]]).await;
            assert_eq!(
                client.map(|client| client.to_string()).ok().as_deref(),
                Some("192.0.2.7:40123"),
                "cut at {cut}"
            );
            assert_eq!(rest, b"after", "cut at {cut}");
        }

        let addresses: v2::Addresses = (
            "[2001:db8::7]:40124"
                .parse::<SocketAddr>()
                .expect("address"),
            "[2001:db8::1]:443".parse::<SocketAddr>().expect("address"),
        )
            .into();
        let v2 = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            addresses,
        )
        .build()
        .expect("v2 header");
        let (client, rest) = exchange(&["127.0.0.1/32"], &[&v2[..5], &v2[5..]]).await;
        assert_eq!(client.expect("v2").to_string(), "[2001:db8::7]:40124");
        assert_eq!(rest, b"after");

        let local = v2::Builder::new(
            v2::Version::Two | v2::Command::Local,
            v2::AddressFamily::Unspecified | v2::Protocol::Unspecified,
        )
        .build()
        .expect("v2 LOCAL");
        let (client, _) = exchange(&["127.0.0.1/32"], &[&local]).await;
        assert!(client.expect("LOCAL").ip().is_loopback());
    }

    #[tokio::test]
    async fn others_and_garbage_are_refused() {
        let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 40123 443\r\n";
        let (refused, _) = exchange(&["10.0.0.0/8"], &[v1]).await;
        assert!(matches!(refused, Err(Refused::Untrusted)), "{refused:?}");
        // An IPv4 network written IPv4-mapped is the same network.
        let (mapped, _) = exchange(&["::ffff:127.0.0.0/104"], &[v1]).await;
        assert!(mapped.is_ok(), "{mapped:?}");
        // A TLS ClientHello where the header should be.
        let (refused, _) = exchange(&["127.0.0.0/8"], &[b"\x16\x03\x01\x02\x00\x01"]).await;
        assert!(matches!(refused, Err(Refused::Malformed(_))), "{refused:?}");
        let (refused, _) = exchange(&["127.0.0.0/8"], &[&[b'P'; MAX_HEADER + 10]]).await;
        assert!(matches!(refused, Err(Refused::Malformed(_))), "{refused:?}");
        // A version 1 header too long for one, without its end.
        let mut long = b"PROXY ".to_vec();
        long.extend_from_slice(&[b'1'; 120]);
        let (refused, _) = exchange(&["127.0.0.0/8"], &[&long]).await;
        assert!(matches!(refused, Err(Refused::Malformed(_))), "{refused:?}");
        // A version 2 header of version 3: refused for what is wrong with
        // it, not as a version 1 header that does not start with PROXY.
        let why = malformed(&version_3_header()).await;
        assert!(
            !why.contains("PROXY") && why.to_lowercase().contains("version"),
            "{why}"
        );
    }

    /// A version 2 header whose TLV runs past its end is refused, and one
    /// of another version is told by its number (found by an outside
    /// trial: the first was taken, the second said "version 30").
    #[tokio::test]
    async fn broken_version_2_headers_are_told_apart() {
        let mut truncated = v2::PROTOCOL_PREFIX.to_vec();
        // PROXY over TCP/IPv4, 12 bytes of addresses and a TLV header that
        // claims 10 bytes it does not have.
        truncated.extend_from_slice(&[0x21, 0x11, 0x00, 0x0f]);
        truncated.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb]);
        truncated.extend_from_slice(&[0xea, 0x00, 0x0a]);
        let why = malformed(&truncated).await;
        assert!(why.contains("TLV"), "{why}");
        let why = malformed(&version_3_header()).await;
        assert!(why.contains("with version 3 "), "{why}");
    }

    /// Why `header`, from an allowed peer, is refused as malformed.
    async fn malformed(header: &[u8]) -> String {
        match exchange(&["127.0.0.0/8"], &[header]).await.0 {
            Err(Refused::Malformed(why)) => why,
            other => panic!("{other:?}"),
        }
    }

    /// A version 2 signature with version 3 in it (PROXY over TCP/IPv4).
    fn version_3_header() -> Vec<u8> {
        let mut v3 = v2::PROTOCOL_PREFIX.to_vec();
        v3.extend_from_slice(&[0x31, 0x11, 0x00, 0x0c]);
        v3.extend_from_slice(&[0; 12]);
        v3
    }
}
