//! The HTTP/1.1 connections to the one upstream, and the exchanges on them.
//!
//! A request is written and its response read by the task that serves the
//! client, on a connection it takes from a stack of idle ones (or opens):
//! the head written at once, the response head parsed as it arrives
//! ([`crate::proxy::back::wire`]), the response body read as the client takes
//! it. A request body is sent by a task of its own beside it, so an
//! upstream that answers while it still reads (an echo, an early refusal)
//! is read at the same time. The connection goes back on the stack when its
//! response body has been read to its end and its request body was sent
//! whole; any other end closes it.
//!
//! This replaced hyper's client connection, which runs each connection in a
//! task of its own and hands requests, responses and body chunks to it over
//! channels: under callgrind (keep-alive, 4 clients) that task was about
//! 14,000 of the 52,600 instructions of a request.
//!
//! An idle connection the upstream closed (its idle timeout) is skipped: its
//! readiness says so at no cost, and a read confirms it. A request written
//! to a connection whose close had not arrived yet finds the connection
//! closed before any response; a GET, HEAD or OPTIONS without a body is then
//! sent again on a new connection, as nginx's `proxy_next_upstream error`
//! does (its head, kept until the response came, is all there is to send).
//! An upstream may close an idle connection (its keep-alive timeout) or one
//! whose request body it did not wait for, just as the next request goes out.
//!
//! Connections are opened by hyper-util's `HttpConnector` (every resolved
//! address in turn, a connect timeout per attempt, `TCP_NODELAY`).
//!
//! The caller bounds how many exchanges run at once with a semaphore; a
//! connection keeps its permit ([`ResponseBody::hold`]) until it is back on
//! the stack or gone, so no more connections than permits are ever open.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::Uri;
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use crate::common::client_body::ClientBodyError;
use crate::proxy::back::slots::ExchangeSlot;
use crate::proxy::back::wire::{
    self, BodyDecoder, Decoded, RequestFraming, ResponseFraming, ResponseHead, WireError,
};

/// How long an idle connection is kept unless `upstream.idle_timeout_secs`
/// says otherwise (hyper-util's pool's default, and reqwest's).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The shortest idle timeout: the reaper runs every half of it, and an
/// interval needs a period.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(10);

/// What is read from the upstream at a time, at most.
const READ_SIZE: usize = 8 * 1024;

/// A request for [`Http1Pool::exchange`].
#[derive(Debug)]
pub struct Outgoing {
    /// Its head, framing included (see [`wire::write_request_head`]).
    pub head: Vec<u8>,
    /// Its method, for the response's framing.
    pub method: http::Method,
    /// Its body and how the head frames it, unless it has none.
    pub body: Option<(Body, RequestFraming)>,
    /// Whether it may be sent again on a new connection (see [`is_safe`]).
    pub resendable: bool,
}

/// The pool for one upstream.
#[derive(Debug)]
pub struct Http1Pool {
    /// `http://host:port/`, what the connector connects to.
    target: Uri,
    connector: HttpConnector,
    /// Oldest first, so the expired ones are a prefix.
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
    max_idle: usize,
    /// Started with the first connection put back.
    reaper: OnceLock<()>,
}

/// An open connection with no exchange on it.
#[derive(Debug)]
struct Connection {
    tcp: TcpStream,
    /// Empty between exchanges; kept for its allocation.
    buf: BytesMut,
}

#[derive(Debug)]
struct Idle {
    connection: Connection,
    since: Instant,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No connection could be opened.
    #[error("cannot connect to {0}")]
    Connect(Uri, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection was closed or reset before any of the response came
    /// (most likely an idle connection the upstream had just closed).
    #[error("it closed the connection before responding")]
    Closed(#[source] io::Error),
    /// Reading or writing failed after the response had begun, or the
    /// request body failed.
    #[error("the exchange failed")]
    Io(#[source] io::Error),
    /// The response cannot be read.
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl Http1Pool {
    /// A pool for the upstream at `target` (`http://host:port/`), opening
    /// connections with `connector`, keeping at most `max_idle` idle ones for
    /// up to `idle_timeout` each (at least [`MIN_IDLE_TIMEOUT`]).
    pub fn new(
        target: Uri,
        connector: HttpConnector,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            target,
            connector,
            idle: Mutex::new(Vec::new()),
            idle_timeout: idle_timeout.max(MIN_IDLE_TIMEOUT),
            max_idle,
            reaper: OnceLock::new(),
        })
    }

    /// Sends `request` (in origin form, with its `Host` header) on an idle
    /// connection, or on a new one if none is idle, and returns the
    /// response once its head has come (see the module's doc for when a
    /// request is sent again).
    ///
    /// # Errors
    ///
    /// [`PoolError`]: no connection, or the exchange failed.
    pub async fn send(
        self: &Arc<Self>,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, PoolError> {
        let resendable = resendable(&request);
        let (parts, body) = request.into_parts();
        let framing = RequestFraming::of(
            &parts.method,
            body.is_end_stream(),
            body.size_hint().exact(),
        );
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut head = Vec::with_capacity(256);
        wire::write_request_head(&mut head, &parts.method, target, &parts.headers, framing);
        let body = match framing {
            RequestFraming::Empty | RequestFraming::Length(0) => None,
            RequestFraming::Length(_) | RequestFraming::Chunked => Some((body, framing)),
        };
        let (head, body) = self
            .exchange(Outgoing {
                head,
                method: parts.method,
                body,
                resendable,
            })
            .await?;
        let mut response = http::Response::new(body);
        *response.status_mut() = head.status;
        *response.headers_mut() = head.header_map()?;
        Ok(response)
    }

    /// Sends `outgoing` on an idle connection, or on a new one if none is
    /// idle, and returns the response's head once it has come, and its body
    /// (see the module's doc for when a request is sent again).
    ///
    /// # Errors
    ///
    /// [`PoolError`]: no connection, or the exchange failed.
    pub async fn exchange(
        self: &Arc<Self>,
        outgoing: Outgoing,
    ) -> Result<(ResponseHead, ResponseBody), PoolError> {
        let Outgoing {
            head,
            method,
            mut body,
            resendable,
        } = outgoing;
        if let Some(connection) = self.take_idle() {
            match self
                .exchange_on(connection, &head, &method, body.take())
                .await
            {
                // Closed before any response: a safe request may be sent
                // again (RFC 9110 section 9.2.2). It has no body, so its
                // head is all there is to send.
                Err(PoolError::Closed(_)) if resendable => {}
                result => return result,
            }
        }
        let connection = self.connect().await?;
        self.exchange_on(connection, &head, &method, body).await
    }

    /// Writes `head` and `body` on `connection` and reads the response head.
    async fn exchange_on(
        self: &Arc<Self>,
        connection: Connection,
        head: &[u8],
        method: &http::Method,
        body: Option<(Body, RequestFraming)>,
    ) -> Result<(ResponseHead, ResponseBody), PoolError> {
        let Connection { mut tcp, mut buf } = connection;
        tcp.write_all(head).await.map_err(PoolError::Closed)?;
        let mut socket = match body {
            None => Socket::Whole(tcp),
            Some((body, framing)) => {
                let (read, write) = tcp.into_split();
                let task = tokio::spawn(upload(write, body, framing));
                Socket::Split(read, Upload::Running(AbortOnDrop(task)))
            }
        };
        let mut received = false;
        let head = loop {
            if received {
                if let Some(head) = wire::parse_response_head(&mut buf, method)? {
                    if head.other_transfer_coding {
                        return Err(WireError::TransferCoding.into());
                    }
                    break head;
                }
            }
            match std::future::poll_fn(|cx| socket.poll_read(cx, &mut buf, true)).await {
                Ok(0) if !received => {
                    return Err(PoolError::Closed(io::ErrorKind::UnexpectedEof.into()))
                }
                Ok(0) => return Err(WireError::Truncated.into()),
                Ok(_) => received = true,
                Err(error) if !received && error.kind() != io::ErrorKind::Other => {
                    return Err(PoolError::Closed(error))
                }
                Err(error) => return Err(PoolError::Io(error)),
            }
        };
        let mut body = ResponseBody {
            decoder: BodyDecoder::new(head.framing),
            socket: Some(socket),
            buf,
            reusable: head.reusable,
            pool: Arc::clone(self),
            permit: None,
        };
        if head.framing == ResponseFraming::Empty {
            body.finish();
        }
        Ok((head, body))
    }

    /// The most recently used idle connection that is still open; closed
    /// ones on the way are dropped.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while let Some(candidate) = idle.pop() {
            if now.duration_since(candidate.since) >= self.idle_timeout {
                // The newest has expired, so have all below it.
                idle.clear();
                return None;
            }
            if is_open(&candidate.connection.tcp) {
                return Some(candidate.connection);
            }
        }
        None
    }

    fn put(self: &Arc<Self>, connection: Connection) {
        // `put` may run outside a runtime (a body dropped late): then there
        // is nothing to reap for, and `tokio::spawn` would panic.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.reaper.get_or_init(|| {
                drop(runtime.spawn(reap(Arc::downgrade(self), self.idle_timeout / 2)));
            });
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken under the lock, so the stack stays in order of `since`.
        let now = Instant::now();
        self.drop_expired(&mut idle, now);
        if idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push(Idle {
            connection,
            since: now,
        });
    }

    /// Drops the connections idle for `idle_timeout` (a prefix of `idle`).
    fn drop_expired(&self, idle: &mut Vec<Idle>, now: Instant) {
        let expired =
            idle.partition_point(|old| now.duration_since(old.since) >= self.idle_timeout);
        idle.drain(..expired);
    }

    async fn connect(&self) -> Result<Connection, PoolError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(|error| PoolError::Connect(self.target.clone(), error.into()))?;
        Ok(Connection {
            tcp: io.into_inner(),
            buf: BytesMut::with_capacity(READ_SIZE),
        })
    }
}

/// Whether an idle connection is still open: no readiness since its last
/// read means nothing came, not even a close (no system call); readiness is
/// confirmed by a read, which must find nothing to read yet.
fn is_open(tcp: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match tcp.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            matches!(tcp.try_read(&mut [0; 1]), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// A connection in an exchange: whole, or split while a task sends the
/// request body.
#[derive(Debug)]
enum Socket {
    Whole(TcpStream),
    Split(OwnedReadHalf, Upload),
}

impl Socket {
    /// Reads what the upstream sent into `buf`. With `watch_upload`, a
    /// failed request body ends the read with its error (kind `Other`): at
    /// once when the client's body broke off (the upstream may answer the
    /// truncated request it was left with, and that answer is not the
    /// client's), else once nothing is to be read (the upstream may have
    /// answered early and closed, and its answer is the one to forward).
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        watch_upload: bool,
    ) -> Poll<io::Result<usize>> {
        if watch_upload {
            if let Self::Split(_, upload @ Upload::Running(_)) = self {
                if let Poll::Ready(Err(error)) = upload.poll_done(cx) {
                    if ClientBodyError::in_chain(&error).is_some() {
                        return Poll::Ready(Err(io::Error::other(error)));
                    }
                    // Reported below, once the upstream's answer is read.
                    if let Upload::Failed(write) = std::mem::replace(upload, Upload::Failed(None)) {
                        *upload = Upload::Broken(error, write);
                    }
                }
            }
        }
        if buf.capacity() - buf.len() < READ_SIZE / 8 {
            buf.reserve(READ_SIZE);
        }
        let read = match self {
            Self::Whole(tcp) => tokio_util::io::poll_read_buf(Pin::new(tcp), cx, buf),
            Self::Split(read, _) => tokio_util::io::poll_read_buf(Pin::new(read), cx, buf),
        };
        if read.is_pending() && watch_upload {
            if let Self::Split(_, upload) = self {
                if let Poll::Ready(Err(error)) = upload.poll_done(cx) {
                    return Poll::Ready(Err(io::Error::other(error)));
                }
            }
        }
        read
    }
}

/// The task sending a request body, then its write half.
#[derive(Debug)]
enum Upload {
    Running(AbortOnDrop),
    Sent(OwnedWriteHalf),
    /// Failed, its error not yet reported.
    Broken(io::Error, Option<OwnedWriteHalf>),
    /// Failed and reported. The write half is kept open until the exchange
    /// is dropped (see [`upload`]).
    Failed(Option<OwnedWriteHalf>),
}

impl Upload {
    /// Ready once the body has been sent (or the sending failed).
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (error, write) = match std::mem::replace(self, Self::Failed(None)) {
            Self::Running(mut task) => match Pin::new(&mut task.0).poll(cx) {
                Poll::Pending => {
                    *self = Self::Running(task);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(Ok(write))) => {
                    *self = Self::Sent(write);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(Err(failed))) => (failed.error, Some(failed.write)),
                Poll::Ready(Err(error)) => (io::Error::other(error), None),
            },
            Self::Sent(write) => {
                *self = Self::Sent(write);
                return Poll::Ready(Ok(()));
            }
            Self::Broken(error, write) => (error, write),
            Self::Failed(write) => (
                io::Error::other("the request body was not sent whole"),
                write,
            ),
        };
        *self = Self::Failed(write);
        Poll::Ready(Err(error))
    }
}

/// A failed upload: why, and the write half, kept open.
#[derive(Debug)]
struct UploadFailed {
    error: io::Error,
    write: OwnedWriteHalf,
}

/// A task aborted with its owner: a request body is not sent on for a
/// response nobody reads.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<Result<OwnedWriteHalf, UploadFailed>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends a request body framed as `framing`; the write half back when it
/// has gone out whole. Trailers are not sent. On failure the write half is
/// given back too, not closed: closing it would tell the upstream that the
/// body ended, and it could answer the truncated request before the
/// exchange sees why (the answer to a request the client did not send).
async fn upload(
    mut write: OwnedWriteHalf,
    body: Body,
    framing: RequestFraming,
) -> Result<OwnedWriteHalf, UploadFailed> {
    match send_body(&mut write, body, framing).await {
        Ok(()) => Ok(write),
        Err(error) => Err(UploadFailed { error, write }),
    }
}

async fn send_body(
    write: &mut OwnedWriteHalf,
    mut body: Body,
    framing: RequestFraming,
) -> io::Result<()> {
    let mut left = match framing {
        RequestFraming::Length(length) => Some(length),
        RequestFraming::Empty | RequestFraming::Chunked => None,
    };
    // With a length, done when it is sent (an HTTP/2 client's end of
    // stream may come in a frame of its own, after the upstream answered).
    while left != Some(0) {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame.map_err(io::Error::other)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if let Some(left) = &mut left {
            let length = u64::try_from(data.len()).unwrap_or(u64::MAX);
            if length > *left {
                return Err(io::Error::other(
                    "the request body is longer than its length",
                ));
            }
            *left -= length;
            write.write_all(&data).await?;
        } else {
            let mut chunk = wire::chunk_line(data.len());
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            write.write_all(&chunk).await?;
        }
    }
    match left {
        Some(0) => {}
        Some(_) => return Err(io::Error::other("the request body ended before its length")),
        None => write.write_all(wire::LAST_CHUNK).await?,
    }
    Ok(())
}

/// A response body read from the upstream as the client takes it. At its
/// end the connection goes back to the pool (if it can carry another
/// request); dropped before, it closes the connection.
#[derive(Debug)]
pub struct ResponseBody {
    decoder: BodyDecoder,
    /// `None` once the body is over.
    socket: Option<Socket>,
    buf: BytesMut,
    reusable: bool,
    pool: Arc<Http1Pool>,
    permit: Option<ExchangeSlot>,
}

impl ResponseBody {
    /// Keeps `permit` until the connection is back in the pool or gone.
    pub fn hold(&mut self, permit: ExchangeSlot) {
        if self.socket.is_some() {
            self.permit = Some(permit);
        }
    }

    /// After a 101: the connection, and what the upstream sent after the
    /// response head (the start of the new protocol). `None` if the
    /// request body was still being sent.
    pub fn take_switched(&mut self) -> Option<(TcpStream, Bytes)> {
        match self.socket.take()? {
            Socket::Whole(tcp) => Some((tcp, self.buf.split().freeze())),
            Socket::Split(..) => None,
        }
    }

    /// The body is over: the connection goes back to the pool if it can
    /// carry another request, nothing came after the response, and the
    /// request body went out whole. One still being sent (the upstream
    /// answered early and reads on) is waited for by a task of its own,
    /// which keeps the permit, as hyper's client did.
    fn finish(&mut self) {
        let permit = self.permit.take();
        let Some(socket) = self.socket.take() else {
            return;
        };
        if !self.reusable || !self.buf.is_empty() {
            return;
        }
        // A large head grew the buffer; an idle connection keeps only a
        // buffer of the usual size.
        let buf = if self.buf.capacity() > 4 * READ_SIZE {
            BytesMut::new()
        } else {
            std::mem::take(&mut self.buf)
        };
        let (read, mut upload) = match socket {
            Socket::Whole(tcp) => {
                self.pool.put(Connection { tcp, buf });
                // Released after the connection is back: a request waiting
                // for a permit then finds it idle instead of opening another.
                drop(permit);
                return;
            }
            Socket::Split(read, upload) => (read, upload),
        };
        let pool = Arc::clone(&self.pool);
        let back = async move {
            if std::future::poll_fn(|cx| upload.poll_done(cx))
                .await
                .is_ok()
            {
                if let Upload::Sent(write) = upload {
                    if let Ok(tcp) = read.reunite(write) {
                        pool.put(Connection { tcp, buf });
                    }
                }
            }
            drop(permit);
        };
        let mut back = Box::pin(back);
        // Mostly the body was sent before the answer came: then at once.
        if std::pin::Pin::new(&mut back)
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(back));
            }
        }
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.socket = None;
        self.permit = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(socket) = this.socket.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut this.buf) {
                Ok(Decoded::Data(data)) => {
                    // The last bytes of a known length: the connection is
                    // free before the client has them.
                    if this.decoder.remaining() == Some(0) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Done) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(error) => return this.fail(io::Error::new(io::ErrorKind::InvalidData, error)),
            }
            match ready!(socket.poll_read(cx, &mut this.buf, false)) {
                Ok(0) => match this.decoder.end_of_input() {
                    Ok(()) => {
                        this.reusable = false;
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Err(error) => {
                        return this.fail(io::Error::new(io::ErrorKind::UnexpectedEof, error))
                    }
                },
                Ok(_) => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.socket.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

/// Whether `method` is safe (RFC 9110 section 9.2.1): a request to it
/// without a body, not an upgrade, may be sent again on a new connection.
/// nginx's `proxy_next_upstream error` resends the same ones.
#[must_use]
pub fn is_safe(method: &http::Method) -> bool {
    use http::Method;
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `request` may be sent again: safe, no body, not an upgrade.
pub(crate) fn resendable(request: &http::Request<Body>) -> bool {
    is_safe(request.method())
        && request.body().is_end_stream()
        && !request.headers().contains_key(http::header::UPGRADE)
}

/// Closes idle connections that expired while no request came to do it,
/// every `every`, for as long as the pool exists.
async fn reap(pool: Weak<Http1Pool>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
        pool.drop_expired(&mut idle, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream answering one request per connection with `ok`, then
    /// closing it after `linger` (without saying so); it counts connections
    /// and, per connection closed by the proxy, `closed_by_peer`.
    async fn upstream(linger: Duration) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_peer = Arc::new(AtomicUsize::new(0));
        let (counter, closed) = (Arc::clone(&accepted), Arc::clone(&closed_by_peer));
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let closed = Arc::clone(&closed);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0; 1024];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        let Ok(n @ 1..) = tcp.read(&mut buf).await else {
                            return;
                        };
                        request.extend_from_slice(&buf[..n]);
                    }
                    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                    if tcp.write_all(response).await.is_err() {
                        return;
                    }
                    if linger.is_zero() {
                        // Closed in the same poll as the write, not by a timer.
                        return;
                    }
                    if let Ok(Ok(0)) = tokio::time::timeout(linger, tcp.read(&mut buf)).await {
                        closed.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (address, accepted, closed_by_peer)
    }

    fn pool(address: SocketAddr, idle_timeout: Duration) -> Arc<Http1Pool> {
        let target = format!("http://{address}/").parse().expect("uri");
        Http1Pool::new(target, HttpConnector::new(), idle_timeout, 8)
    }

    async fn get(pool: &Arc<Http1Pool>) -> Result<String, PoolError> {
        let request = http::Request::get("/")
            .header(http::header::HOST, "upstream")
            .body(Body::empty())
            .expect("request");
        let response = pool.send(request).await?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(PoolError::Io)?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The upstream closes each connection after its response: the pool
    /// does not reuse it once the close has arrived, it opens another.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_not_reused() {
        let (address, accepted, _) = upstream(Duration::ZERO).await;
        let pool = pool(address, Duration::from_secs(90));
        for _ in 0..3 {
            assert_eq!(get(&pool).await.expect("get"), "ok\n");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// An upstream (on a thread of its own) whose first connection answers
    /// one request, then reads the next request's head and closes without an
    /// answer: the race of an idle close with a request, made certain. Later
    /// connections answer one request each. Counts connections.
    fn upstream_closing_on_the_second_request() -> (SocketAddr, Arc<AtomicUsize>) {
        scripted_upstream(|number, tcp| {
            use std::io::Write as _;
            if !read_head(tcp) {
                return;
            }
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
            if number == 0 {
                let _ = read_head(tcp);
            }
        })
    }

    /// Reads up to the end of a request head; `false` at the end of input.
    fn read_head(tcp: &mut std::net::TcpStream) -> bool {
        use std::io::Read as _;
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return false,
            }
        }
        true
    }

    fn request(method: http::Method, body: Body) -> http::Request<Body> {
        http::Request::builder()
            .method(method)
            .uri("/")
            .header(http::header::HOST, "upstream")
            .body(body)
            .expect("request")
    }

    /// The second request goes out on the first connection after it was
    /// idle a while, and the upstream closes it unanswered.
    async fn second_request_meets_a_close(
        second: http::Request<Body>,
    ) -> (Result<http::Response<ResponseBody>, PoolError>, usize) {
        let (address, accepted) = upstream_closing_on_the_second_request();
        let pool = pool(address, Duration::from_secs(90));
        assert_eq!(get(&pool).await.expect("first"), "ok\n");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let result = pool.send(second).await;
        (result, accepted.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_get_written_to_a_connection_closed_meanwhile_is_sent_again() {
        let (result, accepted) =
            second_request_meets_a_close(request(http::Method::GET, Body::empty())).await;
        let response = result.expect("sent again on a new connection");
        assert_eq!(response.status(), 200);
        assert_eq!(accepted, 2);
    }

    #[tokio::test]
    async fn a_post_written_to_a_connection_closed_meanwhile_is_not_sent_again() {
        let (result, accepted) =
            second_request_meets_a_close(request(http::Method::POST, Body::from("x"))).await;
        assert!(result.is_err(), "{result:?}");
        assert_eq!(accepted, 1, "not sent on another connection");
    }

    /// Only safe methods without a body, and no upgrade, are copied to be
    /// sent twice; the copy has the same head.
    #[test]
    fn only_safe_requests_without_a_body_are_resendable() {
        use http::Method;
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let mut original = request(method.clone(), Body::empty());
            *original.uri_mut() = "/a?b=c".parse().expect("uri");
            original
                .headers_mut()
                .append("x-one", "1".parse().expect("value"));
            original
                .headers_mut()
                .append("x-one", "2".parse().expect("value"));
            assert!(resendable(&original), "{method}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(
                !resendable(&request(method.clone(), Body::empty())),
                "{method}"
            );
        }
        assert!(
            !resendable(&request(Method::GET, Body::from("x"))),
            "a body"
        );
        let mut upgrade = request(Method::GET, Body::empty());
        upgrade
            .headers_mut()
            .insert(http::header::UPGRADE, "websocket".parse().expect("value"));
        assert!(!resendable(&upgrade), "an upgrade");
    }

    /// No request comes after the first: the reaper closes the connection
    /// once it has been idle for the timeout.
    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let (address, _, closed_by_peer) = upstream(Duration::from_secs(10)).await;
        let pool = pool(address, Duration::from_millis(100));
        assert_eq!(get(&pool).await.expect("get"), "ok\n");
        for _ in 0..50 {
            if closed_by_peer.load(Ordering::SeqCst) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the idle connection was still open after 1 s");
    }

    /// An upstream on a thread of its own running `script` on each
    /// connection in turn (with its number, from 0); counts connections.
    fn scripted_upstream(
        script: impl Fn(usize, &mut std::net::TcpStream) + Send + 'static,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let address = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for (number, tcp) in listener.incoming().enumerate() {
                let Ok(mut tcp) = tcp else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                script(number, &mut tcp);
            }
        });
        (address, accepted)
    }

    /// Reads from `tcp` until what was read ends with `end`.
    fn read_until(tcp: &mut std::net::TcpStream, end: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut read = Vec::new();
        let mut byte = [0; 1];
        while !read.ends_with(end) {
            match tcp.read(&mut byte) {
                Ok(1) => read.push(byte[0]),
                _ => break,
            }
        }
        read
    }

    type BodySender = http_body_util::channel::Sender<bytes::Bytes, std::convert::Infallible>;

    /// A POST whose body has sent `first` and goes on as the caller sends
    /// more (of a length not known up front); its response, and the sender.
    async fn post_streaming(
        pool: &Arc<Http1Pool>,
        first: &'static str,
    ) -> (http::Response<ResponseBody>, BodySender) {
        let (mut sender, body) = http_body_util::channel::Channel::new(2);
        sender.send_data(first.into()).await.expect("send");
        let response = pool
            .send(request(http::Method::POST, Body::new(body)))
            .await
            .expect("response");
        (response, sender)
    }

    async fn body_bytes(response: http::Response<ResponseBody>) -> bytes::Bytes {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    }

    #[tokio::test]
    async fn a_chunked_response_is_read_and_its_connection_reused() {
        let (address, accepted) = scripted_upstream(|_, tcp| {
            use std::io::Write as _;
            while read_head(tcp) {
                let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;x=y\r\nok\r\n1\r\n\n\r\n0\r\n\r\n";
                if tcp.write_all(chunked).is_err() {
                    return;
                }
            }
        });
        let pool = pool(address, Duration::from_secs(90));
        for _ in 0..3 {
            assert_eq!(get(&pool).await.expect("get"), "ok\n");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// A body of unknown length (an HTTP/2 client's without
    /// `content-length`) goes up chunked, and the connection carries the
    /// next request.
    #[tokio::test]
    async fn a_request_body_of_unknown_length_goes_up_chunked() {
        static RECEIVED: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        let (address, accepted) = scripted_upstream(|_, tcp| {
            use std::io::Write as _;
            let head = read_until(tcp, b"\r\n\r\n");
            let body = read_until(tcp, b"0\r\n\r\n");
            RECEIVED.lock().expect("lock").extend([head, body].concat());
            let _ = tcp.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            while read_head(tcp) {
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
            }
        });
        let pool = pool(address, Duration::from_secs(90));
        let (mut sender, body) =
            http_body_util::channel::Channel::<bytes::Bytes, std::convert::Infallible>::new(2);
        let upload = tokio::spawn(async move {
            for part in ["hel", "lo"] {
                sender.send_data(part.into()).await.expect("send");
            }
        });
        let response = pool
            .send(request(http::Method::POST, Body::new(body)))
            .await
            .expect("response");
        assert_eq!(response.status(), 204);
        upload.await.expect("upload");
        drop(response);
        assert_eq!(get(&pool).await.expect("get"), "ok\n");
        let received = String::from_utf8(RECEIVED.lock().expect("lock").clone()).expect("text");
        assert!(received.starts_with("POST / HTTP/1.1\r\n"), "{received}");
        assert!(
            received.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{received}"
        );
        assert!(
            received.ends_with("\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
            "{received}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// The upstream refuses a body it has not read (and closes): the
    /// refusal reaches the client although the body is still coming.
    #[tokio::test]
    async fn an_early_answer_is_delivered_while_the_body_is_still_coming() {
        let (address, _) = scripted_upstream(|_, tcp| {
            use std::io::Write as _;
            if read_head(tcp) {
                let _ = tcp.write_all(
                    b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbig\n",
                );
            }
        });
        let pool = pool(address, Duration::from_secs(90));
        let (response, sender) = post_streaming(&pool, "the start").await;
        assert_eq!(response.status(), 413);
        assert_eq!(&body_bytes(response).await[..], b"big\n");
        drop(sender);
    }

    /// A response framed both ways (and so maybe split) is refused, and its
    /// connection is not used again.
    #[tokio::test]
    async fn an_ambiguous_response_is_refused_and_its_connection_closed() {
        let (error, served, accepted) = refused_then_served(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
        assert!(
            matches!(error, Some(PoolError::Wire(WireError::LengthAndEncoding))),
            "not refused"
        );
        assert_eq!(served, "ok\n");
        assert_eq!(accepted, 2);
    }

    /// A response in a transfer coding besides chunked is refused (its
    /// coding would be lost on the way), and its connection not used again.
    #[tokio::test]
    async fn a_response_in_another_transfer_coding_is_refused() {
        let (error, served, accepted) = refused_then_served(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
        assert!(
            matches!(error, Some(PoolError::Wire(WireError::TransferCoding))),
            "not refused"
        );
        assert_eq!(served, "ok\n");
        assert_eq!(accepted, 2);
    }

    /// Two GETs from an upstream whose first connection answers with
    /// `first` and every later one with `ok`: the first GET's error, the
    /// second's body, and how many connections the upstream accepted.
    async fn refused_then_served(first: &'static [u8]) -> (Option<PoolError>, String, usize) {
        let (address, accepted) = scripted_upstream(move |number, tcp| {
            use std::io::Write as _;
            while read_head(tcp) {
                let response: &[u8] = if number == 0 {
                    first
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"
                };
                if tcp.write_all(response).is_err() {
                    return;
                }
            }
        });
        let pool = pool(address, Duration::from_secs(90));
        let error = get(&pool).await.err();
        let served = get(&pool).await.expect("get");
        (error, served, accepted.load(Ordering::SeqCst))
    }

    /// The upstream answers after the request head and reads the body on:
    /// the connection goes back to the pool once the body is sent, and
    /// carries the next request.
    #[tokio::test]
    async fn a_connection_answered_early_is_reused_once_the_body_is_sent() {
        let (address, accepted) = scripted_upstream(|_, tcp| {
            use std::io::Write as _;
            if !read_head(tcp) {
                return;
            }
            let _ = tcp.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 3\r\n\r\nok\n");
            let _ = read_until(tcp, b"0\r\n\r\n");
            while read_head(tcp) {
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
            }
        });
        let pool = pool(address, Duration::from_secs(90));
        let (response, mut sender) = post_streaming(&pool, "a").await;
        assert_eq!(response.status(), 202);
        assert_eq!(&body_bytes(response).await[..], b"ok\n");
        sender.send_data("b".into()).await.expect("send");
        drop(sender);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&pool).await.expect("get"), "ok\n");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
