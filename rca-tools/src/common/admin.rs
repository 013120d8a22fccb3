//! The admin listener both long-running tools may have: plain HTTP,
//! `GET /metrics` in the Prometheus text format (`OpenMetrics`), and
//! `GET /ready` for load balancers' and orchestrators' health checks: 200
//! while the tool serves, 503 from the moment it begins to stop, so a
//! checker takes it out of rotation while it drains.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A tool's metrics, as text.
pub trait Exposition: Send + Sync + 'static {
    /// The text exposition of every metric.
    fn encode(&self) -> String;
}

/// `registry` in the text format (empty if it cannot be encoded).
pub fn encode_registry(registry: &Registry) -> String {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        text.clear();
    }
    text
}

/// Whether the tool is serving, as `GET /ready` reports it; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    /// Ready.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The tool begins to stop: `GET /ready` says 503 from now on.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether the tool still serves.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
    }
}

/// Connections served at once: scrapers are few, and whoever reaches the
/// address must not hold the proxy's descriptors; more wait in the backlog.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// How long a request head may take to come, also the wait for the next
/// request on a kept-alive connection; then the connection is closed.
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` and `GET /ready` (as `readiness` says) on
/// `listener` until the process ends, to [`ADMIN_MAX_CONNECTIONS`]
/// connections at once, each closed once it has sent no request head for
/// [`ADMIN_HEADER_READ_TIMEOUT`].
pub async fn serve_admin<M: Exposition>(
    listener: TcpListener,
    metrics: Arc<M>,
    readiness: Readiness,
) {
    let slots = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let metrics = Arc::clone(&metrics);
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let response = answer(request.uri().path(), &*metrics, &readiness);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// The admin listener's answer for `path`.
fn answer<M: Exposition>(
    path: &str,
    metrics: &M,
    readiness: &Readiness,
) -> hyper::Response<Full<Bytes>> {
    let text = |status: u16, text: &'static str| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(text.as_bytes())))
    };
    let response = match path {
        "/metrics" => hyper::Response::builder()
            .header(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::new(Bytes::from(metrics.encode()))),
        "/ready" if readiness.is_ready() => text(200, "ready\n"),
        "/ready" => text(503, "stopping\n"),
        _ => text(404, "only /metrics and /ready here\n"),
    };
    response.unwrap_or_default()
}
