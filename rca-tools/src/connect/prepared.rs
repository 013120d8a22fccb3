//! Upstream connections begun before they are needed. When a client opens a
//! tunnel to a server `rca-connect` has no connection to, the connection to
//! the server is begun at once, while the client's TLS handshake with
//! `rca-connect` runs, so the first request waits for the slower of the two
//! handshakes, not for both one after the other. A server that already has a
//! connection open (pooled or in use) or begun ahead gets none: the pool
//! serves it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A connection begun ahead, or why it could not be made.
type Ready<T, E> = oneshot::Receiver<Result<T, E>>;

/// The connections begun ahead, and how many are open per server.
pub struct Prepared<T, E> {
    state: Mutex<State<T, E>>,
}

struct State<T, E> {
    waiting: HashMap<String, (Instant, Ready<T, E>)>,
    open: HashMap<String, usize>,
}

impl<T, E> Default for Prepared<T, E> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                waiting: HashMap::new(),
                open: HashMap::new(),
            }),
        }
    }
}

impl<T, E> std::fmt::Debug for Prepared<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Prepared")
            .field("waiting", &state.waiting.len())
            .field("open", &state.open)
            .finish()
    }
}

/// Counts one open connection to a server while it lives.
#[derive(Debug)]
pub struct OpenConnection<T: Send + 'static, E: Send + 'static> {
    prepared: Arc<Prepared<T, E>>,
    key: String,
}

impl<T: Send + 'static, E: Send + 'static> Drop for OpenConnection<T, E> {
    fn drop(&mut self) {
        let mut state = self.prepared.lock();
        if let Some(count) = state.open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.open.remove(&self.key);
            }
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Prepared<T, E> {
    /// How long a connection begun ahead waits for its first request; then
    /// it is dropped (the client opened a tunnel and sent nothing).
    const FRESH: Duration = Duration::from_secs(10);
    /// Servers with a connection waiting, at most.
    const CAPACITY: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T, E>> {
        // A panic elsewhere while holding the lock leaves consistent maps.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Begins `connect` for `key` unless a connection to it is open or
    /// already begun. One nobody takes within `Self::FRESH` is dropped
    /// then, so tunnels that never send a request hold no server's socket.
    ///
    /// A connection is dropped only after the lock is let go: dropping one
    /// ends its [`OpenConnection`], which takes the lock.
    pub fn begin<F>(self: &Arc<Self>, key: String, connect: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (ready, waiting) = oneshot::channel();
        let begun = Instant::now();
        let (expired, begins) = {
            let mut state = self.lock();
            let expired: Vec<_> = state
                .waiting
                .extract_if(|_, (at, _)| at.elapsed() >= Self::FRESH)
                .collect();
            let begins = !state.open.contains_key(&key)
                && !state.waiting.contains_key(&key)
                && state.waiting.len() < Self::CAPACITY;
            if begins {
                state.waiting.insert(key.clone(), (begun, waiting));
            }
            (expired, begins)
        };
        drop(expired);
        if !begins {
            return;
        }
        let prepared = Arc::clone(self);
        tokio::spawn(async move {
            // Nobody waiting any more (taken and given up, or the process
            // stops): the connection is dropped.
            let _ = ready.send(connect.await);
            tokio::time::sleep_until((begun + Self::FRESH).into()).await;
            let unused = {
                let mut state = prepared.lock();
                if state.waiting.get(&key).is_some_and(|(at, _)| *at == begun) {
                    state.waiting.remove(&key)
                } else {
                    None
                }
            };
            drop(unused);
        });
    }

    /// The connection begun ahead for `key`, if there is a fresh one.
    pub async fn take(&self, key: &str) -> Option<Result<T, E>> {
        let waiting = self.lock().waiting.remove(key);
        let (at, waiting) = waiting?;
        if at.elapsed() >= Self::FRESH {
            return None;
        }
        waiting.await.ok()
    }

    /// Counts a connection to `key` as open until the guard is dropped.
    pub fn opened(self: &Arc<Self>, key: &str) -> OpenConnection<T, E> {
        *self.lock().open.entry(key.to_owned()).or_default() += 1;
        OpenConnection {
            prepared: Arc::clone(self),
            key: key.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{OpenConnection, Prepared};

    /// A connection that counts itself open, as an upstream connection does.
    #[derive(Debug)]
    struct Held(#[allow(dead_code)] OpenConnection<Held, ()>);

    type Counted = Prepared<Held, ()>;

    /// A connection begun ahead that nobody takes is dropped after
    /// [`Prepared::FRESH`], and with it the count of open connections it
    /// holds, which takes the lock: the drop must come after the lock is let
    /// go (before, it came under it, and the worker thread waited on itself
    /// for ever). Run on a thread of its own, so a deadlock fails the test
    /// instead of hanging it.
    #[test]
    fn an_unused_connection_is_dropped_outside_the_lock() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let prepared = Arc::new(Counted::default());
                for (round, key) in ["a", "b"].into_iter().enumerate() {
                    let counted = Arc::clone(&prepared);
                    prepared.begin(key.to_owned(), async move { Ok(Held(counted.opened(key))) });
                    // Both the task's drop after FRESH and the sweep of stale
                    // entries in `begin` (the second round) run.
                    tokio::time::sleep(Duration::from_secs(11)).await;
                    assert!(
                        prepared.lock().open.is_empty(),
                        "round {round}: {prepared:?}"
                    );
                }
                // Taken in time, it stays open while it lives.
                let counted = Arc::clone(&prepared);
                prepared.begin("c".to_owned(), async move { Ok(Held(counted.opened("c"))) });
                let taken = prepared.take("c").await;
                assert_eq!(prepared.lock().open.get("c"), Some(&1));
                drop(taken);
                assert!(prepared.lock().open.is_empty());
            });
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(30)).is_ok(),
            "dropping an unused connection deadlocked"
        );
    }
}
