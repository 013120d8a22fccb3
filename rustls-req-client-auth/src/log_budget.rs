//! A bound on how many lines of one kind are logged per second.
//!
//! Some lines a client can cause at will (a handshake with a refused
//! certificate costs it little), and loggers such as `env_logger` write
//! synchronously from the task that logs: unbounded, a flood of such
//! handshakes would turn into a flood of writes to a standard error that may
//! be slow. So at most [`LogBudget::PER_SECOND`] lines go out per second; the
//! rest are counted, and the next line that goes out says how many were left
//! out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The lines of one kind logged in the current second.
#[derive(Debug)]
pub struct LogBudget(Mutex<Window>);

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    left_out: u64,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it.
    Log {
        /// Lines of its kind that were not logged before it.
        left_out: u64,
    },
    /// Leave it out (it is counted).
    LeaveOut,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl LogBudget {
    /// Lines of one kind logged per second at most.
    pub const PER_SECOND: u32 = 10;

    /// A budget with nothing spent, for a `static`.
    #[must_use]
    pub const fn new() -> Self {
        Self(Mutex::new(Window {
            started: None,
            logged: 0,
            left_out: 0,
        }))
    }

    /// Whether a line due `now` may be logged.
    pub fn spend(&self, now: Instant) -> Verdict {
        // The window is valid whatever a panicking holder did.
        let mut window = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = window
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= Duration::from_secs(1));
        if expired {
            window.started = Some(now);
            window.logged = 0;
        }
        if window.logged >= Self::PER_SECOND {
            window.left_out += 1;
            return Verdict::LeaveOut;
        }
        window.logged += 1;
        Verdict::Log {
            left_out: std::mem::take(&mut window.left_out),
        }
    }
}

/// The lines about failed accepts (out of file descriptors, say), which a
/// server retries every so often: the first logged, then one line every
/// 10 s while they go on, with how many there were, and one when
/// accepting works again. A [`LogBudget`] would still write ten lines a
/// second for as long as it lasted (found by an outside trial); [`serve`]
/// uses this, and so can another accept loop.
///
/// [`serve`]: crate::serve
#[derive(Debug, Default)]
pub struct AcceptFailures {
    /// When the last line was written, while failures go on.
    logged: Option<std::time::Instant>,
    /// Failures since that line.
    since: u64,
}

impl AcceptFailures {
    /// How often a line is written while failures go on.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// An accept failed with `error`: logged (at warn) if it is the first
    /// or the last line was 10 s ago.
    pub fn failed(&mut self, error: &std::io::Error) {
        self.since += 1;
        let now = std::time::Instant::now();
        if self
            .logged
            .is_some_and(|logged| now.duration_since(logged) < Self::EVERY)
        {
            return;
        }
        if self.logged.is_some() {
            log::warn!(
                "accept failed: {error}; {} failures in the last {:?}, retrying every 100 ms",
                self.since,
                Self::EVERY
            );
        } else {
            log::warn!("accept failed: {error}; retrying every 100 ms");
        }
        self.logged = Some(now);
        self.since = 0;
    }

    /// An accept worked: said (at info) if failures were logged.
    pub fn recovered(&mut self) {
        if self.logged.take().is_some() {
            log::info!("accepting connections again");
            self.since = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{LogBudget, Verdict};

    #[test]
    fn lines_beyond_the_budget_are_counted_and_reported_with_the_next_one() {
        let budget = LogBudget::new();
        let start = Instant::now();
        for _ in 0..LogBudget::PER_SECOND {
            assert_eq!(budget.spend(start), Verdict::Log { left_out: 0 });
        }
        for i in 1..=5 {
            let now = start + Duration::from_millis(i * 100);
            assert_eq!(budget.spend(now), Verdict::LeaveOut);
        }
        // A second later: a new budget, and the five left out are reported.
        let later = start + Duration::from_secs(1);
        assert_eq!(budget.spend(later), Verdict::Log { left_out: 5 });
        assert_eq!(budget.spend(later), Verdict::Log { left_out: 0 });
    }
}
