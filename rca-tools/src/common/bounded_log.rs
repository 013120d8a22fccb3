//! Log lines a peer can cause as often as it likes (a refused credential, a
//! failed upstream, a denied certificate), bounded by a
//! [`LogBudget`]: at most [`LogBudget::PER_SECOND`] a second, each saying
//! how many like it were left out before it, so an operator still sees
//! that they happen and how often.

use rustls_req_client_auth::{LogBudget, LogVerdict};

/// Whether a line at `level` may be logged now under `budget`: `None` when
/// not (the level is off, or the budget spent), else the words that end
/// the line (empty when nothing was left out). A line not logged because
/// its level is off does not spend the budget.
#[must_use]
pub fn within(budget: &LogBudget, level: log::Level) -> Option<String> {
    if !log::log_enabled!(level) {
        return None;
    }
    match budget.spend(std::time::Instant::now()) {
        LogVerdict::Log { left_out: 0 } => Some(String::new()),
        LogVerdict::Log { left_out } => Some(format!(
            "; {left_out} more lines like it before this one were not logged"
        )),
        LogVerdict::LeaveOut => None,
    }
}
