//! Outcomes, predicted (by the model) and observed (in real handshakes).

use super::*;

/// Why a side aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// A `FlagsError` citing this rule.
    Rule(&'static str),
    /// rustls refused the certificate (`Error::InvalidCertificate`).
    BadCertificate,
    /// rustls: empty Certificate where one is required.
    NoCertificate,
    /// Some other rustls error (its own extension checks).
    Rustls,
}

/// What the honest `ClientFlags` client reports (`client_state`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientView {
    pub(crate) requested_client_auth: bool,
    pub(crate) certificate_request: Option<CertificateRequestCause>,
    /// `acknowledged()`, in order.
    pub(crate) acknowledged: Vec<u16>,
}

/// What the honest `ServerFlags` server reports (`server_state`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerView {
    /// `client_flags()`, in order.
    pub(crate) client_flags: Vec<u16>,
    pub(crate) requested_client_auth: bool,
    pub(crate) certificate_request: Option<CertificateRequestCause>,
    pub(crate) acknowledged: bool,
    pub(crate) resumed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Success {
    pub(crate) version: ProtocolVersion,
    pub(crate) kind: HandshakeKind,
    pub(crate) path: AuthPath,
    /// The certificate `server::peer` reports.
    pub(crate) chain: Option<Cert>,
    /// `Some` iff the client runs `ClientFlags`.
    pub(crate) client: Option<ClientView>,
    /// `Some` iff the server runs `ServerFlags`.
    pub(crate) server: Option<ServerView>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub(crate) aborts: Side,
    /// The alert the other side receives.
    pub(crate) alert: AlertDescription,
    /// Acceptable reasons (several where two rules apply at once).
    pub(crate) why: Vec<Why>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Prediction {
    Success(Success),
    Failure(Failure),
}

/// What was observed, for the failure message.
#[derive(Debug)]
pub(crate) enum Observed {
    Success(Success),
    Failure {
        aborts: Side,
        alert: Option<AlertDescription>,
        why: Why,
        /// Printed in failure messages.
        #[allow(dead_code)]
        error: String,
    },
}
