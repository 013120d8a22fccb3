//! One JSON line per request on standard output: who (the verified identity),
//! what, the answer, and how long it took.
//!
//! The lines go through a thread of their own, which writes whatever has
//! queued up in one system call: a request costs no write of its own under
//! load, and a slow reader of standard output slows the log, not the
//! requests, until [`QUEUED_LINES`] lines wait (then requests wait for the
//! log, as they would for a blocking write). [`flush`] before exiting.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::OnceLock;
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

    /// Queues the line for standard output (see [`flush`]).
    pub fn write(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            write_line(line);
        }
    }

    /// `duration` in milliseconds, for [`Entry::duration_ms`].
    pub fn millis(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}

/// Lines that may wait for the writer thread.
pub const QUEUED_LINES: usize = 8192;

enum Message {
    Line(String),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

/// The writer thread's queue; `None` if the thread could not start (then
/// lines are written directly).
fn queue() -> Option<&'static SyncSender<Message>> {
    static QUEUE: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::sync_channel(QUEUED_LINES);
            std::thread::Builder::new()
                .name("access-log".into())
                .spawn(move || write_batches(&receiver))
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

fn write_line(line: String) {
    let unsent = match queue() {
        Some(queue) => match queue.send(Message::Line(line)) {
            // The writer thread is gone (it never is while the process runs).
            Err(mpsc::SendError(Message::Line(line))) => line,
            Ok(()) | Err(_) => return,
        },
        None => line,
    };
    println!("{unsent}");
}

/// Writes what has queued up, batch by batch, until every sender is gone.
fn write_batches(queue: &Receiver<Message>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut flushed = Vec::new();
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    batch.extend_from_slice(line.as_bytes());
                    batch.push(b'\n');
                }
                Message::Flush(done) => flushed.push(done),
            }
            next = if batch.len() < 64 * 1024 {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        // Like `println!`, a failing standard output loses the lines.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&batch).and_then(|()| stdout.flush());
        drop(stdout);
        batch.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Waits (up to a second) until every line queued so far is written.
pub fn flush() {
    let Some(queue) = queue() else {
        return;
    };
    let (done, written) = mpsc::sync_channel(1);
    if queue.send(Message::Flush(done)).is_ok() {
        let _ = written.recv_timeout(Duration::from_secs(1));
    }
}
