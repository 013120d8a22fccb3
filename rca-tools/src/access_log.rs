//! One JSON line per request on standard output: who (the verified identity),
//! what, the answer, and how long it took.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_req_client_auth::PeerIdentity;
use serde::Serialize;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The client's address.
    pub remote: SocketAddr,
    /// The request method.
    pub method: &'a str,
    /// The request path (without the query, which may carry secrets).
    pub path: &'a str,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The status sent to the client.
    pub status: u16,
    /// The authentication path: `flag`, `normal` or `none`.
    pub auth: &'static str,
    /// The leaf's subject, for authenticated clients.
    pub subject: Option<&'a str>,
    /// The leaf's `x5t#S256` thumbprint, for authenticated clients.
    #[serde(rename = "x5t#S256")]
    pub thumbprint: Option<&'a str>,
    /// Whether the TLS session was resumed from a ticket.
    pub resumed: bool,
    /// Milliseconds from the request to the response headers.
    pub duration_ms: f64,
    /// Why the proxy answered itself (403 policy, 502/504 upstream), if it did.
    pub error: Option<String>,
}

impl<'a> Entry<'a> {
    /// The identity fields from `peer`.
    #[must_use]
    pub fn with_peer(mut self, peer: &'a PeerIdentity) -> Self {
        self.auth = peer.path().as_str();
        self.subject = peer
            .leaf()
            .map(rustls_req_client_auth::LeafCertificate::subject);
        self.thumbprint = peer
            .leaf()
            .map(rustls_req_client_auth::LeafCertificate::thumbprint_sha256);
        self.resumed = peer.restored_from_ticket();
        self
    }

    /// Prints the line.
    pub fn write(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            println!("{line}");
        }
    }

    /// `duration` in milliseconds, for [`Entry::duration_ms`].
    pub fn millis(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}
