//! The request path: policy, identity headers, forwarding, the access log.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use hyper::body::Incoming;
use rustls_req_client_auth::PeerIdentity;

use crate::common::client_body::{discardable, ClientBody, ClientBodyError};
use crate::proxy::access_log::{Counted, Entry, Record, Unfinished};
use crate::proxy::back::forward::{TunnelEnds, Upstream, UpstreamError};
use crate::proxy::config::{AccessLogTarget, Config};
use crate::proxy::front::target::{self, TargetError};
use crate::proxy::judge::identity::IdentityHeaders;
use crate::proxy::judge::revoked::StillTrusted;
use crate::proxy::metrics::Metrics;

/// What every request needs.
#[derive(Debug)]
pub struct Proxy {
    pub(crate) headers: IdentityHeaders,
    pub(crate) bots_only: crate::proxy::judge::policy::BotsOnly,
    pub(crate) upstream: Upstream,
    pub(crate) access_log: AccessLog,
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// How long a request body may send nothing (nginx's
    /// `client_body_timeout`).
    pub(crate) body_timeout: Duration,
    /// How long a request body may be (nginx's `client_max_body_size`).
    pub(crate) max_body_bytes: Option<u64>,
    /// Whether bots connected before a reload still verify.
    pub(crate) still_trusted: Option<Arc<StillTrusted>>,
}

/// Where the access log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLog {
    /// One JSON line per request through [`crate::common::json_lines`]
    /// (standard output, or the file given to its `to_file`), buffered and
    /// written by a thread of its own: call
    /// [`crate::common::json_lines::flush_within`] before exiting for the
    /// last lines (as `rca-proxy` does).
    On,
    /// Nowhere (`log.access = "off"`).
    Off,
}

impl Proxy {
    /// The proxy for a validated `config`.
    ///
    /// # Errors
    ///
    /// A header name or the upstream URL is invalid (caught by
    /// [`Config::validate`] already).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let headers = IdentityHeaders::new(&config.headers)
            .map_err(|(field, message)| anyhow::anyhow!("headers.{field}: {message}"))?;
        let authority = crate::proxy::back::forward::upstream_authority(&config.upstream.url)
            .map_err(|message| anyhow::anyhow!("upstream.url: {message}"))?;
        Ok(Self {
            headers,
            bots_only: crate::proxy::judge::policy::BotsOnly::new(&config.policy.bots_only),
            upstream: Upstream::new(
                authority,
                Duration::from_secs(config.upstream.timeout_secs),
                config.upstream.max_connections,
                Duration::from_secs(config.upstream.idle_timeout_secs),
                Duration::from_secs(config.upstream.read_timeout_secs),
                config.upstream.protocol,
            )
            .max_per_client(
                Some(config.limits.max_upstream_per_client)
                    .filter(|&max| max < config.upstream.max_connections),
            ),
            access_log: if config.log.access == AccessLogTarget::Off {
                AccessLog::Off
            } else {
                AccessLog::On
            },
            metrics: None,
            body_timeout: config.limits.body_timeout(),
            max_body_bytes: config.limits.max_body_bytes,
            still_trusted: None,
        })
    }

    /// Counts policy refusals and upstream errors in `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Refuses requests of connected bots whose chain no longer verifies:
    /// after a reload, an expiry or a CRL's `nextUpdate` (see
    /// [`StillTrusted`]).
    #[must_use]
    pub fn still_trusted(mut self, check: StillTrusted) -> Self {
        self.still_trusted = Some(Arc::new(check));
        self
    }

    /// Whether `peer` may still be served (see [`StillTrusted`]).
    pub(crate) fn allows(&self, peer: &PeerIdentity) -> bool {
        self.still_trusted
            .as_ref()
            .is_none_or(|check| check.allows(peer))
    }

    /// Sends the access log to `log`.
    #[must_use]
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = log;
        self
    }

    /// The service for [`rustls_req_client_auth::serve`]: every request
    /// goes through `forward`.
    #[must_use]
    pub fn service(self) -> ProxyService {
        ProxyService(Arc::new(self))
    }
}

/// [`Proxy`] as a tower service. Every path is forwarded the same way, so
/// there is no router: axum's, with one fallback route, cost about 3,800
/// instructions per request (callgrind).
#[derive(Clone, Debug)]
pub struct ProxyService(pub(crate) Arc<Proxy>);

impl tower::Service<http::Request<Incoming>> for ProxyService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        let proxy = Arc::clone(&self.0);
        Box::pin(async move { Ok(forward(&proxy, request.map(Body::new)).await) })
    }
}

/// One request: policy, then the upstream with the identity headers.
async fn forward(proxy: &Proxy, request: Request) -> Response {
    // `serve` puts both in every request.
    let connection = (
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .copied(),
        request.extensions().get::<PeerIdentity>().cloned(),
    );
    let (Some(ConnectInfo(remote)), Some(peer)) = connection else {
        log::error!("a request without its connection's identity: rca-proxy serves through rustls_req_client_auth::serve");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Watched from here on: an answer that drops the body unread (a
    // refusal, a bad request, an upstream that was not reached) leaves it
    // to be read on and thrown away if it may be (see `ClientBody`).
    let (parts, body) = request.into_parts();
    let (body, body_failure) = ClientBody::watched(
        body,
        proxy.body_timeout,
        proxy.max_body_bytes,
        discardable(&parts),
    );
    let mut request = Request::from_parts(parts, body);
    // Read back by the exchange (see `Upstream::send`).
    if let Some(failure) = &body_failure {
        request.extensions_mut().insert(failure.clone());
    }
    let head = request.method() == http::Method::HEAD;
    let log = proxy.access_log == AccessLog::On;
    let record = (log || proxy.metrics.is_some()).then(|| {
        Box::new(Record {
            log,
            metrics: proxy.metrics.clone(),
            client_body_failure: body_failure,
            ..Record::new(
                &peer,
                remote,
                request.method().clone(),
                Entry::version(request.version()),
                Record::user_agent_of(request.headers()),
            )
        })
    });
    // Logged as 499 (nginx's "client closed request") if the client leaves
    // first (an HTTP/2 reset, a closed connection): the request may have
    // reached the upstream all the same.
    let mut unanswered = Unfinished(record);
    let (response, error) = match canonical_request(request) {
        Ok(request) => {
            let path = request.uri().path().to_owned();
            if let Some(record) = &mut unanswered.0 {
                record.path.clone_from(&path);
            }
            answer(proxy, remote, &peer, &path, request, &mut unanswered.0).await
        }
        Err((why, path)) => {
            if let Some(record) = &mut unanswered.0 {
                record.path = path;
            }
            if why == TargetError::TooLong {
                refused_target(StatusCode::URI_TOO_LONG, why.reason())
            } else {
                bad_request(why.reason())
            }
        }
    };
    // A HEAD's answer has no content. hyper's HTTP/2 side sends what the
    // body holds, and the proxy's own answers hold their text: curl
    // called the stream a PROTOCOL_ERROR and nghttp closed the connection
    // (found by an outside trial). The headers stay, as a GET's would be.
    let response = if head {
        response.map(|_| axum::body::Body::empty())
    } else {
        response
    };
    let Some(mut record) = unanswered.0.take() else {
        return response;
    };
    record.answered(response.status().as_u16(), error);
    // The line is written, and the request counted, when the response body
    // is over.
    response.map(|body| Counted::response(body, record))
}

/// `request` with its target in canonical form ([`crate::proxy::front::target`]):
/// the form the policy judges and the upstream receives. A target that
/// cannot be made canonical is refused, with its path for the log.
fn canonical_request(mut request: Request) -> Result<Request, (TargetError, String)> {
    // An absolute target without a path (`http://host`) asks for `/`
    // (RFC 9112 section 3.2.2); CONNECT's authority form is no path.
    let target = match request.uri().path_and_query() {
        Some(target) => target.as_str(),
        None if request.method() != http::Method::CONNECT && request.uri().host().is_some() => "/",
        None => "",
    };
    let rewritten = match target::canonical(target) {
        Ok(Cow::Borrowed(_)) => return Ok(request),
        Ok(Cow::Owned(rewritten)) => rewritten,
        Err(why) => return Err((why, refused_path(&request))),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(
        http::uri::PathAndQuery::try_from(rewritten)
            .map_err(|_| (TargetError::NotOriginForm, refused_path(&request)))?,
    );
    *request.uri_mut() = http::Uri::from_parts(parts)
        .map_err(|_| (TargetError::NotOriginForm, refused_path(&request)))?;
    Ok(request)
}

/// The path of a request whose target was refused, as the access log
/// shows it: escaped where it is not ASCII (see
/// [`target::escape_non_ascii`]).
fn refused_path(request: &Request) -> String {
    target::escape_non_ascii(request.uri().path()).into_owned()
}

/// The host `request` addressed: HTTP/2's `:authority` (or an absolute
/// target's) over the `Host` header (RFC 9113 section 8.3.1), which may not
/// name another; `None` for HTTP/1.0 without `Host`; or why the request is
/// bad (HTTP/1.1 and HTTP/2 requests must name their host).
fn addressed_host(
    request: &http::request::Parts,
) -> Result<Option<http::uri::Authority>, &'static str> {
    let hosts = request.headers.get_all(header::HOST);
    let mut hosts = hosts.iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host header");
    }
    let host_header = match host_header.map(|host| host.to_str()) {
        None => None,
        Some(Ok(host)) if target::is_host(host) => Some(host),
        Some(_) => return Err("the Host header is not a host[:port]"),
    };
    Ok(match request.uri.authority() {
        Some(authority) => {
            if !target::is_host(authority.as_str()) {
                return Err("the target's authority is not a host[:port]");
            }
            if host_header.is_some_and(|host| !host.eq_ignore_ascii_case(authority.as_str())) {
                return Err("the target's authority and the Host header differ");
            }
            // HTTP/2's `:authority` stands alone; HTTP/1.1's absolute form
            // comes with a `Host` (RFC 9112 section 3.2), which it names.
            if host_header.is_none() && request.version != http::Version::HTTP_2 {
                return Err("an absolute target needs a Host header that names its host");
            }
            Some(authority.clone())
        }
        None => match host_header.map(str::parse::<http::uri::Authority>) {
            Some(Ok(authority)) => Some(authority),
            Some(Err(_)) => return Err("the Host header is not a host[:port]"),
            // An HTTP/2 client always knows the host it connected for
            // (RFC 9113 section 8.3.1); sent on, the request would carry
            // the upstream's own address as its host, which an upstream
            // may trust as a local request's.
            None if request.version == http::Version::HTTP_2 => {
                return Err("an HTTP/2 request must name its host in :authority or Host");
            }
            // RFC 9112 section 3.2: 400 for an HTTP/1.1 request without
            // one (hyper does not refuse it).
            None if request.version == http::Version::HTTP_11 => {
                return Err("an HTTP/1.1 request must have a Host header");
            }
            None => None,
        },
    })
}

/// `request`, judged and sent upstream; what the log needs of it goes into
/// `record`.
async fn answer(
    proxy: &Proxy,
    remote: SocketAddr,
    peer: &PeerIdentity,
    path: &str,
    request: Request,
    record: &mut Option<Box<Record>>,
) -> (Response, Option<String>) {
    let (mut parts, body) = request.into_parts();
    let host = match addressed_host(&parts) {
        Ok(host) => host,
        Err(why) => return bad_request(why),
    };
    if let (Some(record), Some(host)) = (record.as_mut(), &host) {
        record.host = Some(host.as_str().to_owned());
    }
    if !proxy.allows(peer) {
        return revoked();
    }
    if proxy.bots_only.covers(path) && !peer.is_flag_path() {
        let why = "this path is for bots authenticated with a client certificate on the request_client_auth TLS flag";
        if let Some(metrics) = &proxy.metrics {
            metrics.policy_refusal();
        }
        return (
            (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
            Some(format!("policy: {why}")),
        );
    }
    if let Some((status, why)) = transfer_coding_problem(&parts.headers) {
        let mut response = (status, format!("{why}\n")).into_response();
        // The body was not read: nothing after it can be told apart.
        response
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        return (response, Some(format!("transfer coding: {why}")));
    }
    if ClientBody::declared_too_large(&body, proxy.max_body_bytes) {
        // Refused before the upstream sees it (and, with `Expect:
        // 100-continue`, before the client sends it).
        let declared = hyper::body::Body::size_hint(&body).lower();
        let error = ClientBodyError::TooLarge(proxy.max_body_bytes.unwrap_or_default());
        return (
            (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE).into_response(),
            Some(format!(
                "{error} (limits.max_body_bytes; declared: {declared} bytes)"
            )),
        );
    }
    let body = Counted::request(body, record.as_deref_mut());
    join_cookie_crumbs(&mut parts.headers);
    // Hop-by-hop headers (and those `Connection` names) go first, so a client
    // cannot name the identity headers set next for removal.
    let upgrade = crate::common::websocket::websocket_upgrade(&parts.method, &parts.headers);
    let upgrading = upgrade.is_some();
    crate::common::fields::remove_hop_by_hop(&mut parts.headers);
    proxy.headers.apply(
        &mut parts.headers,
        peer,
        remote.ip(),
        host.as_ref().map(http::uri::Authority::as_str),
    );
    if let Some(host) = &host {
        if let Ok(host) = http::HeaderValue::from_str(host.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
    }
    if upgrading {
        // A tunnel carries no requests to refuse: it is watched instead.
        if let Some(check) = proxy
            .still_trusted
            .as_ref()
            .filter(|check| check.watches(peer))
        {
            parts.extensions.insert(tunnel_ends(check, peer));
        }
    }
    let sent = Instant::now();
    let forwarded = proxy
        .upstream
        .send(http::Request::from_parts(parts, body), upgrade, remote.ip())
        .await;
    if let Some(record) = record {
        // A client over its share never reached the upstream.
        if !matches!(forwarded, Err(UpstreamError::ClientBusy(..))) {
            record.upstream = Some(sent.elapsed());
        }
    }
    match forwarded {
        Ok(response) => (response, None),
        Err(error) => {
            let (status, body) = upstream_failure(proxy, &error);
            let mut response = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from(body))
                .unwrap_or_else(|_| status.into_response());
            if let Some(seconds) = retry_after(status) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, http::HeaderValue::from_static(seconds));
            }
            if upgrading {
                // The client may already be sending frames for the tunnel
                // it asked for: they must not be read as requests.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            (response, Some(error.to_string()))
        }
    }
}

/// What ends `peer`'s tunnel (a WebSocket): its certificate refused by
/// `check`, at a reload or when its verdict's time is up.
fn tunnel_ends(check: &Arc<StillTrusted>, peer: &PeerIdentity) -> TunnelEnds {
    let (check, peer) = (Arc::clone(check), peer.clone());
    TunnelEnds::new(move || {
        let (check, peer) = (Arc::clone(&check), peer.clone());
        Box::pin(async move {
            check.until_refused(&peer).await;
            log::info!(
                "closed a WebSocket tunnel of {} (x5t#S256): its certificate no longer verifies",
                peer.leaf()
                    .map_or("a client", |leaf| leaf.thumbprint_sha256())
            );
        })
    })
}

/// The answer to a request the upstream gave no response for: its status
/// and a body that says why, the failure counted in `proxy`'s metrics.
/// The details (the upstream's address, the error) go to the log only.
pub(crate) fn upstream_failure(proxy: &Proxy, error: &UpstreamError) -> (StatusCode, &'static str) {
    let (status, kind, text) = failure_answer(error);
    if let Some(metrics) = &proxy.metrics {
        if let Some(kind) = kind {
            metrics.upstream_error(kind);
        }
        if matches!(error, UpstreamError::ClientBusy(..)) {
            metrics.client_limit_refusal();
        }
    }
    (status, text)
}

/// The `Retry-After` of the proxy's own answer with `status`, in seconds:
/// its 503s (the upstream busy, or the client over its share) pass as the
/// exchanges in progress end, and crawlers and API clients wait for what
/// `Retry-After` says before they try again (RFC 9110 section 10.2.3)
/// rather than at once.
pub(crate) fn retry_after(status: StatusCode) -> Option<&'static str> {
    (status == StatusCode::SERVICE_UNAVAILABLE).then_some("1")
}

/// See [`upstream_failure`]: the status, the kind of upstream error the
/// metrics count (none when the client's body failed, or the client had
/// its share of exchanges already), the body.
fn failure_answer(error: &UpstreamError) -> (StatusCode, Option<&'static str>, &'static str) {
    match error {
        UpstreamError::TimedOut(..) => (
            StatusCode::GATEWAY_TIMEOUT,
            Some("timeout"),
            "the upstream did not answer in time\n",
        ),
        UpstreamError::Unreachable(..) => (
            StatusCode::BAD_GATEWAY,
            Some("unreachable"),
            "the upstream did not answer\n",
        ),
        UpstreamError::Busy(..) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("busy"),
            "the upstream is busy; try again later\n",
        ),
        UpstreamError::ClientBusy(..) => (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "too many requests from this address are in progress; try again later\n",
        ),
        UpstreamError::ClientBody(ClientBodyError::Malformed(_)) => (
            StatusCode::BAD_REQUEST,
            None,
            "the request body could not be read\n",
        ),
        UpstreamError::ClientBody(ClientBodyError::TimedOut(_)) => (
            StatusCode::REQUEST_TIMEOUT,
            None,
            "the request body stopped coming\n",
        ),
        UpstreamError::ClientBody(ClientBodyError::TooLarge(_)) => {
            (StatusCode::PAYLOAD_TOO_LARGE, None, TOO_LARGE)
        }
    }
}

/// The answer to a request body over `limits.max_body_bytes`.
const TOO_LARGE: &str = "the request body is too large\n";

/// HTTP/2 sends a `Cookie` as crumbs, one field each (RFC 9113 section
/// 8.2.3), to be joined with `; ` before they go to HTTP/1.1, where
/// servers join repeated fields with `,` (gunicorn, werkzeug) and read
/// another cookie string.
fn join_cookie_crumbs(headers: &mut http::HeaderMap) {
    let crumbs = headers.get_all(header::COOKIE);
    let mut crumbs = crumbs.iter();
    if crumbs.next().is_none() || crumbs.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for crumb in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(crumb.as_bytes());
    }
    if let Ok(joined) = http::HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, joined);
    }
}

/// What is wrong with the request's transfer codings, if anything, and the
/// status it gets. A coding besides `chunked` (`gzip, chunked`) gets 501,
/// as RFC 9112 section 6.1 says: the body is read de-chunked and sent on
/// framed anew, so the coding would be dropped and the upstream would take
/// the compressed bytes for the body itself. `chunked` twice gets 400
/// (section 7: a sender never chunks twice): de-chunked once, the body
/// would go on still chunk-encoded. (hyper refuses a list that does not
/// end in `chunked`; HTTP/2 has no transfer codings.)
fn transfer_coding_problem(headers: &http::HeaderMap) -> Option<(StatusCode, String)> {
    let values = headers.get_all(header::TRANSFER_ENCODING);
    let codings = || {
        values
            .iter()
            .flat_map(|value| crate::common::fields::list_tokens(value.as_bytes()))
    };
    if let Some(other) = codings().find(|coding| !coding.eq_ignore_ascii_case(b"chunked")) {
        return Some((
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "the request's transfer coding {:?} is not supported: send the body with \
                 Content-Length, or chunked alone",
                String::from_utf8_lossy(other)
            ),
        ));
    }
    (codings().count() > 1).then(|| {
        (
            StatusCode::BAD_REQUEST,
            "the request body is chunked more than once".to_owned(),
        )
    })
}

/// The answer to a bot whose certificate stopped verifying since it
/// connected (revoked, expired, its CRL out of date): 403, and the
/// connection closed after it, so the bot's next request makes a new
/// handshake, whose alert says why (over HTTP/2 the serving layer turns
/// `Connection: close` into a GOAWAY; the header is not sent).
fn revoked() -> (Response, Option<String>) {
    let why = "this client certificate no longer verifies (revoked, expired, or its CRL out of date) since the connection was made";
    let mut response = (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    (response, Some(format!("revoked: {why}")))
}

fn bad_request(why: &str) -> (Response, Option<String>) {
    refused_target(StatusCode::BAD_REQUEST, why)
}

/// The proxy's own answer `status` to a request it refuses, with `why` as
/// its text and for the log.
fn refused_target(status: StatusCode, why: &str) -> (Response, Option<String>) {
    (
        (status, format!("{why}\n")).into_response(),
        Some(format!(
            "{}: {why}",
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_ascii_lowercase()
        )),
    )
}
