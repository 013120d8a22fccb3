//! One request from the local client, sent on to the real server: the
//! target made absolute, hop-by-hop headers removed, the bodies streamed
//! both ways, and the outcome of the upstream connection told to the client
//! in a header; a 502 whose text names the cause when there is no answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::common::bounded_log::within;
use crate::common::client_body::{discardable, ClientBody, ClientBodyError, ClientBodyFailure};
use crate::common::errors::{error_chain, find_in_chain};
use crate::common::fields::{filter_trailers, remove_hop_by_hop};
use crate::common::read_timeout::{ReadTimedOut, ReadTimeout};
use crate::connect::failure::{ConnectFailure, RefusedError};
use crate::connect::metrics::RequestResult;
use crate::connect::outcome::{AnsweredOn, ConnectionOutcome};
use crate::connect::proxy_auth::{Credential, ProxyCredentials};
use crate::connect::upstream::{default_port, FlagConnector};

/// What the client gets back: the server's body, streamed, or the proxy's
/// own text.
pub type RelayBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// How often a pooled HTTP/2 connection to a server is pinged, and how long
/// the answer may take (as `rca-proxy`'s to its upstream).
pub const UPSTREAM_PING_INTERVAL: Duration = Duration::from_secs(20);

/// The default name of the outcome header.
pub const OUTCOME_HEADER: &str = "rca-connect-outcome";

/// The pooled, flag-setting client.
type PooledClient = Client<FlagConnector, axum::body::Body>;

/// Sends requests on through the pooled, flag-setting client.
///
/// Each `--proxy-auth-file` credential has a pool of its own: a request
/// goes out only on a connection that carried its own user's requests
/// before. A server that answers one request twice (or reads one request
/// as two, as a smuggled request makes it) leaves the extra answer on its
/// connection for the next request there; in a pool shared by every
/// local client, that next request could be another user's, who would get
/// an answer meant for someone else, and whose own answer could go to the
/// next. Requests admitted without a credential (routes, a port that
/// requires none) share one pool.
#[derive(Clone, Debug)]
pub struct Relay {
    client: PooledClient,
    /// One pool per credential (see above), made at its first request and
    /// dropped when a reload removes the credential.
    pools: Arc<Mutex<HashMap<Credential, PooledClient>>>,
    /// How long an idle upstream connection is kept, and how many per
    /// server, in each pool.
    idle: (Duration, usize),
    pub(crate) connector: FlagConnector,
    pub(crate) metrics: std::sync::Arc<crate::connect::metrics::ConnectMetrics>,
    pub(crate) outcome_header: Option<HeaderName>,
    pub(crate) response_timeout: Duration,
    body_timeout: Duration,
    /// How long a response body, or a WebSocket's server, may send nothing.
    pub(crate) read_timeout: Duration,
}

/// How long a [`Relay`] waits for each part of an exchange.
#[derive(Clone, Copy, Debug)]
pub struct RelayTimeouts {
    /// For the server's response headers (then 504).
    pub response: Duration,
    /// Between two parts of the client's request body (then 408).
    pub request_body: Duration,
    /// Between two parts of the server's response body (then the response
    /// is cut short), as nginx's `proxy_read_timeout`.
    pub response_body: Duration,
}

impl Relay {
    /// A relay over `connector`; `outcome_header` names the header that
    /// tells the client what happened (`None`: no header); `idle` is how
    /// long an idle upstream connection is kept, and how many per server,
    /// in each pool.
    pub fn new(
        connector: FlagConnector,
        outcome_header: Option<HeaderName>,
        timeouts: RelayTimeouts,
        idle: (Duration, usize),
    ) -> Self {
        Self {
            client: pooled_client(&connector, idle),
            pools: Arc::default(),
            idle,
            metrics: connector.metrics(),
            connector,
            outcome_header,
            response_timeout: timeouts.response,
            body_timeout: timeouts.request_body,
            read_timeout: timeouts.response_body,
        }
    }

    /// Begins a connection to `scheme://authority` now, for a client that
    /// just opened a tunnel to it (see [`crate::connect::prepared`]).
    pub fn prepare(&self, scheme: Scheme, authority: &Authority) {
        if let Ok(uri) = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
        {
            self.connector.prepare(&uri);
        }
    }

    /// Sends `request` to `scheme://authority` (its own path and query),
    /// and gives back the answer, or a 502 (504 on a timeout) that says why
    /// there is none. It goes out on the pool of requests admitted without
    /// a credential; see [`Relay::forward_as`].
    pub async fn forward<B>(
        &self,
        request: Request<B>,
        scheme: Scheme,
        authority: Authority,
    ) -> Response<RelayBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        self.forward_as(None, request, scheme, authority).await
    }

    /// The pool of `credential`'s requests, made if it has none yet; the
    /// shared one for `None`.
    fn pool_of(&self, credential: Option<Credential>) -> PooledClient {
        let Some(credential) = credential else {
            return self.client.clone();
        };
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools
            .entry(credential)
            .or_insert_with(|| pooled_client(&self.connector, self.idle))
            .clone()
    }

    /// Drops the pools of credentials `credentials` no longer hold (all,
    /// for `None`): their idle connections close, and a credential put
    /// back later starts on new ones. Requests under way keep theirs.
    pub fn keep_pools_of(&self, credentials: Option<&ProxyCredentials>) {
        // A set made before the lock, which every request takes: no scan
        // of the file's lines per pool under it (and no need for the
        // constant-time comparison: these are the proxy's own digests).
        let kept: std::collections::HashSet<Credential> = credentials
            .map(|now| now.iter().collect())
            .unwrap_or_default();
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|credential, _| kept.contains(credential));
    }

    /// As [`Relay::forward`], on the pool of `credential`'s requests only
    /// (`None`: the shared one).
    pub async fn forward_as<B>(
        &self,
        credential: Option<Credential>,
        request: Request<B>,
        scheme: Scheme,
        authority: Authority,
    ) -> Response<RelayBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        // Read before the headers and version are rewritten for the server.
        let discard = discardable(&parts);
        parts.uri = match target(&parts.uri, &scheme, &authority) {
            Ok(uri) => uri,
            Err(error) => return self.failure(StatusCode::BAD_REQUEST, &error.to_string(), None),
        };
        let connection_named = remove_hop_by_hop(&mut parts.headers);
        // The client sets `Host` (HTTP/1.1) or `:authority` (HTTP/2) from
        // the target, so the server sees the host the tunnel was made to.
        parts.headers.remove(header::HOST);
        parts.version = Version::HTTP_11;
        // The client's trailers lose what a trailer section may not carry,
        // as its headers lost the hop-by-hop fields.
        let body = body.map_frame(move |frame| filter_trailers(frame, &connection_named));
        let (body, body_failure) = ClientBody::watched(
            axum::body::Body::new(body),
            self.body_timeout,
            None,
            discard,
        );
        let sent = tokio::time::timeout(
            self.response_timeout,
            self.pool_of(credential)
                .request(Request::from_parts(parts, body)),
        )
        .await;
        let metrics = &self.metrics;
        match sent {
            Ok(Ok(response)) => {
                metrics.request(RequestResult::Answered);
                self.answer(response, &authority)
            }
            Ok(Err(error)) => {
                metrics.request(RequestResult::Failed);
                self.failed((&scheme, &authority), &error, body_failure.as_ref())
            }
            Err(_) => {
                metrics.request(RequestResult::TimedOut);
                self.failure(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "{authority} sent no response headers within {:?}",
                        self.response_timeout
                    ),
                    None,
                )
            }
        }
    }

    /// The server's `response` as the client gets it (see
    /// [`Relay::response_body`]); a 502 for a switch of protocols nobody
    /// asked for (WebSocket handshakes go through [`Relay::websocket`]).
    fn answer(&self, response: Response<Incoming>, authority: &Authority) -> Response<RelayBody> {
        let (mut parts, body) = response.into_parts();
        let answered_on = parts.extensions.get::<AnsweredOn>().cloned();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let why = format!("{authority} answered 101 to a request that asked for no upgrade");
            let outcome = answered_on.map(|answered_on| answered_on.outcome.header_value(false));
            return self.failure(StatusCode::BAD_GATEWAY, &why, outcome);
        }
        // A body framed by chunks has no length of its own to pass on: the
        // server's `Content-Length` beside it would frame the client's copy
        // wrongly (RFC 9112 section 6.3).
        if parts.headers.contains_key(header::TRANSFER_ENCODING) {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let connection_named = remove_hop_by_hop(&mut parts.headers);
        self.set_outcome(&mut parts.headers, answered_on.as_ref());
        Response::from_parts(parts, self.response_body(body, authority, connection_named))
    }

    /// Puts the outcome of the connection a response came on into its
    /// `headers`, after removing any the server sent under the configured
    /// name or the default one: a client reads that header as
    /// rca-connect's word, also when it is turned off or renamed.
    pub(crate) fn set_outcome(
        &self,
        headers: &mut http::HeaderMap,
        answered_on: Option<&AnsweredOn>,
    ) {
        headers.remove(OUTCOME_HEADER);
        if let Some(name) = &self.outcome_header {
            headers.remove(name);
            if let Some(answered_on) = answered_on {
                headers.insert(name.clone(), answered_on.header.clone());
            }
        }
    }

    /// A response `body` from `authority` as the client gets it: cut short
    /// (and the cut logged) when the server stops sending it for the read
    /// timeout, and with its trailers rid of what they may not carry (see
    /// [`filter_trailers`]; `connection_named`: what the header
    /// section's `Connection` named) and of any outcome header of the
    /// server's.
    pub(crate) fn response_body(
        &self,
        body: Incoming,
        authority: &Authority,
        connection_named: Vec<HeaderName>,
    ) -> RelayBody {
        let authority = authority.clone();
        let outcome = [HeaderName::from_static(OUTCOME_HEADER)];
        let renamed = self.outcome_header.clone();
        ReadTimeout::new(body, self.read_timeout)
            .map_frame(move |frame| {
                let dropped = connection_named.iter().chain(&outcome).chain(&renamed);
                filter_trailers(frame, dropped)
            })
            .map_err(move |error| {
                if ReadTimedOut::in_chain(&error).is_some() {
                    log::warn!("the response from {authority} was cut short: it {error}");
                }
                error
            })
            .boxed()
    }

    /// Why a request found no answer, most specific first: the client's
    /// body, a refusal this request's connection saw, a connection not made;
    /// last, a refusal seen on another connection to the server just now
    /// (HTTP/2 keeps only an I/O error's text on the way here).
    pub(crate) fn failed(
        &self,
        (scheme, authority): (&Scheme, &Authority),
        error: &(dyn std::error::Error + 'static),
        body_failure: Option<&ClientBodyFailure>,
    ) -> Response<RelayBody> {
        // hyper's HTTP/2 client keeps a request body's error to itself.
        let body = body_failure
            .and_then(ClientBodyFailure::get)
            .or_else(|| ClientBodyError::in_chain(error));
        match body {
            Some(body @ ClientBodyError::TimedOut(_)) => {
                return self.failure(StatusCode::REQUEST_TIMEOUT, &body.to_string(), None);
            }
            Some(body @ ClientBodyError::Malformed(_)) => {
                return self.failure(StatusCode::BAD_REQUEST, &body.to_string(), None);
            }
            Some(body @ ClientBodyError::TooLarge(_)) => {
                return self.failure(StatusCode::PAYLOAD_TOO_LARGE, &body.to_string(), None);
            }
            None => {}
        }
        let refused = || {
            if let Some(refused) = find_in_chain::<RefusedError>(error) {
                return Some(std::sync::Arc::clone(&refused.0));
            }
            let default_port = default_port(scheme.as_str());
            let host = authority.host();
            let host = host
                .strip_prefix('[')
                .and_then(|host| host.strip_suffix(']'))
                .unwrap_or(host);
            self.connector
                .recent_refusal(host, authority.port_u16().unwrap_or(default_port))
        };
        if let Some(failure) = find_in_chain::<ConnectFailure>(error) {
            // rca-connect's own limit, not the server's doing.
            let status = if matches!(failure, ConnectFailure::Busy(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            };
            let mut response = self.failure(status, &failure.to_string(), None);
            if let Some(name) = &self.outcome_header {
                response
                    .headers_mut()
                    .insert(name.clone(), ConnectionOutcome::NO_CONNECTION.clone());
            }
            return response;
        }
        if let Some(refused) = refused() {
            return self.failure(
                StatusCode::BAD_GATEWAY,
                &format!("{authority}: {}", refused.reason),
                Some(refused.outcome.header_value(true)),
            );
        }
        let chain = error_chain(error);
        // A plain `http://` URL for a port that speaks TLS: its answer
        // (an alert) does not parse as HTTP.
        let unparsable = find_in_chain::<hyper::Error>(error).is_some_and(hyper::Error::is_parse);
        let hint = if scheme == &Scheme::HTTP && unparsable {
            "; the server did not answer in HTTP: if it speaks TLS on that port, use an https:// URL"
        } else {
            ""
        };
        self.failure(
            StatusCode::BAD_GATEWAY,
            &format!("the request to {authority} failed: {chain}{hint}"),
            None,
        )
    }

    /// The proxy's own answer: `why` as text, and the outcome header if the
    /// connection came about.
    pub(crate) fn failure(
        &self,
        status: StatusCode,
        why: &str,
        outcome: Option<HeaderValue>,
    ) -> Response<RelayBody> {
        // A client can ask for these as fast as it likes (36,618 lines in
        // 3 s to a closed port, found by an outside attack).
        let budget = match status {
            StatusCode::BAD_GATEWAY => &FAILURES_LOGGED[0],
            StatusCode::SERVICE_UNAVAILABLE => &FAILURES_LOGGED[1],
            StatusCode::GATEWAY_TIMEOUT => &FAILURES_LOGGED[2],
            _ => &FAILURES_LOGGED[3],
        };
        if let Some(left_out) = within(budget, log::Level::Warn) {
            log::warn!("{status}: {why}{left_out}");
        }
        let mut response = Response::new(
            Full::new(Bytes::from(format!("rca-connect: {why}\n")))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let (Some(name), Some(outcome)) = (&self.outcome_header, outcome) {
            headers.insert(name.clone(), outcome);
        }
        response
    }
}

/// A pool of connections made by `connector`, each kept `idle.0` when idle,
/// at most `idle.1` idle ones per server.
fn pooled_client(
    connector: &FlagConnector,
    (idle_timeout, max_idle_per_host): (Duration, usize),
) -> PooledClient {
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        // A pooled HTTP/2 connection that went silent (no reset: a
        // middlebox dropped it) is found and closed, not handed every
        // request to the server until TCP gives up.
        .http2_keep_alive_interval(UPSTREAM_PING_INTERVAL)
        .http2_keep_alive_timeout(UPSTREAM_PING_INTERVAL)
        .http2_keep_alive_while_idle(true)
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_timeout)
        .pool_max_idle_per_host(max_idle_per_host)
        .build(connector.clone())
}

/// `uri`'s path and query at `scheme://authority`.
pub(crate) fn target(
    uri: &Uri,
    scheme: &Scheme,
    authority: &Authority,
) -> Result<Uri, http::Error> {
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
}

/// The lines about rca-connect's own failure answers, at most ten a second
/// of each kind: 502, 503, 504, and the others (408, ...). One budget for
/// all let a flood of one hide the others, and the count of lines left out
/// that the next line gives named another kind's.
static FAILURES_LOGGED: [rustls_req_client_auth::LogBudget; 4] = [
    rustls_req_client_auth::LogBudget::new(),
    rustls_req_client_auth::LogBudget::new(),
    rustls_req_client_auth::LogBudget::new(),
    rustls_req_client_auth::LogBudget::new(),
];
