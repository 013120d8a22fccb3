//! One JSON line per request on standard output: who (the verified identity),
//! what, the answer, and how long it took.
//!
//! Lines are buffered and written out together, as nginx's `access_log ...
//! buffer=` does: every [`FLUSH_INTERVAL`], when [`BUFFERED_BYTES`] have
//! gathered, and at exit ([`flush`]). The writing is done by a thread of its
//! own, started with the first line, so a request never waits for standard
//! output: if it stalls (a full pipe, a log shipper that stopped reading), up
//! to [`MAX_BUFFERED_BYTES`] of lines wait (besides the batch the writer is
//! blocked on), later ones are dropped and counted, and a warning on standard
//! error says how many were lost. At exit, [`flush_within`] waits a bounded
//! time for the last lines.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rustls_req_client_auth::PeerIdentity;
use serde::Serialize;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The client's address.
    #[serde(serialize_with = "serialize_remote")]
    pub remote: SocketAddr,
    /// The request method.
    pub method: &'a str,
    /// The request path (without the query, which may carry secrets).
    pub path: &'a str,
    /// `HTTP/1.1` or `HTTP/2.0` (see [`Entry::version`]).
    pub version: &'static str,
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
    /// The entry for a request answered with `status` after `started`
    /// (`error`: why the proxy answered itself), with `peer`'s identity.
    #[must_use]
    pub fn of(
        peer: &'a PeerIdentity,
        remote: SocketAddr,
        (method, path, version): (&'a str, &'a str, &'static str),
        status: u16,
        started: std::time::Instant,
        error: Option<String>,
    ) -> Self {
        Entry {
            remote,
            method,
            path,
            version,
            status,
            auth: "none",
            subject: None,
            thumbprint: None,
            resumed: false,
            duration_ms: Entry::millis(started.elapsed()),
            error,
        }
        .with_peer(peer)
    }

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

    /// Buffers the line for standard output (see the module's doc).
    pub fn write(&self) {
        // Started with the first line, so the interval's writes run from then.
        let writer = writer();
        let full = LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_with(|bytes| self.write_json(bytes));
        if full {
            // A wake-up is already pending if the channel is full.
            let _ = writer.try_send(());
        }
    }

    /// `version` as logged: as its `Debug` writes it.
    #[must_use]
    pub fn version(version: http::Version) -> &'static str {
        match version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_11 => "HTTP/1.1",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/?",
        }
    }

    /// Appends the entry as one JSON object: the bytes `serde_json` writes for
    /// it (a test compares them), with the keys written as they are and the
    /// strings that need no escaping copied, which took a tenth of a
    /// request's instructions through `serde_json`. Whether it could.
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        let mut ok = true;
        out.extend_from_slice(b"{\"remote\":");
        ok &= push_string(
            out,
            &crate::proxy::judge::identity::socket_addr_text(self.remote),
        );
        out.extend_from_slice(b",\"method\":");
        ok &= push_string(out, self.method);
        out.extend_from_slice(b",\"path\":");
        ok &= push_string(out, self.path);
        out.extend_from_slice(b",\"version\":");
        ok &= push_string(out, self.version);
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b",\"auth\":");
        ok &= push_string(out, self.auth);
        out.extend_from_slice(b",\"subject\":");
        ok &= push_optional(out, self.subject);
        out.extend_from_slice(b",\"x5t#S256\":");
        ok &= push_optional(out, self.thumbprint);
        out.extend_from_slice(if self.resumed {
            b",\"resumed\":true"
        } else {
            b",\"resumed\":false"
        });
        out.extend_from_slice(b",\"duration_ms\":");
        ok &= serde_json::to_writer(&mut *out, &self.duration_ms).is_ok();
        out.extend_from_slice(b",\"error\":");
        ok &= push_optional(out, self.error.as_deref());
        out.push(b'}');
        ok
    }

    /// `duration` in milliseconds, for [`Entry::duration_ms`].
    pub fn millis(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}

/// Appends `text` as a JSON string: as it is if nothing in it is escaped
/// (no control character, `"` or `\\`: what `serde_json` escapes), else
/// through `serde_json`.
fn push_string(out: &mut Vec<u8>, text: &str) -> bool {
    if text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        true
    } else {
        serde_json::to_writer(&mut *out, text).is_ok()
    }
}

fn push_optional(out: &mut Vec<u8>, text: Option<&str>) -> bool {
    if let Some(text) = text {
        push_string(out, text)
    } else {
        out.extend_from_slice(b"null");
        true
    }
}

fn serialize_remote<S: serde::Serializer>(
    remote: &SocketAddr,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::proxy::judge::identity::socket_addr_text(*remote))
}

/// Bytes of lines that wake the writer before [`FLUSH_INTERVAL`] is up.
pub const BUFFERED_BYTES: usize = 64 * 1024;

/// Bytes of lines that may wait for a stalled standard output; lines beyond
/// are dropped (about two seconds of lines at 30,000 requests a second).
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// How often the writer writes out what is buffered.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines not yet written, and how many were dropped since the last write.
#[derive(Debug)]
struct Lines {
    bytes: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl Lines {
    const fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    /// Adds the line `write` appends (and a newline), unless `write` fails
    /// or the line would pass the limit (then it is counted as dropped);
    /// whether [`BUFFERED_BYTES`] have gathered.
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let start = self.bytes.len();
        let written = write(&mut self.bytes);
        self.bytes.push(b'\n');
        if !written || self.bytes.len() > self.limit {
            self.bytes.truncate(start);
            self.dropped += 1;
        }
        self.bytes.len() >= BUFFERED_BYTES
    }

    /// The lines to write and the count of those dropped, leaving none.
    fn take(&mut self) -> (Vec<u8>, u64) {
        (
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.dropped),
        )
    }
}

static LINES: Mutex<Lines> = Mutex::new(Lines::new(MAX_BUFFERED_BYTES));

/// Held while a batch is written (taken before [`LINES`], never after), so
/// batches reach standard output in the order their lines were logged.
static TURN: Mutex<()> = Mutex::new(());

/// Wakes the writer thread, starting it the first time.
fn writer() -> &'static SyncSender<()> {
    static WRITER: OnceLock<SyncSender<()>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (wake, woken) = mpsc::sync_channel(1);
        let started = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                // Woken early by a full buffer, or at the interval; never
                // disconnected, since the sender is static.
                while let Ok(()) | Err(RecvTimeoutError::Timeout) =
                    woken.recv_timeout(FLUSH_INTERVAL)
                {
                    flush();
                }
            });
        if let Err(error) = started {
            // Lines then wait for `flush` at exit, or are dropped at the limit.
            log::error!("access log: cannot start its writer thread: {error}");
        }
        wake
    })
}

/// Writes out every line buffered so far, waiting up to `limit` for standard
/// output to take them (a stalled one must not keep a stopping process
/// alive); whether it did.
pub fn flush_within(limit: Duration) -> bool {
    let (done, wait) = mpsc::sync_channel(1);
    let started = std::thread::Builder::new()
        .name("access-log-exit".into())
        .spawn(move || {
            flush();
            let _ = done.send(());
        });
    started.is_ok() && wait.recv_timeout(limit).is_ok()
}

/// Writes out every line buffered so far, on the calling thread (the writer
/// thread's work; see [`flush_within`] for the last lines at exit).
pub fn flush() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let (lines, dropped) = LINES.lock().unwrap_or_else(PoisonError::into_inner).take();
    if dropped > 0 {
        log::warn!(
            "access log: {dropped} lines dropped: standard output was not taking them ({MAX_BUFFERED_BYTES} bytes were waiting)"
        );
    }
    if !lines.is_empty() {
        // Like `println!`, a failing standard output loses the lines.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&lines).and_then(|()| stdout.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &'static [u8]) -> impl FnOnce(&mut Vec<u8>) -> bool {
        move |bytes| {
            bytes.extend_from_slice(text);
            true
        }
    }

    #[test]
    fn versions_are_logged_as_debug_writes_them() {
        for version in [
            http::Version::HTTP_09,
            http::Version::HTTP_10,
            http::Version::HTTP_11,
            http::Version::HTTP_2,
            http::Version::HTTP_3,
        ] {
            assert_eq!(Entry::version(version), format!("{version:?}"));
        }
    }

    /// The line written by hand is the one `serde_json` writes, escapes and
    /// all.
    #[test]
    fn lines_are_what_serde_json_writes() {
        let remotes: [std::net::SocketAddr; 2] = [
            "192.0.2.1:4431".parse().expect("address"),
            "[2001:db8::1]:443".parse().expect("address"),
        ];
        let texts = [
            "",
            "/",
            "/a b/ü/✓",
            "quote\" and \\ backslash",
            "control \u{1}\t\n\u{7f}",
            "CN=bot, O=\"Bots, Inc.\"",
        ];
        for (i, text) in texts.iter().enumerate() {
            for remote in remotes {
                let entry = Entry {
                    remote,
                    method: if i % 2 == 0 { "GET" } else { text },
                    path: text,
                    version: "HTTP/1.1",
                    status: [200, 502, 101, 0, 65535, 403][i],
                    auth: "flag",
                    subject: (i % 2 == 1).then_some(*text),
                    thumbprint: (i % 3 == 0).then_some("x5t-abc_DEF"),
                    resumed: i % 2 == 0,
                    duration_ms: [0.0, 1.25, 1e-7, 123_456.789, 0.1, f64::NAN][i],
                    error: (i % 2 == 0).then(|| (*text).to_owned()),
                };
                let mut line = Vec::new();
                assert!(entry.write_json(&mut line));
                let expected = serde_json::to_vec(&entry).expect("serde_json");
                assert_eq!(
                    String::from_utf8_lossy(&line),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
    }

    #[test]
    fn lines_past_the_limit_are_dropped_and_counted() {
        let mut lines = Lines::new(10);
        assert!(!lines.push_with(line(b"1234")));
        assert!(!lines.push_with(line(b"5678")));
        assert!(!lines.push_with(line(b"9")));
        // A line that failed to serialize leaves nothing behind.
        assert!(!lines.push_with(|bytes| {
            bytes.push(b'{');
            false
        }));
        assert_eq!(lines.take(), (b"1234\n5678\n".to_vec(), 2));
        assert_eq!(lines.take(), (Vec::new(), 0));
    }

    #[test]
    fn a_full_buffer_wakes_the_writer() {
        let mut lines = Lines::new(MAX_BUFFERED_BYTES);
        let half = |bytes: &mut Vec<u8>| {
            bytes.resize(bytes.len() + BUFFERED_BYTES / 2, b'x');
            true
        };
        assert!(!lines.push_with(half));
        assert!(lines.push_with(half));
    }
}
