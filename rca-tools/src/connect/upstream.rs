//! The bot's side of `rca-connect`: connections to the real servers, made
//! with the flag set, the bot identity given only in answer to a
//! CertificateRequest that acknowledges it (RCA-2; see
//! [`ClientFlags`]), and the server verified. Pooled and, over `h2`,
//! multiplexed per host by hyper-util's client; each connection's outcome
//! travels with every response made on it, and is logged as one JSON line.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind, NamedGroup, RootCertStore};
use rustls_req_client_auth::client::{
    client_state, CertificateRequestCause, ClientFlagsState, ClientOutcomes, SentIdentity,
};
use rustls_req_client_auth::{describe_tls_error, find_tls_error, ClientFlags};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::common::json_lines;
use crate::connect::identity::BotIdentity;
use crate::connect::metrics::ConnectMetrics;
use crate::connect::prepared::{OpenConnection, Prepared};

/// What the connections need; see [`FlagConnector::new`].
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// The roots servers are verified against.
    pub roots: RootCertStore,
    /// The hosts the bot identity may go to; `None`: any host whose
    /// CertificateRequest acknowledges the flag.
    pub identity_hosts: Option<Vec<HostPattern>>,
    /// For TCP connect, and again for the TLS handshake.
    pub connect_timeout: Duration,
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

    fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|below| below.len() > 1 && below.ends_with('.')),
            None => host == self.0,
        }
    }
}

/// What happened on one upstream connection, as far as the client can tell
/// when it is made; in the extensions of every response made on it.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionOutcome {
    /// The host, as the client asked for it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `None` on a plain `http://` connection.
    pub tls: Option<TlsOutcome>,
}

impl ConnectionOutcome {
    /// What the server did with the flag, in a word: `acknowledged`,
    /// `not-acknowledged` (a CertificateRequest without it),
    /// `no-certificate-request`, `resumed` (the session's path holds), or
    /// `not-sent` (plain HTTP, or a host outside the identity allowlist).
    pub fn flag(&self) -> &'static str {
        match &self.tls {
            None => "not-sent",
            Some(tls) => match (tls.flag_sent, tls.resumed, tls.certificate_request) {
                (false, _, _) => "not-sent",
                (true, true, _) => "resumed",
                (true, false, Some("flag")) => "acknowledged",
                (true, false, Some(_)) => "not-acknowledged",
                (true, false, None) => "no-certificate-request",
            },
        }
    }
}

/// The TLS part of a [`ConnectionOutcome`].
#[derive(Clone, Debug, Serialize)]
pub struct TlsOutcome {
    /// `TLSv1_3` or `TLSv1_2`.
    pub version: String,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// Whether the session was resumed (then no CertificateRequest comes:
    /// the server keeps the path of the session it resumes, RCA-11).
    pub resumed: bool,
    /// Whether the ClientHello set `request_client_auth` (not for hosts
    /// outside the identity allowlist).
    pub flag_sent: bool,
    /// `flag` (acknowledged), `server_policy` (not acknowledged) or `None`.
    pub certificate_request: Option<&'static str>,
    /// Which certificate answered it.
    pub identity_sent: String,
    /// The `x5t#S256` of the bot certificate, if that was sent.
    pub identity: Option<String>,
}

impl TlsOutcome {
    /// Whether the server acknowledged the flag.
    pub fn acknowledged(&self) -> bool {
        self.certificate_request == Some("flag")
    }
}

/// Why no connection came about; in the client's error chain.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// Not a host and port the connector can use.
    #[error("{0}")]
    Target(String),
    /// DNS or TCP.
    #[error("cannot reach {host}:{port}: {error}")]
    Unreachable {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        error: String,
    },
    /// The server's certificate did not verify.
    #[error("the certificate of {host} did not verify: {error}")]
    Verification {
        /// The host.
        host: String,
        /// What rustls said.
        error: String,
    },
    /// The handshake failed otherwise.
    #[error("the TLS handshake with {host} failed: {error}")]
    Handshake {
        /// The host.
        host: String,
        /// What rustls said.
        error: String,
    },
}

/// The server refused the connection after the handshake: in TLS 1.3 a
/// server verifies the client's certificate after the client is done, so a
/// refusal is the alert (or the close) that ends the first read.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    /// What the connection was.
    pub outcome: Box<ConnectionOutcome>,
    /// The alert, or the early close.
    pub reason: String,
}

/// The latest refusal per `host:port`, for a request whose error lost the
/// [`Refused`] on the way (h2 keeps only an I/O error's kind and text).
#[derive(Debug, Default)]
struct Refusals(
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Arc<Refused>)>>,
);

impl Refusals {
    /// How long a refusal explains a failed request to the same server.
    const FRESH: Duration = Duration::from_secs(10);
    /// Servers remembered; past this the oldest half is forgotten.
    const CAPACITY: usize = 1024;

    fn record(&self, refused: Arc<Refused>) {
        let key = format!("{}:{}", refused.outcome.host, refused.outcome.port);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < Self::FRESH);
        }
        map.insert(key, (std::time::Instant::now(), refused));
    }

    fn recent(&self, host: &str, port: u16) -> Option<Arc<Refused>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&format!("{host}:{port}"))
            .filter(|(at, _)| at.elapsed() < Self::FRESH)
            .map(|(_, refused)| Arc::clone(refused))
    }
}

/// A [`Refused`] as an I/O error's payload.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.reason)]
pub struct RefusedError(pub Arc<Refused>);

/// The client configurations; replaced whole when the identity is reloaded.
#[derive(Debug)]
struct Configs {
    flagged: Arc<ClientConfig>,
    plain: Arc<ClientConfig>,
    thumbprint: String,
}

/// Makes upstream connections for hyper-util's client.
#[derive(Clone, Debug)]
pub struct FlagConnector {
    configs: Arc<RwLock<Arc<Configs>>>,
    settings: Arc<UpstreamSettings>,
    refusals: Arc<Refusals>,
    metrics: Arc<ConnectMetrics>,
    prepared: Arc<Prepared<UpstreamIo, ConnectFailure>>,
}

impl FlagConnector {
    /// A connector for `identity` under `settings`.
    ///
    /// # Errors
    ///
    /// The identity and roots do not make a client configuration.
    pub fn new(identity: &BotIdentity, settings: UpstreamSettings) -> anyhow::Result<Self> {
        let configs = configs(identity, &settings.roots)?;
        Ok(Self {
            configs: Arc::new(RwLock::new(Arc::new(configs))),
            settings: Arc::new(settings),
            refusals: Arc::default(),
            metrics: Arc::new(ConnectMetrics::new()),
            prepared: Arc::default(),
        })
    }

    /// Uses `identity` for connections made from now on.
    ///
    /// # Errors
    ///
    /// As [`FlagConnector::new`]; the running identity is kept.
    pub fn replace_identity(&self, identity: &BotIdentity) -> anyhow::Result<()> {
        let configs = configs(identity, &self.settings.roots)?;
        *self.configs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(configs);
        Ok(())
    }

    /// Logs and counts a connection that did not come about.
    fn failed(&self, outcome: &ConnectionOutcome, failure: ConnectFailure) -> ConnectFailure {
        report(&self.metrics, outcome, Some(&failure.to_string()));
        failure
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
        self.prepared.begin(key, connector.connect_new(uri));
    }

    /// A connection for hyper-util's pool: the one begun ahead for this
    /// server if there is one, else a new one.
    async fn connect(self, uri: Uri) -> Result<UpstreamIo, ConnectFailure> {
        if let Some(key) = server_key(&uri) {
            if let Some(ready) = self.prepared.take(&key).await {
                return ready;
            }
        }
        self.connect_new(uri).await
    }

    async fn connect_new(self, uri: Uri) -> Result<UpstreamIo, ConnectFailure> {
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
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let unreachable = |error: String| ConnectFailure::Unreachable {
            host: host.clone(),
            port,
            error,
        };
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
            return Ok(UpstreamIo::new(
                Stream::Plain(tcp),
                outcome,
                false,
                &self,
                &uri,
            ));
        }
        let configs = self.current();
        let flag_sent = self.identity_allowed(&host);
        let config = if flag_sent {
            &configs.flagged
        } else {
            &configs.plain
        };
        let server_name = ServerName::try_from(host.clone())
            .map_err(|error| ConnectFailure::Target(format!("{host}: {error}")))?;
        let handshake = TlsConnector::from(Arc::clone(config)).connect(server_name, tcp);
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
        outcome.tls = Some(tls_outcome(conn, flag_sent, &configs.thumbprint));
        let h2 = conn.alpn_protocol() == Some(b"h2");
        Ok(UpstreamIo::new(
            Stream::Tls(Box::new(tls)),
            outcome,
            h2,
            &self,
            &uri,
        ))
    }
}

/// What the handshake of `conn` did with the flag.
fn tls_outcome(conn: &rustls::ClientConnection, flag_sent: bool, thumbprint: &str) -> TlsOutcome {
    let state = client_state(conn);
    let sent = state.map_or(SentIdentity::NotRequested, ClientFlagsState::sent_identity);
    TlsOutcome {
        version: conn
            .protocol_version()
            .map_or_else(String::new, |version| format!("{version:?}")),
        alpn: conn
            .alpn_protocol()
            .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
        resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
        flag_sent,
        certificate_request: state
            .and_then(ClientFlagsState::certificate_request)
            .map(|cause| match cause {
                CertificateRequestCause::Flag => "flag",
                CertificateRequestCause::ServerPolicy => "server_policy",
            }),
        identity_sent: sent.to_string(),
        identity: (sent == SentIdentity::FlagIdentity).then(|| thumbprint.to_owned()),
    }
}

/// The server `uri` names, as `scheme://host:port` with the default port
/// made explicit.
fn server_key(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
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

fn handshake_failure(host: &str, error: &io::Error) -> ConnectFailure {
    match find_tls_error(error) {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => ConnectFailure::Verification {
            host: host.to_owned(),
            error: describe_tls_error(tls),
        },
        Some(tls) => ConnectFailure::Handshake {
            host: host.to_owned(),
            error: describe_tls_error(tls),
        },
        None => ConnectFailure::Handshake {
            host: host.to_owned(),
            error: error.to_string(),
        },
    }
}

/// The flagged configuration (bot identity for acknowledged requests) and
/// the plain one (hosts outside the allowlist), both verifying servers
/// against `roots` and offering `h2` and `http/1.1`.
fn configs(identity: &BotIdentity, roots: &RootCertStore) -> anyhow::Result<Configs> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let build = |flags: ClientFlags| -> anyhow::Result<Arc<ClientConfig>> {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = rustls_req_client_auth::http_alpn();
        let outcomes = flags.outcomes();
        config.resumption = Resumption::store(Arc::new(NoResumeAfterEmptyCertificate {
            sessions: ClientSessionMemoryCache::new(256),
            outcomes,
        }));
        flags.install(&mut config)?;
        Ok(Arc::new(config))
    };
    Ok(Configs {
        flagged: build(ClientFlags::request_client_auth(identity.certified_key()))?,
        plain: build(ClientFlags::without_identity())?,
        thumbprint: identity.thumbprint().to_owned(),
    })
}

/// Keeps no ticket of a session in which a CertificateRequest was answered
/// with an empty Certificate. A server that asked because of the flag
/// without acknowledging it (Cloudflare's Go fork on 0xFE01) was seen to
/// wait for a client certificate again when such a session is resumed, and
/// to abort with `unexpected_message`: every second connection failed. A
/// full handshake costs a little; a failed request costs the request.
#[derive(Debug)]
struct NoResumeAfterEmptyCertificate {
    sessions: ClientSessionMemoryCache,
    outcomes: ClientOutcomes,
}

impl ClientSessionStore for NoResumeAfterEmptyCertificate {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.sessions.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.sessions.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.sessions.set_tls12_session(server_name, value);
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.sessions.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.sessions.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        let answered_empty = self
            .outcomes
            .get(&server_name.to_str())
            .is_some_and(|state| {
                state.certificate_request().is_some()
                    && state.sent_identity() == SentIdentity::Empty
            });
        if answered_empty {
            log::debug!(
                "not keeping a session ticket of {server_name:?}: a CertificateRequest there was answered with an empty Certificate"
            );
            return;
        }
        self.sessions.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.sessions.take_tls13_ticket(server_name)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One upstream connection: its outcome, logged once its first read ends
/// (then a refusal is known), and reported as [`Refused`] if that read
/// fails.
pub struct UpstreamIo {
    io: TokioIo<Stream>,
    outcome: Option<Box<ConnectionOutcome>>,
    connected: ConnectionOutcome,
    h2: bool,
    refusals: Arc<Refusals>,
    metrics: Arc<ConnectMetrics>,
    /// Counts this connection as open to its server while it lives.
    _open: Option<OpenConnection<UpstreamIo, ConnectFailure>>,
}

impl UpstreamIo {
    fn new(
        stream: Stream,
        outcome: ConnectionOutcome,
        h2: bool,
        connector: &FlagConnector,
        uri: &Uri,
    ) -> Self {
        Self {
            io: TokioIo::new(stream),
            outcome: Some(Box::new(outcome.clone())),
            connected: outcome,
            h2,
            refusals: Arc::clone(&connector.refusals),
            metrics: Arc::clone(&connector.metrics),
            _open: server_key(uri).map(|key| connector.prepared.opened(&key)),
        }
    }

    /// The first read has ended, or a write failed before it: log the
    /// connection; a failure becomes a [`Refused`].
    fn first_event(&mut self, result: &mut io::Result<usize>) {
        let Some(outcome) = self.outcome.take() else {
            return;
        };
        let identity_sent = outcome
            .tls
            .as_ref()
            .is_some_and(|tls| tls.identity.is_some() || tls.identity_sent.contains("config"));
        let reason = match result {
            Ok(0) if identity_sent => Some(
                "the server closed the connection before answering, after the client sent its certificate: it most likely refused the bot certificate"
                    .to_owned(),
            ),
            Ok(_) => None,
            Err(error) => Some(match find_tls_error(error) {
                Some(rustls::Error::AlertReceived(alert)) if identity_sent => format!(
                    "the server refused the bot certificate: alert {alert:?} after the handshake"
                ),
                Some(tls) => describe_tls_error(tls),
                // A write that found the connection closed: the alert, if
                // any, was never read.
                None if identity_sent => format!(
                    "the server closed the connection after the client sent its certificate ({error}): it most likely refused the bot certificate"
                ),
                None => error.to_string(),
            }),
        };
        report(&self.metrics, &outcome, reason.as_deref());
        if let Some(reason) = reason {
            let kind = match result {
                Err(error) => error.kind(),
                Ok(_) => io::ErrorKind::UnexpectedEof,
            };
            let refused = Arc::new(Refused { outcome, reason });
            self.refusals.record(Arc::clone(&refused));
            *result = Err(io::Error::new(kind, RefusedError(refused)));
        }
    }

    /// A write's result, seen by [`UpstreamIo::first_event`] if it failed
    /// before the first read ended.
    fn written(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Err(error)) if self.outcome.is_some() => {
                let mut result = Err(error);
                self.first_event(&mut result);
                Poll::Ready(result)
            }
            other => other,
        }
    }
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.connected.clone());
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for UpstreamIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.outcome.is_none() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        // The first read goes through a small buffer of its own, to see
        // how it ended.
        let mut first = [0u8; 4096];
        let mut first_buf = ReadBuf::new(&mut first);
        let Poll::Ready(result) = Pin::new(self.io.inner_mut()).poll_read(cx, &mut first_buf)
        else {
            return Poll::Pending;
        };
        let mut result = result.map(|()| first_buf.filled().len());
        self.first_event(&mut result);
        let read = result?;
        let filled = first_buf.filled();
        let taken = read.min(buf.remaining());
        buf.put_slice(filled.get(..taken).unwrap_or_default());
        if taken < read {
            // Never: hyper reads into buffers of at least 8 KiB.
            return Poll::Ready(Err(io::Error::other(
                "the first read did not fit hyper's buffer",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(written)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One JSON line per upstream connection, on standard output.
#[derive(Serialize)]
struct ConnectionLine<'a> {
    time: String,
    event: &'static str,
    #[serde(flatten)]
    outcome: &'a ConnectionOutcome,
    acknowledged: bool,
    /// Why the server refused the bot certificate.
    refused: Option<&'a str>,
    /// Why the connection failed otherwise.
    error: Option<&'a str>,
}

/// Logs and counts one upstream connection, once its outcome is known.
fn report(metrics: &ConnectMetrics, outcome: &ConnectionOutcome, failure: Option<&str>) {
    log_connection(outcome, failure);
    let connected = outcome.tls.is_some() || failure.is_none();
    metrics.connection(
        connected.then(|| outcome.flag()),
        failure.is_some(),
        failure.is_some_and(is_refusal),
    );
}

fn log_connection(outcome: &ConnectionOutcome, failure: Option<&str>) {
    let refused = failure.filter(|failure| is_refusal(failure));
    json_lines::push_json(&ConnectionLine {
        time: format!("{:.3}", jiff::Timestamp::now()),
        event: "upstream_connection",
        outcome,
        acknowledged: outcome.tls.as_ref().is_some_and(TlsOutcome::acknowledged),
        refused,
        error: failure.filter(|_| refused.is_none()),
    });
}

/// Whether a failure is the server refusing the bot certificate.
fn is_refusal(failure: &str) -> bool {
    failure.contains(REFUSED)
}

/// The words every refusal's text has.
const REFUSED: &str = "refused the bot certificate";

/// The roots named by `--roots`: Mozilla's (webpki-roots), the system's
/// (rustls-native-certs) or none (only `--ca`).
///
/// # Errors
///
/// The system's store could not be read at all.
pub fn roots(source: RootSource) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match source {
        RootSource::Mozilla => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootSource::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                anyhow::bail!(
                    "no system roots found ({}); use --roots mozilla or --ca",
                    found
                        .errors
                        .first()
                        .map_or_else(|| "the store is empty".to_owned(), ToString::to_string)
                );
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            log::info!("{added} system roots");
        }
        RootSource::None => {}
    }
    Ok(roots)
}

/// Where the server roots come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RootSource {
    /// Mozilla's, compiled in (webpki-roots).
    Mozilla,
    /// The operating system's (rustls-native-certs).
    System,
    /// None: only the CAs given with `--ca`.
    None,
}
