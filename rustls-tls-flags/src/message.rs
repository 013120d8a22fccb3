//! Which messages may carry `tls_flags`, and what each may set.

use core::fmt;

use crate::error::Violation;
use crate::{FlagSet, FlagsView};

/// A TLS 1.3 handshake message that may carry a `tls_flags` extension
/// (TF-5).
///
/// A `tls_flags` extension in any other message is an `illegal_parameter`
/// error (RFC 8446 §4.2); the message parser, not this codec, sees those.
/// Non-exhaustive so that a future message (say, a post-handshake one) can be
/// added.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MessageKind {
    /// `ClientHello` (CH): proposes flags (request).
    ClientHello,
    /// `ServerHello` (SH): acknowledges flags the CH proposed (response).
    ServerHello,
    /// `HelloRetryRequest` (HRR): acknowledges flags the CH proposed
    /// (response).
    HelloRetryRequest,
    /// `EncryptedExtensions` (EE): acknowledges flags the CH proposed
    /// (response).
    EncryptedExtensions,
    /// `CertificateRequest` (CR): proposes flags to the client (request).
    CertificateRequest,
    /// A `Certificate` entry's extensions (CT): acknowledges flags the CH
    /// (server's CT) or the CR (client's CT) proposed (response).
    Certificate,
    /// `NewSessionTicket` (NST): may set flags unsolicited (request).
    NewSessionTicket,
}

impl MessageKind {
    /// Whether this message may set flags nobody proposed: `true` for CH,
    /// CR and NST (TF-6), whose unknown flags the receiver ignores (TF-8);
    /// `false` for the responses SH, HRR, EE and CT.
    pub const fn is_request(self) -> bool {
        match self {
            Self::ClientHello | Self::CertificateRequest | Self::NewSessionTicket => true,
            Self::ServerHello
            | Self::HelloRetryRequest
            | Self::EncryptedExtensions
            | Self::Certificate => false,
        }
    }

    /// The short name the drafts use: `"CH"`, `"SH"`, `"HRR"`, `"EE"`,
    /// `"CR"`, `"CT"`, `"NST"`.
    pub const fn abbreviation(self) -> &'static str {
        match self {
            Self::ClientHello => "CH",
            Self::ServerHello => "SH",
            Self::HelloRetryRequest => "HRR",
            Self::EncryptedExtensions => "EE",
            Self::CertificateRequest => "CR",
            Self::Certificate => "CT",
            Self::NewSessionTicket => "NST",
        }
    }

    /// The message's name in RFC 8446: `"ClientHello"`, ….
    pub const fn name(self) -> &'static str {
        match self {
            Self::ClientHello => "ClientHello",
            Self::ServerHello => "ServerHello",
            Self::HelloRetryRequest => "HelloRetryRequest",
            Self::EncryptedExtensions => "EncryptedExtensions",
            Self::CertificateRequest => "CertificateRequest",
            Self::Certificate => "Certificate",
            Self::NewSessionTicket => "NewSessionTicket",
        }
    }
}

impl fmt::Display for MessageKind {
    /// The RFC 8446 name, as [`MessageKind::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks the flags received in a `kind` message against what was proposed
/// (TF-6, TF-8).
///
/// - Request messages (CH, CR, NST) may set any flag, and flags the receiver
///   does not know are ignored, not errors (TF-8): always `Ok`.
/// - Response messages (SH, HRR, EE, CT) may only set flags that were
///   proposed to their sender (TF-6). `proposed` is what this side sent: the
///   flags of our ClientHello when checking the server's SH, HRR, EE or CT,
///   the flags of our CertificateRequest when checking the client's CT.
///   `None` means we proposed nothing, so every flag is unsolicited.
///
/// This is the whole check the codec can make; which flags a receiver then
/// acts on, and which message each flag belongs in, is up to the caller.
///
/// # Errors
///
/// A [`Violation`] naming the message and the lowest unsolicited flag;
/// abort with its alert, `illegal_parameter`.
///
/// ```
/// use rustls_tls_flags::{check_received, decode, Flag, FlagSet, MessageKind};
///
/// let proposed = FlagSet::from([Flag::REQUEST_CLIENT_AUTH]);
/// let ack = decode(&[0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01])?;
/// assert!(check_received(MessageKind::CertificateRequest, &ack, Some(&proposed)).is_ok());
///
/// let unsolicited = decode(&[0x01, 0x08])?; // flag 3
/// let err = check_received(MessageKind::EncryptedExtensions, &unsolicited, Some(&proposed))
///     .unwrap_err();
/// assert_eq!(err.flag(), Flag::new(3).unwrap());
/// # Ok::<(), rustls_tls_flags::DecodeError>(())
/// ```
pub fn check_received(
    kind: MessageKind,
    received: &FlagsView<'_>,
    proposed: Option<&FlagSet>,
) -> Result<(), Violation> {
    if kind.is_request() {
        return Ok(()); // TF-6, TF-8
    }
    // TF-6: a response may only echo proposed flags.
    let unsolicited = match proposed {
        Some(proposed) => received.first_not_in(proposed),
        None => received.iter().next(),
    };
    match unsolicited {
        None => Ok(()),
        Some(flag) => Err(Violation::new(kind, flag)),
    }
}
