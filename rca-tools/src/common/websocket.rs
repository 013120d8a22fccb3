//! The WebSocket opening handshake as a gateway checks it (RFC 6455
//! section 4): which requests ask for one, and which 101 proves that the
//! server read it and switched. Both tools pass WebSockets on and nothing
//! else that upgrades: after a switch no more requests go by to check.

use http::header::{self, HeaderMap, HeaderValue};

use crate::common::fields::has_token;

/// `websocket` if a request of `method` with `headers` is a WebSocket
/// opening handshake (section 4.1: GET, `Connection: upgrade`, `Upgrade:
/// websocket`, `Sec-WebSocket-Key`). Other upgrades (h2c, ...) are not
/// passed on: after the switch the gateway would see no more requests to
/// check.
pub fn websocket_upgrade(method: &http::Method, headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = has_token(headers, &header::CONNECTION, "upgrade");
    let websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    (*method == http::Method::GET
        && asks
        && websocket
        && headers.contains_key(header::SEC_WEBSOCKET_KEY))
    .then(|| HeaderValue::from_static("websocket"))
}

/// The `Sec-WebSocket-Accept` a server that read the handshake of
/// `request_headers` answers with (section 4.2.2), if it has a key.
pub fn expected_accept(request_headers: &HeaderMap) -> Option<HeaderValue> {
    request_headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| websocket_accept(key.as_bytes()))
}

/// Whether a 101's `headers` prove the server read the WebSocket handshake
/// whose key `accept` answers: `Upgrade: websocket`, `Connection: upgrade`
/// and that `Sec-WebSocket-Accept`. A 101 without them may come from a
/// server that never switched and goes on reading HTTP from what would be
/// the tunnel: requests the gateway never judged.
pub fn proves_websocket_switch(headers: &HeaderMap, accept: Option<&HeaderValue>) -> bool {
    accept.is_some_and(|accept| {
        headers
            .get(header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
            && has_token(headers, &header::CONNECTION, "upgrade")
            && headers.get(header::SEC_WEBSOCKET_ACCEPT) == Some(accept)
    })
}

/// The `Sec-WebSocket-Accept` that answers `key` (section 4.2.2): base64 of
/// the SHA-1 of the key and the protocol's GUID.
fn websocket_accept(key: &[u8]) -> HeaderValue {
    use base64::Engine as _;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(GUID);
    let accept = base64::engine::general_purpose::STANDARD.encode(context.finish());
    // Base64 is always a valid header value.
    HeaderValue::from_str(&accept).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 section 1.3's example key and accept value.
    #[test]
    fn the_accept_value_is_the_rfcs() {
        assert_eq!(
            websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    /// A 101 proves the switch only with all three fields right.
    #[test]
    fn a_switch_is_proven_by_upgrade_connection_and_accept() {
        let mut request = HeaderMap::new();
        request.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let accept = expected_accept(&request);
        let mut response = HeaderMap::new();
        response.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        response.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        response.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(proves_websocket_switch(&response, accept.as_ref()));
        assert!(!proves_websocket_switch(&response, None));
        let mut other = response.clone();
        other.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!proves_websocket_switch(&other, accept.as_ref()));
        let mut other = response.clone();
        other.remove(header::CONNECTION);
        assert!(!proves_websocket_switch(&other, accept.as_ref()));
        let mut other = response;
        other.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("x"));
        assert!(!proves_websocket_switch(&other, accept.as_ref()));
    }
}
