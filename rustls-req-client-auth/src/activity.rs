//! The requests in flight on one connection, for its idle timeout. HTTP/2
//! has no request head to time between requests, so a connection counts as
//! idle once no request has been in flight for the whole timeout. A request
//! is in flight until its response body ends ([`WhileOpen`]), so a long
//! download or event stream never makes its connection idle. [`serve`]
//! uses it for every connection; a server of its own HTTP/2 connections
//! (`rca-connect`'s tunnels) can use it the same way.
//!
//! [`serve`]: crate::serve

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The requests in flight on one connection.
#[derive(Debug)]
pub struct ConnectionActivity {
    in_flight: AtomicUsize,
    /// Counts requests begun, so an idle period is measured from the last one.
    begun: AtomicUsize,
    /// When a request last began or the last one in flight ended, in
    /// milliseconds since `made`: where an idle period starts.
    last_active: AtomicU64,
    /// When this was made (the connection's start): what `last_active`
    /// counts from, and where the first idle period starts.
    made: Instant,
    settled: Notify,
    /// Told when the first request begins.
    first: Notify,
}

impl Default for ConnectionActivity {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            begun: AtomicUsize::new(0),
            last_active: AtomicU64::new(0),
            made: Instant::now(),
            settled: Notify::new(),
            first: Notify::new(),
        }
    }
}

/// One request in flight, until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<ConnectionActivity>);

impl ConnectionActivity {
    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin(activity: &Arc<Self>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.note_active();
        if activity.begun.fetch_add(1, Ordering::SeqCst) == 0 {
            activity.first.notify_waiters();
        }
        InFlight(Arc::clone(activity))
    }

    /// Completes once a request has begun on the connection.
    pub async fn begun_one(&self) {
        // Registered before the check, so the first request beginning in
        // between still wakes it.
        let first = self.first.notified();
        if self.begun.load(Ordering::SeqCst) == 0 {
            first.await;
        }
    }

    /// Completes once no request is in flight.
    pub async fn quiet(&self) {
        loop {
            // Registered before the check, as in `idle_for`.
            let settled = self.settled.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Completes once no request has been in flight for `timeout`, counted
    /// from when the last one ended (or, with none yet, from when the
    /// connection's activity was made). One waiter at a time.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            self.quiet().await;
            let begun = self.begun.load(Ordering::SeqCst);
            let since = self.last_active.load(Ordering::SeqCst);
            // From the last activity, not from this turn: a request begun
            // and ended during the wait before made the next wait a whole
            // timeout again, so a connection could stay idle for nearly two
            // (found by an outside trial).
            // A timeout too long to add (`Duration::MAX` for "never") waits
            // for ever instead of overflowing.
            let idle_at = (self.made + Duration::from_millis(since)).checked_add(timeout);
            match idle_at {
                Some(idle_at) => tokio::time::sleep_until(idle_at).await,
                None => std::future::pending().await,
            }
            if self.in_flight.load(Ordering::SeqCst) == 0
                && self.begun.load(Ordering::SeqCst) == begun
                && self.last_active.load(Ordering::SeqCst) == since
            {
                return;
            }
        }
    }

    /// Notes now as the last activity.
    fn note_active(&self) {
        let since = u64::try_from(self.made.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(since, Ordering::SeqCst);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.note_active();
            // Every waiter: `idle_for` and `quiet` may both wait. Each
            // registers before it looks, so none misses this.
            self.0.settled.notify_waiters();
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight ([`InFlight`]) until
    /// it is dropped: hyper drops it once it has sent the last frame, or when
    /// the client resets the stream or closes the connection.
    #[derive(Debug)]
    pub struct WhileOpen<B> {
        #[pin]
        body: B,
        _in_flight: InFlight,
    }
}

impl<B> WhileOpen<B> {
    /// `body`, with its request kept in flight while it is open.
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body> Body for WhileOpen<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(context)
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
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_once_no_request_was_in_flight_for_the_whole_timeout() {
        let activity = Arc::new(ConnectionActivity::default());
        let timeout = Duration::from_secs(10);
        let request = ConnectionActivity::begin(&activity);
        let idle = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.idle_for(timeout).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "idle while a request was in flight");
        drop(request);
        tokio::time::sleep(Duration::from_secs(6)).await;
        // A request begun and ended within the timeout starts it again.
        drop(ConnectionActivity::begin(&activity));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!idle.is_finished(), "idle 6 s after a request");
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert!(idle.is_finished(), "not idle 21 s after the last request");
    }

    /// The idle time counts from the last request's end: a request begun
    /// and ended while the timeout ran does not make the next wait a whole
    /// timeout from when the first wait ended.
    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_requests_end() {
        let activity = Arc::new(ConnectionActivity::default());
        let timeout = Duration::from_secs(10);
        let idle = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.idle_for(timeout).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let request = ConnectionActivity::begin(&activity);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(request);
        tokio::time::sleep(Duration::from_millis(9_500)).await;
        assert!(!idle.is_finished(), "idle 9.5 s after the request ended");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            idle.is_finished(),
            "not idle 10.5 s after the request ended"
        );
    }

    /// A timeout of `Duration::MAX` (never idle) waits for ever instead of
    /// overflowing the deadline.
    #[tokio::test(start_paused = true)]
    async fn an_endless_timeout_never_ends() {
        let activity = ConnectionActivity::default();
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), activity.idle_for(Duration::MAX)).await;
        assert!(waited.is_err(), "idle within an hour of an endless timeout");
    }

    /// `begun_one` waits for the first request, and does not wait once one
    /// has begun, ended or not.
    #[tokio::test(start_paused = true)]
    async fn begun_one_waits_for_the_first_request_only() {
        let activity = Arc::new(ConnectionActivity::default());
        let first = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.begun_one().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!first.is_finished(), "no request has begun");
        drop(ConnectionActivity::begin(&activity));
        tokio::time::timeout(Duration::from_secs(1), first)
            .await
            .expect("woken by the first request")
            .expect("task");
        tokio::time::timeout(Duration::from_secs(1), activity.begun_one())
            .await
            .expect("a request has begun before");
    }

    /// `quiet` waits while a request is in flight, and wakes beside
    /// `idle_for` when the last one ends.
    #[tokio::test(start_paused = true)]
    async fn quiet_waits_for_the_requests_in_flight() {
        let activity = Arc::new(ConnectionActivity::default());
        tokio::time::timeout(Duration::from_secs(1), activity.quiet())
            .await
            .expect("nothing in flight");
        let request = ConnectionActivity::begin(&activity);
        let idle = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.idle_for(Duration::from_secs(10)).await }
        });
        let quiet = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.quiet().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!quiet.is_finished(), "quiet while a request was in flight");
        drop(request);
        tokio::time::timeout(Duration::from_secs(1), quiet)
            .await
            .expect("woken when the request ended")
            .expect("task");
        tokio::time::timeout(Duration::from_secs(11), idle)
            .await
            .expect("idle_for woken too")
            .expect("task");
    }
}
