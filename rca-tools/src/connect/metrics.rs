//! `rca-connect`'s counters, served with `--metrics-listen` (see
//! [`crate::common::admin`]): what servers did with the flag, refusals of
//! the bot identity, clients refused for their proxy credentials, and
//! requests by result.

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
    proxy_auth_refusals: Counter,
    requests: Family<ResultLabel, Counter>,
    /// The three `requests` counters, looked up once: every request counts.
    answered: Counter,
    failed: Counter,
    timed_out: Counter,
}

/// How a request sent on ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestResult {
    /// The server answered.
    Answered,
    /// No answer: the connection failed, or the server refused the bot.
    Failed,
    /// No response headers in time.
    TimedOut,
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
            proxy_auth_refusals: Counter::default(),
            requests: Family::default(),
            answered: Counter::default(),
            failed: Counter::default(),
            timed_out: Counter::default(),
        };
        registry.register(
            "upstream_connections",
            "Upstream connections made, by what the server did with the flag (acknowledged, not-acknowledged, no-certificate-request, resumed, tls12, not-sent)",
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
            "proxy_auth_refusals",
            "Requests on the proxy port refused with 407: no credentials, or not those of --proxy-auth-file",
            metrics.proxy_auth_refusals.clone(),
        );
        registry.register(
            "requests",
            "Requests sent on, by result (answered, failed, timeout)",
            metrics.requests.clone(),
        );
        let result = |result| {
            metrics
                .requests
                .get_or_create(&ResultLabel { result })
                .clone()
        };
        Self {
            answered: result("answered"),
            failed: result("failed"),
            timed_out: result("timeout"),
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

    /// Counts one request refused for its proxy credentials.
    pub fn proxy_auth_refusal(&self) {
        self.proxy_auth_refusals.inc();
    }

    /// Counts one request by how it ended.
    pub fn request(&self, result: RequestResult) {
        match result {
            RequestResult::Answered => self.answered.inc(),
            RequestResult::Failed => self.failed.inc(),
            RequestResult::TimedOut => self.timed_out.inc(),
        };
    }
}

impl Exposition for ConnectMetrics {
    fn encode(&self) -> String {
        encode_registry(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use crate::common::admin::Exposition as _;

    #[test]
    fn the_classic_text_of_every_metric_is_plain() {
        crate::common::admin::tests::assert_classic_text_is_plain(
            &super::ConnectMetrics::new().encode(),
        );
    }
}
