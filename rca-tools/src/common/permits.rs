//! A place under a cap (a semaphore's permit), taken at once when one is
//! free and waited for a bounded time otherwise: `rca-proxy`'s upstream
//! exchanges and `rca-connect`'s connections to servers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A permit of `places`: a free one without arming a timer (the common
/// case costs no timer), else the first to come free within `wait`;
/// `None` when none did (or the semaphore is closed).
pub async fn take_within(places: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = Arc::clone(places).try_acquire_owned() {
        return Some(permit);
    }
    tokio::time::timeout(wait, Arc::clone(places).acquire_owned())
        .await
        .ok()?
        .ok()
}
