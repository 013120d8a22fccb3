//! The request path: policy, identity headers, forwarding, the access log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, StatusCode};
use rustls_req_client_auth::PeerIdentity;

use crate::access_log::Entry;
use crate::config::Config;
use crate::forward::{Upstream, UpstreamError};
use crate::headers::IdentityHeaders;
use crate::metrics::Metrics;

/// What every request needs.
#[derive(Debug)]
pub struct Proxy {
    headers: IdentityHeaders,
    bots_only: Vec<String>,
    upstream: Upstream,
    access_log: AccessLog,
    metrics: Option<Arc<Metrics>>,
}

/// Where the access log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLog {
    /// One JSON line per request on standard output.
    Stdout,
    /// Nowhere (the demo prints its own account).
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
        let authority = crate::forward::upstream_authority(&config.upstream.url)
            .map_err(|message| anyhow::anyhow!("upstream.url: {message}"))?;
        Ok(Self {
            headers,
            bots_only: config.policy.bots_only.clone(),
            upstream: Upstream::new(authority, Duration::from_secs(config.upstream.timeout_secs)),
            access_log: AccessLog::Stdout,
            metrics: None,
        })
    }

    /// Counts policy refusals and upstream errors in `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sends the access log to `log`.
    #[must_use]
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = log;
        self
    }

    /// The axum app: every path goes through [`forward`].
    pub fn router(self) -> Router {
        Router::new().fallback(forward).with_state(Arc::new(self))
    }

    fn bots_only(&self, path: &str) -> bool {
        self.bots_only
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }
}

/// One request: policy, then the upstream with the identity headers.
async fn forward(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    peer: PeerIdentity,
    request: Request,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let version = format!("{:?}", request.version());
    let (response, error) = answer(&proxy, remote, &peer, &path, request).await;
    if proxy.access_log == AccessLog::Off {
        return response;
    }
    Entry {
        remote,
        method: method.as_str(),
        path: &path,
        version,
        status: response.status().as_u16(),
        auth: "none",
        subject: None,
        thumbprint: None,
        resumed: false,
        duration_ms: Entry::millis(started.elapsed()),
        error,
    }
    .with_peer(&peer)
    .write();
    response
}

async fn answer(
    proxy: &Proxy,
    remote: SocketAddr,
    peer: &PeerIdentity,
    path: &str,
    request: Request,
) -> (Response, Option<String>) {
    if proxy.bots_only(path) && !peer.is_flag_path() {
        let why = "this path is for bots authenticated with a client certificate on the request_client_auth TLS flag";
        if let Some(metrics) = &proxy.metrics {
            metrics.policy_refusal();
        }
        return (
            (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
            Some(format!("policy: {why}")),
        );
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str().to_owned())
        });
    let (mut parts, body) = request.into_parts();
    proxy
        .headers
        .apply(&mut parts.headers, peer, remote.ip(), host.as_deref());
    match proxy
        .upstream
        .send(http::Request::from_parts(parts, body))
        .await
    {
        Ok(response) => (response, None),
        Err(error) => {
            let (status, kind) = match error {
                UpstreamError::TimedOut(..) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
                UpstreamError::Unreachable(..) => (StatusCode::BAD_GATEWAY, "unreachable"),
            };
            if let Some(metrics) = &proxy.metrics {
                metrics.upstream_error(kind);
            }
            let message = error.to_string();
            let response = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from(format!("{message}\n")))
                .unwrap_or_else(|_| status.into_response());
            (response, Some(message))
        }
    }
}
