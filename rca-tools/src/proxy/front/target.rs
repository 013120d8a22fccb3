//! The request target in one canonical form: the form the bots-only policy
//! judges and the only form the upstream receives.
//!
//! Routers read one target in different ways: werkzeug, Starlette and nginx
//! percent-decode the path before they route, express and Node's `URL` do
//! not; nginx merges `//` and resolves `..`, werkzeug and Starlette do not;
//! Node's WHATWG `URL` reads `//host/...` as a host and `\` as `/`. A
//! policy that judged the client's spelling "as the most lenient upstream
//! might read it" was bypassed whenever one reading makes the path shorter
//! than another (`/api/crawl/..` judged as `/api`, routed to `/api/crawl`).
//! So, as Envoy's `normalize_path`, `merge_slashes` and
//! `path_with_escaped_slashes_action` do, the proxy rewrites the path into
//! one form that every router reads the same way, forwards that form, and
//! judges it; what it cannot rewrite safely it refuses (400):
//!
//! | in the path | done | why |
//! |---|---|---|
//! | `%41`-style escapes of unreserved characters (letters, digits, `-._~`) | decoded | RFC 3986 section 6.2.2.2: the same path either way; decoding routers and raw-reading routers then agree (`/api/%63rawl` is `/api/crawl` to both) |
//! | `\`, `%5C`, `%2F` | rewritten to `/` | browsers send `\` as `/`; decoding routers split on a decoded `%2F` and raw ones do not, so it is made a separator for all |
//! | empty segments (`//`) | merged | `//host/...` is a host to WHATWG parsers; nginx merges, werkzeug does not |
//! | `.` and `..` segments, also encoded (`%2e`) | resolved (RFC 3986 section 5.2.4) | some routers resolve them, others route the raw segments |
//! | a segment that reads as `.` or `..` once decoded or without its `;parameters` (`..;x`, `.%3b`) | refused | Tomcat-style servers drop `;parameters` and would resolve it; no browser sends it |
//! | control characters, raw or encoded (`%00`-`%1F`, `%7F`) | refused | Python's `$` matches before a final `\n` (Starlette routes `/api/crawl%0a` as `/api/crawl`); nginx refuses `%00` |
//! | `%` not followed by two hex digits | refused | routers disagree on what it is |
//! | `%25` and two hex digits (`%252e`), also once the digits are decoded (`%25%32%65`) | refused | a chain that decodes twice (nginx's `proxy_pass` with `$uri`, say) reads another path; Spring's `StrictHttpFirewall` refuses it too |
//! | escapes that decode to bytes that are not UTF-8 (`%ff`, `%c0%af`) | refused | Bottle drops such bytes (`/api/crawl%ff` is `/api/crawl` to it), others keep or replace them; browsers never send them |
//! | other escapes (`%20`, `%3B`, `%3F`, `%C3%A9`) and `;parameters` | kept | they change no segment boundary; the policy reads each segment decoded and without its parameters, and the path also as cut at a decoded `?`, `#` or space (where a hop that decodes again would end it) |
//! | raw bytes that are not ASCII (`/café`), in the path or the query | percent-encoded (`/caf%C3%A9`) | RFC 3986 allows none; `http` takes them as sent, and gunicorn, waitress and Tomcat answer 400 to them, while every router reads the escapes as the same characters |
//!
//! The query is otherwise kept as it came. Everything here is pure: the
//! same target always gives the same answer.

use std::borrow::Cow;

/// Why a request target is refused with 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// Not a path starting with `/` (origin form).
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    MalformedEscape,
    /// A control character, raw or percent-encoded.
    ControlCharacter,
    /// An escape of an escape (`%252e`): what an upstream that decodes
    /// twice reads is another path.
    DoubleEncoding,
    /// A segment that reads as `.` or `..` once decoded or without its
    /// `;parameters`, which the proxy cannot resolve the way every
    /// upstream would.
    HiddenDotSegment,
    /// Escapes that decode to bytes that are not UTF-8: routers drop,
    /// replace or keep them, and so read different paths.
    NotUtf8,
    /// Longer than [`MAX_TARGET`] in canonical form (escaping what is not
    /// ASCII makes a target up to three times as long).
    TooLong,
}

/// The longest target `http` takes (its `PathAndQuery` holds at most
/// `u16::MAX - 1` bytes).
pub(crate) const MAX_TARGET: usize = 65_534;

impl TargetError {
    /// The reason, as the 400's body and the access log give it.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NotOriginForm => "the request target must be a path starting with '/'",
            Self::MalformedEscape => "the path has a '%' not followed by two hex digits",
            Self::ControlCharacter => "the path has a control character (raw or percent-encoded)",
            Self::DoubleEncoding => "the path has a percent-encoded escape ('%25' and two hex digits)",
            Self::HiddenDotSegment => {
                "the path has a segment that reads as '.' or '..' once decoded or without its ;parameters"
            }
            Self::NotUtf8 => "the path's percent-escapes decode to bytes that are not UTF-8",
            Self::TooLong => {
                "the request target is longer than 65,534 bytes once its bytes that are not ASCII are percent-encoded"
            }
        }
    }
}

/// `target` (a path and an optional `?query`, without a fragment) in
/// canonical form: borrowed when it is canonical already, as nearly every
/// target is.
///
/// # Errors
///
/// [`TargetError`]: what in the path cannot be made canonical.
pub(crate) fn canonical(target: &str) -> Result<Cow<'_, str>, TargetError> {
    let (path, query) = match target.find('?') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    if !path.starts_with('/') {
        return Err(TargetError::NotOriginForm);
    }
    if is_plain(path) && query.is_ascii() {
        return Ok(Cow::Borrowed(target));
    }
    let decoded = decode_unreserved(path)?;
    // Decoding hex digits can complete an escape of an escape the raw
    // path did not hold (`%25%32%66` is `%252f`).
    if holds_double_encoding(&decoded) {
        return Err(TargetError::DoubleEncoding);
    }
    if std::str::from_utf8(&percent_encoding::percent_decode_str(&decoded).collect::<Vec<u8>>())
        .is_err()
    {
        return Err(TargetError::NotUtf8);
    }
    let mut canonical = resolve_segments(&decoded);
    for segment in canonical.split('/') {
        if hides_dot_segment(segment) {
            return Err(TargetError::HiddenDotSegment);
        }
    }
    if canonical == path && query.is_ascii() {
        return Ok(Cow::Borrowed(target));
    }
    push_ascii(&mut canonical, query);
    if canonical.len() > MAX_TARGET {
        return Err(TargetError::TooLong);
    }
    Ok(Cow::Owned(canonical))
}

/// `text` with every byte that is not ASCII percent-encoded: how a path
/// that was refused is logged, so that a client's bidirectional overrides
/// or line separators never reach a log viewer as characters.
pub(crate) fn escape_non_ascii(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 3);
    push_ascii(&mut out, text);
    Cow::Owned(out)
}

/// `text` onto `out` with every byte that is not ASCII percent-encoded.
fn push_ascii(out: &mut String, text: &str) {
    for &byte in text.as_bytes() {
        if byte.is_ascii() {
            out.push(char::from(byte));
        } else {
            push_escape(out, byte);
        }
    }
}

/// `byte` as `%XX`, in the upper-case hex RFC 3986 section 2.1 recommends.
fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Whether `path` is canonical as it is, found without allocating: no
/// escape, no `\`, no control character, nothing that is not ASCII, no
/// empty segment and no segment starting with `.`. The hot path for every
/// request.
fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    !bytes
        .iter()
        .any(|&byte| matches!(byte, b'%' | b'\\') || byte.is_ascii_control() || !byte.is_ascii())
        && !bytes
            .windows(2)
            .any(|pair| pair[0] == b'/' && matches!(pair[1], b'/' | b'.'))
}

/// The stage that decodes: escapes of unreserved characters decoded, `\`,
/// `%5C` and `%2F` made `/`, other escapes kept as sent, bytes that are not
/// ASCII escaped.
fn decode_unreserved(path: &str) -> Result<String, TargetError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'%' => {
                let value = bytes
                    .get(at + 1..at + 3)
                    .and_then(hex_pair)
                    .ok_or(TargetError::MalformedEscape)?;
                if value.is_ascii_control() {
                    return Err(TargetError::ControlCharacter);
                }
                if value == b'%' && bytes.get(at + 3..at + 5).and_then(hex_pair).is_some() {
                    return Err(TargetError::DoubleEncoding);
                }
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else if matches!(value, b'/' | b'\\') {
                    out.push('/');
                } else {
                    // Three ASCII bytes, as sent.
                    out.push_str(path.get(at..at + 3).unwrap_or_default());
                }
                at += 3;
            }
            b'\\' => {
                out.push('/');
                at += 1;
            }
            byte if byte.is_ascii_control() => return Err(TargetError::ControlCharacter),
            byte if !byte.is_ascii() => {
                push_escape(&mut out, byte);
                at += 1;
            }
            _ => {
                // Copy up to the next byte this loop must look at: the
                // copied bytes are ASCII, so no UTF-8 sequence is split.
                let end = bytes[at..]
                    .iter()
                    .position(|&byte| {
                        matches!(byte, b'%' | b'\\') || byte.is_ascii_control() || !byte.is_ascii()
                    })
                    .map_or(bytes.len(), |offset| at + offset);
                out.push_str(path.get(at..end).unwrap_or_default());
                at = end;
            }
        }
    }
    Ok(out)
}

/// Whether `path` holds `%25` followed by two hex digits.
fn holds_double_encoding(path: &str) -> bool {
    path.as_bytes()
        .windows(5)
        .any(|window| window[..3].eq_ignore_ascii_case(b"%25") && hex_pair(&window[3..]).is_some())
}

/// The stage that merges empty segments and resolves `.` and `..` (RFC 3986
/// section 5.2.4; a `..` at the root stays at the root). A path that ends in
/// a `/`, `.` or `..` segment keeps its trailing `/`.
fn resolve_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    // `path` starts with `/`, so the first piece is empty.
    for segment in path.split('/').skip(1) {
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || kept.is_empty() {
        out.push('/');
    }
    out
}

/// Whether `segment` of a resolved path reads as `.` or `..` to a router
/// that decodes it or drops its `;parameters`.
fn hides_dot_segment(segment: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(segment).collect::<Vec<u8>>();
    let name = decoded
        .split(|&byte| byte == b';')
        .next()
        .unwrap_or_default();
    matches!(name, b"." | b"..")
}

/// Whether `host` (a `Host` value or an `:authority`) is `host[:port]` and
/// nothing else: a name of letters, digits, `-`, `.` and `_`, or an IP
/// literal in brackets, and a port of digits. Userinfo (`user@host`), a
/// list (`a,b`) and other characters RFC 3986 lets a reg-name hold are
/// refused: `X-Forwarded-Host` and `Forwarded` carry the value on, and
/// upstreams read such values in different ways.
pub(crate) fn is_host(host: &str) -> bool {
    let (name_ok, port) = if let Some(literal) = host.strip_prefix('[') {
        let Some((address, port)) = literal.split_once(']') else {
            return false;
        };
        let address_ok = !address.is_empty()
            && address
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.'));
        (address_ok, port)
    } else {
        let (name, port) = match host.find(':') {
            Some(at) => host.split_at(at),
            None => (host, ""),
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'));
        (name_ok, port)
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|byte| byte.is_ascii_digit())
        });
    name_ok && port_ok
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |byte: u8| char::from(byte).to_digit(16);
    match pair {
        [high, low] => Some(u8::try_from(digit(*high)? * 16 + digit(*low)?).ok()?),
        _ => None,
    }
}

/// RFC 3986 section 2.3.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::{canonical, holds_double_encoding, is_host, TargetError};

    #[test]
    fn hosts_are_names_or_addresses_with_a_port() {
        for host in [
            "localhost",
            "example.com",
            "Example.COM:8443",
            "a-b_c.example",
            "127.0.0.1",
            "127.0.0.1:443",
            "[::1]",
            "[::1]:8443",
            "[2001:db8::1]",
        ] {
            assert!(is_host(host), "{host}");
        }
        for host in [
            "",
            "user@example.com",
            "user:pw@example.com",
            "a.example,b.example",
            "example.com:",
            "example.com:443:1",
            "example.com:123456",
            "example.com:x",
            "[::1",
            "[]",
            "[::1]x",
            "exa mple",
            "example.com/path",
            "ex%61mple.com",
            ":443",
        ] {
            assert!(!is_host(host), "{host}");
        }
    }

    #[test]
    fn canonical_targets_are_kept_as_they_are() {
        for target in [
            "/",
            "/api/crawl",
            "/api/crawl/",
            "/api/crawl?x=/../y&z=%2F",
            "/a;b=c/d",
            "/caf%C3%A9/%20x",
            "/v1/file.tar.gz",
            "/a.b/c..d/...",
            "/a%3Bb",
        ] {
            assert_eq!(canonical(target), Ok(target.into()), "{target}");
            assert!(matches!(
                canonical(target),
                Ok(std::borrow::Cow::Borrowed(_))
            ));
        }
    }

    #[test]
    fn targets_are_rewritten_into_one_form() {
        for (target, expected) in [
            ("//api/crawl", "/api/crawl"),
            ("//evil.example/api/crawl", "/evil.example/api/crawl"),
            ("/api//crawl///", "/api/crawl/"),
            ("/api/crawl/..", "/api/"),
            ("/api/crawl/.", "/api/crawl/"),
            ("/api/crawl/%2e%2E", "/api/"),
            ("/api/crawl/.%2e/", "/api/"),
            ("/x/../api/crawl", "/api/crawl"),
            ("/../../api/crawl", "/api/crawl"),
            ("/..", "/"),
            ("/.", "/"),
            ("/api/%63rawl", "/api/crawl"),
            ("/%41PI/crawl", "/API/crawl"),
            ("/api%2Fcrawl", "/api/crawl"),
            ("/api%2fcrawl%2F..", "/api/"),
            ("/api\\crawl", "/api/crawl"),
            ("/api%5ccrawl", "/api/crawl"),
            ("/api/./crawl?q=1", "/api/crawl?q=1"),
            ("/api/crawl/..?q=/..", "/api/?q=/.."),
            ("/caf%c3%a9/..", "/"),
            ("/.well-known/x", "/.well-known/x"),
            ("/api;x/../crawl", "/crawl"),
            // Raw bytes that are not ASCII, in the path and the query.
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/ap\u{131}/crawl", "/ap%C4%B1/crawl"),
            ("/x/../caf\u{e9}/%c3%a9", "/caf%C3%A9/%c3%a9"),
            (
                "/api/crawl?q=\u{e9}&r=%C3%A9",
                "/api/crawl?q=%C3%A9&r=%C3%A9",
            ),
            ("/caf\u{e9}?q=\u{1f600}", "/caf%C3%A9?q=%F0%9F%98%80"),
        ] {
            assert_eq!(canonical(target).as_deref(), Ok(expected), "{target}");
        }
    }

    #[test]
    fn what_cannot_be_made_canonical_is_refused() {
        for (target, error) in [
            ("api/crawl", TargetError::NotOriginForm),
            ("*", TargetError::NotOriginForm),
            ("", TargetError::NotOriginForm),
            ("/api/crawl%", TargetError::MalformedEscape),
            ("/api/crawl%0", TargetError::MalformedEscape),
            ("/api/crawl%zz", TargetError::MalformedEscape),
            ("/api%252Fcrawl", TargetError::DoubleEncoding),
            ("/api/x/%252e%252e/crawl", TargetError::DoubleEncoding),
            ("/api/crawl%0a", TargetError::ControlCharacter),
            ("/api/crawl%0A", TargetError::ControlCharacter),
            ("/api/crawl%00", TargetError::ControlCharacter),
            ("/api/crawl%7f", TargetError::ControlCharacter),
            ("/api/crawl%09/x", TargetError::ControlCharacter),
            ("/api/crawl\t", TargetError::ControlCharacter),
            ("/api/crawl/..;/x", TargetError::HiddenDotSegment),
            ("/api/crawl/.;x", TargetError::HiddenDotSegment),
            ("/api/crawl/..%3b", TargetError::HiddenDotSegment),
            ("/api/crawl/%2e%2e%3Bx/", TargetError::HiddenDotSegment),
            // The hex digits of an escaped escape, themselves escaped.
            ("/api%25%32%66crawl", TargetError::DoubleEncoding),
            ("/api%252%66crawl", TargetError::DoubleEncoding),
            ("/%25%36%31pi/crawl/x", TargetError::DoubleEncoding),
            (
                "/x/%25%32%65%25%32%65/api/crawl",
                TargetError::DoubleEncoding,
            ),
            // Not UTF-8 once decoded: a lone byte, an overlong '/', a
            // surrogate.
            ("/api/crawl%ff", TargetError::NotUtf8),
            ("/api/cr%80awl/x", TargetError::NotUtf8),
            ("/api%c0%af/crawl", TargetError::NotUtf8),
            ("/%e0%80%afapi/crawl", TargetError::NotUtf8),
            ("/api/crawl%ed%a0%80", TargetError::NotUtf8),
        ] {
            assert_eq!(canonical(target), Err(error), "{target}");
        }
        let long = format!("/{}", "\u{e9}".repeat(20_000));
        for (target, error) in [
            (long.as_str(), TargetError::TooLong),
            (&long[..30_001], TargetError::TooLong),
        ] {
            assert_eq!(canonical(target), Err(error), "{target}");
        }
        // 10,000 of them escape to 60,000 bytes, which `http` takes.
        let escaped = canonical(&long[..20_001]).expect("canonical");
        assert!(http::uri::PathAndQuery::try_from(escaped.as_ref()).is_ok());
    }

    /// Canonical form is a fixed point: rewriting it again changes nothing.
    #[test]
    fn canonical_form_is_a_fixed_point() {
        for target in [
            "//a/./b/../c%2f%2E%2e/d\\e;f/..",
            "/%7euser/%C3%A9/./",
            "/a/b/c/../../..",
            "/a%25/b",
            "/a%25zz",
            "/a%25%7a%7a",
            "/%C3%A9t%C3%A9",
            "/\u{e9}t\u{e9}/./x?\u{e9}=\u{e9}",
        ] {
            let once = canonical(target).expect("canonical").into_owned();
            assert_eq!(canonical(&once).as_deref(), Ok(once.as_str()), "{target}");
        }
    }

    /// The same over every target of up to four pieces that spell escapes,
    /// escapes of escapes, their hex digits, dots and separators: whatever
    /// is taken comes out canonical, and with no escaped escape left.
    #[test]
    fn every_generated_target_canonicalizes_to_a_fixed_point() {
        const PIECES: [&str; 15] = [
            "%25", "%32", "%66", "%2", "a", "/", "%2e", ".", "%", "f", "2", "%5c", "%3b", ";",
            "\u{e9}",
        ];
        let mut targets = vec![String::from("/")];
        for _ in 0..4 {
            let longer: Vec<String> = targets
                .iter()
                .flat_map(|target| PIECES.iter().map(move |piece| format!("{target}{piece}")))
                .collect();
            targets.extend(longer);
            targets.dedup();
        }
        let mut taken = 0;
        for target in &targets {
            let Ok(once) = canonical(target) else {
                continue;
            };
            taken += 1;
            let once = once.into_owned();
            assert!(!holds_double_encoding(&once), "{target} -> {once}");
            assert_eq!(canonical(&once).as_deref(), Ok(once.as_str()), "{target}");
        }
        assert!(taken > 1000, "{taken} of {}", targets.len());
    }
}
