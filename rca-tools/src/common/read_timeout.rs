//! Bodies that must keep coming: a response body read from an upstream
//! (`rca-proxy`) or a server (`rca-connect`) fails when its source sends
//! nothing for a while, as nginx's `proxy_read_timeout` does. Without it, a
//! source that stalls in the middle of a body holds the client's
//! connection, the connection to the source and its slot for as long as
//! the client waits, which may be for ever.
//!
//! The timer ([`IdleTimer`], shared with the request side's
//! [`crate::common::client_body`]) is armed only once the body has to
//! wait: a body that is there when asked for, as most short ones read with
//! their head, costs no timer.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Runs out when a body has waited for its limit without a frame, as
/// nginx's timeouts between two reads: the wait starts when the body first
/// has nothing (after its last frame).
#[derive(Debug)]
pub struct IdleTimer {
    limit: Duration,
    /// Made the first time the body waits, then moved along.
    sleep: Option<Pin<Box<Sleep>>>,
    /// A frame came since `sleep` was set: the next wait starts over.
    stale: bool,
}

impl IdleTimer {
    /// A timer for `limit`, not armed yet.
    #[must_use]
    pub const fn new(limit: Duration) -> Self {
        Self {
            limit,
            sleep: None,
            stale: false,
        }
    }

    /// The limit.
    #[must_use]
    pub const fn limit(&self) -> Duration {
        self.limit
    }

    /// A frame came: the next wait starts over. Reads no clock: a body
    /// whose frames keep coming costs a flag per frame.
    pub fn frame_came(&mut self) {
        self.stale = true;
    }

    /// The body is waiting: ready once it has waited for the limit since
    /// the first time it had nothing after its last frame.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.limit;
        let stale = std::mem::take(&mut self.stale);
        if let Some(sleep) = &mut self.sleep {
            if stale {
                sleep.as_mut().reset(Instant::now() + limit);
            }
            return sleep.as_mut().poll(cx);
        }
        self.sleep
            .insert(Box::pin(tokio::time::sleep(limit)))
            .as_mut()
            .poll(cx)
    }
}

/// Why a response body was cut short by [`ReadTimeout`].
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("sent nothing of the response body for {0:?}")]
pub struct ReadTimedOut(pub Duration);

impl ReadTimedOut {
    /// The read timeout behind `error`, if that is what failed: looked for
    /// along its sources and inside `io::Error`s.
    #[must_use]
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        crate::common::errors::find_in_chain(error)
    }
}

/// A response body that fails with [`ReadTimedOut`] (inside an
/// `io::Error` of kind `TimedOut`) when its source sends nothing for the
/// limit. The source is dropped then, which closes its connection.
#[derive(Debug)]
pub struct ReadTimeout<B> {
    /// `None` once timed out.
    inner: Option<B>,
    timer: IdleTimer,
}

impl<B> ReadTimeout<B> {
    /// `body`, failing when it sends nothing for `limit`.
    pub const fn new(body: B, limit: Duration) -> Self {
        Self {
            inner: Some(body),
            timer: IdleTimer::new(limit),
        }
    }
}

impl<B> ReadTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// The next frame if it is there now, without starting the wait (for a
    /// writer that looks before it flushes and then waits with
    /// `poll_frame`): nothing is armed for what is already buffered.
    pub fn frame_now(&mut self) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let frame = std::task::ready!(Pin::new(inner).poll_frame(&mut cx));
        self.timer.frame_came();
        Poll::Ready(frame.map(|frame| frame.map_err(into_io)))
    }
}

impl<B> Body for ReadTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.frame_came();
                Poll::Ready(frame.map(|frame| frame.map_err(into_io)))
            }
            Poll::Pending => {
                std::task::ready!(this.timer.poll_expired(cx));
                this.inner = None;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    ReadTimedOut(this.timer.limit()),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The body's own error as an `io::Error`: as it is if it is one.
fn into_io(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    match error.into().downcast::<io::Error>() {
        Ok(error) => *error,
        Err(other) => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    use super::{ReadTimedOut, ReadTimeout};

    /// A body fed every 59 s goes on; one that then stops fails 60 s after
    /// its last frame, and is over after that.
    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_fails_after_the_limit() {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
        let mut body = ReadTimeout::new(body, Duration::from_secs(60));
        let feeding = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(59)).await;
                if sender.send_data(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        for _ in 0..3 {
            let frame = body.frame().await.expect("a frame").expect("data");
            assert_eq!(frame.into_data().ok().as_deref(), Some(&b"x"[..]));
        }
        let started = tokio::time::Instant::now();
        let error = body.frame().await.expect("an end").expect_err("timed out");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        let error: &(dyn std::error::Error + 'static) = &error;
        assert_eq!(
            ReadTimedOut::in_chain(error).map(|timed_out| timed_out.0),
            Some(Duration::from_secs(60))
        );
        assert!(body.frame().await.is_none(), "over after the timeout");
        feeding.abort();
    }

    /// A body that is there when asked for arms no timer.
    #[tokio::test(start_paused = true)]
    async fn a_body_ready_at_once_arms_no_timer() {
        let mut body = ReadTimeout::new(
            http_body_util::Full::new(Bytes::from_static(b"ok\n")),
            Duration::from_secs(1),
        );
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().ok().as_deref(), Some(&b"ok\n"[..]));
        assert!(body.timer.sleep.is_none());
        assert!(body.frame().await.is_none());
    }

    /// Looking for a frame that is not there yet arms no timer either.
    #[tokio::test(start_paused = true)]
    async fn looking_without_waiting_arms_no_timer() {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
        let mut body = ReadTimeout::new(body, Duration::from_secs(1));
        assert!(body.frame_now().is_pending());
        assert!(body.timer.sleep.is_none());
        sender
            .send_data(Bytes::from_static(b"x"))
            .await
            .expect("sent");
        assert!(body.frame_now().is_ready());
        assert!(body.timer.sleep.is_none());
    }

    /// The body's own errors come through as they are.
    #[tokio::test]
    async fn the_body_s_own_error_comes_through() {
        let (sender, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
        let mut body = ReadTimeout::new(body, Duration::from_secs(60));
        sender.abort(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "cut",
        ));
        let error = body.frame().await.expect("an end").expect_err("failed");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
