//! The bot's side of `rca-connect`: connections to the real servers, made
//! with the flag set, the bot identity given only in answer to a
//! CertificateRequest that acknowledges it (RCA-2; see
//! [`ClientFlags`]), and the server verified. Pooled and, over `h2`,
//! multiplexed per host by hyper-util's client; each connection's outcome
//! travels with every response made on it, and is logged as one JSON line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use rustls_req_client_auth::ClientFlags;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::connect::failure::{handshake_failure, ConnectFailure, Refusals, Refused};
use crate::connect::identity::BotIdentity;
use crate::connect::metrics::ConnectMetrics;
use crate::connect::outcome::{report, tls_outcome, ConnectionOutcome};
use crate::connect::prepared::Prepared;
use crate::connect::sessions::{self, UpstreamSessions};
use crate::connect::upstream_io::{Accounting, Stream, UpstreamIo};

/// What the connections need; see [`FlagConnector::new`].
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// The roots servers are verified against (at first; see
    /// [`FlagConnector::reload`]).
    pub roots: RootCertStore,
    /// The hosts the bot identity may go to; `None`: any host whose
    /// CertificateRequest acknowledges the flag.
    pub identity_hosts: Option<Vec<HostPattern>>,
    /// For TCP connect, and again for the TLS handshake (and at most this
    /// long for a free place under `max_connections`).
    pub connect_timeout: Duration,
    /// Connections to servers open at once, pooled idle ones included
    /// (`--max-upstream-connections`); `None`: no cap.
    pub max_connections: Option<usize>,
}

/// A host name, or `*.` and a domain (any name below it, not the domain
/// itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    /// `pattern`, lowercased.
    pub fn new(pattern: &str) -> Self {
        Self(pattern.trim_end_matches('.').to_ascii_lowercase())
    }

    /// [`HostPattern::new`], for a pattern that can match a host.
    ///
    /// # Errors
    ///
    /// `pattern` could never match one: not a host name, `*.` and a
    /// domain, or an IP address (`*`, `host:port`, `https://host`, a
    /// space). Matching nothing, it would keep the identity from every host
    /// without a word.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let parsed = Self::new(pattern);
        let host = parsed.0.strip_prefix("*.").unwrap_or(&parsed.0);
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host);
        let ip = host.parse::<std::net::IpAddr>().ok();
        let wildcard = parsed.0.starts_with("*.");
        let is_host = !host.is_empty()
            && (ip.is_some() || rustls::pki_types::DnsName::try_from(host).is_ok())
            && !(wildcard && ip.is_some());
        if !is_host && !pattern.is_ascii() {
            return Err(format!(
                "{pattern:?} is not a host name as clients send it: write an internationalized \
                 name in its ASCII form (xn--...), as curl and browsers send it"
            ));
        }
        if !is_host {
            return Err(format!(
                "{pattern:?} is not a host name, \"*.\" and a domain, or an IP address \
                 (no scheme, port, path or spaces; for every host, leave the option out)"
            ));
        }
        // An address as the connector reads a request's host: no brackets,
        // one spelling (`[0:0::1]` is `::1`).
        Ok(ip.map_or(parsed, |ip| Self(ip.to_string())))
    }

    fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host
            .parse::<std::net::IpAddr>()
            .map_or(host, |ip| ip.to_string());
        match self.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|below| below.len() > 1 && below.ends_with('.')),
            None => host == self.0,
        }
    }
}

/// The client configurations; replaced whole when the identity and roots
/// are reloaded.
#[derive(Debug)]
struct Configs {
    flagged: Arc<ClientConfig>,
    plain: Arc<ClientConfig>,
    /// As `flagged` and `plain`, offering `http/1.1` only: for WebSocket
    /// handshakes, which need HTTP/1.1's `Upgrade`.
    flagged_http1: Arc<ClientConfig>,
    plain_http1: Arc<ClientConfig>,
    thumbprint: String,
}

/// The application protocols a new connection offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offer {
    /// `h2` and `http/1.1`: connections for the pool.
    Http,
    /// `http/1.1` only.
    Http1,
}

/// Makes upstream connections for hyper-util's client.
#[derive(Clone, Debug)]
pub struct FlagConnector {
    configs: Arc<RwLock<Arc<Configs>>>,
    settings: Arc<UpstreamSettings>,
    refusals: Arc<Refusals>,
    metrics: Arc<ConnectMetrics>,
    prepared: Arc<Prepared<UpstreamIo, ConnectFailure>>,
    /// A place for each connection to a server (see
    /// [`UpstreamSettings::max_connections`]).
    slots: Arc<tokio::sync::Semaphore>,
}

impl FlagConnector {
    /// A connector for `identity` under `settings`.
    ///
    /// # Errors
    ///
    /// The identity and roots do not make a client configuration.
    pub fn new(identity: &BotIdentity, settings: UpstreamSettings) -> anyhow::Result<Self> {
        let configs = configs(identity, &settings.roots)?;
        let slots = settings
            .max_connections
            .unwrap_or(tokio::sync::Semaphore::MAX_PERMITS)
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Ok(Self {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            configs: Arc::new(RwLock::new(Arc::new(configs))),
            settings: Arc::new(settings),
            refusals: Arc::default(),
            metrics: Arc::new(ConnectMetrics::new()),
            prepared: Arc::default(),
        })
    }

    /// Uses `identity`, and servers verified against `roots`, for
    /// connections made from now on (SIGHUP); connections already open
    /// keep what they were made with.
    ///
    /// # Errors
    ///
    /// As [`FlagConnector::new`]; the running identity and roots are kept.
    pub fn reload(&self, identity: &BotIdentity, roots: &RootCertStore) -> anyhow::Result<()> {
        let configs = configs(identity, roots)?;
        *self.configs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(configs);
        Ok(())
    }

    /// Logs and counts a connection that did not come about.
    fn failed(&self, outcome: &ConnectionOutcome, failure: ConnectFailure) -> ConnectFailure {
        report(&self.metrics, outcome, Some(&failure.to_string()));
        failure
    }

    /// What a new connection to `uri` reports to.
    fn accounting(&self, uri: &Uri, slot: tokio::sync::OwnedSemaphorePermit) -> Accounting {
        Accounting {
            refusals: Arc::clone(&self.refusals),
            metrics: Arc::clone(&self.metrics),
            open: server_key(uri).map(|key| self.prepared.opened(&key)),
            slot,
        }
    }

    /// A place for one more connection to a server: at once if one is
    /// free, else within the connect timeout. Without a cap, one client
    /// connection's 128 HTTP/2 streams to an HTTP/1.1 server opened 128
    /// connections, and a few such clients took every file descriptor, so
    /// that the proxy served no one (found by an outside attack).
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ConnectFailure> {
        crate::common::permits::take_within(&self.slots, self.settings.connect_timeout)
            .await
            .ok_or(ConnectFailure::Busy(
                self.settings.max_connections.unwrap_or_default(),
            ))
    }

    /// The counters of its connections (and of the requests a
    /// [`crate::connect::relay::Relay`] sends through it).
    pub fn metrics(&self) -> Arc<ConnectMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The refusal that most likely failed a request to `host:port` just
    /// now, when the request's error no longer carries it.
    pub fn recent_refusal(&self, host: &str, port: u16) -> Option<Arc<Refused>> {
        self.refusals.recent(host, port)
    }

    fn current(&self) -> Arc<Configs> {
        Arc::clone(&self.configs.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn identity_allowed(&self, host: &str) -> bool {
        self.settings
            .identity_hosts
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|pattern| pattern.matches(host)))
    }

    /// Begins a connection to `uri` (`scheme://host:port`) now, for the
    /// request that will follow, unless one is open or begun already (see
    /// [`Prepared`]).
    pub fn prepare(&self, uri: &Uri) {
        let Some(key) = server_key(uri) else {
            return;
        };
        let connector = self.clone();
        let uri = uri.clone();
        self.prepared
            .begin(key, connector.connect_new(uri, Offer::Http));
    }

    /// A connection for hyper-util's pool: the one begun ahead for this
    /// server if there is one, else a new one.
    async fn connect(self, uri: Uri) -> Result<UpstreamIo, ConnectFailure> {
        if let Some(key) = server_key(&uri) {
            if let Some(ready) = self.prepared.take(&key).await {
                return ready;
            }
        }
        self.connect_new(uri, Offer::Http).await
    }

    /// A new connection to `uri` (`scheme://host:port`) of its own, not
    /// pooled, that offers only `http/1.1`: for a WebSocket handshake.
    ///
    /// # Errors
    ///
    /// As a pooled connection's: the target, the connection, the handshake.
    pub async fn connect_http1(&self, uri: Uri) -> Result<UpstreamIo, ConnectFailure> {
        self.clone().connect_new(uri, Offer::Http1).await
    }

    async fn connect_new(self, uri: Uri, offer: Offer) -> Result<UpstreamIo, ConnectFailure> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(ConnectFailure::Target(format!("{uri}: not http or https"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| ConnectFailure::Target(format!("{uri}: no host")))?;
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or_else(|| default_port(uri.scheme_str().unwrap_or("")));
        let unreachable = |error: String| ConnectFailure::Unreachable {
            host: host.clone(),
            port,
            error,
        };
        let slot = self.slot().await?;
        let timeout = self.settings.connect_timeout;
        let mut outcome = ConnectionOutcome {
            host: host.clone(),
            port,
            tls: None,
        };
        let tcp =
            match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(error)) => return Err(self.failed(&outcome, unreachable(error.to_string()))),
                Err(_) => {
                    let failure = unreachable(format!("no connection within {timeout:?}"));
                    return Err(self.failed(&outcome, failure));
                }
            };
        let _ = tcp.set_nodelay(true);
        if !https {
            let accounting = self.accounting(&uri, slot);
            return Ok(UpstreamIo::new(
                Stream::Plain(tcp),
                outcome,
                false,
                accounting,
            ));
        }
        let configs = self.current();
        let flag_sent = self.identity_allowed(&host);
        let config = match (flag_sent, offer) {
            (true, Offer::Http) => &configs.flagged,
            (false, Offer::Http) => &configs.plain,
            (true, Offer::Http1) => &configs.flagged_http1,
            (false, Offer::Http1) => &configs.plain_http1,
        };
        let server_name = ServerName::try_from(host.clone())
            .map_err(|error| ConnectFailure::Target(format!("{host}: {error}")))?;
        sessions::forget_offered();
        let handshake = TlsConnector::from(Arc::clone(config)).connect(server_name, tcp);
        // Read at once: set while the connection was made, on this thread.
        let resumed_identity = sessions::offered_identity();
        let tls = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                let failure = handshake_failure(&host, &error);
                report(&self.metrics, &outcome, Some(&failure.to_string()));
                return Err(failure);
            }
            Err(_) => {
                let failure = ConnectFailure::Handshake {
                    host,
                    error: format!("no handshake within {timeout:?}"),
                };
                report(&self.metrics, &outcome, Some(&failure.to_string()));
                return Err(failure);
            }
        };
        let conn = tls.get_ref().1;
        outcome.tls = Some(tls_outcome(
            conn,
            flag_sent,
            &configs.thumbprint,
            resumed_identity,
        ));
        let h2 = conn.alpn_protocol() == Some(b"h2");
        let accounting = self.accounting(&uri, slot);
        Ok(UpstreamIo::new(
            Stream::Tls(Box::new(tls)),
            outcome,
            h2,
            accounting,
        ))
    }
}

/// The port `scheme` (`https` or `http`) implies when a URL gives none.
pub(crate) fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

/// The server `uri` names, as `scheme://host:port` with the default port
/// made explicit.
fn server_key(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let port = uri.port_u16().unwrap_or_else(|| default_port(scheme));
    Some(format!(
        "{scheme}://{}:{port}",
        uri.host()?.to_ascii_lowercase()
    ))
}

impl tower::Service<Uri> for FlagConnector {
    type Response = UpstreamIo;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// The flagged configurations (bot identity for acknowledged requests) and
/// the plain ones (hosts outside the allowlist), all verifying servers
/// against `roots`, offering `h2` and `http/1.1` or `http/1.1` only. Each
/// keeps its own sessions.
fn configs(identity: &BotIdentity, roots: &RootCertStore) -> anyhow::Result<Configs> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let build = |flags: ClientFlags, offer: Offer| -> anyhow::Result<Arc<ClientConfig>> {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = match offer {
            Offer::Http => rustls_req_client_auth::http_alpn(),
            Offer::Http1 => vec![b"http/1.1".to_vec()],
        };
        let outcomes = flags.outcomes();
        config.resumption = Resumption::store(Arc::new(UpstreamSessions::new(
            outcomes,
            identity.thumbprint(),
        )));
        flags.install(&mut config)?;
        Ok(Arc::new(config))
    };
    let flagged = || ClientFlags::request_client_auth(identity.certified_key());
    Ok(Configs {
        flagged: build(flagged(), Offer::Http)?,
        plain: build(ClientFlags::without_identity(), Offer::Http)?,
        flagged_http1: build(flagged(), Offer::Http1)?,
        plain_http1: build(ClientFlags::without_identity(), Offer::Http1)?,
        thumbprint: identity.thumbprint().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::HostPattern;

    /// A name matches itself in any case and with a final dot; `*.domain`
    /// matches the names below the domain, not the domain or look-alikes.
    #[test]
    fn host_patterns_match_names_and_subdomains() {
        let exact = HostPattern::new("API.example.com");
        assert!(exact.matches("api.example.com"));
        assert!(exact.matches("api.example.com."));
        assert!(!exact.matches("www.example.com"));
        let below = HostPattern::new("*.example.com");
        assert!(below.matches("a.example.com"));
        assert!(below.matches("a.b.EXAMPLE.com"));
        assert!(!below.matches("example.com"));
        assert!(!below.matches("badexample.com"));
        // Patterns that could never match are refused, not kept silently.
        for never in [
            "*",
            "localhost:8443",
            "https://localhost",
            "localhost ",
            "*.10.0.0.1",
            "",
        ] {
            assert!(HostPattern::parse(never).is_err(), "{never:?}");
        }
        for host in [
            "localhost",
            "*.example.com",
            "127.0.0.1",
            "::1",
            "[::1]",
            "a.test.",
        ] {
            assert!(HostPattern::parse(host).is_ok(), "{host:?}");
        }
        // An address matches the host as the connector reads it (no
        // brackets), in any spelling.
        for pattern in ["::1", "[::1]", "[0:0::1]"] {
            let parsed = HostPattern::parse(pattern).expect("an address");
            assert!(parsed.matches("::1") && parsed.matches("0::1"), "{pattern}");
        }
        assert!(!below.matches(".example.com"));
    }
}
