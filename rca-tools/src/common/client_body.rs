//! A client's request body on its way upstream (`rca-proxy`'s and
//! `rca-connect`'s), with nginx's
//! `client_body_timeout`: a body that sends nothing for that long fails,
//! and so does one the client's framing broke, and one longer than a limit
//! if there is one (nginx's `client_max_body_size`). Each failure is the
//! client's, so it is told apart from the upstream's (400, 408 or 413, not
//! 502) wherever the exchange reports it ([`ClientBodyError::in_chain`]),
//! or, where it does not (hyper's HTTP/2 client only logs a request body's
//! error and resets the stream), through a [`ClientBodyFailure`].
//!
//! A body that is not read to its end (the upstream was unreachable or too
//! slow, the proxy answered itself) is read on and thrown away for a while
//! (`discard_later`), as nginx discards one: a client still sending it
//! then reads the answer, where closing with its bytes unread would make
//! the kernel reset the connection and lose the answer.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Frame, SizeHint};

use crate::common::read_timeout::IdleTimer;

/// Why a client's request body did not arrive whole.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// It broke off or was malformed (a broken chunk, a reset stream).
    #[error("the request body could not be read: {0}")]
    Malformed(String),
    /// Nothing came for the body timeout.
    #[error("the client sent none of the request body for {0:?}")]
    TimedOut(Duration),
    /// It went on past this many bytes.
    #[error("the request body is longer than the {0} bytes allowed")]
    TooLarge(u64),
}

impl ClientBodyError {
    /// The client-body error behind `error`, if that is what failed:
    /// looked for along its sources and inside `io::Error`s.
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        crate::common::errors::find_in_chain(error)
    }
}

/// Why a [`ClientBody`] failed, kept for whoever reads the exchange's
/// outcome; clones share it.
#[derive(Clone, Debug, Default)]
pub struct ClientBodyFailure(Arc<OnceLock<ClientBodyError>>);

impl ClientBodyFailure {
    /// The body's failure, if it failed.
    #[must_use]
    pub fn get(&self) -> Option<&ClientBodyError> {
        self.0.get()
    }
}

/// How long, and how much of, a body that was not read to its end is read
/// on and thrown away (see `discard_later`).
pub const DISCARD_TIME: Duration = Duration::from_secs(10);
/// See [`DISCARD_TIME`].
pub const DISCARD_BYTES: u64 = 64 * 1024 * 1024;

/// Whether the body of the request with `parts` may be read and thrown
/// away when it is not forwarded ([`Discard`]).
#[must_use]
pub fn discardable(parts: &http::request::Parts) -> Discard {
    if parts.version >= http::Version::HTTP_2 {
        // A stream is reset alone, not the connection.
        return Discard::Never;
    }
    let waits_for_continue = parts
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_for_continue {
        Discard::OnceAskedFor
    } else {
        Discard::Always
    }
}

/// When a request body not read to its end is read on and thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// An HTTP/1.x body the client sends without waiting.
    Always,
    /// An HTTP/1.x body the client sends only after `100 Continue`, which
    /// the first read of the body asks for: once read, it is on its way;
    /// never read, reading it would ask for it.
    OnceAskedFor,
    /// An HTTP/2 body.
    Never,
}

/// Reads `body` and throws it away on a task of its own, for up to
/// [`DISCARD_TIME`] and [`DISCARD_BYTES`]; nothing if it is over already
/// or no runtime runs.
fn discard_later(mut body: Body) {
    if body.is_end_stream() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    drop(runtime.spawn(async move {
        let _ = tokio::time::timeout(DISCARD_TIME, async move {
            let mut read = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                let length = frame.data_ref().map_or(0, Bytes::len);
                read = read.saturating_add(u64::try_from(length).unwrap_or(u64::MAX));
                if read > DISCARD_BYTES {
                    return;
                }
            }
        })
        .await;
    }));
}

/// A request body read with a timeout between frames.
pub struct ClientBody {
    inner: Body,
    /// Armed when the body is first read: the wait for an upstream
    /// connection comes before, and a client that sent `Expect:
    /// 100-continue` sends nothing until then.
    idle: IdleTimer,
    /// Bytes the body may have; `None`: any.
    max_bytes: Option<u64>,
    received: u64,
    failure: ClientBodyFailure,
    /// Whether what is left when it is dropped is read and thrown away
    /// ([`discardable`]).
    discard: Discard,
    /// Whether it was read (so asked for, after `Expect: 100-continue`).
    polled: bool,
    /// Whether it came to its end (hyper's body may not say so itself).
    ended: bool,
}

impl ClientBody {
    /// `body`, failing when it sends nothing for `timeout` or more than
    /// `max_bytes` in all; dropped before its end, it is read on and
    /// thrown away as `discard` says ([`discardable`]). A body that is
    /// over already is returned as it is (no timer, nothing allocated for
    /// bodiless requests). Also where its failure will be recorded, if it
    /// can fail.
    pub fn watched(
        body: Body,
        timeout: Duration,
        max_bytes: Option<u64>,
        discard: Discard,
    ) -> (Body, Option<ClientBodyFailure>) {
        if body.is_end_stream() {
            return (body, None);
        }
        let failure = ClientBodyFailure::default();
        let body = Body::new(Self {
            inner: body,
            idle: IdleTimer::new(timeout),
            max_bytes,
            received: 0,
            failure: failure.clone(),
            discard,
            polled: false,
            ended: false,
        });
        (body, Some(failure))
    }

    /// `error`, recorded.
    fn fail(&self, error: ClientBodyError) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let _ = self.failure.0.set(error.clone());
        Poll::Ready(Some(Err(error)))
    }

    /// Whether `body` says it is longer than `max_bytes`: its declared
    /// length (`Content-Length`) is, so it can be refused unread.
    #[must_use]
    pub fn declared_too_large(body: &Body, max_bytes: Option<u64>) -> bool {
        max_bytes.is_some_and(|max| body.size_hint().lower() > max)
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        // Not after a broken framing or a stall: nothing more will come.
        let failed_for_good = matches!(
            self.failure.get(),
            Some(ClientBodyError::Malformed(_) | ClientBodyError::TimedOut(_))
        );
        let discard = match self.discard {
            Discard::Always => true,
            Discard::OnceAskedFor => self.polled,
            Discard::Never => false,
        };
        if discard && !self.ended && !failed_for_good {
            discard_later(std::mem::take(&mut self.inner));
        }
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        self.polled = true;
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.frame_came();
                if let (Some(max), Some(data)) = (self.max_bytes, frame.data_ref()) {
                    let length = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    self.received = self.received.saturating_add(length);
                    if self.received > max {
                        return self.fail(ClientBodyError::TooLarge(max));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.fail(ClientBodyError::Malformed(error.to_string()))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                std::task::ready!(self.idle.poll_expired(cx));
                self.fail(ClientBodyError::TimedOut(self.idle.limit()))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use http_body_util::BodyExt as _;

    use super::{ClientBody, ClientBodyError, Discard};

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_fails_after_the_timeout() {
        let (mut sender, body) =
            http_body_util::channel::Channel::<bytes::Bytes, std::io::Error>::new(1);
        let mut body = ClientBody::watched(
            Body::new(body),
            Duration::from_secs(60),
            None,
            Discard::Never,
        )
        .0;
        let feeding = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(59)).await;
                if sender
                    .send_data(bytes::Bytes::from_static(b"x"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Then nothing, with the sender kept.
            std::future::pending::<()>().await;
        });
        for _ in 0..3 {
            let frame = body.frame().await.expect("a frame").expect("data");
            assert_eq!(frame.into_data().ok().as_deref(), Some(&b"x"[..]));
        }
        let error = body.frame().await.expect("an end").expect_err("timed out");
        let error: &(dyn std::error::Error + 'static) = &*error.into_inner();
        assert!(
            matches!(
                ClientBodyError::in_chain(error),
                Some(ClientBodyError::TimedOut(_))
            ),
            "{error}"
        );
        feeding.abort();
    }

    #[test]
    fn client_body_errors_are_found_inside_io_errors() {
        let inner = std::io::Error::other(ClientBodyError::Malformed("bad chunk".into()));
        let outer = std::io::Error::other(inner);
        assert!(matches!(
            ClientBodyError::in_chain(&outer),
            Some(ClientBodyError::Malformed(_))
        ));
        let unrelated = std::io::Error::other("the upstream reset");
        assert!(ClientBodyError::in_chain(&unrelated).is_none());
    }

    #[test]
    fn a_bodiless_request_gets_no_timer() {
        let body =
            ClientBody::watched(Body::empty(), Duration::from_secs(1), None, Discard::Never).0;
        assert!(hyper::body::Body::is_end_stream(&body));
    }

    /// A body may have up to the limit: the byte past it fails.
    #[tokio::test]
    async fn a_body_past_the_limit_fails() {
        for (sent, over) in [(10, false), (11, true)] {
            let (mut sender, body) =
                http_body_util::channel::Channel::<bytes::Bytes, std::io::Error>::new(4);
            let mut body = ClientBody::watched(
                Body::new(body),
                Duration::from_secs(60),
                Some(10),
                Discard::Never,
            )
            .0;
            tokio::spawn(async move {
                let _ = sender.send_data(bytes::Bytes::from(vec![b'x'; 6])).await;
                let _ = sender
                    .send_data(bytes::Bytes::from(vec![b'x'; sent - 6]))
                    .await;
            });
            let mut failed = None;
            while let Some(frame) = body.frame().await {
                if let Err(error) = frame {
                    failed = Some(error);
                    break;
                }
            }
            let error = failed.map(|error| {
                let error: &(dyn std::error::Error + 'static) = &*error.into_inner();
                ClientBodyError::in_chain(error).cloned()
            });
            assert_eq!(
                matches!(error, Some(Some(ClientBodyError::TooLarge(10)))),
                over,
                "{sent} bytes: {error:?}"
            );
        }
    }
}
