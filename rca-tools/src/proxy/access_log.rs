//! One JSON line per request on standard output: when (RFC 3339, UTC,
//! milliseconds), who (the address and the verified identity), what (method,
//! host, path without the query, user agent), over what (TLS version, ALPN,
//! SNI), the answer, the body bytes each way, and how long it took, to the
//! response headers and at the upstream. A [`Record`] gathers them while the
//! request is served; the line is written when the response is over (or the
//! client left), through [`json_lines`], buffered, off the request's path.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use rustls_req_client_auth::{PeerIdentity, RefusedRequest};
use serde::Serialize;

use crate::common::client_body::ClientBodyFailure;
use crate::common::errors::error_chain;
use crate::common::json_lines;
use crate::common::read_timeout::ReadTimedOut;
use crate::common::timestamp::{push_rfc3339_millis, rfc3339_millis};
use crate::proxy::metrics::Metrics;

/// Text a client or a bot's CA chose, which may be absent: the fields of
/// this type are written with the characters a log viewer acts on escaped
/// (see [`printable`]). (A named type also lets serde's `serialize_with`
/// take the field by reference without clippy's `ref_option_ref`.)
///
/// [`printable`]: crate::common::printable::printable
pub type ClientText<'a> = Option<&'a str>;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When the request arrived.
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    /// The client's address.
    #[serde(serialize_with = "serialize_remote")]
    pub remote: SocketAddr,
    /// The request method.
    pub method: &'a str,
    /// The host the client addressed (`:authority` or `Host`), as checked.
    pub host: Option<&'a str>,
    /// The request path (without the query, which may carry secrets).
    pub path: &'a str,
    /// `HTTP/1.1` or `HTTP/2.0` (see [`Entry::version`]).
    pub version: &'static str,
    /// The status sent to the client.
    pub status: u16,
    /// The authentication path: `flag`, `normal` or `none`.
    pub auth: &'static str,
    /// The leaf's subject, for authenticated clients.
    #[serde(serialize_with = "serialize_printable")]
    pub subject: ClientText<'a>,
    /// The leaf's `x5t#S256` thumbprint, for authenticated clients.
    #[serde(rename = "x5t#S256")]
    pub thumbprint: Option<&'a str>,
    /// Whether the TLS session was resumed from a ticket.
    pub resumed: bool,
    /// `TLSv1.3` or `TLSv1.2`.
    pub tls_version: Option<&'static str>,
    /// The ALPN protocol: `h2` or `http/1.1`.
    pub alpn: Option<&'a str>,
    /// The server name the client asked for in its ClientHello.
    pub sni: Option<&'a str>,
    /// The `User-Agent` header.
    #[serde(serialize_with = "serialize_printable")]
    pub user_agent: ClientText<'a>,
    /// Bytes of request body read from the client.
    pub request_body_bytes: u64,
    /// Bytes of response body sent to the client.
    pub response_body_bytes: u64,
    /// Milliseconds from the request to the response headers.
    pub duration_ms: f64,
    /// Milliseconds from sending the request upstream to its response
    /// headers, or to the failure (none when it was not sent: a policy
    /// refusal, a bad request).
    pub upstream_ms: Option<f64>,
    /// Why the proxy answered itself (403 policy, 502/504 upstream), if it did.
    pub error: Option<&'a str>,
}

impl Entry<'_> {
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
        let mut fields = JsonFields::new(out);
        fields.time("time", self.time);
        fields.text(
            "remote",
            &crate::proxy::judge::identity::socket_addr_text(self.remote),
        );
        fields.text("method", self.method);
        fields.optional("host", self.host);
        fields.text("path", self.path);
        fields.text("version", self.version);
        fields.integer("status", u64::from(self.status));
        fields.text("auth", self.auth);
        // A CA's text, but what a bot asked it to sign: escaped alike.
        let subject = self.subject.map(crate::common::printable::printable);
        fields.optional("subject", subject.as_deref());
        fields.optional("x5t#S256", self.thumbprint);
        fields.boolean("resumed", self.resumed);
        fields.optional("tls_version", self.tls_version);
        fields.optional("alpn", self.alpn);
        fields.optional("sni", self.sni);
        // The client's own text: escaped where a log viewer would act on it.
        let user_agent = self.user_agent.map(crate::common::printable::printable);
        fields.optional("user_agent", user_agent.as_deref());
        fields.integer("request_body_bytes", self.request_body_bytes);
        fields.integer("response_body_bytes", self.response_body_bytes);
        fields.serialized("duration_ms", &self.duration_ms);
        fields.serialized("upstream_ms", &self.upstream_ms);
        fields.optional("error", self.error);
        fields.finish()
    }

    /// `duration` in milliseconds, for [`Entry::duration_ms`].
    pub fn millis(duration: Duration) -> f64 {
        // In microseconds, rounded, so the line says 0.619, not
        // 0.6189089999999999 (the float of nanoseconds divided).
        match u32::try_from(duration.as_nanos().saturating_add(500) / 1000) {
            Ok(micros) => f64::from(micros) / 1000.0,
            // Over 71 minutes (a u32 of microseconds): whole milliseconds do.
            Err(_) => (duration.as_secs_f64() * 1000.0).round(),
        }
    }
}

/// A request being served: what its line will say, gathered on the way.
#[derive(Debug)]
pub struct Record {
    /// The connection's client.
    pub peer: PeerIdentity,
    /// The client's address.
    pub remote: SocketAddr,
    /// The request method.
    pub method: http::Method,
    /// The request path, without the query.
    pub path: String,
    /// See [`Entry::version`].
    pub version: &'static str,
    /// See [`Entry::host`].
    pub host: Option<String>,
    /// See [`Entry::user_agent`].
    pub user_agent: Option<String>,
    /// When the request arrived, by the wall clock (logged) and the
    /// monotonic one (for durations).
    pub arrived: (SystemTime, Instant),
    /// The status sent (or, for 499, that none was).
    pub status: u16,
    /// From arrival to the response headers.
    pub to_headers: Duration,
    /// Whether `to_headers` was measured (not for a head refused before the
    /// proxy saw it, which arrived at an unknown time): only then is it in
    /// the latency histogram.
    pub timed: bool,
    /// From sending upstream to the upstream's response headers.
    pub upstream: Option<Duration>,
    /// The request body's bytes, counted as they are read (see
    /// [`Counted`]); none for a request without a body.
    pub request_body: Option<Arc<AtomicU64>>,
    /// See [`Entry::response_body_bytes`].
    pub response_body_bytes: u64,
    /// Why the proxy answered itself, or why the response was cut short.
    pub error: Option<String>,
    /// Where the request body records its failure: a response cut short
    /// because of it is the client's doing, not the upstream's.
    pub client_body_failure: Option<ClientBodyFailure>,
    /// Whether the line is written (the access log is on).
    pub log: bool,
    /// Where the request is counted, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
}

impl Record {
    /// A request that arrived now, answered with nothing yet (its path and
    /// host are filled in once they are known).
    #[must_use]
    pub fn new(
        peer: &PeerIdentity,
        remote: SocketAddr,
        method: http::Method,
        version: &'static str,
        user_agent: Option<String>,
    ) -> Self {
        Self {
            peer: peer.clone(),
            remote,
            method,
            path: String::new(),
            version,
            host: None,
            user_agent,
            arrived: (SystemTime::now(), Instant::now()),
            status: 0,
            to_headers: Duration::ZERO,
            timed: true,
            upstream: None,
            request_body: None,
            response_body_bytes: 0,
            error: None,
            client_body_failure: None,
            log: true,
            metrics: None,
        }
    }

    /// A request the HTTP layer answered by itself, before the proxy saw
    /// it (an unreadable or oversized head): its method and path were never
    /// read, so both are logged as `-` (as nginx logs a value it lacks),
    /// with the status sent and hyper's reason as the error. Its `time` is
    /// when the answer had gone out, its duration 0 and not in the latency
    /// histogram: when the head began to arrive is not known.
    #[must_use]
    pub fn of_refused(
        refused: &RefusedRequest<'_>,
        log: bool,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let mut record = Self {
            path: UNREAD.to_owned(),
            timed: false,
            log,
            metrics,
            ..Self::new(
                refused.peer,
                refused.remote,
                http::Method::from_bytes(UNREAD.as_bytes()).unwrap_or_default(),
                "HTTP/1.1",
                None,
            )
        };
        record.answered(
            refused.status.as_u16(),
            Some(format!("the request head was refused: {}", refused.reason)),
        );
        record
    }

    /// The `User-Agent` of a request with `headers`, as logged.
    #[must_use]
    pub fn user_agent_of(headers: &http::HeaderMap) -> Option<String> {
        headers
            .get(http::header::USER_AGENT)
            .map(|agent| String::from_utf8_lossy(agent.as_bytes()).into_owned())
    }

    /// The response headers are ready: `status`, and `error` if the proxy
    /// answered itself.
    pub fn answered(&mut self, status: u16, error: Option<String>) {
        self.status = status;
        self.to_headers = self.arrived.1.elapsed();
        self.error = error;
    }

    /// The client's connection failed with `error` (it read nothing for the
    /// send timeout, or went away) before the whole response went out: the
    /// line says so, where it said nothing and looked served (found by an
    /// outside trial).
    pub fn cut_by_client(&mut self, error: &std::io::Error) {
        if self.error.is_none() {
            self.error = Some(if at_shutdown() {
                cut_short_without_a_reason()
            } else {
                format!("the response was cut short: {error}")
            });
        }
    }

    /// The upstream's response body failed with `error` after the headers
    /// went out: the client got what came until then. The line says why;
    /// a read timeout is counted as the upstream error `read_timeout`.
    pub fn cut_short(&mut self, error: &(dyn std::error::Error + 'static)) {
        let body_failure = self
            .client_body_failure
            .as_ref()
            .and_then(ClientBodyFailure::get);
        if let Some(body) = body_failure {
            // The upstream reset the exchange because the client's body
            // failed (so over h2c).
            self.error = Some(format!("response cut short: {body}"));
            return;
        }
        if ReadTimedOut::in_chain(error).is_some() {
            if let Some(metrics) = &self.metrics {
                metrics.upstream_error("read_timeout");
            }
        }
        self.error = Some(format!(
            "response cut short by the upstream: {}",
            error_chain(error)
        ));
    }

    /// The line.
    #[must_use]
    pub fn entry(&self) -> Entry<'_> {
        let leaf = self.peer.leaf();
        Entry {
            time: self.arrived.0,
            remote: self.remote,
            method: self.method.as_str(),
            host: self.host.as_deref(),
            path: &self.path,
            version: self.version,
            status: self.status,
            auth: self.peer.path().as_str(),
            subject: leaf.map(rustls_req_client_auth::LeafCertificate::subject),
            thumbprint: leaf.map(rustls_req_client_auth::LeafCertificate::thumbprint_sha256),
            resumed: self.peer.resumed(),
            tls_version: tls_version(self.peer.version()),
            alpn: self
                .peer
                .alpn()
                .and_then(|alpn| std::str::from_utf8(alpn).ok()),
            sni: self.peer.server_name(),
            user_agent: self.user_agent.as_deref(),
            request_body_bytes: self
                .request_body
                .as_ref()
                .map_or(0, |count| count.load(Ordering::Relaxed)),
            response_body_bytes: self.response_body_bytes,
            duration_ms: Entry::millis(self.to_headers),
            upstream_ms: self.upstream.map(Entry::millis),
            error: self.error.as_deref(),
        }
    }

    /// The request is over: counts it in the metrics, if any, and
    /// buffers its line for standard output, if the log is on.
    pub fn finish(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.request(
                &self.method,
                self.status,
                self.peer.path(),
                self.timed.then_some(self.to_headers),
                self.upstream,
            );
        }
        if self.log {
            self.entry().write();
        }
    }
}

/// The method and path logged for a request whose head was not read.
const UNREAD: &str = "-";

/// The status logged for a request whose client left before the response
/// (nginx's 499, "client closed request"; never sent).
pub const CLIENT_LEFT: u16 = 499;

/// Whether shutdown's grace period has run out: the connections still open
/// are being closed, and a request cut off now is the proxy's doing.
static GRACE_RAN_OUT: AtomicBool = AtomicBool::new(false);

/// Marks shutdown's grace period as run out, before the connections still
/// open are closed (`Serve::on_grace_ran_out`): the requests cut off then
/// are logged with `error` saying so, not as clients that left. Their
/// status stays 499, as nginx logs a request it could not answer at all.
pub fn grace_ran_out() {
    GRACE_RAN_OUT.store(true, Ordering::Relaxed);
}

/// Whether shutdown's grace has run out (see [`grace_ran_out`]).
fn at_shutdown() -> bool {
    GRACE_RAN_OUT.load(Ordering::Relaxed)
}

/// Why a response whose body was dropped before its end, with no error of
/// its own, was cut short: shutdown's grace ran out, or else the client's
/// connection ended first (it left, or read nothing for the send timeout).
fn cut_short_without_a_reason() -> String {
    if at_shutdown() {
        "the response was cut short: shutdown's grace ran out (limits.shutdown_grace_secs)"
    } else {
        "the response was cut short: the client's connection ended first (it left, or read \
         nothing for the send timeout)"
    }
    .to_owned()
}

/// A request being served, its record not yet finished. Dropped before
/// that (the client left, or shutdown's grace ran out and the connection
/// was closed), it finishes the record as it stands: with status 499 if
/// no answer was given, else as cut short, and `error` saying which.
#[derive(Debug)]
pub struct Unfinished(pub Option<Box<Record>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(record) = &mut self.0 {
            let at_shutdown = at_shutdown();
            if record.status == 0 {
                let why = if at_shutdown {
                    "shutdown's grace ran out before the response \
                     (limits.shutdown_grace_secs): the proxy closed the connection"
                } else {
                    "the connection ended before the response (the client left)"
                };
                record.answered(CLIENT_LEFT, Some(why.to_owned()));
            } else if record.error.is_none() {
                record.error = Some(cut_short_without_a_reason());
            }
            record.finish();
        }
    }
}

fn tls_version(version: Option<rustls::ProtocolVersion>) -> Option<&'static str> {
    match version? {
        rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        _ => Some("other"),
    }
}

/// Where a [`Counted`] body's data bytes go.
pub trait Tally: Send + Unpin + 'static {
    /// `bytes` more went through.
    fn add(&mut self, bytes: u64);
    /// The body is dropped: over, or cut short.
    fn end(&mut self) {}
    /// The body failed with `error`.
    fn failed(&mut self, _error: &(dyn std::error::Error + 'static)) {}
    /// The body is dropped before its end was read: the client's
    /// connection went first (it left, or read nothing for the send
    /// timeout), or nothing is sent of it (a HEAD).
    fn dropped_early(&mut self) {}
}

/// A request body's bytes, counted as the upstream side reads it into a
/// count its [`Record`] reads when it finishes.
impl Tally for Arc<AtomicU64> {
    fn add(&mut self, bytes: u64) {
        self.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A response body's bytes, counted into its request's record, which is
/// finished (the log line, the metrics) when the body is dropped: when the
/// response is over, or cut short (the client left, the upstream broke
/// off), with the bytes sent until then.
impl Tally for Box<Record> {
    fn add(&mut self, bytes: u64) {
        // A HEAD's answer has no body on the wire (the service sends its
        // own answers' text for no HEAD).
        if self.method != http::Method::HEAD {
            self.response_body_bytes = self.response_body_bytes.saturating_add(bytes);
        }
    }

    fn failed(&mut self, error: &(dyn std::error::Error + 'static)) {
        self.cut_short(error);
    }

    fn dropped_early(&mut self) {
        // A HEAD's body, and a 204's or 304's, are never sent.
        if self.error.is_none()
            && self.method != http::Method::HEAD
            && !matches!(self.status, 204 | 304)
        {
            self.error = Some(cut_short_without_a_reason());
        }
    }

    fn end(&mut self) {
        self.finish();
    }
}

/// A body whose data bytes are counted into a [`Tally`].
pub struct Counted<T: Tally> {
    inner: Body,
    tally: T,
    /// Whether its end (or a failure) was read.
    over: bool,
}

impl Counted<Arc<AtomicU64>> {
    /// A request `body`, counted into `record` (if there is one to finish).
    pub fn request(body: Body, record: Option<&mut Record>) -> Body {
        let Some(record) = record else {
            return body;
        };
        if hyper::body::Body::is_end_stream(&body) {
            return body;
        }
        let count = Arc::new(AtomicU64::new(0));
        record.request_body = Some(Arc::clone(&count));
        Body::new(Self {
            inner: body,
            tally: count,
            over: false,
        })
    }
}

impl Counted<Box<Record>> {
    /// A response `body`, finishing `record` once it is over.
    pub fn response(body: Body, record: Box<Record>) -> Body {
        Body::new(Self {
            inner: body,
            tally: record,
            over: false,
        })
    }
}

impl<T: Tally> Drop for Counted<T> {
    fn drop(&mut self) {
        if !self.over && !hyper::body::Body::is_end_stream(&self.inner) {
            self.tally.dropped_early();
        }
        self.tally.end();
    }
}

impl<T: Tally> hyper::body::Body for Counted<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    self.tally.add(bytes);
                }
            }
            // axum's error only wraps the body's own, which says it all.
            Poll::Ready(Some(Err(error))) => {
                let error = std::error::Error::source(error).unwrap_or(error);
                self.tally.failed(error);
                self.over = true;
            }
            Poll::Ready(None) => self.over = true,
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Appends `text` as a JSON string: as it is if nothing in it is escaped
/// (no control character, `"` or `\\`: what `serde_json` escapes), else
/// through `serde_json`.
/// One JSON object being appended, field by field, in the order given;
/// keys are written as they are (they need no escaping). Remembers whether
/// every value could be written.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
    ok: bool,
    first: bool,
}

impl<'a> JsonFields<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            ok: true,
            first: true,
        }
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.ok &= push_string(self.out, value);
    }

    fn optional(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        self.ok &= push_optional(self.out, value);
    }

    fn integer(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn time(&mut self, key: &str, value: SystemTime) {
        self.key(key);
        self.out.push(b'"');
        push_rfc3339_millis(self.out, value);
        self.out.push(b'"');
    }

    /// A value `serde_json` writes (numbers that may be fractions or null).
    fn serialized(&mut self, key: &str, value: &impl serde::Serialize) {
        self.key(key);
        self.ok &= serde_json::to_writer(&mut *self.out, value).is_ok();
    }

    /// Closes the object; whether every value could be written.
    fn finish(self) -> bool {
        if self.first {
            self.out.push(b'{');
        }
        self.out.push(b'}');
        self.ok
    }
}

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

fn serialize_time<S: serde::Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_millis(*time))
}

fn serialize_printable<S: serde::Serializer>(
    text: &ClientText<'_>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    text.map(crate::common::printable::printable)
        .serialize(serializer)
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

    #[test]
    fn durations_are_rounded_to_microseconds() {
        let written = |duration| serde_json::to_string(&Entry::millis(duration)).expect("json");
        assert_eq!(written(Duration::from_nanos(618_908)), "0.619");
        assert_eq!(written(Duration::from_nanos(1_386_483)), "1.386");
        assert_eq!(written(Duration::from_millis(3)), "3.0");
        assert_eq!(written(Duration::from_secs(7200)), "7200000.0");
    }

    /// A subject holds what a bot asked its CA to sign: characters a log
    /// viewer acts on are escaped as in the user agent (found by an outside
    /// trial: a right-to-left override reached the line raw).
    #[test]
    fn the_subject_is_escaped_as_the_user_agent_is() {
        let text = "CN=evil\u{202e}gnp.exe";
        let entry = Entry {
            time: SystemTime::UNIX_EPOCH,
            remote: "192.0.2.1:4431".parse().expect("address"),
            method: "GET",
            host: None,
            path: "/",
            version: "HTTP/1.1",
            status: 200,
            auth: "flag",
            subject: Some(text),
            thumbprint: None,
            resumed: false,
            tls_version: None,
            alpn: None,
            sni: None,
            user_agent: Some(text),
            request_body_bytes: 0,
            response_body_bytes: 0,
            duration_ms: 0.0,
            upstream_ms: None,
            error: None,
        };
        let mut line = Vec::new();
        assert!(entry.write_json(&mut line));
        let line = String::from_utf8_lossy(&line);
        assert_eq!(
            line.matches("CN=evil\\\\u{202e}gnp.exe").count(),
            2,
            "{line}"
        );
        assert!(!line.contains('\u{202e}'), "{line}");
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
            "skip",
            "CN=evil\u{202e}gnp.exe \u{1b}[2J",
        ];
        for (i, text) in texts.iter().enumerate() {
            for remote in remotes {
                let entry = Entry {
                    time: SystemTime::UNIX_EPOCH
                        + Duration::from_millis([0, 1, 999, 1_733_373_492_007, 7, 65_000, 3, 4][i]),
                    remote,
                    method: if i % 2 == 0 { "GET" } else { text },
                    host: (i % 2 == 0).then_some(*text),
                    path: text,
                    version: "HTTP/1.1",
                    status: [200, 502, 101, 0, 65535, 403, 200, 200][i],
                    auth: "flag",
                    subject: (i % 2 == 1).then_some(*text),
                    thumbprint: (i % 3 == 0).then_some("x5t-abc_DEF"),
                    resumed: i % 2 == 0,
                    tls_version: (i % 3 != 2).then_some("TLSv1.3"),
                    alpn: (i % 2 == 1).then_some("h2"),
                    sni: (i % 3 == 1).then_some(*text),
                    user_agent: (i % 2 == 1).then_some(*text),
                    request_body_bytes: [0, 1, u64::MAX, 4096, 7, 0, 0, 0][i],
                    response_body_bytes: [0, 10, 1 << 40, 0, 7, u64::MAX, 0, 0][i],
                    duration_ms: [0.0, 1.25, 1e-7, 123_456.789, 0.1, f64::NAN, 1.0, 1.0][i],
                    upstream_ms: [
                        None,
                        Some(0.5),
                        Some(f64::NAN),
                        None,
                        Some(3.0),
                        None,
                        None,
                        None,
                    ][i],
                    error: (i % 2 == 0).then_some(*text),
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
