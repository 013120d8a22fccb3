//! HTTP/2 responses the client has stopped taking: [`StalledStreams`].
//!
//! A client that stops reading an HTTP/1.1 response stops reading its
//! connection, and [`SendTimeout`](crate::SendTimeout) sees a write wait.
//! Over HTTP/2 a client can go on reading the connection (and answering
//! pings) while it grants one stream no more flow-control window: hyper
//! then stops asking that response's body for data, and nothing is written
//! that could wait. So each response body of an HTTP/2 connection is
//! watched instead. hyper takes a frame from a body, holds it until the
//! stream has window to send it, and only then asks for the next: a body
//! not asked for a frame for a send timeout (since hyper got the response,
//! or since the last frame it took) waits for the client, and its whole
//! connection is closed (hyper gives no way to reset just that stream). A
//! body that waits for its own source (a long poll, a quiet event stream)
//! is being asked, so it is not stalled, however long it is quiet.
//!
//! One asking covers one frame: a body of large frames on a connection
//! whose bandwidth many streams share can go a long time between askings
//! while the client reads steadily (64 KiB frames, 20 streams, 20 KB/s: a
//! minute). rca-proxy's frames are what one read from the upstream gives
//! (about 8 KiB).
//!
//! `serve` watches every HTTP/2 connection it serves; a server of its own
//! HTTP/2 connections (`rca-connect`'s tunnels) watches its response
//! bodies with [`StalledStreams::watch`] and closes the connection once
//! [`StalledStreams::found`] completes.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Frame, SizeHint};

/// The response bodies of one HTTP/2 connection, each with when hyper got it
/// or last took a frame from it, while it has not asked for the next.
#[derive(Debug)]
pub struct StalledStreams {
    started: Instant,
    timeout: Duration,
    bodies: Mutex<Bodies>,
}

/// The bodies watched, some of them gone.
#[derive(Debug, Default)]
struct Bodies {
    watched: Vec<Weak<AtomicU64>>,
    /// How many were left when the gone ones were last forgotten: at twice
    /// as many, they are forgotten again, so a busy connection's list stays
    /// within twice its live bodies (plus a few) between checks.
    kept: usize,
}

impl Bodies {
    fn forget_gone(&mut self) {
        self.watched.retain(|body| body.strong_count() > 0);
        self.kept = self.watched.len();
    }
}

impl StalledStreams {
    /// Watches the bodies of one connection, each stalled once not asked
    /// for a frame for `timeout` (the send timeout).
    #[must_use]
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            timeout,
            bodies: Mutex::new(Bodies::default()),
        })
    }

    /// How often to look for a stalled body: a quarter of the timeout, so a
    /// stall is found at most a quarter late.
    #[must_use]
    pub fn period(&self) -> Duration {
        (self.timeout / 4).max(Duration::from_millis(100))
    }

    /// `body`, watched from now: hyper is to ask for its first frame.
    pub fn watch<B>(self: &Arc<Self>, body: B) -> Watched<B> {
        let handed = Arc::new(AtomicU64::new(millis_since(self.started)));
        let mut bodies = self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        bodies.watched.push(Arc::downgrade(&handed));
        if bodies.watched.len() >= 2 * bodies.kept.max(32) {
            bodies.forget_gone();
        }
        drop(bodies);
        Watched {
            body,
            watch: Some(Watch {
                handed,
                started: self.started,
            }),
        }
    }

    /// Completes once a body has waited the timeout for the client to take
    /// more, looking every [`StalledStreams::period`]: then the connection
    /// is to be closed.
    pub async fn found(&self) {
        let mut looks = tokio::time::interval(self.period());
        loop {
            looks.tick().await;
            if self.any_stalled() {
                return;
            }
        }
    }

    /// Whether a body has waited the timeout for the client to take more;
    /// forgets the bodies that are gone.
    #[must_use]
    pub fn any_stalled(&self) -> bool {
        let now = millis_since(self.started);
        let timeout = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut bodies = self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        bodies.forget_gone();
        bodies
            .watched
            .iter()
            .filter_map(Weak::upgrade)
            .any(|handed| {
                let handed = handed.load(Ordering::Relaxed);
                handed != NOT_WAITING && now.saturating_sub(handed) >= timeout
            })
    }
}

/// A body not waiting for hyper to ask for more.
const NOT_WAITING: u64 = 0;

/// Milliseconds since `started`, never [`NOT_WAITING`].
fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

#[derive(Debug)]
struct Watch {
    handed: Arc<AtomicU64>,
    started: Instant,
}

pin_project_lite::pin_project! {
    /// A response body, watched on HTTP/2 ([`StalledStreams::watch`]) or
    /// passed through as it is ([`Watched::unwatched`]).
    #[derive(Debug)]
    pub struct Watched<B> {
        #[pin]
        body: B,
        watch: Option<Watch>,
    }
}

impl<B> Watched<B> {
    /// `body` as it is (HTTP/1.1, where [`SendTimeout`](crate::SendTimeout)
    /// sees a client that stops reading).
    pub(crate) fn unwatched(body: B) -> Self {
        Self { body, watch: None }
    }
}

impl<B: Body> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if let Some(watch) = this.watch {
            let handed = match polled {
                Poll::Ready(Some(Ok(_))) => millis_since(watch.started),
                _ => NOT_WAITING,
            };
            watch.handed.store(handed, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    use super::*;

    /// A body hyper never asked, or took a frame from and did not ask again,
    /// is stalled once the timeout has passed; one being asked (waiting for
    /// its source), one that ended and one that is gone are not.
    #[tokio::test]
    async fn a_body_not_asked_for_more_is_stalled_after_the_timeout() {
        let streams = StalledStreams::new(Duration::from_millis(50));
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        let mut watched = streams.watch(body);
        assert!(!streams.any_stalled(), "not yet");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(streams.any_stalled(), "never asked for 60 ms");

        sender
            .send_data(Bytes::from_static(b"taken"))
            .await
            .expect("open");
        let frame = watched.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"taken")));
        assert!(!streams.any_stalled(), "not yet");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(streams.any_stalled(), "not asked for 60 ms");

        // Asked again, it waits for its source: not stalled, however long.
        let asked = tokio::time::timeout(Duration::from_millis(60), watched.frame()).await;
        assert!(asked.is_err(), "nothing to give");
        assert!(!streams.any_stalled());

        // Ended; then gone.
        drop(sender);
        assert!(watched.frame().await.is_none());
        assert!(!streams.any_stalled());
        drop(watched);
        assert!(!streams.any_stalled());
        assert!(streams
            .bodies
            .lock()
            .expect("not poisoned")
            .watched
            .is_empty());
    }

    /// Bodies that are gone are forgotten as the list grows, not only at
    /// each check.
    #[test]
    fn the_list_of_bodies_stays_near_the_live_ones() {
        let streams = StalledStreams::new(Duration::from_secs(60));
        let live: Vec<_> = (0..10).map(|_| streams.watch(())).collect();
        for _ in 0..10_000 {
            drop(streams.watch(()));
        }
        let listed = streams.bodies.lock().expect("not poisoned").watched.len();
        assert!(listed < 2 * 32 + live.len(), "{listed} listed");
    }
}
