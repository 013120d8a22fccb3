//! What an upstream exchange holds while it runs: one of the upstream's
//! connection slots (`upstream.max_connections`), and one of its client's
//! (`limits.max_upstream_per_client`).
//!
//! Without the second, one client could hold every upstream slot: over
//! HTTP/2, a few connections of 128 streams each that never read their
//! responses (or send their request bodies a byte at a time) keep 1,024
//! exchanges open until the timeouts end them, and start again; every
//! other client meanwhile waits and gets 503. nginx does not meet this by
//! default because it buffers whole bodies; this proxy streams them, so it
//! caps what one client address may hold, as nginx's `limit_conn` does
//! where it is configured.

use rustls_req_client_auth::ClientSlot;
use tokio::sync::OwnedSemaphorePermit;

/// The slots an exchange holds until its response body is over (or its
/// tunnel closed); dropping it frees both.
#[derive(Debug)]
pub struct ExchangeSlot {
    _upstream: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

impl ExchangeSlot {
    /// `upstream`'s slot and the client's, if its address is limited.
    pub(crate) fn new(upstream: OwnedSemaphorePermit, client: Option<ClientSlot>) -> Self {
        Self {
            _upstream: upstream,
            _client: client,
        }
    }
}
