//! One HTTPS port for people and bots: TLS accept with a handshake timeout,
//! HTTP/1.1 or HTTP/2 by ALPN, the client's [`PeerIdentity`](crate::PeerIdentity) in every
//! request's extensions, a connection limit and graceful shutdown (feature
//! `axum`). Modelled on `axum::serve`.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use log::{debug, info, warn};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

use crate::acceptor::{AcceptError, Acceptor};
use crate::activity::{ConnectionActivity, WhileOpen};
use crate::cancelled_requests::{CancelBudget, CancelledRequests};
use crate::client_slots::{ClientSlot, ClientSlots};
use crate::identity::PeerIdentity;
use crate::log_budget::{LogBudget, Verdict};
use crate::proxy_protocol::ProxyProtocol;
use crate::refused_request::{status_answered, RefusedRequest, RefusedRequestObserver};
use crate::send_timeout::SendTimeout;
use crate::server::{AuthPath, CertificateRequestCause};
use crate::stalled_streams::{StalledStreams, Watched};

/// Serves `service` (an `axum::Router`, or any tower service of
/// `Request<Incoming>`) over TLS on `listener`.
///
/// `config` should have [`crate::ServerFlags`] installed; if its
/// `alpn_protocols` is empty it is served with `h2, http/1.1`. Each request
/// carries the connection's [`PeerIdentity`](crate::PeerIdentity) and `ConnectInfo<SocketAddr>`
/// in its extensions (extract them with [`PeerIdentity`](crate::PeerIdentity), [`crate::Bot`] or
/// axum's `ConnectInfo`), and an [`Upgraded`] handle for work that outlives
/// an HTTP upgrade (a WebSocket tunnel). A response with `Connection: close`
/// ends its connection after it on either protocol: over HTTP/2, which has
/// no such header, with a GOAWAY once the streams in flight are answered
/// (the header is not sent).
///
/// ```no_run
/// # async fn demo(config: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
/// use axum::{routing::get, Router};
/// use rustls_req_client_auth::PeerIdentity;
///
/// let app = Router::new().route("/", get(|peer: PeerIdentity| async move { peer.to_string() }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// rustls_req_client_auth::serve(listener, config, app)
///     .with_graceful_shutdown(rustls_req_client_auth::shutdown_signal())
///     .await
/// # }
/// ```
pub fn serve<S>(listener: TcpListener, config: Arc<ServerConfig>, service: S) -> Serve<S> {
    Serve {
        listener,
        acceptor: Acceptor::new(with_default_alpn(config)),
        service,
        limits: Limits::default(),
        observer: None,
        refused_requests: None,
        http1_front: None,
        proxy_protocol: None,
        drain: None,
        grace_ran_out: None,
    }
}

/// A future that begins something later, boxed.
type Signal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Called with the outcome of every connection's TLS handshake, and of each
/// closed for its PROXY protocol header (for metrics).
pub type HandshakeObserver = Arc<dyn Fn(Result<&PeerIdentity, &AcceptError>) + Send + Sync>;

fn with_default_alpn(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    if !config.alpn_protocols.is_empty() {
        return config;
    }
    let mut config = (*config).clone();
    config.alpn_protocols = crate::http_alpn();
    Arc::new(config)
}

/// The shortest request-head limit hyper takes (its `max_buf_size`).
const MIN_HTTP1_HEAD: usize = 8192;

/// A client's TLS stream as served, over a TCP stream whose writes may wait
/// [`Serve::send_timeout`] each for the client to read. Boxed: it moves
/// from the handshake to an [`Http1Front`] to hyper, and each future state
/// it passes through would otherwise keep room for its 1.3 KB, for idle
/// connections too.
pub type ClientStream = Box<tokio_rustls::server::TlsStream<SendTimeout<TcpStream>>>;

#[derive(Clone, Copy, Debug)]
struct Limits {
    header_read_timeout: Duration,
    send_timeout: Duration,
    idle_timeout: Duration,
    shutdown_grace: Duration,
    max_connections: usize,
    max_connections_per_client: Option<usize>,
    max_concurrent_streams: u32,
    cancelled_requests: CancelledRequests,
    max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Serve::<()>::DEFAULT_HEADER_READ_TIMEOUT,
            send_timeout: Serve::<()>::DEFAULT_SEND_TIMEOUT,
            idle_timeout: Serve::<()>::DEFAULT_IDLE_TIMEOUT,
            shutdown_grace: Serve::<()>::DEFAULT_SHUTDOWN_GRACE,
            max_connections: Serve::<()>::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: None,
            max_concurrent_streams: Serve::<()>::DEFAULT_MAX_CONCURRENT_STREAMS,
            max_head: Serve::<()>::DEFAULT_MAX_HEAD,
            cancelled_requests: CancelledRequests {
                max: Serve::<()>::DEFAULT_MAX_CANCELLED_REQUESTS.0,
                within: Serve::<()>::DEFAULT_MAX_CANCELLED_REQUESTS.1,
            },
        }
    }
}

/// A server being set up by [`serve`]; `.await` it (or
/// [`Serve::with_graceful_shutdown`]) to run it.
#[must_use = "a Serve does nothing until awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    acceptor: Acceptor,
    service: S,
    limits: Limits,
    observer: Option<HandshakeObserver>,
    refused_requests: Option<RefusedRequestObserver>,
    http1_front: Option<Arc<dyn Http1Front>>,
    proxy_protocol: Option<Arc<ProxyProtocol>>,
    drain: Option<Signal>,
    grace_ran_out: Option<GraceRanOut>,
}

/// See [`Serve::on_grace_ran_out`].
type GraceRanOut = Box<dyn FnOnce(usize) + Send + Sync>;

impl<S> Serve<S> {
    /// How long a client may take to send a request's headers (HTTP/1.1).
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long a write to a client may wait for it to read (nginx's
    /// `send_timeout`).
    pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
    /// How long a connection may go without a request before it is closed.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    /// How long open connections get to finish once shutdown starts.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
    /// How many connections are served at once; more wait to be accepted.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The longest HTTP/1.1 request head, in bytes: 64 KiB (nginx's
    /// `large_client_header_buffers` take 32 KiB; hyper's own default,
    /// 417 KiB, let 150 unfinished heads hold 85 MB).
    pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;
    /// How many requests one HTTP/2 connection may have in flight at once
    /// (nginx's `http2_max_concurrent_streams`).
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;
    /// How many requests an HTTP/2 client may cancel before their response,
    /// within how long, before its connection is closed with a GOAWAY.
    pub const DEFAULT_MAX_CANCELLED_REQUESTS: (u32, Duration) = (100, Duration::from_secs(10));

    /// How long a client may take to complete the TLS handshake, and to send
    /// the PROXY protocol header before it where one is read
    /// ([`Acceptor::DEFAULT_HANDSHAKE_TIMEOUT`] unless set).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.acceptor = self.acceptor.handshake_timeout(timeout);
        self
    }

    /// How long a client may take to send a request's headers (HTTP/1.1).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long a write to a client may wait for the client to read, counted
    /// from when it began to wait (nginx's `send_timeout`; HTTP/1.1, HTTP/2
    /// and upgraded connections): then the connection is closed. Any socket
    /// write that makes progress ends a wait, as in nginx. An HTTP/2 response
    /// the client grants no flow-control window for that long closes its
    /// whole connection too (hyper gives no way to reset just that stream).
    /// A client that stops reading its response would otherwise keep its
    /// connection, and whatever feeds the response, for as long as it likes.
    /// Zero fails every write that has to wait at once.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.limits.send_timeout = timeout;
        self
    }

    /// How long a connection may go without a request in flight before it is
    /// closed gracefully (HTTP/2: GOAWAY, so a client that only answers pings
    /// does not hold its connection forever; HTTP/1.1: closed between
    /// requests). A request is in flight until its response body ends, so a
    /// long download or event stream keeps its connection.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// How long open connections get to finish once shutdown starts.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.limits.shutdown_grace = grace;
        self
    }

    /// The longest HTTP/1.1 request head, in bytes (at least 8 KiB): what
    /// one connection's unfinished head may hold in memory. A longer head
    /// gets 431.
    pub fn http1_max_head(mut self, bytes: usize) -> Self {
        self.limits.max_head = bytes.max(MIN_HTTP1_HEAD);
        self
    }

    /// How many requests one HTTP/2 connection may have in flight at once
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`, at least one): for a proxy, how
    /// many upstream exchanges one client connection can hold.
    pub fn http2_max_concurrent_streams(mut self, max: u32) -> Self {
        self.limits.max_concurrent_streams = max.max(1);
        self
    }

    /// How many requests an HTTP/2 client may cancel (`RST_STREAM`) after they
    /// reached the service and before their response, within `within`,
    /// before its connection is closed with a GOAWAY: the "rapid reset"
    /// attack (CVE-2023-44487) opens and cancels streams as fast as it can,
    /// each a request for the service, and h2's own limit counts only
    /// streams reset before hyper accepted them.
    pub fn http2_max_cancelled_requests(mut self, max: u32, within: Duration) -> Self {
        self.limits.cancelled_requests = CancelledRequests { max, within };
        self
    }

    /// How many connections are served at once (at least one).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max.max(1);
        self
    }

    /// How many connections one client address may have open at once (at
    /// least one; by default as many as [`Serve::max_connections`]), counted
    /// per IPv4 address or IPv6 /64 ([`ClientSlots`]), after the PROXY
    /// protocol header where one is read. A connection beyond it is closed
    /// before its handshake, and the handshake observer is told
    /// ([`AcceptError::ClientLimit`]). Without it, one address can open every
    /// connection the server serves and lock everyone else out; nginx's
    /// `limit_conn` is the same guard. Behind a load balancer that does not
    /// pass the client's address, every connection is the balancer's.
    pub fn max_connections_per_client(mut self, max: usize) -> Self {
        self.limits.max_connections_per_client = Some(max.max(1));
        self
    }

    /// Calls `observer` with the outcome of every TLS handshake: the client's
    /// identity, or why the handshake failed. With
    /// [`Serve::proxy_protocol`], also with each connection closed for its
    /// PROXY protocol header before any handshake
    /// ([`AcceptError::ProxyProtocol`]: from outside the allowed networks,
    /// a port scan say, or a malformed header), and with
    /// [`Serve::max_connections_per_client`], with each connection closed
    /// for its address's limit ([`AcceptError::ClientLimit`]).
    pub fn on_handshake(
        mut self,
        observer: impl Fn(Result<&PeerIdentity, &AcceptError>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Calls `observer` for every request that hyper answered by itself,
    /// before the service saw it: an HTTP/1.1 head it could not parse (400),
    /// one over [`Serve::http1_max_head`] (431) or a target over 64 KiB
    /// (414). hyper then closes the connection. Without this, an access
    /// log written by the service misses them.
    pub fn on_refused_request(
        mut self,
        observer: impl Fn(&RefusedRequest<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.refused_requests = Some(Arc::new(observer));
        self
    }

    /// Reads a PROXY protocol header (HAProxy's, version 1 or 2) at the start
    /// of every connection, before the TLS handshake, and takes the client
    /// address it carries as the connection's (`ConnectInfo`, the
    /// [`Http1Connection::remote`], the logs): for a server behind a
    /// layer-4 load balancer, which must leave TLS to this server for the
    /// flag to reach it. Only connections from `from` may send one, and
    /// each of them must; any other connection is closed. A header that
    /// names no client (a balancer's health check: v2 `LOCAL`, v1
    /// `UNKNOWN`) leaves the balancer's address. The header and the TLS
    /// handshake after it must both be done within one handshake timeout.
    pub fn proxy_protocol(mut self, from: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.proxy_protocol = Some(Arc::new(ProxyProtocol {
            from: from.into_iter().collect(),
        }));
        self
    }

    /// Gives every HTTP/1.1 connection (ALPN `http/1.1`, or none) to `front`
    /// first, once its handshake is done: it may serve requests itself and
    /// hand the rest of the connection to hyper and the service, or close
    /// it. HTTP/2 connections go to hyper at once. See [`Http1Front`].
    pub fn http1_front(mut self, front: impl Http1Front) -> Self {
        self.http1_front = Some(Arc::new(front));
        self
    }

    /// Calls `observer` once shutdown's grace period
    /// ([`Serve::shutdown_grace`]) has run out with connections still open,
    /// with their number, just before they are closed. A request cut off
    /// then is not a client that left: a service that logs requests whose
    /// connection ended before the answer (nginx's 499) can tell the two
    /// apart from this.
    pub fn on_grace_ran_out(
        mut self,
        observer: impl FnOnce(usize) + Send + Sync + 'static,
    ) -> Self {
        self.grace_ran_out = Some(Box::new(observer));
        self
    }

    /// Drains from when `signal` completes until the stop
    /// ([`Serve::with_graceful_shutdown`]'s signal): new connections are
    /// still accepted and served, but each connection is asked to close
    /// once it has begun a request: HTTP/1.1 ones after the response they
    /// are on (which says `Connection: close`, unless it is a 101 switching
    /// protocols), or at once when idle between requests; HTTP/2 ones get
    /// a GOAWAY and finish the streams they have open. A connection that
    /// switched protocols (a WebSocket) runs on until the stop and its
    /// grace period. For a shutdown delay behind a load balancer: while its
    /// health check takes this server out of rotation, clients on
    /// keep-alive connections move to the other servers instead of waiting
    /// here for the stop.
    pub fn drain_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.drain = Some(Box::pin(signal));
        self
    }
}

/// Serves the requests of an HTTP/1.1 connection it can serve more cheaply
/// than hyper and the service would (a proxy's plain GETs, say), and hands
/// the connection back at the first request it does not serve, with what
/// it read of it: hyper then reads that request as if it came first.
///
/// A front owns the connection until it returns, so it keeps the limits
/// hyper would: [`Http1Connection::header_read_timeout`],
/// [`Http1Connection::idle_timeout`], and [`Http1Connection::stopping`]
/// (close between requests once shutdown starts, and once draining starts
/// if it has served a request, whose response then says `Connection:
/// close`). Shutdown's grace period bounds it as any connection.
pub trait Http1Front: Send + Sync + 'static {
    /// Serves `connection` until it closes, or hands it over.
    fn serve(
        &self,
        connection: Http1Connection,
    ) -> std::pin::Pin<Box<dyn Future<Output = Http1Outcome> + Send + '_>>;
}

/// An HTTP/1.1 connection whose handshake is done, for an [`Http1Front`].
/// Made only by `serve`; more fields may come (destructure it with `..`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Http1Connection {
    /// The TLS stream, its writes bounded by [`Serve::send_timeout`].
    pub stream: ClientStream,
    /// Who the client is.
    pub identity: PeerIdentity,
    /// Its address.
    pub remote: SocketAddr,
    /// How long it may take to send a request's head, counted from when the
    /// head is waited for (so it also bounds an idle keep-alive wait), as
    /// hyper counts it.
    pub header_read_timeout: Duration,
    /// How long it may go without a request before it is closed.
    pub idle_timeout: Duration,
    /// The longest request head hyper reads (it answers 431 past it). A
    /// front that hands over a head it has not read whole should read on
    /// until the head ends or is this long, within the header-read timeout
    /// already running: hyper's own timeout starts again at the hand-over.
    pub max_head: usize,
    /// Whether shutdown (or draining) has started.
    pub stopping: Stopping,
}

/// Whether the server is shutting down, or draining before it does (see
/// [`Serve::drain_on`]).
#[derive(Clone, Debug)]
pub struct Stopping(watch::Receiver<Phase>);

/// Where the server is in its life; only ever moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Every connection closes once it has served a request.
    Draining,
    /// The listener is closed; every connection closes gracefully.
    Stopping,
}

impl Stopping {
    /// Whether shutdown has started.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow() == Phase::Stopping
    }

    /// Completes once shutdown has started.
    pub async fn stopped(&mut self) {
        // An error means the server is gone: stopped as well.
        let _ = self.0.wait_for(|phase| *phase == Phase::Stopping).await;
    }

    /// Whether draining or shutdown has started: a connection that has
    /// served a request should close after its response.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        *self.0.borrow() >= Phase::Draining
    }

    /// Completes once draining or shutdown has started.
    pub async fn draining(&mut self) {
        // An error means the server is gone: stopped as well.
        let _ = self.0.wait_for(|phase| *phase >= Phase::Draining).await;
    }
}

/// How an [`Http1Front`] let go of a connection.
// Made once per connection and moved at once: boxing the stream would cost
// an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Http1Outcome {
    /// It is closed (or to be closed: it is dropped).
    Closed,
    /// hyper and the service serve the rest, starting with `read`: the
    /// bytes read from the stream and not yet served (a request's start).
    HandOver {
        /// The TLS stream.
        stream: ClientStream,
        /// What was read and not served.
        read: Vec<u8>,
    },
}

impl<S, B> Serve<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Serves until `signal` completes, then stops accepting and gives open
    /// connections [`Serve::shutdown_grace`] to finish their requests (and
    /// connections still in their TLS handshake the time to finish it);
    /// whatever is still open after that is closed.
    ///
    /// # Errors
    ///
    /// None today: failures of `accept` itself (such as running out of file
    /// descriptors) are logged and retried after a pause.
    pub async fn with_graceful_shutdown<F>(self, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send,
    {
        let Self {
            listener,
            acceptor,
            service,
            limits,
            observer,
            refused_requests,
            http1_front,
            proxy_protocol,
            drain,
            grace_ran_out,
        } = self;
        let (phase, watching) = watch::channel(Phase::Serving);
        let stopping = Stopping(watching);
        let mut drain = drain;
        // tokio's semaphore holds at most `MAX_PERMITS`; more would panic.
        let permits = Arc::new(Semaphore::new(
            limits.max_connections.min(Semaphore::MAX_PERMITS),
        ));
        let client_slots = limits.max_connections_per_client.map(ClientSlots::new);
        let mut connections = JoinSet::new();
        let mut accept_failures = crate::log_budget::AcceptFailures::default();
        let mut signal = std::pin::pin!(signal);
        loop {
            while connections.try_join_next().is_some() {}
            // `biased`: the shutdown signal is looked at first, every time.
            let next = tokio::select! {
                biased;
                () = &mut signal => Next::Stop,
                () = fired(&mut drain), if drain.is_some() => {
                    debug!("draining: connections close once they have served a request");
                    drain = None;
                    let _ = phase.send(Phase::Draining);
                    continue;
                }
                accepted = accept(&listener, &permits) => accepted,
            };
            let (tcp, remote, permit) = match next {
                Next::Stop => break,
                Next::Connection(tcp, remote, permit) => {
                    accept_failures.recovered();
                    (tcp, remote, permit)
                }
                Next::Failed(error) => {
                    accept_failures.failed(&error);
                    tokio::select! {
                        biased;
                        () = &mut signal => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            let connection = Connection {
                acceptor: acceptor.clone(),
                service: service.clone(),
                limits,
                remote,
                observer: observer.clone(),
                refused_requests: refused_requests.clone(),
                http1_front: http1_front.clone(),
                proxy_protocol: proxy_protocol.clone(),
                client_slots: client_slots.clone(),
            };
            let stopping = stopping.clone();
            connections.spawn(async move {
                let _permit = permit;
                connection.serve(tcp, stopping).await;
            });
        }
        drop(listener);
        debug!(
            "shutting down: waiting up to {:?} for open connections",
            limits.shutdown_grace
        );
        let _ = phase.send(Phase::Stopping);
        let drained = tokio::time::timeout(limits.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                "{} connections still open after {:?}; closing them",
                connections.len(),
                limits.shutdown_grace
            );
            if let Some(observer) = grace_ran_out {
                observer(connections.len());
            }
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        Ok(())
    }
}

/// The lines of [`not_authenticated`]: a client can cause them at will.
static NOT_AUTHENTICATED: LogBudget = LogBudget::new();

/// The lines for connections closed for the PROXY protocol: a client can
/// cause them at will, and a balancer left out of the allowed networks
/// causes one per connection.
static PROXY_PROTOCOL_REFUSED: LogBudget = LogBudget::new();

/// The lines for HTTP/2 connections closed for cancelling too many
/// requests: a client can cause one per connection (found by an outside
/// attack: 104 lines in 10 s from one small script).
static RAPID_RESETS: LogBudget = LogBudget::new();

/// The lines for connections closed for their client's connection limit:
/// an address at its limit causes one per connection it tries.
static CLIENT_LIMIT: LogBudget = LogBudget::new();

/// A connection slot of `remote`'s address where they are counted (`Ok(None)`
/// where not), or `Err` (logged and observed) where it has all it may.
fn client_slot(
    slots: Option<&Arc<ClientSlots>>,
    remote: SocketAddr,
    observer: Option<&HandshakeObserver>,
) -> Result<Option<ClientSlot>, ()> {
    let Some(slots) = slots else {
        return Ok(None);
    };
    if let Some(slot) = slots.take(remote.ip()) {
        return Ok(Some(slot));
    }
    let refused = AcceptError::ClientLimit(slots.max());
    budgeted_info(&CLIENT_LIMIT, remote, &refused);
    if let Some(observer) = observer {
        observer(Err(&refused));
    }
    Err(())
}

/// Logs why `remote`, which tried to authenticate, was not: at info, since
/// that is what an operator looks for when a bot is not let in (the other
/// failed handshakes, timeouts, scanners and malformed hellos, are noise at
/// scale and stay at debug). At most [`LogBudget::PER_SECOND`] such lines a
/// second reach info; the rest go to debug and are counted in the next one.
fn not_authenticated(remote: SocketAddr, why: &dyn std::fmt::Display) {
    budgeted_info(
        &NOT_AUTHENTICATED,
        remote,
        &format_args!("client not authenticated: {why}"),
    );
}

/// Logs `what` of `remote` at info while `budget` lasts, else at debug,
/// counting what was left out in the next info line.
fn budgeted_info(budget: &LogBudget, remote: SocketAddr, what: &dyn std::fmt::Display) {
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    match budget.spend(std::time::Instant::now()) {
        Verdict::Log { left_out: 0 } => info!("{remote}: {what}"),
        Verdict::Log { left_out } => info!(
            "{remote}: {what} (and {left_out} more since the last such line, left out: at most \
             {} a second)",
            LogBudget::PER_SECOND
        ),
        Verdict::LeaveOut => debug!("{remote}: {what}"),
    }
}

/// A failed handshake, logged: at info when a certificate was refused
/// ([`not_authenticated`]), else at debug.
fn handshake_failed(error: &AcceptError, remote: SocketAddr) {
    if error.is_certificate_refused() {
        not_authenticated(remote, error);
    } else {
        debug!("{remote}: {error}");
    }
}

/// A handshake that succeeded, logged.
fn handshake_done(identity: &PeerIdentity, remote: SocketAddr) {
    if identity.path() == AuthPath::None
        && identity.certificate_request() == Some(CertificateRequestCause::Flag)
    {
        not_authenticated(
            remote,
            &"it set the request_client_auth flag but sent no certificate when asked; \
              served anonymously (RCA-14)",
        );
    } else {
        debug!("{remote}: {identity}");
    }
}

/// What the accept loop got.
enum Next {
    Stop,
    Connection(TcpStream, SocketAddr, OwnedSemaphorePermit),
    Failed(io::Error),
}

/// A connection slot (waiting while all are taken), then a connection.
async fn accept(listener: &TcpListener, permits: &Arc<Semaphore>) -> Next {
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return Next::Stop;
    };
    match listener.accept().await {
        Ok((tcp, remote)) => {
            // The handshake's flights and small responses go out at once, not
            // after Nagle waits for an ACK the peer delays (40 ms stalls).
            if let Err(error) = tcp.set_nodelay(true) {
                debug!("{remote}: cannot set TCP_NODELAY: {error}");
            }
            Next::Connection(tcp, remote, permit)
        }
        Err(error) => Next::Failed(error),
    }
}

/// One accepted TCP connection: the handshake, then HTTP.
struct Connection<S> {
    acceptor: Acceptor,
    service: S,
    limits: Limits,
    remote: SocketAddr,
    observer: Option<HandshakeObserver>,
    refused_requests: Option<RefusedRequestObserver>,
    http1_front: Option<Arc<dyn Http1Front>>,
    proxy_protocol: Option<Arc<ProxyProtocol>>,
    client_slots: Option<Arc<ClientSlots>>,
}

impl<S, B> Connection<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    async fn serve(self, mut tcp: TcpStream, stopping: Stopping) {
        let Self {
            acceptor,
            service,
            limits,
            mut remote,
            observer,
            refused_requests,
            http1_front,
            proxy_protocol,
            client_slots,
        } = self;
        // One handshake timeout covers the PROXY protocol header and the TLS
        // handshake after it.
        let handshake_deadline = acceptor.deadline();
        if let Some(protocol) = &proxy_protocol {
            let header = protocol.read(&mut tcp, remote, handshake_deadline, acceptor.timeout());
            match Box::pin(header).await {
                Ok(client) => remote = client,
                Err(refused) => {
                    budgeted_info(&PROXY_PROTOCOL_REFUSED, remote, &refused);
                    if let Some(observer) = &observer {
                        observer(Err(&AcceptError::ProxyProtocol {
                            reason: refused.reason(),
                            detail: refused.to_string(),
                        }));
                    }
                    return;
                }
            }
        }
        let Ok(_client_slot) = client_slot(client_slots.as_ref(), remote, observer.as_ref()) else {
            return;
        };
        // A failure is observed and logged as soon as it is known (see
        // `accept_until`); a success once the handshake returns.
        let failed = |error: &AcceptError| {
            if let Some(observer) = &observer {
                observer(Err(error));
            }
            handshake_failed(error, remote);
        };
        // The send timeout under TLS, so every socket write that makes
        // progress ends a wait (above it, rustls's buffer could hide a slow
        // but steady reader). The handshake's and hyper's states are boxed,
        // each while it runs: inline, the largest of them (about 13 KB)
        // would stay allocated for every connection, idle ones too.
        let accepted = Box::pin(async {
            let accepted = acceptor
                .accept_until(
                    SendTimeout::new(tcp, limits.send_timeout),
                    handshake_deadline,
                    failed,
                )
                .await;
            accepted.map(|(stream, identity)| (Box::new(stream), identity))
        })
        .await;
        let Ok((stream, identity)) = accepted else {
            return;
        };
        if let Some(observer) = &observer {
            observer(Ok(&identity));
        }
        handshake_done(&identity, remote);
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let front = http1_front.filter(|_| !h2);
        let (stream, read) = match &front {
            None => (stream, Vec::new()),
            Some(front) => {
                let connection = Http1Connection {
                    stream,
                    identity: identity.clone(),
                    remote,
                    header_read_timeout: limits.header_read_timeout,
                    idle_timeout: limits.idle_timeout,
                    max_head: limits.max_head,
                    stopping: stopping.clone(),
                };
                match front.serve(connection).await {
                    Http1Outcome::Closed => return,
                    Http1Outcome::HandOver { stream, read } => (stream, read),
                }
            }
        };
        let client = Client {
            identity,
            remote,
            refused_requests,
        };
        Box::pin(Self::serve_http(
            stream, read, client, service, limits, stopping,
        ))
        .await;
    }

    /// hyper and the service serve the connection, `read` first.
    async fn serve_http(
        stream: ClientStream,
        read: Vec<u8>,
        client: Client,
        service: S,
        limits: Limits,
        mut stopping: Stopping,
    ) {
        let Client {
            identity,
            remote,
            refused_requests,
        } = client;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let (stream, read) = if h2 {
            match expect_h2_preface(stream, read, remote, limits.header_read_timeout).await {
                Some(preface) => preface,
                None => return,
            }
        } else {
            (stream, read)
        };
        let (continuation, mut continuations) = mpsc::unbounded_channel();
        let upgraded = Upgraded(continuation);
        let activity = Arc::new(ConnectionActivity::default());
        let requests = Arc::clone(&activity);
        // HTTP/2: response bodies the client stops taking (flow control) are
        // found here; HTTP/1.1's are found by `SendTimeout`.
        let stalled = h2.then(|| StalledStreams::new(limits.send_timeout));
        let watching = stalled.clone();
        let cancels = h2.then(|| CancelBudget::new(limits.cancelled_requests));
        let counting = cancels.clone();
        let per_request_stopping = stopping.clone();
        // HTTP/2: a response with `Connection: close` (which HTTP/2 does not
        // have) asks for the connection's end, as it does over HTTP/1.1: a
        // GOAWAY once in-flight streams are answered.
        let close_asked = h2.then(|| Arc::new(tokio::sync::Notify::new()));
        let asking = close_asked.clone();
        // HTTP/1.1 only: h2 resets a stream it cannot read on its own.
        let reporting = refused_requests
            .filter(|_| !h2)
            .map(|report| (report, identity.clone()));
        let per_request = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(identity.clone());
            request.extensions_mut().insert(ConnectInfo(remote));
            request.extensions_mut().insert(upgraded.clone());
            let busy = ConnectionActivity::begin(&requests);
            let pending = counting.as_ref().map(CancelBudget::pending);
            let response = service.clone().oneshot(request);
            let watching = watching.clone();
            // HTTP/1.1 only: HTTP/2 draining is the connection's GOAWAY.
            let draining = (!h2).then(|| per_request_stopping.clone());
            let asking = asking.clone();
            async move {
                let response = response.await;
                if let Some(pending) = pending {
                    pending.answered();
                }
                // In flight until its body ends, not only until its head:
                // a download or event stream longer than the idle timeout
                // got its HTTP/2 connection a GOAWAY halfway.
                response.map(|response| {
                    let response = closing(response, draining.as_ref(), asking.as_deref());
                    response.map(|body| {
                        let watched = match &watching {
                            Some(streams) => streams.watch(body),
                            None => Watched::unwatched(body),
                        };
                        WhileOpen::new(watched, busy)
                    })
                })
            }
        });
        // Shutdown began before hyper got the connection (a front handed it
        // over meanwhile): HTTP/1.1 serves the request it was handed and
        // closes. A graceful shutdown now would close it before reading
        // that request, which has already left the client's socket.
        let stopping_already = stopping.is_stopping();
        // The protocol follows ALPN: HTTP/2 only where `h2` was negotiated,
        // HTTP/1.1 only on the others (a client speaking HTTP/2 by prior
        // knowledge there gets a 400 and the connection closed; HTTP/1.1 on
        // an `h2` connection, a GOAWAY PROTOCOL_ERROR), so every HTTP/2
        // connection has the HTTP/2 guards. hyper's own builders, since
        // hyper-util's auto builder looks at the first bytes instead.
        let io = TokioIo::new(Replay::new(read, stream));
        let connection = Driver {
            remote,
            refused_requests: reporting
                .as_ref()
                .map(|(report, identity)| (report, identity)),
            limits: &limits,
            stalled: stalled.as_deref(),
            cancels: cancels.as_deref(),
            activity: &activity,
            stopping: &mut stopping,
            stopping_already,
            http2: h2,
            close_asked: close_asked.as_deref(),
        };
        if h2 {
            let served = http2_builder(&limits).serve_connection(io, per_request);
            connection
                .drive(
                    served,
                    hyper::server::conn::http2::Connection::graceful_shutdown,
                )
                .await;
        } else {
            let served = http1_builder(&limits, stopping_already)
                .serve_connection(io, per_request)
                .with_upgrades();
            connection
                .drive(
                    served,
                    hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown,
                )
                .await;
        }
        // What an upgrade handed on (a WebSocket tunnel) is the rest of this
        // connection: it keeps the connection's slot, and shutdown waits for
        // it (and closes it after the grace period) as for any connection.
        while let Some(rest) = continuations.recv().await {
            rest.await;
        }
    }
}

/// hyper's HTTP/2 server under `limits`.
fn http2_builder(limits: &Limits) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // HTTP/2 has no header-read timeout; pings find peers that went away.
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEP_ALIVE))
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_concurrent_streams(limits.max_concurrent_streams)
        // h2's and hyper's own reset limits, named: streams reset before
        // they were accepted, and streams this side reset for errors.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    builder
}

/// hyper's HTTP/1.1 server under `limits`; one request only when shutdown
/// began before hyper got the connection.
fn http1_builder(limits: &Limits, stopping_already: bool) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head);
    if stopping_already {
        builder.keep_alive(false);
    }
    builder
}

/// A connection's client, once its handshake is done, and where to report
/// the requests hyper refuses from it.
struct Client {
    identity: PeerIdentity,
    remote: SocketAddr,
    refused_requests: Option<RefusedRequestObserver>,
}

/// The HTTP/2 client connection preface (RFC 9113 section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame (the server's preface), then GOAWAY with last
/// stream 0 and `PROTOCOL_ERROR`.
const H2_PROTOCOL_ERROR: &[u8] = &[
    0, 0, 0, 4, 0, 0, 0, 0, 0, // SETTINGS
    0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // GOAWAY
];

/// Reads on an `h2` connection until its first bytes are the HTTP/2
/// preface (the stream and what was read, for hyper) or are not: then the
/// client gets a GOAWAY `PROTOCOL_ERROR` and the connection is closed (h2
/// closes it without one). A client that sends nothing for `timeout`
/// is closed too.
async fn expect_h2_preface(
    mut stream: ClientStream,
    mut read: Vec<u8>,
    remote: SocketAddr,
    timeout: Duration,
) -> Option<(ClientStream, Vec<u8>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let reading = async {
        while read.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&read) {
            if stream.read_buf(&mut read).await.ok()? == 0 {
                return None;
            }
        }
        Some(())
    };
    tokio::time::timeout(timeout, reading).await.ok()??;
    if read.starts_with(H2_PREFACE) {
        return Some((stream, read));
    }
    debug!("{remote}: ALPN chose h2 but the client spoke another protocol; GOAWAY");
    let closing = async {
        let _ = stream.write_all(H2_PROTOCOL_ERROR).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    None
}

/// What drives one connection's HTTP alongside hyper: shutdown, the idle
/// timeout, HTTP/2's stalled streams and cancelled requests.
struct Driver<'a> {
    remote: SocketAddr,
    /// Where to report a request hyper answered by itself, and its client.
    refused_requests: Option<(&'a RefusedRequestObserver, &'a PeerIdentity)>,
    limits: &'a Limits,
    stalled: Option<&'a StalledStreams>,
    cancels: Option<&'a CancelBudget>,
    activity: &'a ConnectionActivity,
    stopping: &'a mut Stopping,
    /// Shutdown began before hyper got the connection.
    stopping_already: bool,
    http2: bool,
    /// HTTP/2: told when a response asked to close the connection.
    close_asked: Option<&'a tokio::sync::Notify>,
}

impl Driver<'_> {
    /// Runs `served` (hyper's connection, HTTP/1.1 or HTTP/2) to its end,
    /// closing it gracefully (`shutdown`) when the server stops, the
    /// connection has been idle too long, its client cancelled too many
    /// requests or an HTTP/2 response asked to close it, and at once when an
    /// HTTP/2 response stalled.
    async fn drive<C>(self, served: C, shutdown: impl Fn(std::pin::Pin<&mut C>))
    where
        C: Future<Output = Result<(), hyper::Error>>,
    {
        let Self {
            remote,
            refused_requests,
            limits,
            stalled,
            cancels,
            activity,
            stopping,
            stopping_already,
            http2,
            close_asked,
        } = self;
        let mut served = std::pin::pin!(served);
        let mut closing = stopping_already;
        if stopping_already && stalled.is_some() {
            shutdown(served.as_mut());
        }
        // HTTP/2 only (an interval of its own per connection); its period
        // is never zero.
        let mut look_for_stalls = stalled.map(|stalled| tokio::time::interval(stalled.period()));
        // Set once the client has cancelled too many requests: its GOAWAY
        // gets this long to go out, then the connection is dropped. A
        // graceful close alone would go on accepting streams until the
        // client acknowledges its PING, which a flooding client never does.
        let mut shut_out: Option<tokio::time::Instant> = None;
        // Made once: made anew at each turn of the loop, its timer started
        // again whenever another branch woke it, and the stall check wakes
        // it every quarter of the send timeout, so an idle HTTP/2
        // connection answering pings was never closed (found by an outside
        // trial).
        let mut idle = std::pin::pin!(activity.idle_for(limits.idle_timeout));
        loop {
            // `biased`, the connection first: bytes already there (a
            // request) are read before a drain or stop can close it idle.
            tokio::select! {
                biased;
                ended = served.as_mut() => {
                    if let Err(error) = ended {
                        debug!("{remote}: connection ended with an error: {error}");
                        let answered = status_answered(&error);
                        if let (Some(status), Some((report, peer))) = (answered, refused_requests) {
                            report(&RefusedRequest {
                                peer,
                                remote,
                                status,
                                reason: error.to_string(),
                            });
                        }
                    }
                    break;
                }
                () = tick(&mut look_for_stalls) => {
                    if stalled.is_some_and(StalledStreams::any_stalled) {
                        debug!(
                            "{remote}: a response waited {:?} for the client to take more \
                             (HTTP/2 flow control); closing",
                            limits.send_timeout
                        );
                        break;
                    }
                }
                () = time_to_close(stopping, activity, http2), if !closing => {
                    shutdown(served.as_mut());
                    closing = true;
                }
                () = exhausted(cancels), if shut_out.is_none() => {
                    budgeted_info(
                        &RAPID_RESETS,
                        remote,
                        &format_args!(
                            "it cancelled more than {} requests within {:?} \
                             (HTTP/2 rapid reset?); closing with GOAWAY",
                            limits.cancelled_requests.max, limits.cancelled_requests.within
                        ),
                    );
                    if !closing {
                        shutdown(served.as_mut());
                        closing = true;
                    }
                    shut_out = Some(tokio::time::Instant::now() + GOAWAY_GRACE);
                }
                () = until(shut_out) => {
                    debug!("{remote}: closed after its GOAWAY");
                    break;
                }
                () = notified(close_asked), if !closing => {
                    debug!("{remote}: a response asked to close the connection; GOAWAY");
                    shutdown(served.as_mut());
                    closing = true;
                }
                () = idle.as_mut(), if !closing => {
                    debug!("{remote}: no request for {:?}; closing", limits.idle_timeout);
                    shutdown(served.as_mut());
                    closing = true;
                }
            }
        }
    }
}

/// How long a client shut out for cancelling too many requests keeps its
/// connection after the GOAWAY.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// Completes at `deadline`, or never without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Completes once shutdown starts, or once draining has started and the
/// connection has begun a request (closing one before its first request,
/// which may be on its way, would lose that request: hyper closes a
/// connection that has read nothing at once). An HTTP/1.1 connection
/// waits until no request is in flight: the response of one that is says
/// `Connection: close` itself, and a 101 that switches protocols must not.
async fn time_to_close(stopping: &mut Stopping, activity: &ConnectionActivity, http2: bool) {
    // One look at the phase while serving, as before there was a drain.
    stopping.draining().await;
    if stopping.is_stopping() {
        return;
    }
    let mut stop = stopping.clone();
    tokio::select! {
        () = stop.stopped() => {}
        () = async {
            activity.begun_one().await;
            if !http2 {
                activity.quiet().await;
            }
        } => {}
    }
}

/// Completes when `notify` is told, or never without one.
async fn notified(notify: Option<&tokio::sync::Notify>) {
    match notify {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// `response` as it leaves, about its connection's end: over HTTP/1.1, with
/// `Connection: close` while `draining` (hyper closes the connection after
/// it; not on a 101, whose connection switches protocols); over HTTP/2, its
/// `Connection: close` taken off and told to `asking`, which sends the
/// GOAWAY HTTP/2 has instead.
fn closing<B>(
    mut response: Response<B>,
    draining: Option<&Stopping>,
    asking: Option<&tokio::sync::Notify>,
) -> Response<B> {
    if let Some(asking) = asking {
        if asks_to_close(response.headers()) {
            response.headers_mut().remove(hyper::header::CONNECTION);
            asking.notify_one();
        }
    }
    if draining.is_some_and(Stopping::is_draining)
        && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS
    {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Whether a response's `Connection` field has the `close` option.
fn asks_to_close(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("close"))
}

/// Completes when `signal` does, or never without one.
async fn fired(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => signal.await,
        None => std::future::pending().await,
    }
}

/// Completes once `budget` is exhausted, or never without one.
async fn exhausted(budget: Option<&CancelBudget>) {
    match budget {
        Some(budget) => budget.exhausted().await,
        None => std::future::pending().await,
    }
}

/// The next tick of `interval`, or never without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The rest of an upgraded connection (a WebSocket tunnel, say), run as part
/// of the connection it upgrades; in every request's extensions.
///
/// hyper hands an upgraded connection's I/O over and considers the HTTP
/// connection done, so work spawned on its own would no longer count against
/// [`Serve::max_connections`] nor be waited for at shutdown. Work given to
/// [`Upgraded::continue_with`] does both: it runs in the connection's task
/// once hyper lets go, holding the connection's slot, and graceful shutdown
/// waits for it for [`Serve::shutdown_grace`], then drops it.
#[derive(Clone, Debug)]
pub struct Upgraded(mpsc::UnboundedSender<Continuation>);

type Continuation = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Upgraded {
    /// Runs `rest` as the continuation of this request's connection. Returns
    /// `false`, dropping `rest`, if the connection is gone already (closed at
    /// the end of a shutdown's grace period).
    pub fn continue_with<F>(&self, rest: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.send(Box::pin(rest)).is_ok()
    }
}

/// A stream whose first reads return `early`, bytes read from it before.
struct Replay<IO> {
    early: Vec<u8>,
    at: usize,
    io: IO,
}

impl<IO> Replay<IO> {
    fn new(early: Vec<u8>, io: IO) -> Self {
        Self { early, at: 0, io }
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Replay<IO> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(early) = this.early.get(this.at..).filter(|early| !early.is_empty()) {
            let take = early.len().min(buf.remaining());
            buf.put_slice(&early[..take]);
            this.at += take;
            if this.at == this.early.len() {
                this.early = Vec::new();
                this.at = 0;
            }
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Replay<IO> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

impl<S, B> std::future::IntoFuture for Serve<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = io::Result<()>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    /// Serves until the process ends.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.with_graceful_shutdown(std::future::pending()))
    }
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM: what a service manager
/// sends to stop a server. For [`Serve::with_graceful_shutdown`].
///
/// The signal handlers are installed when this is called, not when the future
/// is first polled, so a signal that arrives early is not lost (and does not
/// kill the process). Call it inside the tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(error), _) | (_, Err(error)) => {
                    warn!("cannot install the SIGINT/SIGTERM handlers ({error}); no graceful stop");
                    return std::future::pending().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => debug!("SIGINT: shutting down"),
                _ = terminate.recv() => debug!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                warn!("cannot wait for Ctrl-C ({error}); no graceful stop");
                std::future::pending::<()>().await;
            }
            debug!("Ctrl-C: shutting down");
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::{HeaderValue, CONNECTION};

    use super::*;

    #[test]
    fn close_is_an_option_of_the_connection_field() {
        let with = |values: &[&'static str]| {
            let mut headers = hyper::HeaderMap::new();
            for value in values {
                headers.append(CONNECTION, HeaderValue::from_static(value));
            }
            asks_to_close(&headers)
        };
        assert!(with(&["close"]));
        assert!(with(&["keep-alive, Close"]));
        assert!(with(&["upgrade", " close "]));
        assert!(!with(&[]));
        assert!(!with(&["closed"]));
        assert!(!with(&["keep-alive, x-close"]));
    }

    #[tokio::test]
    async fn only_http2_turns_close_into_a_goaway() {
        let response = || {
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        };
        // HTTP/2: the header goes, the connection is told.
        let asking = tokio::sync::Notify::new();
        let sent = closing(response(), None, Some(&asking));
        assert!(sent.headers().get(CONNECTION).is_none());
        let told = tokio::time::timeout(Duration::from_millis(10), asking.notified()).await;
        assert!(told.is_ok());
        // HTTP/1.1: hyper closes after it; the header stays.
        let sent = closing(response(), None, None);
        assert_eq!(
            sent.headers().get(CONNECTION),
            Some(&HeaderValue::from_static("close"))
        );
    }
}
