//! A switched connection's bytes (a WebSocket) copied both ways between a
//! client and a server until either side closes or the server has sent
//! nothing for a read timeout, as nginx's `proxy_read_timeout` ends its
//! tunnels: an idle tunnel holds connections and slots for nothing, and
//! WebSocket servers that ping (most do, every 20 to 30 s) keep theirs
//! open. `rca-proxy`'s tunnels to its upstream and `rca-connect`'s to the
//! sites its bots reach both run through it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How [`copy_both_ways`] ended.
#[derive(Debug)]
pub enum Copied {
    /// Either side closed (or failed), with the bytes each way if cleanly.
    Closed(std::io::Result<(u64, u64)>),
    /// Nothing came from the server for the read timeout: it sent
    /// nothing, or the client took nothing, so that the copy stopped
    /// reading from the server.
    ServerSilent,
}

/// Copies bytes both ways between `client` and `server` until either side
/// closes or `server` sends nothing for `read_timeout`.
pub async fn copy_both_ways<C, S>(client: &mut C, server: S, read_timeout: Duration) -> Copied
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let last_read = Arc::new(AtomicU64::new(0));
    let mut server = Stamped {
        inner: server,
        started,
        last_read: Arc::clone(&last_read),
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
        copied = tokio::io::copy_bidirectional(client, &mut server) => Copied::Closed(copied),
        () = silent => Copied::ServerSilent,
    }
}

/// The server's side of a tunnel, noting when it last gave bytes (in
/// milliseconds since `started`).
struct Stamped<S> {
    inner: S,
    started: Instant,
    last_read: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<S> {
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
