//! `rca-connect`'s counters, served with `--metrics-listen` (see
//! [`crate::common::admin`]): what servers did with the flag, refusals of
//! the bot identity, and requests by result.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::common::admin::{encode_registry, Exposition};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlagLabel {
    flag: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Every counter `rca-connect` keeps.
#[derive(Debug)]
pub struct ConnectMetrics {
    registry: Registry,
    connections: Family<FlagLabel, Counter>,
    connection_failures: Counter,
    refusals: Counter,
    requests: Family<ResultLabel, Counter>,
}

impl Default for ConnectMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectMetrics {
    /// Fresh counters, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rca_connect");
        let metrics = Self {
            registry: Registry::default(),
            connections: Family::default(),
            connection_failures: Counter::default(),
            refusals: Counter::default(),
            requests: Family::default(),
        };
        registry.register(
            "upstream_connections",
            "Upstream connections made, by what the server did with the flag (acknowledged, not-acknowledged, no-certificate-request, resumed, not-sent)",
            metrics.connections.clone(),
        );
        registry.register(
            "upstream_connection_failures",
            "Upstream connections that failed before the first answer (unreachable, not verified, refused)",
            metrics.connection_failures.clone(),
        );
        registry.register(
            "identity_refusals",
            "Upstream connections on which the server refused the bot certificate",
            metrics.refusals.clone(),
        );
        registry.register(
            "requests",
            "Requests sent on, by result (answered, failed, timeout)",
            metrics.requests.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one upstream connection, once its outcome is known: `flag`,
    /// what the server did with the flag (`None`: no connection came
    /// about), whether it `failed` before the first answer, and whether that
    /// was the server refusing the bot certificate.
    pub fn connection(&self, flag: Option<&'static str>, failed: bool, refused: bool) {
        if let Some(flag) = flag {
            self.connections.get_or_create(&FlagLabel { flag }).inc();
        }
        if failed {
            self.connection_failures.inc();
        }
        if refused {
            self.refusals.inc();
        }
    }

    /// Counts one request by `result`.
    pub fn request(&self, result: &'static str) {
        self.requests.get_or_create(&ResultLabel { result }).inc();
    }
}

impl Exposition for ConnectMetrics {
    fn encode(&self) -> String {
        encode_registry(&self.registry)
    }
}
