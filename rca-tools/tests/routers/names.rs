//! A generated corpus of header-name spellings: every name `rca-proxy`
//! claims (its identity headers, the edge-only ones, other edges'
//! certificate headers), spelled with each symbol a header name may hold in
//! place of `-`, with mixes of them, and in mixed letter case. A CGI server
//! reads all of a name's spellings as one variable, so none may reach it.

use std::collections::BTreeSet;

/// The names the proxy claims, as its README lists them (prefixes with a
/// name under them).
const CLAIMED: [&str; 62] = [
    // Identity headers, their defaults, and names under the claimed prefixes.
    "x-client-auth-path",
    "x-client-session-resumed",
    "x-client-cert-subject",
    "x-client-cert-sans",
    "x-client-cert-x5t-s256",
    "x-client-cert-pem",
    "x-client-cert",
    "x-forwarded-for",
    "x-forwarded-prefix",
    "x-forwarded-client-cert",
    // Other edges' certificate headers.
    "client-cert",
    "client-cert-chain",
    "x-arr-clientcert",
    "x-client-dn",
    "x-client-verify",
    "ssl-client-verify",
    "ssl-client-s-dn",
    "x-ssl-client-dn",
    "x-amzn-mtls-clientcert-subject",
    // Edge-only headers.
    "forwarded",
    "x-forwarded",
    "forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-ssl-client-cert",
    "ssl-client-cert",
    "script-name",
    "path-info",
    "path-translated",
    "request-uri",
    "request-method",
    "query-string",
    "remote-user",
    "remote-addr",
    "remote-host",
    "remote-ident",
    "auth-type",
    "server-name",
    "server-port",
    "server-protocol",
    "gateway-interface",
    "document-root",
    "https",
    "x-script-name",
    "x-original-url",
    "x-original-uri",
    "x-original-path",
    "x-original-host",
    "x-rewrite-url",
    "x-envoy-original-path",
    "x-remote-user",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-scheme",
    "x-url-scheme",
    "proxy",
];

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
    for name in CLAIMED {
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
