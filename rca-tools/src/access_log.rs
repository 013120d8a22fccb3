//! One JSON line per request on standard output: who (the verified identity),
//! what, the answer, and how long it took.
//!
//! Lines are buffered and written out together, as nginx's `access_log ...
//! buffer=` does: every [`FLUSH_INTERVAL`] ([`flush_periodically`]), when
//! [`BUFFERED_BYTES`] have gathered, and at exit ([`flush`]). Under load a
//! request then costs no system call of its own: no write per line, and no
//! wake-up of a writer thread per line.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
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

    /// Buffers the line for standard output (see [`flush`]).
    pub fn write(&self) {
        let mut buffer = BUFFER.lock().unwrap_or_else(PoisonError::into_inner);
        let start = buffer.len();
        if serde_json::to_writer(&mut *buffer, self).is_err() {
            buffer.truncate(start);
            return;
        }
        buffer.push(b'\n');
        let full = buffer.len() >= BUFFERED_BYTES;
        drop(buffer);
        if full {
            flush();
        }
    }

    /// `duration` in milliseconds, for [`Entry::duration_ms`].
    pub fn millis(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}

/// Bytes of lines that may wait before the request that adds more writes
/// them out.
pub const BUFFERED_BYTES: usize = 64 * 1024;

/// How often [`flush_periodically`] writes out what is buffered.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The lines not yet written.
static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Held while a batch is written (taken before [`BUFFER`], never after).
static WRITER: Mutex<()> = Mutex::new(());

/// Writes out every line buffered so far.
pub fn flush() {
    // One writer at a time, taking the buffer under its turn: batches reach
    // standard output in the order their lines were logged.
    let _turn = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let lines = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(PoisonError::into_inner));
    if !lines.is_empty() {
        // Like `println!`, a failing standard output loses the lines.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&lines).and_then(|()| stdout.flush());
    }
}

/// Flushes every [`FLUSH_INTERVAL`], for as long as the runtime runs: spawn it
/// once next to the server.
pub async fn flush_periodically() {
    let mut interval = tokio::time::interval(FLUSH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        flush();
    }
}
