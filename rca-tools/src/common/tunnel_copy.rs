//! A switched connection's bytes (a WebSocket) copied both ways between a
//! client and a server until either side closes or the server has sent
//! nothing for a read timeout, as nginx's `proxy_read_timeout` ends its
//! tunnels: an idle tunnel holds connections and slots for nothing, and
//! WebSocket servers that ping (most do, every 20 to 30 s) keep theirs
//! open. While the copy waits for the client to take what the server sent,
//! the server is not silent: the client's own send timeout (both tools
//! bound every write to a client) ends a tunnel whose client takes
//! nothing. `rca-proxy`'s tunnels to its upstream and `rca-connect`'s to
//! the sites its bots reach both run through it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Nothing came from the server for the read timeout while the copy
    /// waited for it.
    ServerSilent,
}

/// Copies bytes both ways between `client` and `server` until either side
/// closes or `server` sends nothing for `read_timeout` while the copy is not
/// waiting for `client` to take bytes (its writes must be bounded by a send
/// timeout of their own).
pub async fn copy_both_ways<C, S>(client: &mut C, server: S, read_timeout: Duration) -> Copied
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let last_read = Arc::new(AtomicU64::new(0));
    let client_full = Arc::new(AtomicBool::new(false));
    let mut server = Stamped {
        inner: server,
        started,
        last_read: Arc::clone(&last_read),
    };
    let mut client = Backpressured {
        inner: client,
        full: Arc::clone(&client_full),
    };
    let silent = async {
        loop {
            let read_at = started + Duration::from_millis(last_read.load(Ordering::Relaxed));
            let deadline = read_at + read_timeout;
            let now = Instant::now();
            if now >= deadline {
                if !client_full.load(Ordering::Relaxed) {
                    break;
                }
                // Waiting for the client, not the server: counted from now.
                last_read.store(millis_since(started), Ordering::Relaxed);
                continue;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut server) => Copied::Closed(copied),
        () = silent => Copied::ServerSilent,
    }
}

/// Milliseconds since `started`.
fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The client's side of a tunnel, noting whether its last write or flush
/// waited for the client to take bytes.
struct Backpressured<'a, C: ?Sized> {
    inner: &'a mut C,
    full: Arc<AtomicBool>,
}

impl<C: ?Sized> Backpressured<'_, C> {
    fn note<T>(&self, polled: Poll<T>) -> Poll<T> {
        self.full.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }
}

impl<C: AsyncRead + Unpin + ?Sized> AsyncRead for Backpressured<'_, C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(context, buf)
    }
}

impl<C: AsyncWrite + Unpin + ?Sized> AsyncWrite for Backpressured<'_, C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut *self.inner).poll_write(context, buf);
        self.note(polled)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut *self.inner).poll_flush(context);
        self.note(polled)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(context)
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
            self.last_read
                .store(millis_since(self.started), Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const READ_TIMEOUT: Duration = Duration::from_secs(1);

    /// A server that keeps sending to a client that takes nothing for a
    /// while is not silent: the tunnel stays up past the read timeout, the
    /// client gets every byte once it reads again, and the tunnel closes
    /// once the server has really sent nothing for the read timeout.
    #[tokio::test(start_paused = true)]
    async fn a_client_taking_nothing_leaves_the_server_not_silent() {
        let (mut client_app, mut client_side) = tokio::io::duplex(1024);
        let (server_side, mut server_app) = tokio::io::duplex(1024);
        let copy = tokio::spawn(async move {
            copy_both_ways(&mut client_side, server_side, READ_TIMEOUT).await
        });
        let sent = vec![b'x'; 64 * 1024];
        let sending = tokio::spawn({
            let sent = sent.clone();
            async move {
                server_app.write_all(&sent).await.expect("taken in the end");
                server_app
            }
        });
        tokio::time::sleep(READ_TIMEOUT * 5).await;
        assert!(!copy.is_finished(), "closed while the client was full");

        let mut received = vec![0; sent.len()];
        client_app
            .read_exact(&mut received)
            .await
            .expect("every byte");
        assert_eq!(received, sent);
        let _server_app = sending.await.expect("sent");
        let copied = tokio::time::timeout(READ_TIMEOUT * 3, copy)
            .await
            .expect("closed once the server said nothing")
            .expect("ran");
        assert!(matches!(copied, Copied::ServerSilent), "{copied:?}");
    }

    /// A server silent from the start is found so after the read timeout.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_closes_the_tunnel() {
        let (_client_app, mut client_side) = tokio::io::duplex(1024);
        let (server_side, _server_app) = tokio::io::duplex(1024);
        let copied = tokio::time::timeout(
            READ_TIMEOUT * 3,
            copy_both_ways(&mut client_side, server_side, READ_TIMEOUT),
        )
        .await
        .expect("closed");
        assert!(matches!(copied, Copied::ServerSilent), "{copied:?}");
    }
}
