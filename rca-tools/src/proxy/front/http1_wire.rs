//! A client's HTTP/1.1 request head, read for the proxy's own path (see
//! [`crate::proxy::front::http1`]), without I/O: either the request is simple and is
//! rewritten here straight into the upstream's request head, or it is handed
//! to hyper, which reads the same bytes again and serves it as before.
//!
//! Simple means nothing this reader would have to judge: HTTP/1.1, a
//! method other than CONNECT, an origin-form target, exactly one valid
//! `Host`, and no body at all (neither `Content-Length` nor
//! `Transfer-Encoding`), no `Expect`, no upgrade, no `Connection` option but
//! `keep-alive` and `close`, and a path the policy lets this client reach.
//! Everything else, malformed heads included, goes to hyper: framing (and so
//! request smuggling) is never decided here, only the absence of a body,
//! which RFC 9112 section 6.3 (item 7) makes the length zero.
//!
//! The upstream head is the one the hyper path writes for the same request:
//! the client's fields but the hop-by-hop ones and every one only the proxy
//! may set ([`IdentityHeaders::is_claimed`]), `Host` as the authority read,
//! then the identity and forwarding headers.

use std::net::IpAddr;

use http::uri::{Authority, PathAndQuery};
use http::Method;
use rustls_req_client_auth::PeerIdentity;

use crate::common::fields::is_connection_field;
use crate::proxy::back::wire::{self, RequestFraming, MAX_HEADERS};
use crate::proxy::judge::identity::IdentityHeaders;
use crate::proxy::judge::policy::BotsOnly;

/// The longest head served here; a longer one is read on until it ends
/// ([`HeadEnd`]) or reaches hyper's limit, then handed to hyper, which
/// serves it or answers 431.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// What the start of a connection's unread bytes holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Not a whole head yet: read more.
    Partial,
    /// A request for hyper to serve, and why.
    HandOver(HandOver),
    /// A simple request, rewritten for the upstream.
    Forward(Forward),
}

/// Why a request is served by hyper instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandOver {
    /// httparse refused it, or it has more than [`MAX_HEADERS`] fields:
    /// hyper answers 400 or 431.
    Malformed,
    /// Its head is longer than [`MAX_HEAD`].
    Long,
    /// HTTP/1.0 (keep-alive works otherwise there).
    Http10,
    /// CONNECT, or a method `http` does not take.
    Method,
    /// Not origin form (`/...`), not a valid one, or one that cannot be
    /// made canonical ([`crate::proxy::front::target`]): hyper's path refuses it.
    Target,
    /// No `Host`, several, or one that is not `host[:port]`.
    Host,
    /// `Content-Length` or `Transfer-Encoding`: it may have a body.
    Body,
    /// `Expect`, `Upgrade`, `HTTP2-Settings`, or a `Connection` option
    /// other than `keep-alive` and `close`.
    Options,
    /// A path only flag-path clients may reach (hyper's path answers 403).
    Policy,
}

/// A simple request, ready for the upstream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Forward {
    /// How many bytes its head took.
    pub consumed: usize,
    /// Its method.
    pub method: Method,
    /// Its path, without the query (for the access log).
    pub path: String,
    /// The upstream's request head.
    pub head: Vec<u8>,
    /// The client asked to close the connection after it.
    pub close: bool,
    /// The host it addresses (for the access log).
    pub host: Authority,
    /// Its `User-Agent` (for the access log).
    pub user_agent: Option<String>,
}

/// What a request is rewritten with.
#[derive(Debug)]
pub(crate) struct Rewrite<'a> {
    /// The identity headers' names and values.
    pub identity: &'a IdentityHeaders,
    /// The paths only flag-path clients may reach.
    pub bots_only: &'a BotsOnly,
    /// Who the client is.
    pub peer: &'a PeerIdentity,
    /// Its address.
    pub client_ip: IpAddr,
    /// The connection's identity and forwarding lines, as last written.
    pub lines: &'a mut IdentityLines,
}

/// The identity and forwarding field lines of one connection, made again
/// only when the host the client addresses changes: the peer and its address
/// are the connection's, so the lines are the same for every request to one
/// host (about 2,500 instructions a request when made each time).
#[derive(Debug, Default)]
pub(crate) struct IdentityLines {
    host: String,
    lines: Vec<u8>,
}

impl IdentityLines {
    fn write(
        &mut self,
        out: &mut Vec<u8>,
        identity: &IdentityHeaders,
        peer: &PeerIdentity,
        client_ip: IpAddr,
        host: &str,
    ) {
        if self.lines.is_empty() || self.host != host {
            self.lines.clear();
            identity.write_http1(&mut self.lines, peer, client_ip, Some(host));
            host.clone_into(&mut self.host);
        }
        out.extend_from_slice(&self.lines);
    }
}

/// Fields that make a request someone else's to serve.
const NOT_SIMPLE: [(&str, HandOver); 5] = [
    ("content-length", HandOver::Body),
    ("transfer-encoding", HandOver::Body),
    ("expect", HandOver::Options),
    ("upgrade", HandOver::Options),
    ("http2-settings", HandOver::Options),
];

/// Where the end of a long head is looked for: a head longer than
/// [`MAX_HEAD`] is read on until it ends (or reaches hyper's limit) before it
/// is handed over, so hyper's header-read timeout does not start again for a
/// head whose time is already running. Each look starts where the last one
/// stopped, so a head trickled in small records costs no more than once.
#[derive(Debug, Default)]
pub(crate) struct HeadEnd {
    /// Bytes before this hold no end.
    looked: usize,
    /// The empty lines httparse skips before a request line are behind.
    begun: bool,
}

impl HeadEnd {
    /// Whether the head at the start of `buf` (the same buffer as at the
    /// last look, grown) has ended: an empty line after its request line,
    /// with the line ends httparse takes (`\r\n`, or `\n` alone).
    pub(crate) fn found(&mut self, buf: &[u8]) -> bool {
        let unseen = buf.get(self.looked..).unwrap_or_default();
        if !self.begun {
            match unseen
                .iter()
                .position(|byte| !matches!(byte, b'\r' | b'\n'))
            {
                None => {
                    self.looked = buf.len();
                    return false;
                }
                Some(blank) => {
                    self.looked += blank;
                    self.begun = true;
                }
            }
        }
        let from = self.looked;
        let unseen = buf.get(from..).unwrap_or_default();
        let ended = memchr::memmem::find(unseen, b"\n\n").is_some()
            || memchr::memmem::find(unseen, b"\n\r\n").is_some();
        // An end may begin in the last two bytes and finish in the next read.
        self.looked = buf.len().saturating_sub(2).max(from);
        ended
    }
}

/// Reads the request head at the start of `buf`; one longer than
/// `max_head` (`limits.max_head_bytes`) or [`MAX_HEAD`] is handed over,
/// so hyper answers 431 where it is over the first (a head between the
/// two was served here, whatever the setting: found by an outside trial).
#[must_use]
pub(crate) fn read_request(buf: &[u8], rewrite: &mut Rewrite<'_>, max_head: usize) -> Reading {
    let limit = max_head.min(MAX_HEAD);
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let consumed = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(consumed)) if consumed <= limit => consumed,
        Ok(httparse::Status::Complete(_)) => return Reading::HandOver(HandOver::Long),
        Ok(httparse::Status::Partial) if buf.len() > limit => {
            return Reading::HandOver(HandOver::Long)
        }
        Ok(httparse::Status::Partial) => return Reading::Partial,
        Err(_) => return Reading::HandOver(HandOver::Malformed),
    };
    match rewritten(&request, rewrite) {
        Ok(forward) => Reading::Forward(Forward {
            consumed,
            ..forward
        }),
        Err(why) => Reading::HandOver(why),
    }
}

fn rewritten(
    request: &httparse::Request<'_, '_>,
    rewrite: &mut Rewrite<'_>,
) -> Result<Forward, HandOver> {
    if request.version != Some(1) {
        return Err(HandOver::Http10);
    }
    let method = request
        .method
        .and_then(|method| Method::from_bytes(method.as_bytes()).ok())
        .filter(|method| *method != Method::CONNECT)
        .ok_or(HandOver::Method)?;
    let target = request.path.unwrap_or_default();
    if !target.starts_with('/') {
        return Err(HandOver::Target);
    }
    // Parsed as hyper's path parses it, so both read a target the same way:
    // a fragment is dropped (the policy must not see `/api/crawl#x` as
    // another path than the upstream will).
    let target = PathAndQuery::try_from(target).map_err(|_| HandOver::Target)?;
    // The policy judges, and the upstream gets, the canonical form; hyper's
    // path refuses what has none.
    let target =
        crate::proxy::front::target::canonical(target.as_str()).map_err(|_| HandOver::Target)?;
    let path = target.split('?').next().unwrap_or_default();
    if rewrite.bots_only.covers(path) && !rewrite.peer.is_flag_path() {
        return Err(HandOver::Policy);
    }
    let mut host = None;
    let mut close = false;
    let mut user_agent = None;
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        if let Some((_, why)) = NOT_SIMPLE
            .iter()
            .find(|(other, _)| name.eq_ignore_ascii_case(other.as_bytes()))
        {
            return Err(*why);
        }
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Err(HandOver::Host);
            }
            let value = std::str::from_utf8(field.value).map_err(|_| HandOver::Host)?;
            if !crate::proxy::front::target::is_host(value) {
                return Err(HandOver::Host);
            }
            host = Some(Authority::try_from(value).map_err(|_| HandOver::Host)?);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent = Some(String::from_utf8_lossy(field.value).into_owned());
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in crate::common::fields::list_tokens(field.value) {
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !option.eq_ignore_ascii_case(b"keep-alive") {
                    return Err(HandOver::Options);
                }
            }
        }
    }
    let host = host.ok_or(HandOver::Host)?;
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(host.as_str().as_bytes());
    head.extend_from_slice(b"\r\n");
    for field in request.headers.iter() {
        // As the hyper path removes them (`forward::remove_hop_by_hop`);
        // `Host` was written above.
        if is_connection_field(field.name)
            || field.name.eq_ignore_ascii_case("host")
            || rewrite.identity.is_claimed(field.name)
        {
            continue;
        }
        let name = field.name.as_bytes();
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(field.value);
        head.extend_from_slice(b"\r\n");
    }
    rewrite.lines.write(
        &mut head,
        rewrite.identity,
        rewrite.peer,
        rewrite.client_ip,
        host.as_str(),
    );
    wire::write_framing(&mut head, RequestFraming::of(&method, true, Some(0)));
    head.extend_from_slice(b"\r\n");
    Ok(Forward {
        consumed: 0,
        method,
        path: path.to_owned(),
        head,
        close,
        host,
        user_agent,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use integration_tests::{Provider, TestPki};

    use super::*;
    use crate::proxy::config::Headers;

    /// An anonymous client's identity: a connection before its handshake.
    fn anonymous() -> PeerIdentity {
        let config = integration_tests::config::server(TestPki::shared(), Provider::AwsLcRs);
        let connection = rustls::ServerConnection::new(Arc::new(config)).expect("a connection");
        PeerIdentity::of(&connection)
    }

    fn read(head: &str) -> Reading {
        let identity = IdentityHeaders::new(&Headers::default()).expect("default names");
        let bots_only = BotsOnly::new(&["/api/crawl".to_owned()]);
        let peer = anonymous();
        let mut lines = IdentityLines::default();
        let mut rewrite = Rewrite {
            identity: &identity,
            bots_only: &bots_only,
            peer: &peer,
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            lines: &mut lines,
        };
        read_request(head.as_bytes(), &mut rewrite, MAX_HEAD)
    }

    /// The identity and forwarding headers an anonymous client from
    /// 192.0.2.7 gets, addressing `example.com`.
    const SET: &str = "x-client-auth-path: none\r\nx-client-session-resumed: false\r\n\
        forwarded: for=192.0.2.7;proto=https;host=\"example.com\"\r\n\
        x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: https\r\n\
        x-forwarded-host: example.com\r\n";

    #[test]
    fn a_simple_request_becomes_the_upstream_head() {
        let head = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\
            Connection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
            X-Client-Auth-Path: flag\r\nx_client_auth_path: flag\r\nX-Forwarded-For: 10.0.0.1\r\n\
            x-forwarded-anything: a\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\n\
            Cookie: a=b\r\nContent_Length: 5\r\nTransfer_Encoding: chunked\r\nX-Kept_: x\r\n\
            Up_grade: x\r\nConnection_: x\r\nHOST_: x\r\n\r\nGET /next";
        let Reading::Forward(forward) = read(head) else {
            panic!("not forwarded: {:?}", read(head));
        };
        assert_eq!(forward.consumed, head.len() - "GET /next".len());
        assert_eq!(forward.method, Method::GET);
        assert_eq!(forward.path, "/a/b");
        assert!(!forward.close);
        assert_eq!(
            String::from_utf8_lossy(&forward.head),
            format!(
                "GET /a/b?c=d HTTP/1.1\r\nhost: example.com\r\nAccept: */*\r\nCookie: a=b\r\n\
                 X-Kept_: x\r\nUp_grade: x\r\nConnection_: x\r\nHOST_: x\r\n{SET}\r\n"
            )
        );
    }

    #[test]
    fn a_post_without_a_body_says_its_length_and_close_is_kept() {
        let Reading::Forward(forward) = read(
            "POST /form HTTP/1.1\r\nhost: example.com\r\nconnection: Keep-Alive, Close\r\n\r\n",
        ) else {
            panic!("not forwarded");
        };
        assert!(forward.close);
        assert_eq!(
            String::from_utf8_lossy(&forward.head),
            format!("POST /form HTTP/1.1\r\nhost: example.com\r\n{SET}content-length: 0\r\n\r\n")
        );
    }

    #[test]
    fn requests_that_are_not_simple_go_to_hyper() {
        let long = format!(
            "GET / HTTP/1.1\r\nhost: a\r\nx: {}\r\n\r\n",
            "y".repeat(MAX_HEAD)
        );
        let many = format!(
            "GET / HTTP/1.1\r\nhost: a\r\n{}\r\n",
            "x: y\r\n".repeat(MAX_HEADERS)
        );
        for (head, why) in [
            (
                "GET / HTTP/1.1\r\nhost: a\r\nbad header\r\n\r\n",
                HandOver::Malformed,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\n folded\r\n\r\n",
                HandOver::Malformed,
            ),
            ("GET / HTTP/1.1\r\nhost : a\r\n\r\n", HandOver::Malformed),
            ("GET /\0 HTTP/1.1\r\nhost: a\r\n\r\n", HandOver::Malformed),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HandOver::Malformed),
            (many.as_str(), HandOver::Malformed),
            (long.as_str(), HandOver::Long),
            ("GET / HTTP/1.0\r\nhost: a\r\n\r\n", HandOver::Http10),
            (
                "CONNECT a:443 HTTP/1.1\r\nhost: a:443\r\n\r\n",
                HandOver::Method,
            ),
            (
                "GET http://a/ HTTP/1.1\r\nhost: a\r\n\r\n",
                HandOver::Target,
            ),
            ("OPTIONS * HTTP/1.1\r\nhost: a\r\n\r\n", HandOver::Target),
            ("GET / HTTP/1.1\r\n\r\n", HandOver::Host),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nHost: b\r\n\r\n",
                HandOver::Host,
            ),
            ("GET / HTTP/1.1\r\nhost: a b\r\n\r\n", HandOver::Host),
            (
                "GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
                HandOver::Body,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                HandOver::Body,
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\nContent-Length: 5\r\n\r\nhello",
                HandOver::Body,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n\r\n",
                HandOver::Options,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\n\r\n",
                HandOver::Options,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\n\r\n",
                HandOver::Options,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nconnection: x-secret\r\n\r\n",
                HandOver::Options,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nhttp2-settings: AAAA\r\n\r\n",
                HandOver::Options,
            ),
            (
                "GET /api/crawl HTTP/1.1\r\nhost: a\r\n\r\n",
                HandOver::Policy,
            ),
            (
                "GET /API/%63rawl/x HTTP/1.1\r\nhost: a\r\n\r\n",
                HandOver::Policy,
            ),
        ] {
            assert_eq!(read(head), Reading::HandOver(why), "{head:.60?}");
        }
    }

    /// The lines kept for a connection are made again for another host.
    #[test]
    fn identity_lines_follow_the_host() {
        let identity = IdentityHeaders::new(&Headers::default()).expect("default names");
        let bots_only = BotsOnly::new(&[]);
        let peer = anonymous();
        let mut lines = IdentityLines::default();
        let mut rewrite = Rewrite {
            identity: &identity,
            bots_only: &bots_only,
            peer: &peer,
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            lines: &mut lines,
        };
        for host in [
            "example.com",
            "example.com",
            "other.example:8443",
            "example.com",
        ] {
            let head = format!("GET / HTTP/1.1\r\nhost: {host}\r\n\r\n");
            let Reading::Forward(forward) = read_request(head.as_bytes(), &mut rewrite, MAX_HEAD)
            else {
                panic!("not forwarded");
            };
            let head = String::from_utf8_lossy(&forward.head).into_owned();
            assert_eq!(head.matches("x-forwarded-host: ").count(), 1, "{head}");
            assert!(
                head.contains(&format!("x-forwarded-host: {host}\r\n")),
                "{head}"
            );
            assert!(head.contains(&format!(";host=\"{host}\"\r\n")), "{head}");
        }
    }

    #[test]
    fn the_end_of_a_head_is_found_as_httparse_finds_it() {
        let cases = [
            ("", false),
            ("GET / HTTP/1.1\r\nhost: a\r\n", false),
            ("GET / HTTP/1.1\r\nhost: a\r\n\r", false),
            ("GET / HTTP/1.1\r\nhost: a\r\n\r\n", true),
            ("GET / HTTP/1.1\nhost: a\n\n", true),
            ("GET / HTTP/1.1\r\nhost: a\n\r\nbody", true),
            // Empty lines before the request line are skipped, not an end.
            ("\r\n\r\n\n", false),
            ("\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n", false),
            ("\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n", true),
        ];
        for (buf, ended) in cases {
            assert_eq!(HeadEnd::default().found(buf.as_bytes()), ended, "{buf:?}");
            // The same bytes a few at a time, looked at after each read.
            for step in 1..=3 {
                let mut end = HeadEnd::default();
                let mut found = false;
                for read in (0..=buf.len()).step_by(step).chain([buf.len()]) {
                    found |= end.found(&buf.as_bytes()[..read]);
                }
                assert_eq!(found, ended, "{buf:?} in steps of {step}");
            }
        }
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        for head in ["", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nhost: a\r\n\r"] {
            assert_eq!(read(head), Reading::Partial, "{head:?}");
        }
    }
}
