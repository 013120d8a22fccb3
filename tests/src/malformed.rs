//! The malformed `tls_flags` `extension_data` forms (TF-1, TF-3), with the
//! alert each must get: one table for every test that sends them.

use rustls::AlertDescription;

/// One malformed form.
#[derive(Clone, Debug)]
pub struct Malformed {
    /// The rule it breaks.
    pub rule: &'static str,
    /// What is wrong with it.
    pub what: &'static str,
    /// The `extension_data`.
    pub bytes: Vec<u8>,
    /// The alert the receiver sends.
    pub alert: AlertDescription,
}

/// Every form.
pub fn forms() -> Vec<Malformed> {
    let mut oversized = vec![255];
    oversized.extend(std::iter::repeat_n(1, 256));
    let form = |rule, what, bytes, alert| Malformed {
        rule,
        what,
        bytes,
        alert,
    };
    vec![
        form("TF-1", "empty", vec![], AlertDescription::DecodeError),
        form("TF-1", "L=0", vec![0], AlertDescription::DecodeError),
        form(
            "TF-1",
            "L too long",
            vec![2, 1],
            AlertDescription::DecodeError,
        ),
        form(
            "TF-1",
            "L too short",
            vec![1, 1, 1],
            AlertDescription::DecodeError,
        ),
        form(
            "TF-1",
            "257 bytes",
            oversized,
            AlertDescription::DecodeError,
        ),
        form(
            "TF-3",
            "all zero",
            vec![1, 0],
            AlertDescription::IllegalParameter,
        ),
        form(
            "TF-3",
            "trailing zero",
            vec![2, 1, 0],
            AlertDescription::IllegalParameter,
        ),
    ]
}
