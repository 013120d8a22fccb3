//! `rca-proxy`'s metrics, served on an optional admin address (`[admin]
//! listen`; see [`crate::common::admin`]), named as Prometheus asks: units
//! in the name, `_total` for counters, `_seconds` for times.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rustls_req_client_auth::server::CertificateRequestCause;
use rustls_req_client_auth::{AcceptError, AuthPath, FlagsEvent, PeerIdentity};

use crate::common::admin::{encode_registry, Exposition};

/// The latency buckets, in seconds: a millisecond to a minute.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A request's labels: bounded, whatever clients send.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `1xx` to `5xx` (`499` for a client that left counts as `4xx`).
    status_class: &'static str,
    /// The method, or `other` for any but the common nine.
    method: &'static str,
    path: Path,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The build a process runs, for `rca_proxy_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A certificate a configured file holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    /// The configuration field naming the file (`tls.cert`, `tls.bot_ca`,
    /// `tls.partner_ca`).
    file: &'static str,
    subject: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrlLabels {
    issuer: String,
}

/// When something loaded from the files stops being good: a certificate's
/// `notAfter`, a CRL's `nextUpdate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// `tls.cert`, `tls.bot_ca`, `tls.partner_ca` or `tls.bot_crl`.
    pub file: &'static str,
    /// The certificate's subject, or the CRL's issuer.
    pub name: String,
    /// Seconds since the epoch.
    pub at: i64,
}

/// The trust path of a completed handshake, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Path {
    flag,
    normal,
    none,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: Path,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Every counter the proxy keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handshakes: Family<PathLabel, Counter>,
    flags_seen: Counter,
    certificate_requests: Family<ReasonLabel, Counter>,
    handshake_failures: Family<ReasonLabel, Counter>,
    upstream_errors: Family<ReasonLabel, Counter>,
    policy_refusals: Counter,
    client_limit_refusals: Counter,
    flags_received: Counter,
    certificate_requests_sent: Family<ReasonLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<PathLabel, Histogram, fn() -> Histogram>,
    upstream_duration: Histogram,
    reloads: Family<ResultLabel, Counter>,
    /// 1 if the last reload took, 0 if it was refused (1 before any).
    last_reload_successful: Gauge,
    /// When the files last loaded (the start, or a reload that took).
    last_reload_success: Gauge,
    build_info: Family<BuildLabels, Gauge>,
    certificate_expiry: Family<CertificateLabels, Gauge<f64, AtomicU64>>,
    crl_next_update: Family<CrlLabels, Gauge<f64, AtomicU64>>,
    /// Brought up to [`crate::common::json_lines::lines_lost`] at each scrape.
    access_log_lines_lost: Counter,
    /// What the expiry gauges are computed from at each scrape.
    expiries: Mutex<Vec<Expiry>>,
    /// One scrape at a time: another's clearing of the expiry gauges must
    /// not show in this one's text.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rca_proxy");
        let metrics = Self {
            handshakes: Family::default(),
            flags_seen: Counter::default(),
            certificate_requests: Family::default(),
            handshake_failures: Family::default(),
            upstream_errors: Family::default(),
            policy_refusals: Counter::default(),
            client_limit_refusals: Counter::default(),
            flags_received: Counter::default(),
            certificate_requests_sent: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: latency_histogram(),
            reloads: Family::default(),
            last_reload_successful: Gauge::default(),
            last_reload_success: Gauge::default(),
            build_info: Family::default(),
            certificate_expiry: Family::default(),
            crl_next_update: Family::default(),
            access_log_lines_lost: Counter::default(),
            expiries: Mutex::new(Vec::new()),
            scrape: Mutex::new(()),
            registry: Registry::default(),
        };
        metrics.set_initial_values();
        registry.register(
            "handshakes",
            "Completed TLS handshakes by authentication path (flag, normal, none)",
            metrics.handshakes.clone(),
        );
        registry.register(
            "request_client_auth_seen",
            "Completed handshakes whose ClientHello set request_client_auth",
            metrics.flags_seen.clone(),
        );
        registry.register(
            "certificate_requests",
            "CertificateRequests in completed handshakes, by reason (flag: acknowledging request_client_auth)",
            metrics.certificate_requests.clone(),
        );
        registry.register(
            "request_client_auth_received",
            "ClientHellos that set request_client_auth, counted when received (completed or not)",
            metrics.flags_received.clone(),
        );
        registry.register(
            "certificate_requests_sent",
            "CertificateRequests counted when sent (completed handshakes or not), by reason",
            metrics.certificate_requests_sent.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by status class, method and authentication path",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request to its response headers, by authentication path",
            metrics.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response headers (or failure)",
            metrics.upstream_duration.clone(),
        );
        metrics.register_operations(&mut registry);
        registry.register(
            "handshake_failures",
            "Failed TLS handshakes by reason (certificate errors of the flag path, alerts, timeouts), and connections closed before one for their PROXY protocol header (proxy_protocol_untrusted, _malformed, _timeout, _io) or because their address had limits.max_connections_per_client open (client_connection_limit)",
            metrics.handshake_failures.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests the upstream did not answer (unreachable, timeout, busy) or whose response body it stopped sending (read_timeout)",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "policy_refusals",
            "Requests refused because the path is for verified bots only",
            metrics.policy_refusals.clone(),
        );
        registry.register(
            "client_limit_refusals",
            "Requests answered 503 because their client address had limits.max_upstream_per_client requests in progress upstream already",
            metrics.client_limit_refusals.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The series an alert needs before their first event, at 0, and the
    /// gauges that hold from the start.
    fn set_initial_values(&self) {
        // Both results from the start, at 0: an alert on `increase()` of the
        // failures sees the first one (a series that appears at 1 has no
        // increase).
        for result in ["success", "failure"] {
            drop(self.reloads.get_or_create(&ResultLabel { result }));
        }
        // So with the handshake failures most alerts watch, each from 0.
        // (Not the upstream errors': tests assert that a client's own
        // failures show no upstream-error series at all.)
        for reason in WATCHED_HANDSHAKE_FAILURES {
            drop(self.handshake_failures.get_or_create(&ReasonLabel {
                reason: reason.into(),
            }));
        }
        self.last_reload_successful.set(1);
        self.last_reload_success
            .set(unix_seconds(SystemTime::now()));
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
    }

    /// Registers what an operator watches beside the traffic: reloads,
    /// expiries, lost access-log lines.
    fn register_operations(&self, registry: &mut Registry) {
        registry.register(
            "reloads",
            "SIGHUP reloads of the [tls] files, by result (success, failure)",
            self.reloads.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "Whether the last SIGHUP reload took (1) or was refused (0), as Prometheus's own; 1 before any",
            self.last_reload_successful.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the [tls] files were last loaded: the start, or the last reload that took",
            self.last_reload_success.clone(),
        );
        registry.register(
            "build_info",
            "Always 1; the version of rca-proxy this process runs, in the label",
            self.build_info.clone(),
        );
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until notAfter of each certificate in the server's chain (tls.cert) and of each CA in tls.bot_ca and tls.partner_ca (negative: expired)",
            self.certificate_expiry.clone(),
        );
        registry.register(
            "crl_next_update_seconds",
            "Seconds until nextUpdate of each CRL in tls.bot_crl (negative: stale, and every bot is refused)",
            self.crl_next_update.clone(),
        );
        registry.register(
            "access_log_lines_lost",
            "Access-log lines lost: dropped while the output stalled, or not taken by it (a full disk, a closed pipe)",
            self.access_log_lines_lost.clone(),
        );
    }

    /// Counts one handshake outcome.
    pub fn handshake(&self, outcome: Result<&PeerIdentity, &AcceptError>) {
        match outcome {
            Ok(peer) => {
                let path = path_label(peer.path());
                self.handshakes.get_or_create(&PathLabel { path }).inc();
                if peer
                    .client_flags()
                    .contains(rustls_req_client_auth::Flag::REQUEST_CLIENT_AUTH)
                {
                    self.flags_seen.inc();
                }
                if let Some(cause) = peer.certificate_request() {
                    self.certificate_requests
                        .get_or_create(&ReasonLabel {
                            reason: cause_label(cause).into(),
                        })
                        .inc();
                }
            }
            Err(error) => {
                self.handshake_failures
                    .get_or_create(&ReasonLabel {
                        reason: failure_reason(error),
                    })
                    .inc();
            }
        }
    }

    /// Counts an upstream that did not answer (`kind`: unreachable, timeout,
    /// busy: no connection free within the timeout).
    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors
            .get_or_create(&ReasonLabel {
                reason: kind.into(),
            })
            .inc();
    }

    /// Counts a request refused by the bots-only policy.
    pub fn policy_refusal(&self) {
        self.policy_refusals.inc();
    }

    /// Counts a request refused because its client address had all the
    /// upstream exchanges it may.
    pub fn client_limit_refusal(&self) {
        self.client_limit_refusals.inc();
    }

    /// Counts what the flags did during a handshake, as it happens.
    pub fn flags_event(&self, event: FlagsEvent) {
        match event {
            FlagsEvent::RequestClientAuthReceived => {
                self.flags_received.inc();
            }
            FlagsEvent::CertificateRequestSent(cause) => {
                self.certificate_requests_sent
                    .get_or_create(&ReasonLabel {
                        reason: cause_label(cause).into(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    /// Counts one answered request: `status` after `to_headers` (`None`
    /// when it was not timed: a head refused before the proxy saw it), and
    /// the upstream's time if it was asked.
    pub fn request(
        &self,
        method: &http::Method,
        status: u16,
        path: AuthPath,
        to_headers: Option<Duration>,
        upstream: Option<Duration>,
    ) {
        let path = path_label(path);
        self.requests
            .get_or_create(&RequestLabels {
                status_class: status_class(status),
                method: method_class(method),
                path: path.clone(),
            })
            .inc();
        if let Some(to_headers) = to_headers {
            self.request_duration
                .get_or_create(&PathLabel { path })
                .observe(to_headers.as_secs_f64());
        }
        if let Some(upstream) = upstream {
            self.upstream_duration.observe(upstream.as_secs_f64());
        }
    }

    /// Counts a reload.
    pub fn reload(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
        self.last_reload_successful.set(i64::from(succeeded));
        if succeeded {
            self.last_reload_success
                .set(unix_seconds(SystemTime::now()));
        }
    }

    /// What the expiry gauges show from now on (after a start or reload).
    pub fn set_expiries(&self, expiries: Vec<Expiry>) {
        *self.expiries.lock().unwrap_or_else(PoisonError::into_inner) = expiries;
    }

    /// The expiry gauges, as of `now`.
    fn update_expiry_gauges(&self, now: SystemTime) {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        });
        let expiries = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        // Cleared first: a file reloaded without a CA drops its gauge.
        self.certificate_expiry.clear();
        self.crl_next_update.clear();
        let mut seen_names = std::collections::HashSet::new();
        for expiry in expiries.iter() {
            // Seconds, exact within 68 years either way; past that, clamped.
            let left = expiry.at.saturating_sub(now);
            let left = i32::try_from(left).map_or(
                if left < 0 {
                    f64::from(i32::MIN)
                } else {
                    f64::from(i32::MAX)
                },
                f64::from,
            );
            // Two certificates with one name (a CA re-keyed, cross-signed):
            // the one that expires first.
            let gauge = if expiry.file == "tls.bot_crl" {
                self.crl_next_update.get_or_create_owned(&CrlLabels {
                    issuer: expiry.name.clone(),
                })
            } else {
                self.certificate_expiry
                    .get_or_create_owned(&CertificateLabels {
                        file: expiry.file,
                        subject: expiry.name.clone(),
                    })
            };
            let seen = seen_names.insert((expiry.file, expiry.name.as_str()));
            if seen || left < gauge.get() {
                gauge.set(left);
            }
        }
    }
}

impl Exposition for Metrics {
    fn encode(&self) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.update_expiry_gauges(SystemTime::now());
        let lost = crate::common::json_lines::lines_lost();
        let counted = self.access_log_lines_lost.get();
        if lost > counted {
            self.access_log_lines_lost.inc_by(lost - counted);
        }
        encode_registry(&self.registry)
    }
}

fn path_label(path: AuthPath) -> Path {
    match path {
        AuthPath::Flag => Path::flag,
        AuthPath::Normal => Path::normal,
        AuthPath::None => Path::none,
    }
}

fn cause_label(cause: CertificateRequestCause) -> &'static str {
    match cause {
        CertificateRequestCause::Flag => "flag",
        CertificateRequestCause::ServerPolicy => "server_policy",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// The method as a label: one of the nine RFC 9110 and RFC 5789 methods,
/// else `other` (a client may send any token).
fn method_class(method: &http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| method.as_str() == *known)
        .unwrap_or("other")
}

/// The reasons of `rca_proxy_handshake_failures_total` alerts most often
/// watch, shown from 0 (the rest appear when they first happen).
const WATCHED_HANDSHAKE_FAILURES: [&str; 5] = [
    "timeout",
    "certificate_unknownissuer",
    "certificate_expired",
    "certificate_revoked",
    "certificate_missing",
];

/// Whole seconds since the epoch (0 before it).
fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    })
}

/// A short, bounded label for why a handshake failed.
fn failure_reason(error: &AcceptError) -> String {
    if matches!(error, AcceptError::TimedOut(_)) {
        return "timeout".into();
    }
    if let AcceptError::ProxyProtocol { reason, .. } = error {
        return format!("proxy_protocol_{reason}");
    }
    if matches!(error, AcceptError::ClientLimit(_)) {
        return "client_connection_limit".into();
    }
    if let Some(flags) = error.flags_error() {
        return format!(
            "tls_flags_{}",
            flags.rule().to_lowercase().replace('-', "_")
        );
    }
    match error.tls_error() {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            format!("certificate_{}", variant_name(reason))
        }
        // A CRL of the client's chain that rustls could not use (its
        // signature, its issuer's key usage).
        Some(rustls::Error::InvalidCertRevocationList(reason)) => {
            format!("crl_{}", variant_name(reason))
        }
        Some(rustls::Error::NoCertificatesPresented) => "certificate_missing".into(),
        Some(rustls::Error::AlertReceived(_)) => "alert_received".into(),
        Some(_) => "tls_other".into(),
        None => "io".into(),
    }
}

/// The name of `reason`'s variant in lower case (bounded cardinality): an
/// expired certificate is `expired` whichever variant the verifier chose.
fn variant_name(reason: &impl std::fmt::Debug) -> String {
    rustls_req_client_auth::variant_name(reason).to_lowercase()
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::UnixTime;
    use rustls::CertificateError;
    use rustls_req_client_auth::AcceptError;

    use super::failure_reason;
    use crate::common::admin::Exposition as _;

    #[test]
    fn the_classic_text_of_every_metric_is_plain() {
        crate::common::admin::tests::assert_classic_text_is_plain(&super::Metrics::new().encode());
    }

    fn refused(reason: CertificateError) -> String {
        let error = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(reason),
        );
        failure_reason(&AcceptError::Handshake(error))
    }

    #[test]
    fn certificate_reasons_are_named_without_their_details() {
        let now = UnixTime::now();
        assert_eq!(
            refused(CertificateError::ExpiredContext {
                time: now,
                not_after: now
            }),
            "certificate_expired"
        );
        assert_eq!(refused(CertificateError::Expired), "certificate_expired");
        assert_eq!(
            refused(CertificateError::NotValidYetContext {
                time: now,
                not_before: now
            }),
            "certificate_notvalidyet"
        );
        assert_eq!(
            refused(CertificateError::UnknownIssuer),
            "certificate_unknownissuer"
        );
        assert_eq!(refused(CertificateError::Revoked), "certificate_revoked");
    }
}
