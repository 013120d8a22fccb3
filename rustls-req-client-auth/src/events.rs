//! What a server's flags do, told as it happens: a client's flag and the
//! CertificateRequest are seen before the handshake completes, and a
//! client that gives up after the CertificateRequest (a browser that
//! closes the certificate picker) completes none. Counters kept from
//! [`PeerIdentity`](crate::PeerIdentity) alone never see those.

use std::fmt;
use std::sync::Arc;

use crate::request_cause::CertificateRequestCause;

/// One thing a server connection's flags did; see [`crate::ServerFlags::on_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlagsEvent {
    /// A TLS 1.3 ClientHello set `request_client_auth` (once per
    /// connection: not again for the second ClientHello after a
    /// HelloRetryRequest).
    RequestClientAuthReceived,
    /// A CertificateRequest is being sent, for this reason.
    CertificateRequestSent(CertificateRequestCause),
}

/// The application's callback for [`FlagsEvent`]s.
#[derive(Clone)]
pub(crate) struct EventObserver(pub(crate) Arc<dyn Fn(FlagsEvent) + Send + Sync>);

impl EventObserver {
    pub(crate) fn tell(observer: Option<&Self>, event: FlagsEvent) {
        if let Some(observer) = observer {
            (observer.0)(event);
        }
    }
}

impl fmt::Debug for EventObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventObserver")
    }
}
