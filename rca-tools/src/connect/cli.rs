//! `rca-connect`'s command line, here rather than in the binary so the man
//! page and the shell completions are made from the same definitions.

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use http::uri::{Authority, Scheme};
use http::HeaderName;

use crate::common::roots::RootSource;
use crate::connect::relay::OUTCOME_HEADER;

/// A local forward proxy for bots. Point any HTTP client at it
/// (HTTPS_PROXY=http://127.0.0.1:8118, curl -x, requests' proxies, Go's
/// ProxyFromEnvironment) and its requests reach servers with the
/// request_client_auth TLS flag set: a server that acknowledges the flag gets
/// the bot certificate, others get nothing. Servers are always verified.
/// The client's TLS ends here, with certificates from a local CA that
/// `rca-connect ca` shows how to trust. One JSON line per upstream
/// connection goes to standard output; SIGHUP reads --cert/--key, the system
/// roots, each --ca and the local CA again.
#[derive(Parser, Debug)]
#[command(name = "rca-connect", version, subcommand_negates_reqs = true)]
pub struct Args {
    /// `ca`, or nothing to run the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The bot's certificate chain, PEM, end entity first.
    #[arg(long, required = true)]
    pub cert: Option<PathBuf>,
    /// The bot's private key, PEM.
    #[arg(long, required = true)]
    pub key: Option<PathBuf>,
    /// Where clients connect (plain HTTP; keep it on loopback: anyone who
    /// reaches it acts with the bot's identity, unless --proxy-auth-file
    /// asks for credentials).
    #[arg(long, default_value = "127.0.0.1:8118", global = true, value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Require credentials of clients of --listen: the file holds one
    /// user:password per line, and clients give one in the proxy URL
    /// (http://user:password@127.0.0.1:8118). Without it, every local user
    /// who can connect acts with the bot's identity. Routes take no
    /// credentials. Read again on SIGHUP.
    #[arg(long)]
    pub proxy_auth_file: Option<PathBuf>,
    /// LISTEN=https://host or LISTEN=https://host:port: also serve every request arriving on
    /// LISTEN to that server, for clients that cannot use a proxy.
    /// Repeatable.
    #[arg(long = "route", value_parser = parse_route)]
    pub routes: Vec<(SocketAddr, Scheme, Authority)>,
    /// Which roots verify servers: mozilla (compiled in), system, or none
    /// (only --ca).
    #[arg(long, value_enum, default_value = "mozilla")]
    pub roots: RootSource,
    /// More CA certificates to verify servers with, PEM. Repeatable.
    #[arg(long = "ca")]
    pub cas: Vec<PathBuf>,
    /// Send the flag (and so the identity) only to these hosts: a name, or
    /// *.domain for the names below it. Repeatable; default: every host.
    #[arg(long = "identity-host")]
    pub identity_hosts: Vec<String>,
    /// The directory of the local CA (made on first start, its key mode
    /// 0600). Default: $XDG_STATE_HOME/rca-connect, else
    /// ~/.local/state/rca-connect.
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// The local CA's certificate, PEM, instead of the state directory's.
    #[arg(long, requires = "local_ca_key", global = true)]
    pub local_ca_cert: Option<PathBuf>,
    /// The local CA's key, PEM.
    #[arg(long, requires = "local_ca_cert", global = true)]
    pub local_ca_key: Option<PathBuf>,
    /// The response header that tells the client what the server did with
    /// the flag and which identity was sent.
    #[arg(long, default_value = OUTCOME_HEADER, value_parser = outcome_header_name)]
    pub outcome_header: HeaderName,
    /// Send no outcome header.
    #[arg(long)]
    pub no_outcome_header: bool,
    /// Seconds for TCP connect and, again, for each TLS handshake.
    #[arg(long, default_value_t = 10, value_parser = seconds())]
    pub connect_timeout_secs: u64,
    /// Seconds for a server's response headers.
    #[arg(long, default_value_t = 60, value_parser = seconds())]
    pub response_timeout_secs: u64,
    /// Seconds a client's request body may send nothing; then 408.
    #[arg(long, default_value_t = 60, value_parser = seconds())]
    pub body_timeout_secs: u64,
    /// Seconds a server's response body may send nothing; then the response
    /// is cut short (as nginx's proxy_read_timeout). Raise it for
    /// server-sent events or long polls that stay silent for longer.
    #[arg(long, default_value_t = 60, value_parser = seconds())]
    pub read_timeout_secs: u64,
    /// Seconds one write to a client may wait for it to read; then the
    /// connection is closed.
    #[arg(long, default_value_t = 60, value_parser = seconds())]
    pub send_timeout_secs: u64,
    /// Seconds an idle upstream connection is kept for reuse.
    #[arg(long, default_value_t = 90, value_parser = seconds())]
    pub idle_timeout_secs: u64,
    /// Seconds a client's HTTP/2 connection may have no request open; then
    /// it gets a GOAWAY and is closed. (An HTTP/1.1 client connection may
    /// wait up to 30 s between requests.)
    #[arg(long, default_value_t = 120, value_parser = seconds())]
    pub client_idle_timeout_secs: u64,
    /// Idle upstream connections kept per server (per server and
    /// `--proxy-auth-file` line, each of which has a pool of its own); 0
    /// makes every request open a new one (for measurements). Bounded, so
    /// that a burst of requests to one HTTP/1.1 server does not leave its
    /// connections idle in the pool holding places under
    /// --max-upstream-connections that other servers need.
    #[arg(long, default_value_t = 64)]
    pub max_idle_per_host: usize,
    /// Client connections and tunnels at once; beyond, new connections wait
    /// and new tunnels get a 503.
    #[arg(long, default_value_t = 1024, value_parser = count_up_to(crate::common::process::MAX_CONNECTIONS))]
    pub max_connections: usize,
    /// Connections to servers open at once, idle pooled ones included; one
    /// more waits up to --connect-timeout-secs for a place, then its
    /// request gets a 503 (an HTTP/1.1 server takes a connection for each
    /// request in flight). No cap by default: idle connections keep their
    /// places until --idle-timeout-secs, so a cap meant for bursts also
    /// refuses new servers after one (found by an outside trial); set it
    /// with --max-idle-per-host and --idle-timeout-secs in mind.
    #[arg(long, value_parser = count_up_to(crate::common::process::MAX_CONNECTIONS))]
    pub max_upstream_connections: Option<usize>,
    /// Worker threads; 1 runs everything on the main thread (the least work
    /// per request for one bot's traffic). Default: one per core.
    #[arg(long, value_parser = count_up_to(MAX_THREADS))]
    pub threads: Option<usize>,
    /// Serve Prometheus metrics on http://ADDRESS/metrics.
    #[arg(long, value_parser = listen_address)]
    pub metrics_listen: Option<SocketAddr>,
}

impl Args {
    /// Two listeners on one address (`--listen`, a `--route`,
    /// `--metrics-listen`), named, which the operating system would only
    /// call "Address already in use"; or a route to one of them.
    ///
    /// # Errors
    ///
    /// The clash, with both options named.
    pub fn address_clash(&self) -> Result<(), String> {
        let mut taken: Vec<(SocketAddr, String)> = vec![(self.listen, "--listen".to_owned())];
        let routes = self
            .routes
            .iter()
            .map(|(listen, _, authority)| (*listen, format!("--route {listen}={authority}")));
        let metrics = self
            .metrics_listen
            .map(|address| (address, "--metrics-listen".to_owned()));
        // Port 0 is any free port: several such listeners never clash.
        for (address, option) in routes
            .chain(metrics)
            .filter(|(address, _)| address.port() != 0)
        {
            if let Some((_, other)) = taken.iter().find(|(used, _)| *used == address) {
                return Err(format!(
                    "{option} listens on {address}, as {other} does: give each its own address"
                ));
            }
            taken.push((address, option));
        }
        self.route_to_itself(&taken)
    }

    /// A `--route` whose server is one of rca-connect's own listeners
    /// (`listeners`, with their options): each request to it would come
    /// back as a new one, until every connection slot was taken (found by
    /// an outside attack: one request took all 1,024 and the proxy hung
    /// for a minute). Told by the address as written (see
    /// [`crate::common::own_address::reaches`]).
    fn route_to_itself(&self, listeners: &[(SocketAddr, String)]) -> Result<(), String> {
        for (_, scheme, authority) in &self.routes {
            let port = authority
                .port_u16()
                .unwrap_or_else(|| crate::connect::upstream::default_port(scheme.as_str()));
            let reaches = |listener: &SocketAddr| {
                crate::common::own_address::reaches(authority.host(), port, *listener)
            };
            if let Some((listener, option)) =
                listeners.iter().find(|(listener, _)| reaches(listener))
            {
                return Err(format!(
                    "--route ...={scheme}://{authority} points at rca-connect's own {listener} \
                     ({option}): each request would come back to it; give the server's address"
                ));
            }
        }
        Ok(())
    }
}

/// What else `rca-connect` does.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the local CA certificate's path (making the CA if needed) and
    /// how to trust it from curl, Python, Go and Node.
    Ca,
}

/// `--route`'s value: `LISTEN=https://host[:port]`.
///
/// # Errors
///
/// The value is not of that form; the message says what is wrong.
pub fn parse_route(text: &str) -> Result<(SocketAddr, Scheme, Authority), String> {
    let (listen, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected LISTEN=https://host"))?;
    let listen = listen_address(listen)?;
    let uri: http::Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    let scheme = uri
        .scheme()
        .filter(|scheme| **scheme == Scheme::HTTPS || **scheme == Scheme::HTTP)
        .cloned()
        .ok_or_else(|| format!("{url:?}: expected https:// (or http://)"))?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{url:?}: give the server without user information"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!("{url:?}: give the server only, without a path"));
    }
    // Each was taken and dropped, or failed only at the first request
    // (found by an outside attack).
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "{url:?}: give the server only, without a query or fragment"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    // A port written must be one: `:65536` and `:` went to the scheme's
    // default port, `:0` nowhere (found by an outside attack).
    if written_port(&authority).is_some() && authority.port_u16().is_none_or(|port| port == 0) {
        return Err(format!("{url:?}: the port must be from 1 to 65535"));
    }
    Ok((listen, scheme, authority))
}

/// The port `authority` writes after its host, if it writes one (an empty
/// one, or one `http` does not take as a number, included).
pub(crate) fn written_port(authority: &Authority) -> Option<&str> {
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest);
    after_host.rsplit_once(':').map(|(_, port)| port)
}

/// An address to listen on: an IP address and a port. A host name is not
/// taken (`localhost` may name both loopback addresses, or another), and
/// the message says what to write instead.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("{text:?} is not an IP address and a port, such as 127.0.0.1:8118 or [::1]:8118 (a host name is not taken)")
    })
}

/// The most worker threads `--threads` takes: far more than any machine's
/// cores, far fewer than the system refuses to start (it panicked).
const MAX_THREADS: usize = 1024;

/// A count from 1 (0 threads or connections would serve nothing) to `max`
/// (beyond, the runtime could not start: found by an outside attack, it
/// panicked).
fn count_up_to(max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=u64::try_from(max).unwrap_or(u64::MAX))
}

/// Names a response needs for itself, besides those HTTP gives a meaning
/// to: replaced by the outcome, they would break redirects, cookies,
/// caching or content decoding for every client.
const RESPONSE_OWN_NAMES: [&str; 14] = [
    "date",
    "location",
    "set-cookie",
    "content-encoding",
    "content-range",
    "content-location",
    "etag",
    "last-modified",
    "cache-control",
    "expires",
    "vary",
    "www-authenticate",
    "retry-after",
    "strict-transport-security",
];

/// `--outcome-header`: a header name that no response needs for itself.
fn outcome_header_name(name: &str) -> Result<HeaderName, String> {
    let parsed =
        HeaderName::try_from(name).map_err(|_| format!("{name:?} is not a header name"))?;
    // Not `is_http_own_name`: its `Proxy-*` prefix is about requests, and
    // RFC 9209's `Proxy-Status` is a fine name for a proxy's outcome.
    if crate::common::fields::HTTP_OWN_NAMES
        .iter()
        .chain(&RESPONSE_OWN_NAMES)
        .any(|own| crate::common::fields::canonically_equal(parsed.as_str(), own))
    {
        return Err(format!(
            "{name} is a header responses need for themselves; choose a name of your own, such as {OUTCOME_HEADER}"
        ));
    }
    Ok(parsed)
}

/// Seconds, from 1 to a day, as `rca-proxy`'s timeouts: 0 would time out
/// at once, and timers far in the future overflow the clock's arithmetic.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::new().range(1..=86_400)
}
