//! The proxy's own HTTP/1.1 path for simple requests (no body, no upgrade;
//! see `front::http1_wire`): the client's head is read and rewritten
//! straight into the upstream's, the upstream's response head straight into
//! the client's, and the body is copied across, all in the connection's
//! task and without building an `http::Request` or a `HeaderMap`. The first
//! request that is not simple hands the connection to hyper and
//! [`crate::proxy::service::ProxyService`], which serve it and the rest as before.
//!
//! Under callgrind (keep-alive GETs, 4 connections) a browser's request
//! took 46,350 instructions through hyper's server connection, the two
//! header maps and the service, and takes 24,750 here (a bot's 49,099 and
//! 25,589).
//!
//! It keeps the limits hyper keeps: the head of each request must come
//! within the header-read timeout (and the idle timeout) of the wait for
//! it, shutdown closes the connection between requests, and the response
//! says `connection: close` when it is the last.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use hyper::body::Body as _;
use log::debug;
use rustls_req_client_auth::{Http1Connection, Http1Outcome, PeerIdentity, Stopping};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::fields::HOP_BY_HOP;
use crate::proxy::access_log::{Record, Unfinished};
use crate::proxy::back::forward::{UpstreamBody, UpstreamError};
use crate::proxy::back::pool::{self, Outgoing};
use crate::proxy::back::wire::{self, ResponseFraming, ResponseHead};
use crate::proxy::front::http1_wire::{
    self, Forward, HandOver, HeadEnd, IdentityLines, Reading, Rewrite,
};
use crate::proxy::service::{retry_after, upstream_failure, AccessLog, Proxy, ProxyService};

/// What is read from the client at a time, at least.
const READ_SIZE: usize = 8 * 1024;

/// Response bytes gathered before they are written, at most (a TLS record
/// holds 16 KiB).
const WRITE_SIZE: usize = 16 * 1024;

/// What a connection waiting for its next request reads into first, and so
/// what every idle connection holds: a program's request head fits (curl's,
/// wrk's: under 100 bytes); a longer one (a browser's, with cookies) takes
/// more reads, from what rustls already holds, not from the socket.
const FIRST_READ: usize = 256;

/// How long closing a connection may take (its `close_notify`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The proxy's HTTP/1.1 front, for [`rustls_req_client_auth::Serve::http1_front`].
#[derive(Clone, Debug)]
pub struct ProxyHttp1Front(pub(crate) Arc<Proxy>);

impl rustls_req_client_auth::Http1Front for ProxyHttp1Front {
    fn serve(
        &self,
        connection: Http1Connection,
    ) -> Pin<Box<dyn Future<Output = Http1Outcome> + Send + '_>> {
        Box::pin(serve(&self.0, connection))
    }
}

// Installing the front is this module's business: `proxy` knows nothing of
// it, so the request path imports in one direction (front -> proxy).
impl ProxyService {
    /// The proxy's own path for simple HTTP/1.1 requests (see
    /// [`crate::proxy::front::http1`]), for [`rustls_req_client_auth::Serve::http1_front`];
    /// `None` when requests go up over h2c.
    #[must_use]
    pub fn http1_front(&self) -> Option<ProxyHttp1Front> {
        (!self.0.upstream.is_h2c()).then(|| ProxyHttp1Front(Arc::clone(&self.0)))
    }

    /// [`rustls_req_client_auth::serve`] for this service on `listener`,
    /// with [`ProxyService::http1_front`] installed, and the requests hyper
    /// refuses by itself (unreadable or oversized heads) logged and counted
    /// as any other.
    pub fn serve(
        self,
        listener: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> rustls_req_client_auth::Serve<Self> {
        let front = self.http1_front();
        let log = self.0.access_log == AccessLog::On;
        let metrics = self.0.metrics.clone();
        let mut serve = rustls_req_client_auth::serve(listener, config, self);
        if log || metrics.is_some() {
            serve = serve.on_refused_request(move |refused| {
                Record::of_refused(refused, log, metrics.clone()).finish();
            });
        }
        match front {
            Some(front) => serve.http1_front(front),
            None => serve,
        }
    }
}

/// Its writes fail once one waited `limits.send_timeout_secs` for the
/// client to read (`SendTimeout`).
type Stream = rustls_req_client_auth::ClientStream;

/// One client connection on this path.
struct Client {
    stream: Stream,
    /// Read from the client and not yet served.
    read: Vec<u8>,
    /// To be written to the client.
    out: Vec<u8>,
    identity: PeerIdentity,
    remote: SocketAddr,
    stopping: Stopping,
    /// Whether a response went out: from then on draining closes it
    /// between requests (before, its first request may be on the way).
    served: bool,
    lines: IdentityLines,
}

async fn serve(proxy: &Proxy, connection: Http1Connection) -> Http1Outcome {
    let Http1Connection {
        stream,
        identity,
        remote,
        header_read_timeout,
        idle_timeout,
        max_head,
        stopping,
        ..
    } = connection;
    let mut client = Client {
        stream,
        read: Vec::new(),
        out: Vec::new(),
        identity,
        remote,
        stopping,
        served: false,
        lines: IdentityLines::default(),
    };
    // As hyper's: the wait for a head is bounded from its start.
    let wait = header_read_timeout.min(idle_timeout);
    loop {
        let deadline = tokio::time::Instant::now() + wait;
        let forward = loop {
            if !client.read.is_empty() {
                if !proxy.allows(&client.identity) {
                    // Revoked since it connected: hyper's path answers.
                    return Http1Outcome::HandOver {
                        stream: client.stream,
                        read: client.read,
                    };
                }
                let mut rewrite = Rewrite {
                    identity: &proxy.headers,
                    bots_only: &proxy.bots_only,
                    peer: &client.identity,
                    client_ip: remote.ip(),
                    lines: &mut client.lines,
                };
                match http1_wire::read_request(&client.read, &mut rewrite, max_head) {
                    Reading::Partial => {}
                    Reading::Forward(forward) => break forward,
                    Reading::HandOver(why) => {
                        // Read on to its end (or hyper's limit) within this
                        // wait: hyper would start its timeout again.
                        if why == HandOver::Long {
                            let mut end = HeadEnd::default();
                            while client.read.len() < max_head && !end.found(&client.read) {
                                if !client.read_head(deadline, wait).await {
                                    return Http1Outcome::Closed;
                                }
                            }
                        }
                        debug!("{remote}: request served through hyper ({why:?})");
                        return Http1Outcome::HandOver {
                            stream: client.stream,
                            read: client.read,
                        };
                    }
                }
            }
            if !client.read_head(deadline, wait).await {
                return Http1Outcome::Closed;
            }
        };
        client.read.drain(..forward.consumed);
        // Boxed while it runs: inline, its state would stay allocated for
        // every connection, idle ones too.
        match Box::pin(answer(proxy, &mut client, forward)).await {
            Err(error) => {
                debug!("{remote}: connection ended: {error}");
                return Http1Outcome::Closed;
            }
            Ok(Last::Yes) => {
                close(&mut client.stream).await;
                return Http1Outcome::Closed;
            }
            Ok(Last::No) => client.served = true,
        }
    }
}

impl Client {
    /// Reads more of a request head, unless `deadline` (`wait` from the
    /// start of the wait) passes first, which closes the connection as
    /// hyper closes it, or shutdown (draining, once it has served) begins
    /// between requests. `false`: the connection is over.
    async fn read_head(&mut self, deadline: tokio::time::Instant, wait: Duration) -> bool {
        let between = self.read.is_empty();
        if between {
            // Idle until the next request, maybe for long: no buffers held
            // meanwhile but a small one to read into (a fleet sizes by
            // memory per idle connection).
            self.read = Vec::new();
            self.out = Vec::new();
        }
        // The read first: a request already there is served (and told to
        // close) rather than lost to a close between requests.
        let more = tokio::select! {
            biased;
            more = tokio::time::timeout_at(deadline, read_more(&mut self.stream, &mut self.read)) => more,
            () = time_to_close(&mut self.stopping, self.served), if between => {
                close(&mut self.stream).await;
                return false;
            }
        };
        match more {
            Ok(Ok(0)) => false,
            Ok(Ok(_)) => true,
            Ok(Err(error)) => {
                debug!("{}: connection ended with an error: {error}", self.remote);
                false
            }
            Err(_) => {
                debug!("{}: no request head within {wait:?}; closing", self.remote);
                close(&mut self.stream).await;
                false
            }
        }
    }
}

/// Completes once shutdown starts or, for a connection that has `served` a
/// response, once draining starts (see `Serve::drain_on`).
async fn time_to_close(stopping: &mut Stopping, served: bool) {
    if served {
        stopping.draining().await;
    } else {
        stopping.stopped().await;
    }
}

/// Whether a response was the connection's last.
enum Last {
    Yes,
    No,
}

/// Reads what the client sent next onto `read`: into [`FIRST_READ`] bytes
/// if `read` has none (a connection waiting for its next request), else
/// into [`READ_SIZE`] more.
async fn read_more(stream: &mut Stream, read: &mut Vec<u8>) -> io::Result<usize> {
    if read.capacity() == 0 {
        read.reserve_exact(FIRST_READ);
    } else {
        read.reserve(READ_SIZE);
    }
    stream.read_buf(read).await
}

async fn close(stream: &mut Stream) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
}

/// Awaits `work` while reading what the client sends meanwhile (a
/// pipelined request, kept in `read` up to a head's worth): a client that
/// closes or fails ends it, and dropping `work` lets go of its upstream
/// connection and slot at once, as hyper's path does when it sees the
/// client go.
async fn unless_client_leaves<T>(
    stream: &mut Stream,
    read: &mut Vec<u8>,
    work: impl Future<Output = T>,
) -> io::Result<T> {
    let mut work = std::pin::pin!(work);
    loop {
        if read.len() >= http1_wire::MAX_HEAD {
            return Ok(work.await);
        }
        tokio::select! {
            biased;
            done = &mut work => return Ok(done),
            more = read_more(stream, read) => match more {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client closed the connection")),
                Ok(_) => {}
                Err(error) => return Err(error),
            },
        }
    }
}

/// Forwards one simple request and writes the response (or why there is
/// none). An error means the connection is unusable.
async fn answer(proxy: &Proxy, client: &mut Client, forward: Forward) -> io::Result<Last> {
    let Forward {
        method,
        path,
        head,
        close,
        host,
        user_agent,
        ..
    } = forward;
    let log = proxy.access_log == AccessLog::On;
    // Finished below, or when dropped (see `Unfinished`).
    let mut record = Unfinished((log || proxy.metrics.is_some()).then(|| {
        Box::new(Record {
            path,
            host: Some(host.as_str().to_owned()),
            log,
            metrics: proxy.metrics.clone(),
            ..Record::new(
                &client.identity,
                client.remote,
                method.clone(),
                "HTTP/1.1",
                user_agent,
            )
        })
    }));
    let outgoing = Outgoing {
        head,
        resendable: pool::is_safe(&method),
        method: method.clone(),
        body: None,
    };
    let sent = Instant::now();
    // The request may have reached the upstream when the client leaves
    // before the answer: it is logged (499, by `record`'s drop).
    let exchanged = unless_client_leaves(
        &mut client.stream,
        &mut client.read,
        proxy.upstream.exchange(outgoing, client.remote.ip()),
    )
    .await?;
    let upstream_time = sent.elapsed();
    // Shutdown or draining may have begun meanwhile: then this response is the last.
    let last = close || client.stopping.is_draining();
    let out = &mut client.out;
    out.clear();
    let went_upstream = !matches!(exchanged, Err(UpstreamError::ClientBusy(..)));
    // The proxy's own answer's text counts as body sent, as through hyper.
    let mut own_text = 0;
    let (status, body, error) = match exchanged {
        Ok((head, body)) => {
            let chunked = write_response_head(out, &head, &method, last);
            (head.status, Some((body, chunked)), None)
        }
        Err(error) => {
            let (status, text) = upstream_failure(proxy, &error);
            write_plain(out, status, text, &method, last);
            if method != Method::HEAD {
                own_text = u64::try_from(text.len()).unwrap_or(u64::MAX);
            }
            (status, None, Some(error.to_string()))
        }
    };
    if let Some(record) = &mut record.0 {
        // A client over its share never reached the upstream.
        record.upstream = went_upstream.then_some(upstream_time);
        record.answered(status.as_u16(), error);
    }
    // Counted into the record as they go: a response cut off when
    // shutdown's grace runs out is logged (by `record`'s drop) with what
    // was sent (0 before, found by an outside trial).
    let mut untracked = own_text;
    let sent_bytes = match record.0.as_mut() {
        Some(record) => {
            record.response_body_bytes = own_text;
            &mut record.response_body_bytes
        }
        None => &mut untracked,
    };
    let written = write_response(client, body, sent_bytes).await;
    if let Some(mut record) = record.0.take() {
        match &written {
            Err(Cut::Upstream(error)) => record.cut_short(error),
            Err(Cut::Client(error)) => record.cut_by_client(error),
            Ok(()) => {}
        }
        record.finish();
    }
    written.map_err(Cut::into_io)?;
    Ok(if last { Last::Yes } else { Last::No })
}

/// Why a response was not written whole.
enum Cut {
    /// The client's connection failed, or the client left.
    Client(io::Error),
    /// The upstream's body failed (or stopped coming): the client got what
    /// came until then, and the connection is closed to say so.
    Upstream(io::Error),
}

impl Cut {
    fn into_io(self) -> io::Error {
        match self {
            Self::Client(error) | Self::Upstream(error) => error,
        }
    }
}

impl From<io::Error> for Cut {
    /// A write or read on the client's connection failed.
    fn from(error: io::Error) -> Self {
        Self::Client(error)
    }
}

/// Writes the response whose head is in `client.out`, and `body`'s bytes
/// after it, counting them into `sent_bytes`.
async fn write_response(
    client: &mut Client,
    body: Option<(UpstreamBody, bool)>,
    sent_bytes: &mut u64,
) -> Result<(), Cut> {
    if let Some((body, chunked)) = body {
        copy_body(client, body, chunked, sent_bytes).await?;
    }
    client.stream.write_all(&client.out).await?;
    client.out.clear();
    Ok(client.stream.flush().await?)
}

/// Appends the client's response head for the upstream's `head`: its status
/// and fields but the hop-by-hop ones (and those its `Connection` names)
/// and its framing, then the framing of the body as it is sent on: its
/// length if known, else chunked. Whether the body goes chunked.
pub(crate) fn write_response_head(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    method: &Method,
    last: bool,
) -> bool {
    write_status_line(out, head.status);
    // A response to HEAD and a 304 keep the length the upstream gave: that
    // of the body they stand for (once, and only if it is one number).
    let keep_length = head.framing == ResponseFraming::Empty
        && (*method == Method::HEAD || head.status == StatusCode::NOT_MODIFIED);
    let options = ConnectionOptions::of(head);
    let mut dated = false;
    for (name, value) in head.fields() {
        let framing = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        if framing || is_hop_by_hop(head, name, options) {
            continue;
        }
        dated |= name.eq_ignore_ascii_case(b"date");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if let (true, Some(length)) = (keep_length, head.content_length) {
        wire::write_framing(out, wire::RequestFraming::Length(length));
    }
    // RFC 9110 section 6.6.1: a response forwarded without a `Date` gets one.
    if !dated {
        write_date(out);
    }
    let chunked = match head.framing {
        ResponseFraming::Empty | ResponseFraming::Switched => {
            let bodiless = keep_length
                || head.status == StatusCode::NO_CONTENT
                || head.status.is_informational();
            if !bodiless {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
            false
        }
        ResponseFraming::Length(length) => {
            wire::write_framing(out, wire::RequestFraming::Length(length));
            false
        }
        ResponseFraming::Chunked | ResponseFraming::UntilClose => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            true
        }
    };
    if last {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    chunked
}

/// The upstream's `Connection` fields, found once per response.
#[derive(Clone, Copy)]
enum ConnectionOptions<'a> {
    None,
    One(&'a [u8]),
    /// Several `Connection` fields: each is looked at per field.
    Many,
}

impl<'a> ConnectionOptions<'a> {
    fn of(head: &'a ResponseHead) -> Self {
        let mut found = Self::None;
        for (name, value) in head.fields() {
            if name.eq_ignore_ascii_case(b"connection") {
                found = match found {
                    Self::None => Self::One(value),
                    Self::One(_) | Self::Many => Self::Many,
                };
            }
        }
        found
    }
}

/// Whether `name` is hop-by-hop in `head`: one of `forward`'s list or named
/// by its `Connection` fields (`options`).
fn is_hop_by_hop(head: &ResponseHead, name: &[u8], options: ConnectionOptions<'_>) -> bool {
    if HOP_BY_HOP
        .iter()
        .any(|other| name.eq_ignore_ascii_case(other.as_bytes()))
    {
        return true;
    }
    match options {
        ConnectionOptions::None => false,
        ConnectionOptions::One(options) => crate::common::fields::list_has_token(options, name),
        ConnectionOptions::Many => head
            .fields()
            .filter(|(field, _)| field.eq_ignore_ascii_case(b"connection"))
            .any(|(_, options)| crate::common::fields::list_has_token(options, name)),
    }
}

/// Appends `HTTP/1.1 <code> <reason>` (the reason `http` knows, as hyper
/// writes it; none for an unknown code).
fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a `Date` field for now. The text is made at most once a second
/// per thread, as hyper does.
fn write_date(out: &mut Vec<u8>) {
    thread_local! {
        static MADE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    MADE.with_borrow_mut(|(made, text)| {
        if *made != second || text.is_empty() {
            *text = httpdate::fmt_http_date(now);
            *made = second;
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Appends a response the proxy makes itself: `status` and a short `text`,
/// or for HEAD only its length (RFC 9110 section 9.3.2: no content).
fn write_plain(out: &mut Vec<u8>, status: StatusCode, text: &str, method: &Method, last: bool) {
    write_status_line(out, status);
    write_date(out);
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\n");
    if let Some(seconds) = retry_after(status) {
        out.extend_from_slice(b"retry-after: ");
        out.extend_from_slice(seconds.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let length = u64::try_from(text.len()).unwrap_or(u64::MAX);
    wire::write_framing(out, wire::RequestFraming::Length(length));
    if last {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if *method != Method::HEAD {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Copies `body` after the head in `out`, chunked or as it is; `out` is
/// written whenever it is full or the upstream has nothing more yet (a
/// stream of events reaches the client as it comes), and while it waits a
/// client that leaves ends the copy. What is left in `out` is for the
/// caller to write.
async fn copy_body(
    client: &mut Client,
    mut body: UpstreamBody,
    chunked: bool,
    sent_bytes: &mut u64,
) -> Result<(), Cut> {
    loop {
        let frame = if let Poll::Ready(frame) = body.frame_now() {
            frame
        } else {
            client.stream.write_all(&client.out).await?;
            client.out.clear();
            client.stream.flush().await?;
            let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
            unless_client_leaves(&mut client.stream, &mut client.read, next).await?
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(error)) => {
                // What the client has is cut short: closing says so.
                client.stream.write_all(&client.out).await?;
                return Err(Cut::Upstream(error));
            }
        };
        *sent_bytes = sent_bytes.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        push_data(&mut client.out, &data, chunked);
        if client.out.len() >= WRITE_SIZE {
            client.stream.write_all(&client.out).await?;
            client.out.clear();
        }
    }
    if chunked {
        client.out.extend_from_slice(wire::LAST_CHUNK);
    }
    Ok(())
}

fn push_data(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        out.extend_from_slice(&wire::chunk_line(data.len()));
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    /// The client's head for the upstream's `head` (to `method`), and
    /// whether the body goes chunked.
    fn rewritten(head: &str, method: &Method, last: bool) -> (String, bool) {
        let mut buf = BytesMut::from(head);
        let head = wire::parse_response_head(&mut buf, method)
            .expect("valid")
            .expect("complete");
        let mut out = Vec::new();
        let chunked = write_response_head(&mut out, &head, method, last);
        (now_is_now(&out), chunked)
    }

    /// `out` as text, a `date` field the proxy added read as `date: NOW`.
    fn now_is_now(out: &[u8]) -> String {
        let text = String::from_utf8_lossy(out).into_owned();
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        let before = format!("date: {}", &now[..20]);
        match text.find(&before) {
            Some(at) => format!(
                "{}date: NOW{}",
                &text[..at],
                &text[at + "date: ".len() + now.len()..]
            ),
            None => text,
        }
    }

    #[test]
    fn the_client_head_has_the_upstream_fields_but_hop_by_hop_and_its_own_framing() {
        let get = Method::GET;
        for (upstream, method, last, client, chunked) in [
            (
                "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 200 OK\r\nServer: up\r\nX-Kept: 2\r\ndate: NOW\r\ncontent-length: 3\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x\r\n\r\n",
                &get,
                true,
                "HTTP/1.1 200 OK\r\ndate: NOW\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nx: y\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 200 OK\r\nx: y\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\ntransfer-encoding: chunked\r\n\r\n",
                true,
            ),
            (
                "HTTP/1.1 404 Whatever\r\ncontent-length: 0\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 404 Not Found\r\ndate: NOW\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 10\r\nContent-Length: 10, 10\r\n\r\n",
                &Method::HEAD,
                false,
                "HTTP/1.1 200 OK\r\ncontent-length: 10\r\ndate: NOW\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\ncontent-length: 10\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\ncontent-length: 10\r\ndate: NOW\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n",
                &Method::HEAD,
                false,
                "HTTP/1.1 200 OK\r\ndate: NOW\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nConnection: date\r\ncontent-length: 0\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 200 OK\r\ndate: NOW\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: x-a\r\nx-a: 1\r\nx-b: 2\r\nconnection: X-B\r\nx-c: 3\r\ncontent-length: 0\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 200 OK\r\nx-c: 3\r\ndate: NOW\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 204 No Content\r\ndate: NOW\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 599 \r\ncontent-length: 1\r\n\r\n",
                &get,
                false,
                "HTTP/1.1 599 \r\ndate: NOW\r\ncontent-length: 1\r\n\r\n",
                false,
            ),
        ] {
            assert_eq!(
                rewritten(upstream, method, last),
                (client.to_owned(), chunked),
                "{upstream:?}"
            );
        }
    }

    #[test]
    fn data_goes_on_chunked_or_as_it_is() {
        let mut out = Vec::new();
        push_data(&mut out, b"hello", true);
        push_data(&mut out, b"", true);
        push_data(&mut out, b"!", false);
        assert_eq!(out, b"5\r\nhello\r\n!");
        let mut out = Vec::new();
        write_plain(
            &mut out,
            StatusCode::BAD_GATEWAY,
            "no\n",
            &Method::GET,
            true,
        );
        assert_eq!(
            now_is_now(&out),
            "HTTP/1.1 502 Bad Gateway\r\ndate: NOW\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno\n"
        );
    }
}
