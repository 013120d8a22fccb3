//! Header fields as both tools read them: the hop-by-hop ones (RFC 9110
//! section 7.6.1) that never cross a proxy, names compared the way a
//! CGI-style upstream compares them (any character but a letter or a digit
//! read as `-`), and comma-separated lists.

use http::header::{self, HeaderMap, HeaderName};

/// RFC 9110 section 7.6.1: headers for one connection, not to be forwarded,
/// and those the `Connection` header names (also `HTTP2-Settings`, which only
/// means something with an h2c upgrade). The names removed come back: what
/// `Connection` named also binds the trailer section that follows.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) -> Vec<HeaderName> {
    // One pass over the (few) headers present, rather than a removal per
    // name: this runs twice for every request.
    let mut found: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        let text = name.as_str();
        let hop_by_hop =
            HOP_BY_HOP.contains(&text) || (!is_plain_name(text) && is_connection_field(text));
        if !hop_by_hop {
            continue;
        }
        if !found.contains(name) {
            found.push(name.clone());
        }
        if name == header::CONNECTION {
            let named =
                list_tokens(value.as_bytes()).filter_map(|name| HeaderName::from_bytes(name).ok());
            found.extend(named);
        }
    }
    for name in &found {
        headers.remove(name);
    }
    found
}

/// A body `frame` as it goes on: trailers rid of what a trailer section may
/// not carry (RFC 9110 section 6.5.1), which are hop-by-hop fields, those
/// in `dropped` (what the header section's `Connection` named, as
/// [`remove_hop_by_hop`] returned them, and any the caller adds), and the
/// fields that frame, route or describe the content. A recipient that
/// merged them into the header section would be misled; an HTTP/2 client
/// resets a stream with some. Data frames pass as they are.
pub fn filter_trailers<'a, D>(
    frame: hyper::body::Frame<D>,
    dropped: impl IntoIterator<Item = &'a HeaderName>,
) -> hyper::body::Frame<D> {
    match frame.into_trailers() {
        Ok(mut trailers) => {
            remove_from_trailers(&mut trailers, dropped);
            hyper::body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    }
}

/// See [`filter_trailers`].
fn remove_from_trailers<'a>(
    trailers: &mut HeaderMap,
    dropped: impl IntoIterator<Item = &'a HeaderName>,
) {
    remove_hop_by_hop(trailers);
    for name in dropped {
        trailers.remove(name);
    }
    for name in NOT_IN_TRAILERS {
        trailers.remove(name);
    }
}

/// Fields that frame, route, authenticate, set state or describe content
/// or how to store it, which only a header section may carry (RFC 9110
/// section 6.5.1; hyper's own HTTP/1.1 encoder refuses several of them in
/// trailers). Others (`grpc-status`, checksums) pass.
const NOT_IN_TRAILERS: [&str; 15] = [
    "content-length",
    "host",
    "content-type",
    "content-encoding",
    "content-range",
    "content-location",
    "max-forwards",
    "authorization",
    "www-authenticate",
    "set-cookie",
    "cache-control",
    "expires",
    "vary",
    "location",
    "retry-after",
];

/// The hop-by-hop headers of RFC 9110 section 7.6.1 (and the legacy and h2c
/// ones), removed whether `Connection` names them or not: the one list both
/// HTTP/1.1 paths use (`crate::proxy::front::http1_wire`, `crate::proxy::front::http1`).
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "proxy-connection",
];

/// Whether a client's field `name` belongs to its connection: hop-by-hop or
/// `Content-Length`, in any letter case, and also spelled with `_` or any
/// other symbol for `-` (`Content_Length`, `Content.Length`), which a
/// CGI-style upstream would take for the real one. None goes up as sent:
/// the proxy writes its own framing.
pub fn is_connection_field(name: &str) -> bool {
    HOP_BY_HOP
        .iter()
        .chain(&["content-length"])
        .any(|other| canonically_equal(name, other))
}

/// Whether a comma-separated list value (`Connection`, say) names `token`,
/// in any letter case (RFC 9110 section 5.6.1).
pub fn list_has_token(value: &[u8], token: &[u8]) -> bool {
    list_tokens(value).any(|element| element.eq_ignore_ascii_case(token))
}

/// The elements of a comma-separated list value, trimmed, the empty ones
/// left out.
pub fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&byte| byte == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

/// Whether a comma-separated list header (`Connection`, say) names
/// `token`, in any letter case (RFC 9110 section 5.6.1).
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|value| list_has_token(value.as_bytes(), token.as_bytes()))
}

/// Names HTTP itself gives a meaning (framing, the connection, the host,
/// credentials): a header a tool sets of its own may not have one.
pub const HTTP_OWN_NAMES: [&str; 14] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "cookie",
    "authorization",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
];

/// Whether `name`, in any spelling [`canonical`] reads as the same, is one
/// of [`HTTP_OWN_NAMES`] or a `Proxy-*` one.
pub fn is_http_own_name(name: &str) -> bool {
    HTTP_OWN_NAMES
        .iter()
        .any(|own| canonically_equal(name, own))
        || canonical_starts_with(name, "proxy-")
}

/// `name` as CGI-style servers see it: lower case, and every character but a
/// letter or a digit read as `-`. CGI (RFC 3875 section 4.1.18) turns `-`
/// into `_`; lighttpd turns every other character into `_` as well, and PHP
/// turns `.` and ` ` into `_` in `$_SERVER`, so `X.Client.Cert.Subject`
/// reaches such an application as `HTTP_X_CLIENT_CERT_SUBJECT`.
pub fn canonical(name: &str) -> String {
    name.bytes()
        .map(|byte| char::from(canonical_byte(byte)))
        .collect()
}

/// One byte of a name as [`canonical`] reads it.
fn canonical_byte(byte: u8) -> u8 {
    if byte.is_ascii_alphanumeric() {
        byte.to_ascii_lowercase()
    } else {
        b'-'
    }
}

/// Whether `name` is its own [`canonical`] reading already (letters in
/// lower case, digits and `-`), as nearly every name `http` hands over is:
/// then an exact comparison is the whole test.
fn is_plain_name(name: &str) -> bool {
    name.bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Whether `name`, read as [`canonical`] reads it, starts with `prefix` (a
/// canonical name or prefix). Without allocating: it runs for every header of
/// every request.
pub fn canonical_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(byte, wanted)| canonical_byte(byte) == wanted)
}

/// Whether `name` reads as the canonical name `canonical`.
pub fn canonically_equal(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len() && canonical_starts_with(name, canonical)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// Hop-by-hop headers go, those `Connection` names too, and every
    /// connection field spelled with `_`; the rest stays.
    #[test]
    fn hop_by_hop_headers_are_removed_in_any_spelling() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-named"),
            ("keep-alive", "5"),
            ("x-named", "1"),
            ("te", "trailers"),
            ("content_length", "5"),
            ("transfer_encoding", "chunked"),
            ("proxy_connection", "close"),
            ("content-length", "0"),
            ("x_kept", "2"),
            ("accept", "*/*"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "content-length", "x_kept"]);
    }
}
