//! Why a request found no answer: the connection was not made (unreachable,
//! not verified, the handshake failed), or the server refused the bot
//! certificate after the handshake.

use std::io;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use rustls_req_client_auth::{describe_tls_error, find_tls_error};

use crate::connect::outcome::ConnectionOutcome;

/// Why no connection came about; in the client's error chain.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// Not a host and port the connector can use.
    #[error("{0}")]
    Target(String),
    /// DNS or TCP.
    #[error("cannot reach {host}:{port}: {error}")]
    Unreachable {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        error: String,
    },
    /// The server's certificate did not verify.
    #[error("the certificate of {host} did not verify: {error}")]
    Verification {
        /// The host.
        host: String,
        /// What rustls said.
        error: String,
    },
    /// The handshake failed otherwise.
    #[error("the TLS handshake with {host} failed: {error}")]
    Handshake {
        /// The host.
        host: String,
        /// What rustls said.
        error: String,
    },
    /// No place for another connection to a server within the connect
    /// timeout: this many are open (see `--max-upstream-connections`).
    #[error(
        "rca-connect has {0} connections to servers open already (--max-upstream-connections); try again"
    )]
    Busy(usize),
}

/// The server refused the connection after the handshake: in TLS 1.3 a
/// server verifies the client's certificate after the client is done, so a
/// refusal is the alert (or the close) that ends the first read.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    /// What the connection was.
    pub outcome: Box<ConnectionOutcome>,
    /// The alert, or the early close.
    pub reason: String,
}

/// The latest refusal per `host:port`, for a request whose error lost the
/// [`Refused`] on the way (h2 keeps only an I/O error's kind and text).
#[derive(Debug, Default)]
pub(crate) struct Refusals(
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Arc<Refused>)>>,
);

impl Refusals {
    /// How long a refusal explains a failed request to the same server.
    const FRESH: Duration = Duration::from_secs(10);
    /// Servers remembered; past this the stale ones are forgotten, and
    /// then no more are kept until some are.
    const CAPACITY: usize = 1024;

    pub(crate) fn record(&self, refused: Arc<Refused>) {
        let key = format!("{}:{}", refused.outcome.host, refused.outcome.port);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < Self::FRESH);
            if map.len() >= Self::CAPACITY && !map.contains_key(&key) {
                // As many servers refused within the last seconds: this one
                // is still reported on its own connection, just not kept.
                return;
            }
        }
        map.insert(key, (std::time::Instant::now(), refused));
    }

    pub(crate) fn recent(&self, host: &str, port: u16) -> Option<Arc<Refused>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&format!("{host}:{port}"))
            .filter(|(at, _)| at.elapsed() < Self::FRESH)
            .map(|(_, refused)| Arc::clone(refused))
    }
}

/// A [`Refused`] as an I/O error's payload.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.reason)]
pub struct RefusedError(pub Arc<Refused>);

pub(crate) fn handshake_failure(host: &str, error: &io::Error) -> ConnectFailure {
    match find_tls_error(error) {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => ConnectFailure::Verification {
            host: host.to_owned(),
            error: describe_tls_error(tls),
        },
        Some(tls) => ConnectFailure::Handshake {
            host: host.to_owned(),
            error: describe_tls_error(tls),
        },
        None => ConnectFailure::Handshake {
            host: host.to_owned(),
            error: error.to_string(),
        },
    }
}
