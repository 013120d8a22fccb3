//! A switched connection (a WebSocket) between the client and the
//! upstream: bytes copied both ways until either side closes, the client
//! may no longer use it, or the upstream has sent nothing for
//! `upstream.read_timeout_secs`.
//!
//! The last, as nginx's `proxy_read_timeout` does for its tunnels: an idle
//! tunnel holds an upstream connection and its client's share of them
//! ([`crate::proxy::back::slots`]) for nothing, and without it a few
//! addresses could hold every upstream connection for as long as they liked
//! with tunnels they never used (found by an outside attack). WebSocket
//! servers that ping (most do, every 20 to 30 s) keep theirs open.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What ends a tunnel before either side closes it, put in the upgrade
/// request's extensions: it makes, when the tunnel opens, a future that
/// resolves once the client may no longer use it (its certificate revoked,
/// denied or expired since, see [`crate::proxy::judge::revoked`]). A tunnel
/// carries no requests to be refused, so this is its only check.
#[derive(Clone)]
pub struct TunnelEnds(Arc<dyn Fn() -> TunnelEnd + Send + Sync>);

/// The future a [`TunnelEnds`] makes.
pub type TunnelEnd = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl TunnelEnds {
    /// Ends tunnels when the future `watch` makes resolves.
    pub fn new(watch: impl Fn() -> TunnelEnd + Send + Sync + 'static) -> Self {
        Self(Arc::new(watch))
    }

    /// The future for a tunnel that opens now.
    pub(crate) fn watch(&self) -> TunnelEnd {
        (self.0)()
    }
}

impl std::fmt::Debug for TunnelEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelEnds")
    }
}

/// Copies bytes both ways between the client's upgraded connection and the
/// upstream's switched one (after what the upstream sent with its 101)
/// until either side closes, `ends` says the client may no longer use it,
/// or the upstream sends nothing for `read_timeout`; then both connections
/// are closed.
pub(crate) async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    (upstream, early): (TcpStream, Bytes),
    ends: Option<TunnelEnds>,
    read_timeout: Duration,
) {
    let mut client = match client.await {
        Ok(client) => TokioIo::new(client),
        Err(error) => {
            log::debug!("upgrade failed: {error}");
            return;
        }
    };
    if let Err(error) = client.write_all(&early).await {
        log::debug!("upgraded connection ended: {error}");
        return;
    }
    let started = Instant::now();
    let last_read = Arc::new(AtomicU64::new(0));
    let mut upstream = Stamped {
        inner: upstream,
        started,
        last_read: Arc::clone(&last_read),
    };
    let ended = async {
        match ends {
            Some(ends) => ends.watch().await,
            None => std::future::pending().await,
        }
    };
    let silent = async {
        loop {
            let read_at = started + Duration::from_millis(last_read.load(Ordering::Relaxed));
            let deadline = read_at + read_timeout;
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(error) = copied {
                log::debug!("upgraded connection ended: {error}");
            }
        }
        () = ended => {}
        () = silent => {
            log::debug!("closed a tunnel: the upstream sent nothing for {read_timeout:?}");
        }
    }
}

/// The upstream's side of a tunnel, noting when it last gave bytes (in
/// milliseconds since `started`).
struct Stamped {
    inner: TcpStream,
    started: Instant,
    last_read: Arc<AtomicU64>,
}

impl AsyncRead for Stamped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let since = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_read.store(since, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}
