//! A client's request body on its way upstream (`rca-proxy`'s and
//! `rca-connect`'s), with nginx's
//! `client_body_timeout`: a body that sends nothing for that long fails,
//! and so does one the client's framing broke. Either failure is the
//! client's, so it is told apart from the upstream's (400 or 408, not 502)
//! wherever the exchange reports it ([`ClientBodyError::in_chain`]).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
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
}

impl ClientBodyError {
    /// The client-body error behind `error`, if that is what failed:
    /// looked for along its sources and inside `io::Error`s.
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        crate::common::errors::find_in_chain(error)
    }
}

/// A request body read with a timeout between frames.
pub struct ClientBody {
    inner: Body,
    /// Armed when the body is first read: the wait for an upstream
    /// connection comes before, and a client that sent `Expect:
    /// 100-continue` sends nothing until then.
    idle: IdleTimer,
}

impl ClientBody {
    /// `body`, failing when it sends nothing for `timeout`. A body that is
    /// over already is returned as it is (no timer for bodiless requests).
    pub fn wrap(body: Body, timeout: Duration) -> Body {
        if body.is_end_stream() {
            return body;
        }
        Body::new(Self {
            inner: body,
            idle: IdleTimer::new(timeout),
        })
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.frame_came();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(ClientBodyError::Malformed(error.to_string()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                std::task::ready!(self.idle.poll_expired(cx));
                Poll::Ready(Some(Err(ClientBodyError::TimedOut(self.idle.limit()))))
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

    use super::{ClientBody, ClientBodyError};

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_fails_after_the_timeout() {
        let (mut sender, body) =
            http_body_util::channel::Channel::<bytes::Bytes, std::io::Error>::new(1);
        let mut body = ClientBody::wrap(Body::new(body), Duration::from_secs(60));
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
        let body = ClientBody::wrap(Body::empty(), Duration::from_secs(1));
        assert!(hyper::body::Body::is_end_stream(&body));
    }
}
