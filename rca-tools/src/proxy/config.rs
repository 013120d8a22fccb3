//! The proxy's configuration: a TOML file, flags on top, validated before
//! anything listens. Every error names the field (and the file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

// Defined where they are used; read from the file here.
pub use crate::proxy::back::forward::UpstreamProtocol;
pub use crate::proxy::judge::identity::Headers;

/// The whole configuration, as in the TOML file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the proxy listens for HTTPS.
    #[serde(deserialize_with = "socket_address")]
    pub listen: SocketAddr,
    /// The server identity and the trust anchors.
    pub tls: Tls,
    /// Where requests go.
    pub upstream: Upstream,
    /// The names of the identity headers sent upstream.
    #[serde(default)]
    pub headers: Headers,
    /// Which paths only flag-path bots may reach.
    #[serde(default)]
    pub policy: Policy,
    /// Timeouts and limits.
    #[serde(default)]
    pub limits: Limits,
    /// The admin address (metrics), if any.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// The PROXY protocol from a layer-4 load balancer, if any.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Where the access log goes.
    #[serde(default)]
    pub log: Log,
}

/// `[log]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// Where the access log's JSON lines go.
    #[serde(default)]
    pub access: AccessLogTarget,
}

/// `log.access`: `"stdout"` (the default: the journal, under systemd),
/// `"off"`, or a file, as nginx's `access_log` takes `off` or a path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum AccessLogTarget {
    /// Standard output.
    #[default]
    Stdout,
    /// Nowhere (the metrics still count every request).
    Off,
    /// Appended to this file, reopened on SIGUSR1 and SIGHUP (for
    /// logrotate); relative to the configuration file's directory.
    File(PathBuf),
}

impl TryFrom<String> for AccessLogTarget {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        // The words in any case and spacing (`"OFF"`, `" stderr"` became
        // files of those names, found by an outside trial).
        match text.trim().to_ascii_lowercase().as_str() {
            "stdout" => Ok(Self::Stdout),
            "off" => Ok(Self::Off),
            // Not a file of that name next to the configuration, which it
            // became without a word (found by an outside trial).
            "stderr" | "/dev/stderr" => Err(
                "standard error carries the diagnostics: give the access log \"stdout\", \"off\" or a file (\"./stderr\" for a file of that name)"
                    .into(),
            ),
            "" => Err(
                "name a file (\"/var/log/rca-proxy/access.log\"), or \"stdout\" or \"off\"".into(),
            ),
            _ => Ok(Self::File(PathBuf::from(text))),
        }
    }
}

impl From<AccessLogTarget> for String {
    fn from(target: AccessLogTarget) -> Self {
        match target {
            AccessLogTarget::Stdout => "stdout".into(),
            AccessLogTarget::Off => "off".into(),
            AccessLogTarget::File(path) => path.display().to_string(),
        }
    }
}

/// `[proxy_protocol]`: every connection starts with a PROXY protocol header
/// (HAProxy's, version 1 or 2), whose client address is the one logged and
/// forwarded. Off without the section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocol {
    /// The balancers' addresses or networks (`10.0.0.0/8`, `192.0.2.7`):
    /// only they may connect, and each of their connections must send a
    /// header; any other connection is closed.
    pub from: Vec<String>,
}

impl ProxyProtocol {
    /// `from`, parsed: a bare address is a network of one.
    ///
    /// # Errors
    ///
    /// An entry is neither; the message names it by its index.
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        if self.from.is_empty() {
            return Err("from: name at least one balancer address or network".into());
        }
        self.from
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!(
                            "from[{index}]: {entry:?} is not an address or a network such as 10.0.0.0/8"
                        )
                    })
            })
            .collect()
    }
}

/// `[admin]`: plain HTTP, `GET /metrics` in the Prometheus text format. Keep
/// it on a private address.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Where to listen.
    #[serde(deserialize_with = "socket_address")]
    pub listen: SocketAddr,
}

/// A listening address, as the file writes it: an IP address and a port.
/// The standard parser's own error ("invalid socket address syntax") does
/// not say what it wants, and `:443` or a host name are common slips.
fn socket_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an IP address and a port, such as \"0.0.0.0:443\", \"[::]:443\" \
             or \"127.0.0.1:9100\" (no host names, and no port without an address)"
        ))
    })
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The server's certificate chain (PEM, end entity first).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA certificates bots' certificates must chain to (PEM).
    pub bot_ca: PathBuf,
    /// The CA certificates of partners authenticated on the normal path
    /// (without the flag). Every client then gets a CertificateRequest, so
    /// browsers see a certificate picker; certificates stay optional. Must
    /// share no CA with `bot_ca` (RCA-10).
    #[serde(default)]
    pub partner_ca: Option<PathBuf>,
    /// Certificate revocation lists of the bot CAs (PEM or DER, one or more
    /// files): a bot whose certificate, or any CA certificate above it
    /// short of the anchor, is listed is refused with `certificate_revoked`.
    /// Once set, every certificate a bot's chain names must have its
    /// issuer's CRL here, and an expired CRL refuses every bot, as nginx's
    /// `ssl_crl` does: fail closed. Reloaded by SIGHUP.
    #[serde(default, deserialize_with = "one_or_more")]
    pub bot_crl: Vec<PathBuf>,
    /// A file of bot leaf-certificate thumbprints (`x5t#S256`, one per line,
    /// `#` comments) refused with `certificate_revoked`: to shut out one bot
    /// at once, before its CA's next CRL. Reloaded by SIGHUP.
    #[serde(default)]
    pub bot_deny_list: Option<PathBuf>,
    /// The `tls_flags` extension type: 62 (default) or 65025 (0xFE01).
    #[serde(default = "default_code_point")]
    pub code_point: u16,
    /// Session-ticket keys shared by the fleet (see `tickets.rs`); without
    /// them each proxy resumes only its own sessions.
    #[serde(default)]
    pub ticket_keys: Option<PathBuf>,
    /// The ticket lifetime announced to clients, in seconds.
    #[serde(default = "default_ticket_lifetime")]
    pub ticket_lifetime_secs: u32,
    /// Whether clients may resume sessions (TLS 1.3 tickets, TLS 1.2
    /// session IDs). `false` makes every handshake a full one, as nginx's
    /// `ssl_session_tickets off` with `ssl_session_cache off` does.
    #[serde(default = "resumption_by_default")]
    pub session_resumption: bool,
}

/// `path`, if relative, made relative to `dir` (the configuration file's
/// directory): every path in the file is read this way.
fn resolve_relative_to(path: &mut PathBuf, dir: &Path) {
    if path.is_relative() {
        *path = dir.join(&*path);
    }
}

impl Tls {
    /// Makes the relative paths relative to `dir` (the configuration
    /// file's directory), as nginx reads paths relative to its prefix: the
    /// same file then means the same files wherever the proxy is started.
    pub fn resolve_relative_to(&mut self, dir: &Path) {
        let paths = [
            Some(&mut self.cert),
            Some(&mut self.key),
            Some(&mut self.bot_ca),
            self.partner_ca.as_mut(),
            self.ticket_keys.as_mut(),
            self.bot_deny_list.as_mut(),
        ];
        for path in paths.into_iter().flatten().chain(&mut self.bot_crl) {
            resolve_relative_to(path, dir);
        }
    }

    /// The `[tls]` values that can be checked without reading the files:
    /// the first wrong one's name and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        // RFC 8446 section 4.6.1: at most seven days.
        if !(1..=604_800).contains(&self.ticket_lifetime_secs) {
            return Err((
                "tls.ticket_lifetime_secs",
                "must be between 1 and 604800 (seven days, RFC 8446)".into(),
            ));
        }
        if !self.session_resumption && self.ticket_keys.is_some() {
            return Err((
                "tls.ticket_keys",
                "is set, but tls.session_resumption = false issues no tickets; remove one of them"
                    .into(),
            ));
        }
        let known = [
            rustls_req_client_auth::CodePoints::DEFAULT.extension_type,
            rustls_req_client_auth::CodePoints::experimental().extension_type,
        ];
        if !known.contains(&self.code_point) {
            return Err((
                "tls.code_point",
                format!(
                    "{} is not a TLS Flags code point this proxy speaks (62, or 65025 for 0xFE01)",
                    self.code_point
                ),
            ));
        }
        Ok(())
    }
}

/// A path or a list of paths (`bot_crl = "a.crl"` or `["a.crl", "b.crl"]`).
fn one_or_more<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a path or a list of paths")]
    enum OneOrMore {
        One(PathBuf),
        More(Vec<PathBuf>),
    }
    Ok(match OneOrMore::deserialize(deserializer)? {
        OneOrMore::One(path) => vec![path],
        OneOrMore::More(paths) => paths,
    })
}

const fn resumption_by_default() -> bool {
    true
}

fn default_ticket_lifetime() -> u32 {
    6 * 60 * 60
}

fn default_code_point() -> u16 {
    rustls_req_client_auth::CodePoints::DEFAULT.extension_type
}

/// `[upstream]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The upstream HTTP server, `http://host:port`.
    pub url: String,
    /// How long the upstream may take to answer with its headers, in seconds.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_secs: u64,
    /// Connections to the upstream at most: requests beyond wait (up to
    /// `timeout_secs`) for one to be free, then get 503.
    #[serde(default = "default_upstream_connections")]
    pub max_connections: usize,
    /// How long a connection to the upstream may wait idle for the next
    /// request before the proxy closes it, in seconds (1 to 86,400). Keep it below the
    /// upstream's own keep-alive timeout (Node.js and Apache httpd: 5 s,
    /// gunicorn: 2 s), so the proxy never sends a request on a connection the
    /// upstream is closing: a POST meeting that close gets 502.
    #[serde(default = "default_upstream_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// How long the upstream may send nothing in the middle of a response
    /// body before the proxy cuts the response short and closes the
    /// connection, in seconds (1 to 86,400; nginx's `proxy_read_timeout`).
    /// Raise it for server-sent events or long polls that stay silent longer.
    /// A WebSocket tunnel the upstream sends nothing on for as long is
    /// closed too, as nginx closes its tunnels.
    #[serde(default = "default_upstream_timeout")]
    pub read_timeout_secs: u64,
    /// How requests reach the upstream: `"http1"` (the default) or `"h2c"`
    /// (HTTP/2 over plain TCP, prior knowledge, many requests on one
    /// connection). WebSocket upgrades always go over HTTP/1.1.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
}

impl Upstream {
    /// `url` with every other field at its default.
    #[must_use]
    pub fn with_defaults(url: String) -> Self {
        Self {
            url,
            timeout_secs: default_upstream_timeout(),
            max_connections: default_upstream_connections(),
            idle_timeout_secs: default_upstream_idle_timeout(),
            read_timeout_secs: default_upstream_timeout(),
            protocol: UpstreamProtocol::default(),
        }
    }
}

fn default_upstream_timeout() -> u64 {
    60
}

fn default_upstream_connections() -> usize {
    1024
}

/// The `[limits]` timeouts, `upstream.idle_timeout_secs` and
/// `upstream.read_timeout_secs` at most: a day
/// (more is no use, and timers far in the future overflow the clock's
/// arithmetic).
const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;

fn default_upstream_idle_timeout() -> u64 {
    crate::proxy::back::pool::DEFAULT_IDLE_TIMEOUT.as_secs()
}

/// `[policy]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Path prefixes only flag-path bots may reach; others get 403.
    #[serde(default)]
    pub bots_only: Vec<String>,
}

/// `[limits]`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Seconds a client gets to complete its TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds a client gets to send a request's headers (HTTP/1.1).
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without a request before it is closed
    /// (HTTP/2 with GOAWAY, also when the client answers pings).
    pub idle_timeout_secs: u64,
    /// Seconds a write to a client may wait for it to read before the
    /// connection is closed (nginx's `send_timeout`).
    pub send_timeout_secs: u64,
    /// Seconds a request body may send nothing before the request fails
    /// with 408 (nginx's `client_body_timeout`).
    pub body_timeout_secs: u64,
    /// Bytes a request head may have (HTTP/1.1; longer gets 431): what an
    /// unfinished head may hold in memory.
    pub max_head_bytes: usize,
    /// Bytes a request body may have (nginx's `client_max_body_size`); a
    /// larger one gets 413, before the upstream sees it when its length is
    /// declared. No limit when left out: bodies stream, never held whole.
    pub max_body_bytes: Option<u64>,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 client's /64) may have open
    /// at once, counted after the PROXY protocol header (nginx's
    /// `limit_conn`); one more is closed before its TLS handshake. Without
    /// it (the default: no cap but `max_connections`) one address can open
    /// every connection the proxy serves and lock everyone else out. Behind
    /// a NAT many people share one address (a browser keeps up to six
    /// connections to a site); behind a layer-4 balancer without
    /// `[proxy_protocol]` every connection is the balancer's.
    pub max_connections_per_client: Option<usize>,
    /// Seconds open connections get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds between SIGTERM and the stop (the listener closing, then
    /// `shutdown_grace_secs`), while `GET /ready` on the admin address
    /// already says 503 and new connections are still served: time for a
    /// load balancer's health check to take the proxy out of rotation (0:
    /// the stop comes at once). Meanwhile each connection is closed once
    /// it has served a request (HTTP/2: GOAWAY), so keep-alive clients
    /// reconnect through the balancer elsewhere; open WebSockets run on
    /// until the stop.
    pub shutdown_delay_secs: u64,
    /// Requests one HTTP/2 connection may have in flight at once, and so
    /// upstream exchanges one client connection can hold (nginx's
    /// `http2_max_concurrent_streams`).
    pub http2_max_concurrent_streams: u32,
    /// Requests from one client address (an IPv6 client's /64) that may be
    /// in progress upstream at once; more get 503 at once, as with nginx's
    /// `limit_conn`. Without it one client could hold every upstream
    /// connection (a few HTTP/2 connections whose streams never read their
    /// responses), and everyone else would wait. Behind a NAT many people
    /// share one address: raise it there. At `upstream.max_connections` or
    /// above it limits nothing.
    pub max_upstream_per_client: usize,
    /// Requests an HTTP/2 client may cancel before their response within
    /// 10 s before its connection is closed with a GOAWAY (rapid reset).
    pub http2_max_cancelled_requests: u32,
    /// Connections the kernel may queue before the proxy accepts them (the
    /// listen backlog, nginx's `listen ... backlog=`). Linux caps it at
    /// `net.core.somaxconn` (4096 by default).
    pub listen_backlog: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout_secs: 10,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 120,
            send_timeout_secs: 60,
            body_timeout_secs: 60,
            max_head_bytes: 64 * 1024,
            max_body_bytes: None,
            max_connections: 10_000,
            max_connections_per_client: None,
            shutdown_grace_secs: 10,
            shutdown_delay_secs: 0,
            http2_max_concurrent_streams: 128,
            max_upstream_per_client: 256,
            http2_max_cancelled_requests: 100,
            listen_backlog: 4096,
        }
    }
}

impl Limits {
    /// The counts, sizes and the shutdown delay: the first that is out of
    /// range, by dotted name, and why.
    fn check_bounds(&self) -> Result<(), (&'static str, String)> {
        if !(1..=crate::common::process::MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err((
                "limits.max_connections",
                format!(
                    "must be from 1 to {}",
                    crate::common::process::MAX_CONNECTIONS
                ),
            ));
        }
        if self.max_connections_per_client == Some(0) {
            return Err((
                "limits.max_connections_per_client",
                "must be at least 1 (leave it out for no cap but limits.max_connections)".into(),
            ));
        }
        if self.max_upstream_per_client == 0 {
            return Err((
                "limits.max_upstream_per_client",
                "must be at least 1 (at upstream.max_connections or above it limits nothing)"
                    .into(),
            ));
        }
        for (name, value) in [
            ("limits.shutdown_delay_secs", self.shutdown_delay_secs),
            ("limits.shutdown_grace_secs", self.shutdown_grace_secs),
        ] {
            if value > MAX_TIMEOUT_SECS {
                return Err((name, format!("must be at most {MAX_TIMEOUT_SECS} (a day)")));
            }
        }
        if self.max_body_bytes == Some(0) {
            return Err((
                "limits.max_body_bytes",
                "must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        if !(8192..=1024 * 1024).contains(&self.max_head_bytes) {
            return Err((
                "limits.max_head_bytes",
                "must be from 8192 to 1048576".into(),
            ));
        }
        for (name, value) in [
            (
                "limits.http2_max_concurrent_streams",
                self.http2_max_concurrent_streams,
            ),
            (
                "limits.http2_max_cancelled_requests",
                self.http2_max_cancelled_requests,
            ),
            ("limits.listen_backlog", self.listen_backlog),
        ] {
            if value == 0 {
                return Err((name, "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// As durations.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// As a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// As a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// As a duration.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }

    /// As a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// As a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// As a duration.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }
}

/// Why a `policy.bots_only` prefix cannot be used: it must be a path in the
/// canonical form requests are judged in, or it could never match as
/// written.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!(
            "{prefix:?} is not a path prefix (it must start with '/')"
        ));
    }
    if prefix.contains('?') {
        // The policy judges paths; a query is never part of one (the
        // message said to write the refused value itself).
        return Err(format!(
            "{prefix:?} has a query ('?'); a prefix is a path: write {:?}",
            prefix.split('?').next().unwrap_or("/")
        ));
    }
    match crate::proxy::front::target::canonical(prefix) {
        Ok(canonical) if canonical == prefix => Ok(()),
        Ok(canonical) => Err(format!(
            "{prefix:?} is not in the canonical form requests are judged in; write {canonical:?}"
        )),
        Err(why) => Err(format!("{prefix:?}: {}", why.reason())),
    }
}

/// A configuration that cannot be used: which field (in which file), and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    origin: String,
    message: String,
}

impl ConfigError {
    fn new(origin: &str, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_owned(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not valid TOML, has an unknown or missing
    /// field, or a value that does not make sense (see [`Config::validate`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(&origin, format!("cannot read it: {error}")))?;
        // toml's own message shows the line and column; the path adds the
        // field's dotted name (`upstream.timeout_secs`), which a value of the
        // wrong type would otherwise not name.
        let deserializer = toml::Deserializer::parse(&text)
            .map_err(|error| ConfigError::new(&origin, error.to_string()))?;
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            let message = match unit_hint(&path, &message) {
                Some(hint) => format!("{}: {hint}", message.trim_end()),
                None => message,
            };
            match path.as_str() {
                // The document itself (an unknown top-level table, say).
                "" | "." => ConfigError::new(&origin, message),
                path => ConfigError::new(&origin, format!("{path}: {message}")),
            }
        })?;
        let mut config = config;
        let dir = path.parent().unwrap_or(Path::new("."));
        config.tls.resolve_relative_to(dir);
        if let AccessLogTarget::File(file) = &mut config.log.access {
            resolve_relative_to(file, dir);
        }
        config.validate(&origin)?;
        Ok(config)
    }

    /// Checks the values (`origin` names where they came from in messages):
    /// the upstream URL, the code point, header names, prefixes and limits.
    ///
    /// # Errors
    ///
    /// The first field that is wrong, by name.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let field =
            |name: &str, message: String| ConfigError::new(origin, format!("{name}: {message}"));
        crate::proxy::back::forward::upstream_authority(&self.upstream.url)
            .map_err(|message| field("upstream.url", message))?;
        if !(1..=crate::common::process::MAX_CONNECTIONS).contains(&self.upstream.max_connections) {
            return Err(field(
                "upstream.max_connections",
                format!(
                    "must be from 1 to {}",
                    crate::common::process::MAX_CONNECTIONS
                ),
            ));
        }
        self.tls
            .check()
            .map_err(|(name, message)| field(name, message))?;
        crate::proxy::judge::identity::IdentityHeaders::new(&self.headers)
            .map_err(|(name, message)| field(&format!("headers.{name}"), message))?;
        for (index, prefix) in self.policy.bots_only.iter().enumerate() {
            check_prefix(prefix)
                .map_err(|message| field(&format!("policy.bots_only[{index}]"), message))?;
        }
        let limits = &self.limits;
        // A timer much further off overflows the clock's arithmetic (found
        // by an outside review: `upstream.timeout_secs` had no ceiling).
        for (name, value) in [
            ("upstream.timeout_secs", self.upstream.timeout_secs),
            (
                "upstream.idle_timeout_secs",
                self.upstream.idle_timeout_secs,
            ),
            (
                "upstream.read_timeout_secs",
                self.upstream.read_timeout_secs,
            ),
            (
                "limits.handshake_timeout_secs",
                limits.handshake_timeout_secs,
            ),
            (
                "limits.header_read_timeout_secs",
                limits.header_read_timeout_secs,
            ),
            ("limits.idle_timeout_secs", limits.idle_timeout_secs),
            ("limits.send_timeout_secs", limits.send_timeout_secs),
            ("limits.body_timeout_secs", limits.body_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&value) {
                return Err(field(
                    name,
                    format!("must be from 1 to {MAX_TIMEOUT_SECS} (a day)"),
                ));
            }
        }
        limits
            .check_bounds()
            .map_err(|(name, message)| field(name, message))?;
        if let Some(proxy_protocol) = &self.proxy_protocol {
            proxy_protocol
                .networks()
                .map_err(|message| ConfigError::new(origin, format!("proxy_protocol.{message}")))?;
        }
        self.validate_admin(origin)
    }

    /// Whether the process may open fewer files than the connection counts
    /// need (the clients', the upstream's, the admin listener's, and a few
    /// for listeners, logs and certificates): what to say if so.
    #[must_use]
    pub fn open_file_shortfall(&self) -> Option<String> {
        let admin = if self.admin.is_some() {
            crate::common::admin::ADMIN_MAX_CONNECTIONS
        } else {
            0
        };
        let needed = self
            .limits
            .max_connections
            .saturating_add(self.upstream.max_connections)
            .saturating_add(admin)
            .saturating_add(64);
        crate::common::process::open_file_shortfall(
            needed,
            "limits.max_connections and upstream.max_connections",
        )
    }

    /// `admin.listen` must not take the proxy's own socket (it would fail
    /// at start, after the check said yes), and the upstream must not be
    /// either of the proxy's own listeners: requests would come back to
    /// it, or the admin endpoints (`/metrics`, `/ready`) would be served on
    /// the public port (found by an outside trial). Told by the address as
    /// written: an IP address, or `localhost` for a loopback listener.
    fn validate_admin(&self, origin: &str) -> Result<(), ConfigError> {
        if let Some(admin) = &self.admin {
            if overlaps(admin.listen, self.listen) {
                return Err(ConfigError::new(
                    origin,
                    format!(
                        "admin.listen: {} is (or includes) the proxy's own listen address {}; give the admin listener another port",
                        admin.listen, self.listen
                    ),
                ));
            }
        }
        let own = std::iter::once(("listen", self.listen)).chain(
            self.admin
                .iter()
                .map(|admin| ("admin.listen", admin.listen)),
        );
        let upstream = crate::proxy::back::forward::upstream_authority(&self.upstream.url).ok();
        for (name, listener) in own {
            let reaches = |upstream: &http::uri::Authority| {
                let port = upstream.port_u16().unwrap_or(80);
                crate::common::own_address::reaches(upstream.host(), port, listener)
            };
            if upstream.as_ref().is_some_and(reaches) {
                return Err(ConfigError::new(
                    origin,
                    format!(
                        "upstream.url: {} is the proxy's own {name} {listener}; give the application's address",
                        self.upstream.url
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The settings that differ between `self` (running) and `new` (read
    /// again on SIGHUP) and that only a restart applies, by dotted name,
    /// with both values: all but the files SIGHUP reloads.
    pub fn restart_only_changes(&self, new: &Self) -> Vec<String> {
        const RELOADED: [&str; 7] = [
            "tls.cert",
            "tls.key",
            "tls.bot_ca",
            "tls.bot_crl",
            "tls.bot_deny_list",
            "tls.partner_ca",
            "tls.ticket_keys",
        ];
        let flatten = |config: &Self| {
            let mut leaves = Vec::new();
            if let Ok(value) = serde_json::to_value(config) {
                leaves_of("", &value, &mut leaves);
            }
            leaves.retain(|(name, _)| !RELOADED.contains(&name.as_str()));
            leaves
        };
        let (old, new) = (flatten(self), flatten(new));
        let mut changes = Vec::new();
        for (name, value) in &new {
            let before = old
                .iter()
                .find(|(other, _)| other == name)
                .map(|(_, value)| value);
            if before != Some(value) {
                let before = before.map_or("(not set)", String::as_str);
                changes.push(format!("{name} ({before} -> {value})"));
            }
        }
        for (name, value) in &old {
            if !new.iter().any(|(other, _)| other == name) {
                changes.push(format!("{name} ({value} -> (not set))"));
            }
        }
        changes
    }
}

/// What to write instead, when a field whose name carries its unit
/// (`_secs`, `_bytes`) was given a string: `"60s"` reads naturally to a
/// user of nginx's configuration, and serde's own "expected u64" does not
/// say that the unit is already in the name.
fn unit_hint(path: &str, message: &str) -> Option<&'static str> {
    if !message.contains("invalid type: string") {
        return None;
    }
    if path.ends_with("_secs") {
        Some("write a whole number of seconds without quotes, such as 60; the field's name gives the unit")
    } else if path.ends_with("_bytes") {
        Some("write a whole number of bytes without quotes, such as 65536; the field's name gives the unit")
    } else {
        None
    }
}

/// The leaves of `value` under `name`, as (dotted name, JSON text).
fn leaves_of(name: &str, value: &serde_json::Value, leaves: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (field, value) in fields {
                let name = if name.is_empty() {
                    field.clone()
                } else {
                    format!("{name}.{field}")
                };
                leaves_of(&name, value, leaves);
            }
        }
        serde_json::Value::Null => {}
        other => leaves.push((name.to_owned(), other.to_string())),
    }
}

/// Whether two listen addresses would take the same socket: the same port,
/// and the same address or one of them unspecified (`0.0.0.0`, `::`).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod restart_tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).expect("config")
    }

    /// The files SIGHUP reloads are not named; every other change is, with
    /// both values, and a section that appears or goes too.
    #[test]
    fn restart_only_changes_leave_out_the_reloaded_files() {
        let base = "listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nbot_ca = \"ca.pem\"\n[upstream]\nurl = \"http://127.0.0.1:8080\"\n";
        let running = config(base);
        let files = config(&base.replace("a.pem", "b.pem").replace("ca.pem", "ca2.pem"));
        assert!(running.restart_only_changes(&files).is_empty());
        let moved = config(
            &base
                .replace("8443", "9443")
                .replace("[tls]\n", "[tls]\ncode_point = 65025\n")
                .replace("8080\"\n", "8080\"\n[admin]\nlisten = \"127.0.0.1:9100\"\n"),
        );
        let changes = running.restart_only_changes(&moved);
        assert_eq!(
            changes,
            [
                "admin.listen ((not set) -> \"127.0.0.1:9100\")",
                "listen (\"127.0.0.1:8443\" -> \"127.0.0.1:9443\")",
                "tls.code_point (62 -> 65025)",
            ],
            "{changes:?}"
        );
    }

    /// `log.access`: the two words, or a file; a change of it is named on
    /// SIGHUP like any setting that takes a restart.
    #[test]
    fn the_access_log_target() {
        let base = "listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nbot_ca = \"ca.pem\"\n[upstream]\nurl = \"http://127.0.0.1:8080\"\n";
        let with = |access: &str| config(&format!("{base}[log]\naccess = \"{access}\"\n"));
        assert_eq!(config(base).log.access, AccessLogTarget::Stdout);
        assert_eq!(with("stdout").log.access, AccessLogTarget::Stdout);
        assert_eq!(with("off").log.access, AccessLogTarget::Off);
        assert_eq!(
            with("./stdout").log.access,
            AccessLogTarget::File("./stdout".into())
        );
        let empty = toml::from_str::<Config>(&format!("{base}[log]\naccess = \"\"\n"));
        assert!(empty.is_err_and(|error| error.to_string().contains("name a file")));
        for stderr in ["stderr", "STDERR", " stderr "] {
            let refused =
                toml::from_str::<Config>(&format!("{base}[log]\naccess = \"{stderr}\"\n"));
            assert!(refused.is_err_and(|error| error.to_string().contains("./stderr")));
        }
        assert_eq!(with("OFF").log.access, AccessLogTarget::Off);
        assert_eq!(
            config(base).restart_only_changes(&with("/var/log/rca-proxy/access.log")),
            ["log.access (\"stdout\" -> \"/var/log/rca-proxy/access.log\")"]
        );
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::check_prefix;

    /// A prefix with a query is refused with the path to write; the
    /// message named the refused value itself (found by an outside review).
    #[test]
    fn a_prefix_with_a_query_is_told_its_path() {
        let refused = check_prefix("/api/crawl?x").expect_err("a query");
        assert!(refused.contains("write \"/api/crawl\""), "{refused}");
        let refused = check_prefix("/api//crawl").expect_err("not canonical");
        assert!(refused.contains("write \"/api/crawl\""), "{refused}");
        assert!(check_prefix("/api/crawl").is_ok());
    }
}
