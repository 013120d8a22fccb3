//! The local client's side of `rca-connect`: a plain HTTP/1.1 listener
//! (loopback by default) that clients use as their proxy. `CONNECT host:port` opens a
//! tunnel whose TLS ends here with a certificate for `host` from the local
//! CA; inside it the client speaks HTTP/1.1 or HTTP/2 (by its ALPN), and
//! each request goes on to `https://host:port`. A request in absolute form
//! (`GET http://host/...`) goes on as it is. A route listener (`--route`)
//! sends every request to one fixed server, for clients that cannot use a
//! proxy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_req_client_auth::{
    ConnectionActivity, LogBudget, SendTimeout, StalledStreams, WhileOpen,
};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::common::bounded_log::within;
use crate::connect::graceful::Watcher;
use crate::connect::local_ca::LocalCa;
use crate::connect::proxy_auth::ProxyCredentials;
use crate::connect::relay::{Relay, RelayBody};
use crate::connect::websocket::is_websocket;
use crate::connect::withdrawal::{withdrawal, Admissions, Admitted, UntilWithdrawn};

/// The front's limits and timeouts; the defaults are `rca-proxy`'s.
#[derive(Clone, Debug)]
pub struct FrontLimits {
    /// For a request head (HTTP/1.1), from its first byte.
    pub header_read_timeout: Duration,
    /// For the TLS handshake inside a tunnel.
    pub handshake_timeout: Duration,
    /// How long one write to a client may wait for it to read (nginx's
    /// `send_timeout`); then the connection is closed.
    pub send_timeout: Duration,
    /// Bytes of a request head (HTTP/1.1).
    pub max_head_bytes: usize,
    /// Streams of one client HTTP/2 connection at once.
    pub http2_max_concurrent_streams: u32,
    /// How long a client's HTTP/2 connection may have no stream open; then
    /// it gets a GOAWAY and is closed. (Between HTTP/1.1 requests the
    /// header-read timeout applies.)
    pub http2_idle_timeout: Duration,
    /// Client connections and tunnels at once; beyond, connections wait to
    /// be accepted and tunnels get a 503.
    pub max_connections: usize,
    /// How long a stop waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for FrontLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(60),
            max_head_bytes: 64 * 1024,
            http2_max_concurrent_streams: 128,
            http2_idle_timeout: Duration::from_secs(120),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What every client connection shares.
#[derive(Debug)]
pub struct Front {
    /// Replaced whole on SIGHUP ([`Front::replace_local_ca`]).
    ca: RwLock<Arc<LocalCa>>,
    /// What a client of the proxy port must give (`--proxy-auth-file`);
    /// replaced whole on SIGHUP. A channel, so that what is under way with
    /// a credential a reload removes can be told (see [`withdrawal`]).
    credentials: watch::Sender<Admissions>,
    relay: Relay,
    limits: FrontLimits,
    /// One per client connection or tunnel: a tunnel outlives the
    /// connection that opened it, so it takes a slot of its own.
    slots: Arc<Semaphore>,
}

/// Where a listener sends requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// A forward proxy: `CONNECT` and absolute-form requests.
    Proxy,
    /// Every request to this server (`--route`).
    Route(Scheme, Authority),
}

/// Logs a client that opened with TLS on a plain-HTTP listener: the usual
/// slip is `HTTPS_PROXY=https://...`, which the client then reports only as
/// a TLS error of its own. The connection is closed.
fn say_tls_is_not_spoken_here(tcp: &tokio::net::TcpStream, peer: SocketAddr) {
    let local = tcp
        .local_addr()
        .map_or_else(|_| "HOST:PORT".to_owned(), |address| address.to_string());
    if let Some(left_out) = within(&CLIENT_SLIPS_LOGGED, log::Level::Warn) {
        log::warn!(
            "client {peer} began a TLS handshake on {local}, where rca-connect speaks plain HTTP: \
             give the client http://{local}, not https:// (rca-connect speaks TLS to the site \
             itself, inside a proxy's tunnel or for a route){left_out}"
        );
    }
}

impl Front {
    /// A front that ends tunnels with certificates from `ca` and sends
    /// requests through `relay`.
    pub fn new(ca: Arc<LocalCa>, relay: Relay, limits: FrontLimits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        Self {
            ca: RwLock::new(ca),
            credentials: watch::Sender::new(Admissions::default()),
            relay,
            limits,
            slots,
        }
    }

    /// Ends the tunnels opened from now on with certificates from `ca`
    /// (SIGHUP); open tunnels keep theirs.
    pub fn replace_local_ca(&self, ca: Arc<LocalCa>) {
        *self.ca.write().unwrap_or_else(PoisonError::into_inner) = ca;
    }

    /// Requires `credentials` of every `CONNECT` and absolute-form request
    /// from now on (`None`: none). A tunnel opened with a credential that
    /// is no longer among them gets 403 for its next request, and what it
    /// has under way (responses, uploads, WebSockets) is cut off.
    ///
    /// Whether credentials are required at all is for the start: what was
    /// admitted while none were required is not withdrawn when some are
    /// (`rca-connect` reloads always require some).
    pub fn require_proxy_credentials(&self, credentials: Option<Arc<ProxyCredentials>>) {
        // Made outside the channel's lock, which every admission and woken
        // watcher reads; reloads come one at a time.
        let mut admissions = self.credentials.borrow().clone();
        admissions.replace(credentials);
        let credentials = admissions.credentials().cloned();
        self.credentials.send_replace(admissions);
        // After the swap, so no new admission can make a removed
        // credential's pool again (one admitted before it may, until the
        // next reload; its idle connections close at the idle timeout).
        self.relay.keep_pools_of(credentials.as_deref());
    }

    /// Whether a request on the proxy port may use the bot's identity: the
    /// credential it gave (`None` when none are required), or the 407 to
    /// answer (RFC 9110 section 15.5.8). The log line names the target's
    /// host, never its user information or query, and the user only if the
    /// file has it.
    fn admit(
        &self,
        request: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Option<Admitted>, Box<Response<RelayBody>>> {
        // One generation's credentials, checked and remembered together.
        let admissions = self.credentials.borrow().clone();
        let Some(credentials) = admissions.credentials() else {
            return Ok(None);
        };
        let refusal = match credentials.check(request.headers()) {
            Ok(credential) => return Ok(Some(admissions.admit(credential))),
            Err(refusal) => refusal,
        };
        let target = request.uri().authority().map_or("", Authority::as_str);
        // A client can ask for 407s as fast as it likes: at most a few
        // lines a second, and the next says how many were left out.
        if let Some(left_out) = within(&REFUSALS_LOGGED, log::Level::Info) {
            log::info!(
                "client {peer}: 407 for {} {target}: {refusal} (--proxy-auth-file {}){left_out}",
                request.method(),
                credentials.path().display(),
            );
        }
        self.relay.metrics.proxy_auth_refusal();
        let mut answer = own_answer(StatusCode::PROXY_AUTHENTICATION_REQUIRED, refusal.advice());
        answer.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"rca-connect\", charset=\"UTF-8\""),
        );
        Err(Box::new(answer))
    }

    /// A 403 for a request in a tunnel opened with a credential that a
    /// reload has since removed from the file (see
    /// [`Admissions::withdraws`]); `None` while it holds. (An HTTP/1.1
    /// tunnel is closed after it; an HTTP/2 one refuses each request until
    /// its idle timeout closes it.)
    fn withdrawn(&self, admitted: Option<Admitted>) -> Option<Response<RelayBody>> {
        let admitted = admitted?;
        let path = self.credentials.borrow().withdraws(admitted)?.to_owned();
        log_withdrawn("a tunnel", &path, "403 to its requests");
        Some(own_answer(
            StatusCode::FORBIDDEN,
            "the proxy credentials this tunnel was opened with are no longer accepted; connect again with current ones",
        ))
    }

    fn local_ca(&self) -> Arc<LocalCa> {
        Arc::clone(&self.ca.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `listener` in `mode` until `stop` resolves, then waits up to
    /// the shutdown grace for the connections in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mode: Mode,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let (stopping, stopped) = watch::channel(false);
        let tasks = TaskTracker::new();
        let watcher = Watcher {
            stopped,
            tasks: tasks.clone(),
        };
        tokio::pin!(stop);
        let mut accept_failures = rustls_req_client_auth::AcceptFailures::default();
        loop {
            // Accepted first, then given a slot: a listener waiting for a
            // connection holds none (the listeners share the slots, and one
            // idle listener holding the last would starve the others).
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut stop => break,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, this comes back every pause.
                    accept_failures.failed(&error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            accept_failures.recovered();
            // Meanwhile this listener accepts no more: the rest wait in
            // its backlog.
            let permit = tokio::select! {
                permit = Arc::clone(&self.slots).acquire_owned() => permit,
                () = &mut stop => break,
            };
            let Ok(permit) = permit else {
                break;
            };
            let _ = tcp.set_nodelay(true);
            let front = Arc::clone(&self);
            let mode = mode.clone();
            let watcher = watcher.clone();
            tasks.spawn(async move {
                // A tunnel takes the connection's slot over (the connection
                // ends when it becomes one), so a slot stays taken either way.
                let slot = Arc::new(Mutex::new(Some(permit)));
                front
                    .client_connection(tcp, peer, (mode, slot), watcher)
                    .await;
            });
        }
        // Closed now, not after the grace period: a client that connects
        // during it is refused at once and goes elsewhere, instead of
        // waiting in the backlog for an answer that never comes (found by
        // an outside attack).
        drop(listener);
        let _ = stopping.send(true);
        tasks.close();
        if tokio::time::timeout(self.limits.shutdown_grace, tasks.wait())
            .await
            .is_err()
        {
            log::warn!(
                "stopped with requests still in flight after {:?}",
                self.limits.shutdown_grace
            );
        }
    }

    async fn client_connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        (mode, slot): (Mode, Slot),
        watcher: Watcher,
    ) {
        match self.opening_byte(&tcp, &watcher).await {
            // A TLS handshake record, which this plain-HTTP listener cannot
            // serve.
            Some(0x16) => return say_tls_is_not_spoken_here(&tcp, peer),
            Some(_) => {}
            // Nothing within the header timeout, the client gone, or the
            // stop: no request to serve.
            None => return,
        }
        let front = Arc::clone(&self);
        let inner_watcher = watcher.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let front = Arc::clone(&front);
            let mode = mode.clone();
            let watcher = inner_watcher.clone();
            let slot = Arc::clone(&slot);
            async move {
                Ok::<_, Infallible>(
                    front
                        .plain_request(request, (mode, peer), (watcher, slot))
                        .await,
                )
            }
        });
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_head_bytes.max(8192));
        // Under TLS too: a tunnel's bytes go through this stream.
        let tcp = SendTimeout::new(tcp, self.limits.send_timeout);
        let connection = http1
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        if let Err(error) = watcher.watch(connection).await {
            log_client_error(format_args!("client {peer}"), &error, CONNECT_HINT);
        }
    }

    /// The first byte the client sends, waited for up to the header read
    /// timeout and only until the stop; `None` if none comes. (hyper's own
    /// header timer starts once the connection is handed to it.)
    async fn opening_byte(&self, tcp: &tokio::net::TcpStream, watcher: &Watcher) -> Option<u8> {
        let mut first = [0_u8; 1];
        let mut stopped = watcher.stopped.clone();
        tokio::select! {
            peeked = tokio::time::timeout(self.limits.header_read_timeout, tcp.peek(&mut first)) => {
                matches!(peeked, Ok(Ok(1))).then_some(first[0])
            }
            _ = stopped.wait_for(|stopped| *stopped) => None,
        }
    }

    /// A request on the plain listener.
    async fn plain_request(
        self: Arc<Self>,
        request: Request<Incoming>,
        (mode, peer): (Mode, SocketAddr),
        (watcher, slot): (Watcher, Slot),
    ) -> Response<RelayBody> {
        if request
            .uri()
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
        {
            return refused_target(
                &request,
                "the target has user information (user@host), which rca-connect does not forward",
            );
        }
        let credential = match mode {
            Mode::Proxy => match self.admit(&request, peer) {
                Ok(credential) => credential,
                Err(refused) => return *refused,
            },
            Mode::Route(..) => None,
        };
        match mode {
            Mode::Route(scheme, authority) => {
                let headers = request.headers();
                let repeated = [header::HOST, header::ORIGIN, SEC_FETCH_SITE]
                    .iter()
                    .any(|name| headers.get_all(name).iter().nth(1).is_some());
                if repeated {
                    // RFC 9112 section 3.2: one Host; and the checks below
                    // read one of each.
                    return own_answer(
                        StatusCode::BAD_REQUEST,
                        "a request may have one Host, one Origin and one Sec-Fetch-Site header",
                    );
                }
                if !local_host(&request) {
                    // A page whose name was rebound to this address must
                    // not reach the server with the bot's identity.
                    return own_answer(
                        StatusCode::FORBIDDEN,
                        "a route serves requests for localhost or an IP address only (Host names another name)",
                    );
                }
                if from_another_page(&request) {
                    // A page open in a browser on this machine could
                    // otherwise send requests (and open WebSockets, which
                    // no CORS guards) to the server as the bot.
                    return own_answer(
                        StatusCode::FORBIDDEN,
                        "a route serves programs, not web pages of other origins (the request has an Origin or Sec-Fetch-Site of another site)",
                    );
                }
                self.send(request, (scheme, authority), None, (&watcher.tasks, &slot))
                    .await
            }
            Mode::Proxy if request.method() == Method::CONNECT => {
                self.open_tunnel(request, credential, (watcher, &slot))
            }
            Mode::Proxy => {
                let target = request
                    .uri()
                    .scheme()
                    .cloned()
                    .zip(request.uri().authority().cloned());
                match target {
                    Some((scheme, authority))
                        if scheme == Scheme::HTTP || scheme == Scheme::HTTPS =>
                    {
                        let to = (scheme, authority);
                        self.send(request, to, credential, (&watcher.tasks, &slot))
                            .await
                    }
                    _ => own_answer(
                        StatusCode::BAD_REQUEST,
                        "rca-connect is a proxy: use it as HTTPS_PROXY (CONNECT) or HTTP_PROXY (absolute http:// targets), or give --route for a fixed server",
                    ),
                }
            }
        }
    }

    /// `CONNECT host:port`: 200, then the tunnel's TLS and HTTP in a task
    /// of their own.
    fn open_tunnel(
        self: Arc<Self>,
        request: Request<Incoming>,
        credential: Option<Admitted>,
        (watcher, slot): (Watcher, &Slot),
    ) -> Response<RelayBody> {
        let Some(authority) = request.uri().authority().cloned() else {
            return refused_target(&request, "CONNECT needs host:port");
        };
        // The authority form alone (RFC 9110 section 9.3.6), with a host
        // name or an IP address: `http://host:port`, `:443` and `*.host`
        // were taken, and then failed or made the local CA issue a
        // wildcard (found by an outside attack).
        let port_digits = crate::connect::cli::written_port(&authority)
            .is_some_and(|port| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()));
        if !port_digits
            || authority.port_u16().is_none_or(|port| port == 0)
            || request.uri().scheme().is_some()
        {
            return refused_target(&request, "CONNECT needs host:port");
        }
        // Brackets hold an IPv6 address, nothing else (`[localhost]` was
        // taken as `localhost`).
        let written = authority.host();
        let host = match written
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
        {
            Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner.to_owned(),
            Some(_) => {
                return refused_target(
                    &request,
                    "CONNECT needs host:port, with brackets only around an IPv6 address",
                )
            }
            None => written.to_owned(),
        };
        if rustls::pki_types::ServerName::try_from(host.as_str()).is_err() {
            return refused_target(
                &request,
                "CONNECT needs host:port, with a host name or an IP address",
            );
        }
        let ca = self.local_ca();
        let config = match ca.server_config(&host) {
            Ok(config) => config,
            Err(error) => return refused_target(&request, &error.to_string()),
        };
        let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(permit) = taken.or_else(|| Arc::clone(&self.slots).try_acquire_owned().ok())
        else {
            return own_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections (--max-connections)",
            );
        };
        // The server's handshake runs while the client's does.
        self.relay.prepare(Scheme::HTTPS, &authority);
        let tasks = watcher.tasks.clone();
        tasks.spawn(async move {
            let upgraded = match hyper::upgrade::on(request).await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    log::debug!("CONNECT {authority}: {error}");
                    return;
                }
            };
            let accept = TlsAcceptor::from(config).accept(TokioIo::new(upgraded));
            let tls = match tokio::time::timeout(self.limits.handshake_timeout, accept).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    if let Some(left_out) = within(&TUNNEL_HANDSHAKES_LOGGED, log::Level::Info) {
                        log::info!(
                            "CONNECT {authority}: the client's TLS handshake failed ({error}); does it trust the local CA ({})?{left_out}",
                            ca.cert_path().display()
                        );
                    }
                    return;
                }
                Err(_) => {
                    if let Some(left_out) = within(&TUNNEL_HANDSHAKES_LOGGED, log::Level::Info) {
                        log::info!(
                            "CONNECT {authority}: no TLS handshake within {:?}{left_out}",
                            self.limits.handshake_timeout
                        );
                    }
                    return;
                }
            };
            // The tunnel's slot, which a WebSocket inside takes over.
            let slot = Arc::new(Mutex::new(Some(permit)));
            self.serve_tunnel(tls, (authority, credential), (&watcher, slot))
                .await;
        });
        Response::new(Empty::new().map_err(|never| match never {}).boxed())
    }

    async fn serve_tunnel(
        self: Arc<Self>,
        tls: tokio_rustls::server::TlsStream<TokioIo<hyper::upgrade::Upgraded>>,
        (authority, credential): (Authority, Option<Admitted>),
        (watcher, slot): (&Watcher, Slot),
    ) {
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let front = Arc::clone(&self);
        let target = authority.clone();
        let io = TokioIo::new(tls);
        let served = if h2 {
            // HTTP/2 has no request head to time between requests, so a
            // tunnel with no stream open would keep its slot until the
            // client closed it; a request counts until its response body
            // ends (`WhileOpen`), so a long download never looks idle.
            let activity = Arc::new(ConnectionActivity::default());
            // A response the client grants no more window (HTTP/2 flow
            // control) waits for nothing `SendTimeout` sees, and as a
            // request in flight it kept its tunnel from idling: the whole
            // tunnel is closed after the send timeout instead (found by an
            // outside trial: such tunnels held every slot).
            let stalled = StalledStreams::new(self.limits.send_timeout);
            let service = {
                let activity = Arc::clone(&activity);
                let stalled = Arc::clone(&stalled);
                service_fn(move |request: Request<Incoming>| {
                    let front = Arc::clone(&front);
                    let target = target.clone();
                    let in_flight = ConnectionActivity::begin(&activity);
                    let stalled = Arc::clone(&stalled);
                    // Boxed: hyper moves each request's future into a task
                    // of its own, and a kilobyte inline is copied each time.
                    Box::pin(async move {
                        let guarded = |body| stalled.watch(WhileOpen::new(body, in_flight));
                        if let Some(refused) = front.withdrawn(credential) {
                            return Ok::<_, Infallible>(refused.map(guarded));
                        }
                        let to = (Scheme::HTTPS, target);
                        let response = front.forward_admitted(request, to, credential).await;
                        Ok::<_, Infallible>(response.map(guarded))
                    })
                })
            };
            let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            // Pings find clients that went away without closing.
            http2
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(HTTP2_PING_INTERVAL))
                .keep_alive_timeout(HTTP2_PING_INTERVAL)
                .max_concurrent_streams(self.limits.http2_max_concurrent_streams);
            let idle = activity.idle_for(self.limits.http2_idle_timeout);
            let idle = async {
                idle.await;
                log::debug!(
                    "tunnel to {authority}: no request for {:?}; closing",
                    self.limits.http2_idle_timeout
                );
            };
            tokio::select! {
                served = watcher.watch_until(http2.serve_connection(io, service), idle) => served,
                () = stalled.found() => {
                    log::debug!(
                        "tunnel to {authority}: a response waited {:?} for the client to take \
                         more (HTTP/2 flow control); closing",
                        self.limits.send_timeout
                    );
                    Ok(())
                }
            }
        } else {
            let tasks = watcher.tasks.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let front = Arc::clone(&front);
                let target = target.clone();
                let tasks = tasks.clone();
                let slot = Arc::clone(&slot);
                // Boxed, as above.
                Box::pin(async move {
                    if let Some(mut refused) = front.withdrawn(credential) {
                        refused
                            .headers_mut()
                            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                        return Ok::<_, Infallible>(refused);
                    }
                    let to = (Scheme::HTTPS, target);
                    let sent = front.send(request, to, credential, (&tasks, &slot));
                    Ok::<_, Infallible>(sent.await)
                })
            });
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1
                .timer(TokioTimer::new())
                .header_read_timeout(self.limits.header_read_timeout)
                .max_buf_size(self.limits.max_head_bytes.max(8192));
            // Upgrades: a WebSocket the server switched to (see `send`).
            watcher
                .watch(http1.serve_connection(io, service).with_upgrades())
                .await
        };
        if let Err(error) = served {
            log_client_error(format_args!("tunnel to {authority}"), &error, "");
        }
    }
}

impl Front {
    /// Sends an HTTP/1.1 request on to `scheme://authority`: a WebSocket
    /// handshake on a connection of its own (see [`crate::connect::websocket`]),
    /// any other request through the pool. An open WebSocket runs in
    /// `tasks` and takes `slot` over: the connection ends as it switches,
    /// and the tunnel still counts under `--max-connections`. It is closed
    /// once a reload removes `credential`, the proxy credential it was
    /// opened with.
    async fn send(
        &self,
        request: Request<Incoming>,
        (scheme, authority): (Scheme, Authority),
        credential: Option<Admitted>,
        (tasks, slot): (&TaskTracker, &Slot),
    ) -> Response<RelayBody> {
        if !is_websocket(&request) {
            return self
                .forward_admitted(request, (scheme, authority), credential)
                .await;
        }
        // Its body was never sent on, and the server waited for it until
        // the response timeout (found by an outside attack).
        if !hyper::body::Body::is_end_stream(request.body()) {
            return own_answer(
                StatusCode::BAD_REQUEST,
                "a WebSocket handshake carries no body",
            );
        }
        // A handshake still under way when its credential goes gets the
        // 403 of any request not answered yet. A route's or an unguarded
        // port's WebSocket has no credential to lose, and nothing to watch.
        let mut withdrawn = credential
            .is_some()
            .then(|| withdrawal(self.credentials.subscribe(), credential));
        let switching = self.relay.websocket(request, scheme, authority, tasks);
        let (answer, tunnel) = match withdrawn.as_mut() {
            Some(withdrawn) => tokio::select! {
                biased;
                path = withdrawn => return unanswered_when_withdrawn(&path, true),
                switched = switching => switched,
            },
            None => switching.await,
        };
        if let Some(tunnel) = tunnel {
            let permit = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            tasks.spawn(async move {
                match withdrawn {
                    None => tunnel.await,
                    Some(withdrawn) => tokio::select! {
                        () = tunnel => {}
                        path = withdrawn => log_withdrawn("a WebSocket", &path, "closed"),
                    },
                }
                drop(permit);
            });
        }
        answer
    }

    /// Forwards a request admitted with `credential` (see [`Front::send`]),
    /// cut off if a reload removes it first: a 403 while the server has not
    /// answered, an error in the response body after (the HTTP/2 stream
    /// reset, the HTTP/1.1 connection closed), and an error in the request
    /// body whenever it comes, which ends an upload still under way.
    async fn forward_admitted(
        &self,
        request: Request<Incoming>,
        (scheme, authority): (Scheme, Authority),
        credential: Option<Admitted>,
    ) -> Response<RelayBody> {
        // A tunnel is opened on the proxy port; one asked for inside a
        // tunnel (or on a route) went to the server as a CONNECT, and its
        // 200 closed the client's tunnel without a word (found by an
        // outside attack).
        if request.method() == Method::CONNECT {
            return own_answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is taken on the proxy port only, not inside a tunnel or on a route",
            );
        }
        let Some(admitted) = credential else {
            return self.relay.forward(request, scheme, authority).await;
        };
        let http1 = request.version() < http::Version::HTTP_2;
        let upload = withdrawal(self.credentials.subscribe(), credential);
        // Its cut is not logged: the 403 or the response's cut says so.
        let request = request.map(|body| UntilWithdrawn::new(body, upload, |_| {}));
        let mut withdrawn = withdrawal(self.credentials.subscribe(), credential);
        let response = tokio::select! {
            biased;
            path = &mut withdrawn => return unanswered_when_withdrawn(&path, http1),
            response = self.relay.forward_as(Some(admitted.credential), request, scheme, authority) => response,
        };
        // A reload can cut the upload, and so fail the request (a 400 of
        // the relay's), before the withdrawal above is woken: it is what
        // happened, so it is what the client is told. Read from the
        // channel's value, which a reload sets before it wakes anyone.
        let withdrawn_now = credential.and_then(|admitted| {
            let admissions = self.credentials.borrow();
            admissions
                .withdraws(admitted)
                .map(std::path::Path::to_owned)
        });
        if let Some(path) = withdrawn_now {
            return unanswered_when_withdrawn(&path, http1);
        }
        response.map(|body| {
            UntilWithdrawn::new(body, withdrawn, log_cut_off)
                .map_err(std::io::Error::other)
                .boxed()
        })
    }
}

/// The 403 for a request whose credential a reload removed before the
/// server answered it, which may have reached the server all the same; an
/// HTTP/1.1 connection (`http1`) is closed after it, as a tunnel's other
/// refusals close it.
fn unanswered_when_withdrawn(path: &std::path::Path, http1: bool) -> Response<RelayBody> {
    log_cut_off(path);
    let mut refused = own_answer(
        StatusCode::FORBIDDEN,
        "the proxy credentials this request was admitted with were removed before the server answered; whether the server acted on it is not known",
    );
    if http1 {
        refused
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    refused
}

/// The line for a request cut off when its credential was removed.
fn log_cut_off(path: &std::path::Path) {
    log_withdrawn("a request", path, "cut off");
}

/// The line, within the cut-off lines' budget, for `what` (a tunnel, a
/// request, a WebSocket) whose credential a reload removed from `path`,
/// and what became of it.
fn log_withdrawn(what: &str, path: &std::path::Path, became: &str) {
    if let Some(left_out) = within(&CUTS_LOGGED, log::Level::Info) {
        log::info!(
            "{what}'s proxy credentials are no longer in --proxy-auth-file {}: {became}{left_out}",
            path.display(),
        );
    }
}

/// How often an HTTP/2 client connection is pinged, and how long the
/// answer may take (as `rca-proxy`'s).
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(20);

/// The lines about refused proxy credentials (407s) logged in the current
/// second.
static REFUSALS_LOGGED: LogBudget = LogBudget::new();

/// The lines about what a removed credential had admitted (a tunnel's 403,
/// a request or WebSocket cut off), on a budget of their own: a client
/// asking for 407s must not hide them.
static CUTS_LOGGED: LogBudget = LogBudget::new();

/// The lines about what a client sent that rca-connect cannot serve, on
/// budgets of their own: any client, with or without credentials, can make
/// one a connection (found by an outside attack: 20,000 lines a second),
/// and journald's rate limit would answer a flood by dropping the lines
/// that matter. TLS on the plain port, a request that does not parse, a
/// CONNECT target refused:
static CLIENT_SLIPS_LOGGED: LogBudget = LogBudget::new();
/// A failed or missing TLS handshake in a tunnel (a client that does not
/// trust the local CA), apart from the slips above, so a flood of those
/// does not hide it:
static TUNNEL_HANDSHAKES_LOGGED: LogBudget = LogBudget::new();

/// A client connection's slot under `--max-connections`, until a tunnel
/// takes it over.
type Slot = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Fetch Metadata's header: where the request came from, as a browser says.
const SEC_FETCH_SITE: http::HeaderName = http::HeaderName::from_static("sec-fetch-site");

/// Whether a browser sent `request` for a page of another origin: a
/// `Sec-Fetch-Site` (Fetch Metadata) other than `none` (typed in) or
/// `same-origin`, or an `Origin` (RFC 6454) other than the route's own,
/// `http://` and the request's `Host`. Programs send neither; browsers send
/// `Origin` with every WebSocket handshake and cross-origin POST, and
/// `Sec-Fetch-Site` with every request.
fn from_another_page(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    let other_site = headers
        .get(SEC_FETCH_SITE)
        .is_some_and(|site| site != "none" && site != "same-origin");
    let other_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        let own = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .map(|host| format!("http://{host}"));
        own.is_none_or(|own| !origin.as_bytes().eq_ignore_ascii_case(own.as_bytes()))
    });
    other_site || other_origin
}

/// Whether `request` names `localhost` or an IP address as its host (or
/// none): what a client of a route on this machine sends, and what a page
/// whose domain was rebound to this address cannot.
fn local_host(request: &Request<Incoming>) -> bool {
    let Some(host) = request
        .headers()
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<Authority>().ok())
    else {
        return !request.headers().contains_key(http::header::HOST);
    };
    let name = host.host();
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
}

/// What a target on the proxy port must look like, for the log line of a
/// request that did not parse there.
const CONNECT_HINT: &str = "; a CONNECT target is host:port, with an internationalized host name in its ASCII form (xn--...)";

/// How a client's connection ended with `error`: a request that did not
/// parse (hyper answered 400, 414 or 431 with no text) at info level, with
/// `hint` on what to send instead; the rest (a client that went away) at
/// debug.
fn log_client_error(who: std::fmt::Arguments<'_>, error: &hyper::Error, hint: &str) {
    if !error.is_parse() {
        log::debug!("{who}: {error}");
        return;
    }
    let Some(left_out) = within(&CLIENT_SLIPS_LOGGED, log::Level::Info) else {
        return;
    };
    if error.is_parse_too_large() {
        log::info!(
            "{who}: 414 or 431, the request's target or head was larger than allowed ({error}){left_out}"
        );
    } else {
        log::info!("{who}: 400, the request was not valid HTTP/1.1 ({error}){hint}{left_out}");
    }
}

/// rca-connect's own 400 for a request target it does not take, with a
/// log line that says so (bounded: a client can send such targets as fast
/// as it likes).
fn refused_target<B>(request: &Request<B>, why: &str) -> Response<RelayBody> {
    if let Some(left_out) = within(&CLIENT_SLIPS_LOGGED, log::Level::Info) {
        log::info!(
            "400 for {} {:?}: {why}{left_out}",
            request.method(),
            request.uri().to_string()
        );
    }
    own_answer(StatusCode::BAD_REQUEST, why)
}

/// rca-connect's own answer, as text.
fn own_answer(status: StatusCode, text: &str) -> Response<RelayBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("rca-connect: {text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}
