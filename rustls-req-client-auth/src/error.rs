//! What went wrong, which rule it breaks, and which alert the peer gets.

use rustls::hooks::HookError;
use rustls::AlertDescription;
use rustls_tls_flags::{Alert, DecodeError, Flag, MessageKind};

/// A TLS Flags or `request_client_auth` rule the peer broke.
///
/// It is carried inside [`rustls::Error::Other`] by the failing connection; get
/// it back with [`FlagsError::from_rustls`]. Each variant names the rule of the
/// [specification](crate::specification) it enforces ([`FlagsError::rule`]) and the alert sent
/// ([`FlagsError::alert`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsError {
    /// A malformed `tls_flags` value (TF-1, TF-3).
    #[error("malformed tls_flags extension in {message}: {source}")]
    Malformed {
        /// The message that carried it.
        message: MessageKind,
        /// The codec's account of what is wrong.
        #[source]
        source: DecodeError,
    },
    /// A response carried a flag that was never proposed (TF-6).
    #[error("{message} carries flag {flag} that was not proposed to the peer (TF-6)")]
    Unsolicited {
        /// The message that carried it.
        message: MessageKind,
        /// The first unsolicited flag.
        flag: Flag,
    },
    /// `tls_flags` in a TLS 1.2 ServerHello: TLS Flags is a TLS 1.3 extension (TF-5).
    #[error(
        "tls_flags in a TLS 1.2 ServerHello; the extension is defined for TLS 1.3 only (TF-5)"
    )]
    Tls12ServerHello,
    /// The server acknowledged `request_client_auth` although the client did not send it (RCA-6).
    #[error("CertificateRequest acknowledges request_client_auth, which the ClientHello did not carry (RCA-6)")]
    UnrequestedAcknowledgement,
    /// `request_client_auth` in a server message other than CertificateRequest (RCA-7).
    #[error("request_client_auth in a {message}; a server may only send it in a CertificateRequest (RCA-7)")]
    FlagInServerMessage {
        /// The message that carried it.
        message: MessageKind,
    },
    /// `request_client_auth` in the client's Certificate (RCA-8).
    #[error("request_client_auth in the client's Certificate; a client may only send it in a ClientHello (RCA-8)")]
    FlagInClientCertificate,
    /// The second ClientHello changed the flags of the first (RCA-13).
    #[error("the ClientHello after a HelloRetryRequest carries other TLS flags ({second}) than the first ({first}) (RCA-13)")]
    RetryChangedFlags {
        /// Flags in the first ClientHello.
        first: String,
        /// Flags in the second.
        second: String,
    },
}

impl FlagsError {
    /// The alert the peer receives.
    pub fn alert(&self) -> AlertDescription {
        match self {
            Self::Malformed { source, .. } => match source.alert() {
                Alert::DecodeError => AlertDescription::DecodeError,
                _ => AlertDescription::IllegalParameter,
            },
            _ => AlertDescription::IllegalParameter,
        }
    }

    /// The id of the rule in the [specification](crate::specification), such as `TF-6`.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Malformed { source, .. } => match source.alert() {
                Alert::DecodeError => "TF-1",
                _ => "TF-3",
            },
            Self::Unsolicited { .. } => "TF-6",
            Self::Tls12ServerHello => "TF-5",
            Self::UnrequestedAcknowledgement => "RCA-6",
            Self::FlagInServerMessage { .. } => "RCA-7",
            Self::FlagInClientCertificate => "RCA-8",
            Self::RetryChangedFlags { .. } => "RCA-13",
        }
    }

    /// The `FlagsError` inside a connection's error, if that is what ended it.
    pub fn from_rustls(error: &rustls::Error) -> Option<&Self> {
        match error {
            rustls::Error::Other(other) => other.0.downcast_ref::<Self>(),
            _ => None,
        }
    }
}

impl From<FlagsError> for HookError {
    fn from(error: FlagsError) -> Self {
        Self::new(
            error.alert(),
            rustls::Error::Other(rustls::OtherError(std::sync::Arc::new(error))),
        )
    }
}
