//! How many requests an HTTP/2 client may cancel before their response
//! (`RST_STREAM` after the request was handed to the service) before its
//! connection is closed: the "rapid reset" attack (CVE-2023-44487).
//!
//! h2's own limit counts only streams reset before they were accepted;
//! hyper accepts a stream at once and hands it to the service, so a client
//! that opens and resets streams as fast as it can costs the service a
//! request each (for a proxy, an upstream exchange) and is never stopped.
//! Here every service future dropped before it answered counts against
//! fixed windows of [`CancelledRequests::within`] (so up to twice
//! [`CancelledRequests::max`] can fall on either side of a window's end);
//! one over [`CancelledRequests::max`] in a window ends the connection: a
//! GOAWAY, and a second later the connection is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The limit: at most `max` cancelled requests in each window of `within`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CancelledRequests {
    pub(crate) max: u32,
    pub(crate) within: Duration,
}

/// One connection's count against [`CancelledRequests`].
#[derive(Debug)]
pub(crate) struct CancelBudget {
    limit: CancelledRequests,
    /// The current window's start and its cancellations so far.
    window: Mutex<(Instant, u32)>,
    exhausted: AtomicBool,
    notify: Notify,
}

impl CancelBudget {
    pub(crate) fn new(limit: CancelledRequests) -> Arc<Self> {
        Arc::new(Self {
            limit,
            window: Mutex::new((Instant::now(), 0)),
            exhausted: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }

    /// Counts one request cancelled before its response.
    fn cancelled(&self) {
        let now = Instant::now();
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(window.0) >= self.limit.within {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        if window.1 > self.limit.max && !self.exhausted.swap(true, Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }

    /// Completes once the client has cancelled too many requests.
    pub(crate) async fn exhausted(&self) {
        if self.exhausted.load(Ordering::Relaxed) {
            return;
        }
        self.notify.notified().await;
    }

    /// A guard for one request: dropped before [`Pending::answered`], it
    /// counts a cancellation.
    pub(crate) fn pending(self: &Arc<Self>) -> Pending {
        Pending(Some(Arc::clone(self)))
    }
}

/// A request the service has not answered yet (see [`CancelBudget::pending`]).
#[derive(Debug)]
pub(crate) struct Pending(Option<Arc<CancelBudget>>);

impl Pending {
    /// The service answered: this request was not cancelled.
    pub(crate) fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(budget) = self.0.take() {
            budget.cancelled();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CancelBudget, CancelledRequests};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn cancellations_over_the_limit_in_a_window_exhaust_the_budget() {
        let budget = CancelBudget::new(CancelledRequests {
            max: 3,
            within: Duration::from_secs(10),
        });
        for _ in 0..3 {
            drop(budget.pending());
        }
        // Answered requests never count.
        for _ in 0..100 {
            budget.pending().answered();
        }
        assert!(!budget.exhausted.load(std::sync::atomic::Ordering::Relaxed));
        // A new window starts the count again.
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..3 {
            drop(budget.pending());
        }
        assert!(!budget.exhausted.load(std::sync::atomic::Ordering::Relaxed));
        drop(budget.pending());
        tokio::time::timeout(Duration::from_millis(1), budget.exhausted())
            .await
            .expect("exhausted");
        // And it stays so.
        tokio::time::timeout(Duration::from_millis(1), budget.exhausted())
            .await
            .expect("still exhausted");
    }
}
