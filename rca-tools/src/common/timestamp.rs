//! RFC 3339 timestamps in UTC with milliseconds (`2026-12-05T04:38:12.345Z`)
//! for the JSON logs, written the cheap way: the part down to the second is
//! formatted once a second per thread, the milliseconds appended.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The second last formatted on this thread, and its text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends `at` as RFC 3339, UTC, milliseconds. A time before 1970 (a
/// clock set wrong) is written as the epoch.
pub fn push_rfc3339_millis(out: &mut Vec<u8>, at: SystemTime) {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let whole = i64::try_from(seconds)
                .ok()
                .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            *text = whole.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            *cached = seconds;
        }
        out.extend_from_slice(text.as_bytes());
    });
    let millis = since_epoch.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        digit(millis / 100),
        digit(millis / 10 % 10),
        digit(millis % 10),
        b'Z',
    ]);
}

/// `at` as [`push_rfc3339_millis`] writes it.
#[must_use]
pub fn rfc3339_millis(at: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    push_rfc3339_millis(&mut out, at);
    String::from_utf8(out).unwrap_or_default()
}

fn digit(value: u32) -> u8 {
    b"0123456789"[usize::try_from(value % 10).unwrap_or(0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_what_jiff_writes() {
        for millis in [0_u64, 1, 999, 1_000, 1_733_373_492_007, 4_102_444_799_999] {
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            let expected = format!("{:.3}", jiff::Timestamp::try_from(at).expect("in range"));
            assert_eq!(rfc3339_millis(at), expected);
        }
        assert_eq!(
            rfc3339_millis(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
