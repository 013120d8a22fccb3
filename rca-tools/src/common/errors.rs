//! Reading error chains: the text of the whole chain for a log line or an
//! error page, and one error of a kind found along it.

use std::error::Error as StdError;

/// `error` and its sources, joined with `: `: the whole story for a log line
/// or an error page.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

/// The first `T` along `error`'s chain, looking inside `io::Error`s too
/// (their `source` skips the error they carry).
pub fn find_in_chain<'a, T: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| -> &(dyn StdError + 'static) { inner }),
            None => error.source(),
        };
    }
    None
}
