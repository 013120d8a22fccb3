//! The HTTP/1.1 connections to the one upstream: idle ones kept for the next
//! request, new ones opened when none is free.
//!
//! hyper-util's pooled client does this for any number of hosts: a map keyed
//! by scheme and authority, a checkout raced against a connect, a task per
//! request that waits for the connection to be free again. Here there is one
//! upstream, so the pool is a stack of idle senders behind a mutex, and a
//! connection goes back on it when its exchange is over and it is ready for
//! the next request. Under callgrind (keep-alive, 4 clients) this took the
//! proxy's handler from about 23,300 to 15,400 instructions per request, and
//! the whole request from about 62,700 to 54,900.
//!
//! An idle connection the upstream closed (its idle timeout) is skipped once
//! hyper has seen the close; a request that hyper hands back unsent (the
//! connection ended between the check and the send) goes out on a new one.
//! A request written to a connection whose close hyper had not seen yet
//! fails (`IncompleteMessage`) with hyper-util; here a GET, HEAD or OPTIONS
//! without a body is sent again on a new connection if its connection had
//! been idle for [`RESEND_AFTER_IDLE`] (only then is it copied first, so a
//! busy connection costs nothing), as nginx's `proxy_next_upstream error`
//! does.
//!
//! Connections are opened by hyper-util's `HttpConnector` (every resolved
//! address in turn, a connect timeout per attempt, `TCP_NODELAY`).
//!
//! The caller bounds how many exchanges run at once with a semaphore; a
//! connection keeps its permit ([`InUse::hold`]) until it is back on the
//! stack or gone, so no more connections than permits are ever open.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::Uri;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::OwnedSemaphorePermit;
use tower::ServiceExt as _;

/// How long an idle connection is kept unless `upstream.idle_timeout_secs`
/// says otherwise (hyper-util's pool's default, and reqwest's).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The shortest idle timeout: the reaper runs every half of it, and an
/// interval needs a period.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(10);

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

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No connection could be opened.
    #[error("cannot connect to {0}")]
    Connect(Uri, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP/1.1 exchange failed (the upstream closed the connection,
    /// sent something that is not HTTP, ...).
    #[error(transparent)]
    Exchange(#[from] hyper::Error),
}

/// A connection in use. Dropped (the caller keeps it until the response body
/// is done or dropped), it goes back to the pool once it is ready for another
/// request: at once if the exchange is over, else when hyper has finished it
/// (the rest of an abandoned body drained, a request body still uploading
/// after an early response); a connection hyper closes instead is gone.
#[derive(Debug)]
pub struct InUse {
    sender: Option<SendRequest<Body>>,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<Http1Pool>,
}

impl InUse {
    /// Keeps `permit` until the connection is back in the pool or gone.
    pub fn hold(&mut self, permit: OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }

    /// The connection is not reused (it was switched to another protocol).
    pub fn forget(mut self) {
        self.sender = None;
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        // Released after the connection is back (or gone): a request waiting
        // for a permit then finds it idle instead of opening another.
        let permit = self.permit.take();
        let Some(mut sender) = self.sender.take() else {
            return;
        };
        if sender.is_ready() {
            self.pool.put(sender);
        } else if !sender.is_closed() {
            let pool = Arc::clone(&self.pool);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(async move {
                    if sender.ready().await.is_ok() {
                        pool.put(sender);
                    }
                    drop(permit);
                }));
            }
        }
    }
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
    /// connection, or on a new one if none is idle or the idle one turns out
    /// closed (see the module's doc for when a request is sent again).
    ///
    /// # Errors
    ///
    /// [`PoolError`]: no connection, or the exchange failed.
    pub async fn send(
        self: &Arc<Self>,
        request: http::Request<Body>,
    ) -> Result<(http::Response<Incoming>, InUse), PoolError> {
        let request = match self.take_idle() {
            Some((mut sender, idle_for)) => {
                let copy = (idle_for >= RESEND_AFTER_IDLE)
                    .then(|| resendable(&request))
                    .flatten();
                match sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, self.in_use(sender))),
                    Err(mut error) => match (error.take_message(), copy) {
                        // Not sent: the connection had ended.
                        (Some(request), _) => request,
                        // Written, but the connection closed before any
                        // response (most likely the upstream's idle close,
                        // its FIN not yet read): a safe request may be sent
                        // again (RFC 9110 section 9.2.2).
                        (None, Some(copy)) if error.error().is_incomplete_message() => copy,
                        (None, _) => return Err(error.into_error().into()),
                    },
                }
            }
            None => request,
        };
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await?;
        Ok((response, self.in_use(sender)))
    }

    fn in_use(self: &Arc<Self>, sender: SendRequest<Body>) -> InUse {
        InUse {
            sender: Some(sender),
            permit: None,
            pool: Arc::clone(self),
        }
    }

    /// The most recently used idle connection that is still open and free,
    /// and how long it was idle; closed ones on the way are dropped.
    fn take_idle(&self) -> Option<(SendRequest<Body>, Duration)> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while let Some(candidate) = idle.pop() {
            if now.duration_since(candidate.since) >= self.idle_timeout {
                // The newest has expired, so have all below it.
                idle.clear();
                return None;
            }
            if candidate.sender.is_ready() {
                return Some((candidate.sender, now.duration_since(candidate.since)));
            }
        }
        None
    }

    fn put(self: &Arc<Self>, sender: SendRequest<Body>) {
        // `put` runs in `InUse`'s drop, which may come outside a runtime
        // (then there is nothing to reap for, and `tokio::spawn` would panic).
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
        idle.push(Idle { sender, since: now });
    }

    /// Drops the connections idle for `idle_timeout` (a prefix of `idle`).
    /// Closed ones elsewhere hold no socket; `take_idle` skips them.
    fn drop_expired(&self, idle: &mut Vec<Idle>, now: Instant) {
        let expired =
            idle.partition_point(|old| now.duration_since(old.since) >= self.idle_timeout);
        idle.drain(..expired);
    }

    async fn connect(&self) -> Result<SendRequest<Body>, PoolError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(|error| PoolError::Connect(self.target.clone(), error.into()))?;
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                log::debug!("upstream connection ended: {error}");
            }
        });
        Ok(sender)
    }
}

/// Idle for this long, a connection may have been closed by the upstream's
/// own idle timeout (commonly 5 s or more) just before a request is written
/// to it; such a request, if it can be sent again, is copied first.
pub const RESEND_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A copy of `request` for a second try on a new connection, if that is
/// safe: a GET, HEAD or OPTIONS (safe methods, RFC 9110 section 9.2.1)
/// without a body and not an upgrade. nginx's `proxy_next_upstream error`
/// resends the same ones.
fn resendable(request: &http::Request<Body>) -> Option<http::Request<Body>> {
    use http::Method;
    use hyper::body::Body as _;
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe
        || !request.body().is_end_stream()
        || request.headers().contains_key(http::header::UPGRADE)
    {
        return None;
    }
    let mut copy = http::Request::new(Body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
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
        let (response, in_use) = pool.send(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        drop(in_use);
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The upstream closes each connection after its response: the pool
    /// does not reuse it once hyper has seen the close, it opens another.
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
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let address = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for (number, tcp) in listener.incoming().enumerate() {
                let Ok(mut tcp) = tcp else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                if !read_head(&mut tcp) {
                    continue;
                }
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
                if number == 0 {
                    let _ = read_head(&mut tcp);
                }
            }
        });
        (address, accepted)
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
    /// idle for [`RESEND_AFTER_IDLE`], and the upstream closes it unanswered.
    async fn second_request_meets_a_close(
        second: http::Request<Body>,
    ) -> (Result<(http::Response<Incoming>, InUse), PoolError>, usize) {
        let (address, accepted) = upstream_closing_on_the_second_request();
        let pool = pool(address, Duration::from_secs(90));
        assert_eq!(get(&pool).await.expect("first"), "ok\n");
        tokio::time::sleep(RESEND_AFTER_IDLE + Duration::from_millis(100)).await;
        let result = pool.send(second).await;
        (result, accepted.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_get_written_to_a_connection_closed_meanwhile_is_sent_again() {
        let (result, accepted) =
            second_request_meets_a_close(request(http::Method::GET, Body::empty())).await;
        let (response, _in_use) = result.expect("sent again on a new connection");
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
            let copy = resendable(&original).expect("resendable");
            assert_eq!(copy.method(), original.method());
            assert_eq!(copy.uri(), original.uri());
            assert_eq!(copy.version(), original.version());
            assert_eq!(copy.headers(), original.headers());
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(
                resendable(&request(method.clone(), Body::empty())).is_none(),
                "{method}"
            );
        }
        assert!(
            resendable(&request(Method::GET, Body::from("x"))).is_none(),
            "a body"
        );
        let mut upgrade = request(Method::GET, Body::empty());
        upgrade
            .headers_mut()
            .insert(http::header::UPGRADE, "websocket".parse().expect("value"));
        assert!(resendable(&upgrade).is_none(), "an upgrade");
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
}
