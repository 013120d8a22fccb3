//! One JSON line per request on standard output: who (the verified identity),
//! what, the answer, and how long it took. The lines go through
//! [`json_lines`], buffered, off the request's path.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_req_client_auth::PeerIdentity;
use serde::Serialize;

use crate::common::json_lines;

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

    /// Buffers the line for standard output (see [`json_lines`]).
    pub fn write(&self) {
        json_lines::push_with(|bytes| self.write_json(bytes));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
