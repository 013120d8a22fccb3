//! `rca-proxy`'s counters, served on an optional admin address (`[admin]
//! listen`; see [`crate::common::admin`]).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rustls_req_client_auth::server::CertificateRequestCause;
use rustls_req_client_auth::{AcceptError, AuthPath, PeerIdentity};

use crate::common::admin::{encode_registry, Exposition};

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
            registry: Registry::default(),
        };
        registry.register(
            "handshakes",
            "Completed TLS handshakes by authentication path (flag, normal, none)",
            metrics.handshakes.clone(),
        );
        registry.register(
            "request_client_auth_seen",
            "Handshakes whose ClientHello set request_client_auth",
            metrics.flags_seen.clone(),
        );
        registry.register(
            "certificate_requests",
            "CertificateRequests sent, by reason (flag: acknowledging request_client_auth)",
            metrics.certificate_requests.clone(),
        );
        registry.register(
            "handshake_failures",
            "Failed TLS handshakes by reason (certificate errors of the flag path, alerts, timeouts)",
            metrics.handshake_failures.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests the upstream did not answer (unreachable, timeout, busy)",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "policy_refusals",
            "Requests refused because the path is for verified bots only",
            metrics.policy_refusals.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one handshake outcome.
    pub fn handshake(&self, outcome: Result<&PeerIdentity, &AcceptError>) {
        match outcome {
            Ok(peer) => {
                let path = match peer.path() {
                    AuthPath::Flag => Path::flag,
                    AuthPath::Normal => Path::normal,
                    AuthPath::None => Path::none,
                };
                self.handshakes.get_or_create(&PathLabel { path }).inc();
                if peer
                    .client_flags()
                    .contains(rustls_req_client_auth::Flag::REQUEST_CLIENT_AUTH)
                {
                    self.flags_seen.inc();
                }
                if let Some(reason) = peer.certificate_request() {
                    let reason = match reason {
                        CertificateRequestCause::Flag => "flag",
                        CertificateRequestCause::ServerPolicy => "server_policy",
                    };
                    self.certificate_requests
                        .get_or_create(&ReasonLabel {
                            reason: reason.into(),
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
}

impl Exposition for Metrics {
    fn encode(&self) -> String {
        encode_registry(&self.registry)
    }
}

/// A short, bounded label for why a handshake failed.
fn failure_reason(error: &AcceptError) -> String {
    if matches!(error, AcceptError::TimedOut(_)) {
        return "timeout".into();
    }
    if let Some(flags) = error.flags_error() {
        return format!(
            "tls_flags_{}",
            flags.rule().to_lowercase().replace('-', "_")
        );
    }
    match error.tls_error() {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            // The variant's name, without its details (bounded cardinality).
            let name = format!("{reason:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or("other");
            format!("certificate_{}", name.to_lowercase())
        }
        Some(rustls::Error::NoCertificatesPresented) => "certificate_missing".into(),
        Some(rustls::Error::AlertReceived(_)) => "alert_received".into(),
        Some(_) => "tls_other".into(),
        None => "io".into(),
    }
}
