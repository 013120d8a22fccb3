//! A generated corpus of header-name spellings: every name `rca-proxy`
//! claims (its identity headers, the edge-only ones, other edges'
//! certificate headers), spelled with each symbol a header name may hold in
//! place of `-`, with mixes of them, and in mixed letter case. A CGI server
//! reads all of a name's spellings as one variable, so none may reach it.

use std::collections::BTreeSet;

/// The names the proxy claims, from its own lists (a name under each
/// claimed prefix), and its identity headers' default names.
fn claimed() -> Vec<String> {
    use rca_tools::proxy::judge::identity::{
        Headers, AUTHENTICATED_USER_NAMES, CERTIFICATE_CONVENTIONS, CLAIMED_PREFIXES,
        DEFAULT_NAMES, EDGE_ONLY,
    };
    let defaults = Headers::default();
    let mut names: Vec<String> = DEFAULT_NAMES
        .iter()
        .chain(&EDGE_ONLY)
        .chain(&CERTIFICATE_CONVENTIONS)
        .chain(&AUTHENTICATED_USER_NAMES)
        .map(|name| (*name).to_owned())
        .collect();
    names.extend(CLAIMED_PREFIXES.iter().map(|prefix| {
        let separator = if prefix.ends_with('-') { "" } else { "-" };
        format!("{prefix}{separator}subject")
    }));
    names.extend(
        [defaults.subject, defaults.sans, defaults.thumbprint]
            .into_iter()
            .filter(|name| !name.is_empty()),
    );
    names
}

/// The symbols RFC 9110's `tchar` allows in a name besides letters and
/// digits.
const SYMBOLS: &[u8] = b"!#$%&'*+-.^_`|~";

/// Every spelling, without repeats.
pub(crate) fn spellings() -> Vec<String> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64: a fixed sequence, so a failure names the same spellings.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut all = BTreeSet::new();
    for name in claimed() {
        for (index, &symbol) in SYMBOLS.iter().enumerate() {
            let spelled: String = name
                .bytes()
                .map(|byte| if byte == b'-' { symbol } else { byte })
                .map(char::from)
                .collect();
            all.insert(letter_case(&spelled, index));
        }
        for mix in 0..8 {
            let spelled: String = name
                .bytes()
                .map(|byte| {
                    if byte == b'-' {
                        let pick = next().to_le_bytes()[0];
                        SYMBOLS[usize::from(pick) % SYMBOLS.len()]
                    } else {
                        byte
                    }
                })
                .map(char::from)
                .collect();
            all.insert(letter_case(&spelled, mix));
        }
    }
    all.into_iter().collect()
}

/// `name` in one of three letter cases: lower, upper, or each word's first
/// letter upper.
fn letter_case(name: &str, which: usize) -> String {
    match which % 3 {
        0 => name.to_owned(),
        1 => name.to_ascii_uppercase(),
        _ => {
            let mut after_symbol = true;
            name.chars()
                .map(|c| {
                    let spelled = if after_symbol {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    };
                    after_symbol = !c.is_ascii_alphanumeric();
                    spelled
                })
                .collect()
        }
    }
}
