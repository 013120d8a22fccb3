//! The back side: pooled connections to the upstream (HTTP/1.1, see
//! [`crate::proxy::back::pool`]; h2c through hyper-util's client), and the rewrite of a
//! request for it (target, version, hop-by-hop headers). Bodies stream both
//! ways; nothing is buffered whole. A response body the upstream stops
//! sending for `upstream.read_timeout_secs` is cut short
//! ([`crate::common::read_timeout`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use bytes::Bytes;
use hyper::body::Incoming;
use rustls_req_client_auth::ClientSlots;
use tokio::sync::Semaphore;

use crate::common::client_body::{ClientBodyError, ClientBodyFailure};
use crate::common::errors::error_chain;
use crate::common::fields::{filter_trailers, remove_hop_by_hop};
use crate::common::permits::take_within;
use crate::common::read_timeout::ReadTimeout;
use crate::common::websocket::{expected_accept, proves_websocket_switch};
use crate::proxy::back::pool::{resendable, Http1Pool, Outgoing, ResponseBody};
use crate::proxy::back::slots::ExchangeSlot;
use crate::proxy::back::tunnel::tunnel;
pub use crate::proxy::back::tunnel::{TunnelEnd, TunnelEnds};
use crate::proxy::back::wire::ResponseHead;

/// `upstream.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1, a pool of keep-alive connections.
    #[default]
    Http1,
    /// HTTP/2 without TLS, by prior knowledge (RFC 9113 section 3.3).
    H2c,
}

/// `host:port` of an `http://host:port` upstream URL; the error says what is
/// wrong with it.
///
/// # Errors
///
/// Not an `http://` URL with a host, or it has a path, query or credentials.
pub fn upstream_authority(url: &str) -> Result<Authority, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(format!(
            "{url:?}: the upstream is reached over plain HTTP (http://host:port); TLS ends at this proxy"
        ));
    }
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(format!(
            "{url:?}: give the upstream as http://host:port, without a path"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{url:?}: credentials in the URL are not supported"));
    }
    Ok(authority.clone())
}

/// The pooled clients and where they send requests.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// HTTP/1.1: every request with `upstream.protocol = "http1"`, and
    /// WebSocket upgrades always.
    http1: Arc<Http1Pool>,
    /// HTTP/2 by prior knowledge, with `upstream.protocol = "h2c"`.
    h2c: Option<Client<HttpConnector, Body>>,
    authority: Authority,
    timeout: Duration,
    /// How long a response body may send nothing.
    read_timeout: Duration,
    /// One per upstream connection in use: an exchange holds one from the
    /// request until its response body (or its tunnel) is done.
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// The exchanges each client address may have going at once (see
    /// [`crate::proxy::back::slots`]); `None`: no limit.
    per_client: Option<Arc<ClientSlots>>,
}

/// A response body from the HTTP/1.1 pool, cut short when the upstream
/// sends nothing of it for `upstream.read_timeout_secs`.
pub type UpstreamBody = ReadTimeout<ResponseBody>;

/// Why the upstream gave no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// It could not be reached, or the exchange failed.
    #[error("the upstream {0} did not answer: {1}")]
    Unreachable(Authority, String),
    /// It did not send its response headers in time.
    #[error("the upstream {0} did not answer within {1:?}")]
    TimedOut(Authority, Duration),
    /// All its connections were in use for longer than the timeout.
    #[error("all {1} connections to the upstream {0} stayed in use for {2:?}")]
    Busy(Authority, usize, Duration),
    /// The client's address has as many exchanges going as it may
    /// (`limits.max_upstream_per_client`).
    #[error("the client {0} has {1} requests in progress upstream already (limits.max_upstream_per_client)")]
    ClientBusy(std::net::IpAddr, usize),
    /// The client's request body failed on the way: the client's doing.
    #[error(transparent)]
    ClientBody(ClientBodyError),
}

impl Upstream {
    /// A client for `authority` that waits `timeout` for response headers
    /// and `read_timeout` for each part of a response body, has at most
    /// `max_connections` exchanges going at once (over HTTP/1.1 one
    /// connection each; over h2c streams of shared connections) and closes
    /// connections idle for `idle_timeout`.
    pub fn new(
        authority: Authority,
        timeout: Duration,
        max_connections: usize,
        idle_timeout: Duration,
        read_timeout: Duration,
        protocol: UpstreamProtocol,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        // Cannot fail: a valid authority and `/`.
        let target = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default();
        let http1 = Http1Pool::new(target, connector.clone(), idle_timeout, max_connections);
        let h2c = (protocol == UpstreamProtocol::H2c).then(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(idle_timeout)
                .http2_only(true)
                // An idle upstream connection that stops answering is noticed.
                .http2_keep_alive_interval(Duration::from_secs(20))
                .http2_keep_alive_while_idle(true)
                .http2_keep_alive_timeout(timeout)
                .timer(hyper_util::rt::TokioTimer::new())
                .build(connector)
        });
        Self {
            http1,
            h2c,
            authority,
            timeout,
            read_timeout,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            per_client: None,
        }
    }

    /// Lets each client address have at most `max` exchanges going at once
    /// (`None`: no limit); beyond, [`UpstreamError::ClientBusy`] at once.
    #[must_use]
    pub fn max_per_client(mut self, max: Option<usize>) -> Self {
        self.per_client = max.map(ClientSlots::new);
        self
    }

    /// Points `request` at the upstream: over h2c an absolute target and no
    /// `Host`; over HTTP/1.1 the origin form and a `Host`.
    fn retarget(&self, request: &mut Request<Body>, h2c: bool) -> Result<(), UpstreamError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        if h2c {
            // `:authority` names the upstream (RFC 9113 section 8.3.1: a
            // `Host` beside it must not differ, so none is sent); the host
            // the client addressed is in `X-Forwarded-Host` and `Forwarded`.
            *request.uri_mut() = Uri::builder()
                .scheme(Scheme::HTTP)
                .authority(self.authority.clone())
                .path_and_query(path)
                .build()
                .map_err(|error| {
                    UpstreamError::Unreachable(self.authority.clone(), error.to_string())
                })?;
            *request.version_mut() = Version::HTTP_2;
            request.headers_mut().remove(header::HOST);
        } else {
            // Origin form (RFC 9112 section 3.2.1), and a `Host`: the
            // client's, or the upstream's if the client sent none (HTTP/1.0).
            *request.uri_mut() = Uri::from(path);
            *request.version_mut() = Version::HTTP_11;
            if !request.headers().contains_key(header::HOST) {
                if let Ok(host) = HeaderValue::from_str(self.authority.as_str()) {
                    request.headers_mut().insert(header::HOST, host);
                }
            }
        }
        Ok(())
    }

    /// Sends `request` upstream: its hop-by-hop headers already removed and
    /// the identity headers set. With `upgrade` (from [`crate::common::websocket::websocket_upgrade`]),
    /// asks the upstream to switch to WebSocket and, if it does, tunnels the
    /// bytes both ways.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`]: unreachable, too slow, or switched to a protocol
    /// that was not asked for.
    pub async fn send(
        &self,
        mut request: Request<Body>,
        upgrade: Option<HeaderValue>,
        client: std::net::IpAddr,
    ) -> Result<Response<Body>, UpstreamError> {
        // An upgrade needs HTTP/1.1 (h2c has no `Upgrade`; RFC 8441's
        // extended CONNECT is not spoken here).
        let h2c = self.h2c.as_ref().filter(|_| upgrade.is_none());
        self.retarget(&mut request, h2c.is_some())?;
        // A tunnel runs as the rest of the client's connection (`serve`): it
        // keeps its connection slot and is drained at shutdown.
        let connection = request
            .extensions_mut()
            .remove::<rustls_req_client_auth::Upgraded>();
        let ends = request.extensions_mut().remove::<TunnelEnds>();
        let (client_side, accept) = ask_upgrade(&mut request, upgrade.as_ref());
        let body_failure = request.extensions_mut().remove::<ClientBodyFailure>();
        let permit = self.slot(client).await?;
        let exchange = async {
            match h2c {
                Some(h2c) => send_h2c(h2c, request)
                    .await
                    .map(Answer::H2c)
                    .map_err(|error| self.failed(&error, body_failure.as_ref())),
                None => self
                    .http1
                    .send(request)
                    .await
                    .map(Answer::Http1)
                    .map_err(|error| self.failed(&error, body_failure.as_ref())),
            }
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::TimedOut(self.authority.clone(), self.timeout))??;
        let response = match answer {
            Answer::H2c(response) => {
                let (mut parts, body) = response.into_parts();
                let connection_named = remove_hop_by_hop(&mut parts.headers);
                // The exchange holds its slot until the body has been read
                // or dropped. Its trailers lose what a trailer section may
                // not carry, as its headers lost the hop-by-hop fields.
                let body = body.map_frame(move |frame| {
                    let _slot = &permit;
                    filter_trailers(frame, &connection_named)
                });
                let body = ReadTimeout::new(body, self.read_timeout);
                return Ok(Response::from_parts(parts, Body::new(body)));
            }
            Answer::Http1(response) => response,
        };
        let (mut parts, mut body) = response.into_parts();
        let switched = parts.headers.get(header::UPGRADE).cloned();
        let proven = proves_websocket_switch(&parts.headers, accept.as_ref());
        remove_hop_by_hop(&mut parts.headers);
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let (Some(client_side), Some(asked), Some(switched)) = (client_side, upgrade, switched)
            else {
                return Err(UpstreamError::Unreachable(
                    self.authority.clone(),
                    "it switched protocols without being asked".into(),
                ));
            };
            if !switched.as_bytes().eq_ignore_ascii_case(asked.as_bytes()) {
                return Err(UpstreamError::Unreachable(
                    self.authority.clone(),
                    "it switched to another protocol than the one asked for".into(),
                ));
            }
            if !proven {
                return Err(UpstreamError::Unreachable(
                    self.authority.clone(),
                    "it answered 101 without the Connection: upgrade and Sec-WebSocket-Accept of this handshake".into(),
                ));
            }
            // The connection is the tunnel's now, not the pool's.
            let Some(upstream_side) = body.take_switched() else {
                return Err(UpstreamError::Unreachable(
                    self.authority.clone(),
                    "it switched protocols before the request body was sent".into(),
                ));
            };
            let read_timeout = self.read_timeout;
            let tunnel = async move {
                tunnel(client_side, upstream_side, ends, read_timeout).await;
                drop(permit);
            };
            match connection {
                Some(connection) => {
                    if !connection.continue_with(tunnel) {
                        log::debug!("the client's connection is gone; no tunnel");
                    }
                }
                None => drop(tokio::spawn(tunnel)),
            }
            parts.headers.insert(header::UPGRADE, switched);
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        // The connection holds the exchange's slot until it is back in the
        // pool or closed (see `ResponseBody`).
        body.hold(permit);
        let body = ReadTimeout::new(body, self.read_timeout);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

impl Upstream {
    /// What an exchange that failed with `error` failed of: the client's
    /// request body (as `body_failure` recorded it, or found in `error`),
    /// or the upstream.
    fn failed(
        &self,
        error: &(dyn std::error::Error + 'static),
        body_failure: Option<&ClientBodyFailure>,
    ) -> UpstreamError {
        let body = body_failure
            .and_then(ClientBodyFailure::get)
            .or_else(|| ClientBodyError::in_chain(error));
        match body {
            Some(body) => UpstreamError::ClientBody(body.clone()),
            None => UpstreamError::Unreachable(self.authority.clone(), error_chain(error)),
        }
    }

    /// Slots for an exchange of `client`'s: its address's, refused at once
    /// when it has none left, then a connection slot, waited for up to the
    /// timeout (a free one is taken without arming a timer).
    async fn slot(&self, client: std::net::IpAddr) -> Result<ExchangeSlot, UpstreamError> {
        let client_slot = match &self.per_client {
            Some(slots) => Some(
                slots
                    .take(client)
                    .ok_or_else(|| UpstreamError::ClientBusy(client, slots.max()))?,
            ),
            None => None,
        };
        let permit = take_within(&self.connections, self.timeout)
            .await
            .ok_or_else(|| {
                UpstreamError::Busy(self.authority.clone(), self.max_connections, self.timeout)
            })?;
        Ok(ExchangeSlot::new(permit, client_slot))
    }

    /// Whether requests go up over h2c (then the HTTP/1.1 front is not used).
    #[must_use]
    pub fn is_h2c(&self) -> bool {
        self.h2c.is_some()
    }

    /// Sends an HTTP/1.1 request written already (by the front, see
    /// [`crate::proxy::front::http1`]) and returns the response's head and body,
    /// with the same limits as [`Upstream::send`]: a connection slot, the
    /// timeout for the response head, the read timeout for the body. The
    /// body holds the slot.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`]: unreachable, too slow, or switched protocols (an
    /// upgrade is never asked for here).
    pub async fn exchange(
        &self,
        outgoing: Outgoing,
        client: std::net::IpAddr,
    ) -> Result<(ResponseHead, UpstreamBody), UpstreamError> {
        let permit = self.slot(client).await?;
        let (head, mut body) = tokio::time::timeout(self.timeout, self.http1.exchange(outgoing))
            .await
            .map_err(|_| UpstreamError::TimedOut(self.authority.clone(), self.timeout))?
            .map_err(|error| {
                UpstreamError::Unreachable(self.authority.clone(), error_chain(&error))
            })?;
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(UpstreamError::Unreachable(
                self.authority.clone(),
                "it switched protocols without being asked".into(),
            ));
        }
        body.hold(permit);
        Ok((head, ReadTimeout::new(body, self.read_timeout)))
    }
}

/// A response: from the HTTP/1.1 pool or the h2c client.
enum Answer {
    Http1(Response<ResponseBody>),
    H2c(Response<Incoming>),
}

/// With `upgrade` (from [`crate::common::websocket::websocket_upgrade`]), asks the upstream to switch:
/// the client's side of the tunnel to be, and the `Sec-WebSocket-Accept`
/// that the only 101 passed on must carry (RFC 6455 section 4.2.2).
fn ask_upgrade(
    request: &mut Request<Body>,
    upgrade: Option<&HeaderValue>,
) -> (Option<hyper::upgrade::OnUpgrade>, Option<HeaderValue>) {
    let Some(protocol) = upgrade else {
        return (None, None);
    };
    let accept = expected_accept(request.headers());
    let headers = request.headers_mut();
    headers.insert(header::UPGRADE, protocol.clone());
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    (Some(hyper::upgrade::on(request)), accept)
}

/// Sends `request` over h2c, and again if the upstream turned it away
/// with a GOAWAY before processing it (its stream above the GOAWAY's last
/// stream id: RFC 9113 section 6.8 says it may be retried) or its
/// connection closed under it (see [`TurnedAway`]).
/// hyper's client fails such a request instead of retrying it (hyper issue
/// 2500), so an upstream that retires its connections from time to time
/// (nginx after `keepalive_requests`, 1,000) cost a few requests in a
/// thousand a 502 under load (found by an outside attack: 468 of 12,000).
/// Only a request that may be sent again at all is (see
/// `pool::resendable`: a GET, HEAD or OPTIONS without a body), as over
/// HTTP/1.1: a body streamed once is gone.
async fn send_h2c(
    h2c: &Client<HttpConnector, Body>,
    request: Request<Body>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    /// A request whose connection closed under it (which the upstream may
    /// have acted on) is sent again up to this many times; one a GOAWAY
    /// turned away unprocessed, as often as it takes within the exchange's
    /// timeout, which bounds the whole (found by an outside trial: with
    /// 200 requests in flight, two resends left 800 of 12,000 failed).
    const RESENDS_AFTER_A_CLOSE: usize = 2;
    let template = resendable(&request).then(|| bodiless_copy(&request));
    let mut answer = h2c.request(request.map(without_trailers)).await;
    let Some(template) = template else {
        return answer;
    };
    let (mut attempts, mut closes) = (0_u32, 0);
    loop {
        let turned_away = match &answer {
            Err(error) => turned_away(error),
            Ok(_) => None,
        };
        match turned_away {
            None => return answer,
            Some(TurnedAway::Closed) if closes >= RESENDS_AFTER_A_CLOSE => return answer,
            Some(TurnedAway::Closed) => closes += 1,
            Some(TurnedAway::Unprocessed) => {}
        }
        // A moment for the pool to let go of the retiring connection, a
        // little longer each time.
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(u64::from(attempts.min(10)) * 5)).await;
        log::debug!("the upstream turned a request away ({turned_away:?}); sending it again");
        answer = h2c.request(bodiless_copy(&template)).await;
    }
}

/// A copy of `request`, which has no body, for sending again.
fn bodiless_copy(request: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(Body::empty());
    copy.method_mut().clone_from(request.method());
    copy.uri_mut().clone_from(request.uri());
    *copy.version_mut() = request.version();
    copy.headers_mut().clone_from(request.headers());
    copy
}

/// How an h2c request was turned away, if it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TurnedAway {
    /// By a GOAWAY, its stream above the last one the upstream processes
    /// (h2 gives the GOAWAY's error to those streams): RFC 9113 section
    /// 6.8 says it was not processed.
    Unprocessed,
    /// Its connection closed under it, just as it went out (a retired
    /// connection's close can overtake a stream), as over HTTP/1.1, where
    /// such a safe request is sent again too.
    Closed,
}

/// How `error` turned the request away; `None` for anything else, such as
/// a stream the upstream reset (`RST_STREAM`), which it may have acted on.
fn turned_away(error: &(dyn std::error::Error + 'static)) -> Option<TurnedAway> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return if h2.is_go_away() && h2.is_remote() {
                Some(TurnedAway::Unprocessed)
            } else {
                h2.is_io().then_some(TurnedAway::Closed)
            };
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            // `is_user`: "dispatch task is gone", the connection's task
            // ended before the request went out (the only user error a
            // bodiless GET, HEAD or OPTIONS meets; another would meet it
            // again, twice at most).
            if hyper.is_canceled()
                || hyper.is_closed()
                || hyper.is_incomplete_message()
                || hyper.is_user()
            {
                return Some(TurnedAway::Closed);
            }
        }
        if error.is::<std::io::Error>() {
            return Some(TurnedAway::Closed);
        }
        cause = error.source();
    }
    None
}

/// A request body for h2c without its trailers: a client's trailer section
/// could carry identity or edge-only names, and trailers are not forwarded
/// over HTTP/1.1 either. The trailers frame becomes an empty data frame, so
/// the stream still ends where the client's did.
fn without_trailers(body: Body) -> Body {
    Body::new(body.map_frame(|frame| {
        if frame.is_trailers() {
            hyper::body::Frame::data(Bytes::new())
        } else {
            frame
        }
    }))
}
