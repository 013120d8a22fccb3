//! Requests the HTTP layer answers by itself, before the service sees them:
//! an HTTP/1.1 head that hyper cannot parse gets 400, one over the head limit
//! gets 431, and a target too long gets 414. A server that logs every
//! request should log these too, as nginx does, so `serve` reports them
//! ([`Serve::on_refused_request`](crate::Serve::on_refused_request)).
//!
//! HTTP/2 has no equivalent: h2 resets a malformed stream on its own, and
//! the connection carries on.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::StatusCode;

use crate::PeerIdentity;

/// A request that hyper answered by itself because it could not read the
/// head. No service saw it, so its method and path are unknown.
#[derive(Debug)]
#[non_exhaustive]
pub struct RefusedRequest<'a> {
    /// The connection's client, as its handshake left it.
    pub peer: &'a PeerIdentity,
    /// The client's address: the one the PROXY protocol header gave, when
    /// it was used.
    pub remote: SocketAddr,
    /// The status hyper answered with.
    pub status: StatusCode,
    /// Why, in hyper's words (for example "invalid HTTP header parsed").
    pub reason: String,
}

/// Called for each [`RefusedRequest`].
pub type RefusedRequestObserver = Arc<dyn Fn(&RefusedRequest<'_>) + Send + Sync>;

/// The status of the answer hyper's HTTP/1.1 server wrote by itself before
/// its connection ended with `error`. Returns `None` when hyper wrote none:
/// the client left, a timeout, or a parse error that hyper answers with
/// nothing (an HTTP/2 preface, or its own internal error).
///
/// hyper decides these statuses in `role::Server::on_error`: 431 for a head
/// over `max_buf_size`, 414 for a target over 64 KiB, and 400 for any
/// other method, target, version or header it cannot parse. Its public
/// `Error` tells these cases apart only by their text.
pub(crate) fn status_answered(error: &hyper::Error) -> Option<StatusCode> {
    if error.is_parse_too_large() {
        let uri = error.to_string().starts_with("URI too long");
        return Some(if uri {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        });
    }
    let unanswered = error.is_parse_version_h2()
        || error.is_parse_status()
        || error.to_string().starts_with("internal error");
    (error.is_parse() && !unanswered).then_some(StatusCode::BAD_REQUEST)
}
