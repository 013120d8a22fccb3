//! A client connection whose writes may wait only so long for the client to
//! read: [`SendTimeout`].

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a timeout too long to add to the clock stands for (about 30 years).
const FOR_EVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A stream whose writes (and flushes and shutdown) fail with
/// [`io::ErrorKind::TimedOut`] once one of them has waited `timeout` for
/// the peer to take bytes, as nginx's `send_timeout` counts it: from when a
/// write began to wait, not over the whole response. `serve` puts it under
/// TLS, on the TCP stream, so every socket write that makes progress ends a
/// wait (above TLS, rustls's buffer draining slowly would look like one long
/// wait). A client that stops reading would otherwise hold its
/// connection, its slot under the connection limit and whatever feeds its
/// response (a proxy's upstream connection) for as long as it likes;
/// neither hyper nor the read-side timeouts see it, since a response is in
/// flight.
///
/// Reads pass through. The timer is armed only when a write has to wait, so
/// a client that keeps up costs a branch per write.
#[derive(Debug)]
pub struct SendTimeout<IO> {
    io: IO,
    timeout: Duration,
    /// Armed while a write waits; kept between waits to be reset, not made
    /// again.
    stall: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl<IO> SendTimeout<IO> {
    /// `io`, whose writes may wait `timeout` each.
    pub fn new(io: IO, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stall: None,
            waiting: false,
        }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The stream inside, mutably.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The stream inside, without the timeout.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// Keeps `outcome` of a write, flush or shutdown: a ready one ends the
    /// wait; a pending one starts it (or goes on with it) and fails once it
    /// has lasted the timeout.
    fn keep<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.waiting = false;
            return outcome;
        }
        let timeout = self.timeout;
        let stall = match &mut self.stall {
            Some(stall) if self.waiting => stall,
            Some(stall) => {
                // As `sleep` does, a timeout too long to add waits for ever.
                let now = Instant::now();
                let deadline = now.checked_add(timeout).unwrap_or_else(|| now + FOR_EVER);
                stall.as_mut().reset(deadline);
                stall
            }
            stall @ None => stall.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        self.waiting = true;
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.timeout),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for SendTimeout<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SendTimeout<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_write(cx, buf);
        this.keep(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.keep(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_flush(cx);
        this.keep(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_shutdown(cx);
        this.keep(cx, outcome)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A peer that reads nothing makes a write fail after the timeout; one
    /// that reads in time lets every write through, however long in all.
    #[tokio::test(start_paused = true)]
    async fn a_write_waits_only_so_long() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut stream = SendTimeout::new(ours, Duration::from_secs(60));
        let chunk = [7u8; 1024];
        stream.write_all(&chunk).await.expect("fits the pipe");
        let began = Instant::now();
        let error = stream.write_all(&chunk).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(began.elapsed(), Duration::from_secs(60));

        let (ours, mut theirs_too) = tokio::io::duplex(1024);
        let mut stream = SendTimeout::new(ours, Duration::from_secs(60));
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut buf = [0; 512];
            loop {
                tokio::time::sleep(Duration::from_secs(59)).await;
                match theirs_too.read(&mut buf).await {
                    Ok(0) | Err(_) => return all,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
            }
        });
        for _ in 0..4 {
            stream.write_all(&chunk).await.expect("read in time");
        }
        stream.shutdown().await.expect("shut down");
        drop(stream);
        assert_eq!(reader.await.expect("reader").len(), 4 * chunk.len());
    }
}
