//! The admin listener both long-running tools may have: plain HTTP,
//! `GET /metrics` in the Prometheus text format (`OpenMetrics` to a scraper
//! that asks for it, as Prometheus does; the classic format 0.0.4
//! otherwise, which `promtool check metrics` and older parsers read), and
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
                let response = answer(&request, &*metrics, &readiness);
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

/// The admin listener's answer to `request`.
fn answer<M: Exposition, B>(
    request: &hyper::Request<B>,
    metrics: &M,
    readiness: &Readiness,
) -> hyper::Response<Full<Bytes>> {
    let text = |status: u16, text: &'static str| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(text.as_bytes())))
    };
    if !matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD) {
        let refused = text(405, "only GET and HEAD here\n").map(|mut response| {
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            response
        });
        return refused.unwrap_or_default();
    }
    let response = match request.uri().path() {
        "/metrics" if asks_for_openmetrics(request.headers()) => hyper::Response::builder()
            .header(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::new(Bytes::from(metrics.encode()))),
        "/metrics" => hyper::Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(classic_text(&metrics.encode())))),
        "/ready" if readiness.is_ready() => text(200, "ready\n"),
        "/ready" => text(503, "stopping\n"),
        _ => text(404, "only /metrics and /ready here\n"),
    };
    response.unwrap_or_default()
}

/// Whether a scraper's `Accept` prefers `OpenMetrics`: it names it with a
/// weight above 0 and at least that of `text/plain` (Prometheus's names it
/// first); anything else (no `Accept`, `*/*`) gets the classic text format,
/// as Prometheus's own client libraries answer. Media types and the `q`
/// name are compared case-insensitively (RFC 9110 section 12.5.1); a weight
/// that does not parse counts as 0.
fn asks_for_openmetrics(headers: &hyper::HeaderMap) -> bool {
    let (mut openmetrics, mut classic) = (0.0_f32, 0.0_f32);
    let ranges = headers
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for range in ranges {
        let mut parameters = range.split(';');
        let media = parameters.next().unwrap_or_default().trim();
        let weight = parameters
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| {
                value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|weight| (0.0..=1.0).contains(weight))
                    .unwrap_or(0.0)
            });
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            openmetrics = openmetrics.max(weight);
        } else if media.eq_ignore_ascii_case("text/plain") {
            classic = classic.max(weight);
        }
    }
    openmetrics > 0.0 && openmetrics >= classic
}

/// `openmetrics` (as [`encode_registry`] writes it) in the classic text
/// format 0.0.4: the same samples, a counter family named by its `_total`
/// sample as 0.0.4 names it, no `# UNIT` or `# EOF` lines. Only what the
/// encoder writes is handled; the tools use no exemplars or info metrics.
#[must_use]
pub fn classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // 0.0.4 names OpenMetrics' `unknown` type `untyped`.
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" unknown"))
        {
            text.push_str("# TYPE ");
            text.push_str(name);
            text.push_str(" untyped\n");
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|kind| {
            let rest = line.strip_prefix(kind)?;
            let (name, after) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{kind}{name}_total {after}"))
        });
        match renamed {
            Some(renamed) => text.push_str(&renamed),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_total_and_the_rest_is_kept() {
        let openmetrics = "# HELP rca_reloads Reloads by result.\n\
                           # TYPE rca_reloads counter\n\
                           rca_reloads_total{result=\"success\"} 1\n\
                           # HELP rca_duration_seconds Time.\n\
                           # TYPE rca_duration_seconds histogram\n\
                           # UNIT rca_duration_seconds seconds\n\
                           rca_duration_seconds_sum 0.5\n\
                           rca_duration_seconds_count 1\n\
                           rca_duration_seconds_bucket{le=\"+Inf\"} 1\n\
                           # HELP rca_expiry_seconds Until.\n\
                           # TYPE rca_expiry_seconds gauge\n\
                           rca_expiry_seconds 12\n\
                           # EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP rca_reloads_total Reloads by result.\n\
             # TYPE rca_reloads_total counter\n\
             rca_reloads_total{result=\"success\"} 1\n\
             # HELP rca_duration_seconds Time.\n\
             # TYPE rca_duration_seconds histogram\n\
             rca_duration_seconds_sum 0.5\n\
             rca_duration_seconds_count 1\n\
             rca_duration_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP rca_expiry_seconds Until.\n\
             # TYPE rca_expiry_seconds gauge\n\
             rca_expiry_seconds 12\n"
        );
    }

    #[test]
    fn openmetrics_goes_to_whoever_asks_for_it() {
        let asks = |accept: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(
                hyper::header::ACCEPT,
                hyper::header::HeaderValue::from_str(accept).expect("value"),
            );
            asks_for_openmetrics(&headers)
        };
        // Prometheus 2.x's scrape Accept.
        assert!(asks(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!asks("*/*"));
        assert!(!asks("text/plain;version=0.0.4"));
        assert!(!asks("application/openmetrics-text; q=0"));
        assert!(!asks("application/openmetrics-text; Q=0"));
        assert!(!asks("application/openmetrics-text;q=NaN"));
        assert!(!asks(
            "text/plain;version=0.0.4;q=1, application/openmetrics-text;q=0.1"
        ));
        assert!(asks("APPLICATION/OpenMetrics-Text"));
        assert!(!asks_for_openmetrics(&hyper::HeaderMap::new()));
    }

    /// What the classic format cannot say, checked on the tools' real
    /// registries without promtool: only counters, gauges and histograms,
    /// and no help text with a backslash (0.0.4 and `OpenMetrics` escape it
    /// differently).
    pub(crate) fn assert_classic_text_is_plain(openmetrics: &str) {
        let text = classic_text(openmetrics);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.rsplit(' ').next().unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            }
            if line.starts_with("# HELP ") {
                assert!(!line.contains('\\'), "{line}");
            }
        }
    }

    #[test]
    fn unknown_is_untyped() {
        assert_eq!(
            classic_text("# TYPE x unknown\nx 1\n# EOF\n"),
            "# TYPE x untyped\nx 1\n"
        );
    }
}
