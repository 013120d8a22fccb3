//! Errors, each with the TLS alert it calls for.

use core::fmt;

use crate::{Flag, MessageKind};

/// The TLS alert a receiver sends when it refuses a `tls_flags` extension.
///
/// A codec-local mirror of the two `AlertDescription` values (RFC 8446 §6)
/// this crate can ask for, so the codec needs no TLS library; the hook crate
/// converts it to the TLS library's own type.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Alert {
    /// `decode_error` (50): the extension could not be parsed (TF-1).
    DecodeError,
    /// `illegal_parameter` (47): it parsed, but a value is not allowed
    /// (TF-3, TF-6).
    IllegalParameter,
}

impl Alert {
    /// The `AlertDescription` code point: 50 or 47.
    pub const fn code(self) -> u8 {
        match self {
            Self::DecodeError => 50,
            Self::IllegalParameter => 47,
        }
    }

    /// The name RFC 8446 gives it: `decode_error` or `illegal_parameter`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DecodeError => "decode_error",
            Self::IllegalParameter => "illegal_parameter",
        }
    }
}

impl fmt::Display for Alert {
    /// The RFC 8446 name, as [`Alert::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`decode`](crate::decode) refused an `extension_data`.
///
/// Framing errors (the input is truncated or overlong: TF-1) call for
/// `decode_error`; well-framed but invalid values (TF-3) call for
/// `illegal_parameter`. [`DecodeError::alert`] does that mapping.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DecodeErrorKind {
    /// No bytes at all, not even the length octet (TF-1).
    Empty,
    /// The length octet is 0: `flags<1..255>` needs at least one octet
    /// (TF-1; TF-3 makes it `decode_error`, as BoringSSL does).
    ZeroLength,
    /// The length octet does not match the number of octets after it: fewer
    /// (truncated) or more (trailing data, including any input over 256
    /// bytes) (TF-1).
    LengthMismatch {
        /// The length octet `L`.
        declared: u8,
        /// How many octets actually follow it.
        actual: usize,
    },
    /// Every flags octet is zero: the value sets no flag (TF-3). A sender
    /// with nothing to set sends no extension (TF-4).
    AllZero {
        /// The length octet `L`.
        declared: u8,
    },
    /// The last flags octet is zero while an earlier one is not: the
    /// encoding is longer than its highest flag needs (TF-3).
    TrailingZeroOctet {
        /// The length octet `L`.
        declared: u8,
        /// The octets the highest flag actually needs, less than `declared`.
        needed: u8,
    },
}

impl DecodeErrorKind {
    /// The alert this kind of error calls for: `decode_error` for framing
    /// (TF-1), `illegal_parameter` for non-minimal values (TF-3).
    pub const fn alert(self) -> Alert {
        match self {
            Self::Empty | Self::ZeroLength | Self::LengthMismatch { .. } => Alert::DecodeError,
            Self::AllZero { .. } | Self::TrailingZeroOctet { .. } => Alert::IllegalParameter,
        }
    }
}

/// A received `tls_flags` `extension_data` is malformed; the handshake must
/// be aborted with [`DecodeError::alert`].
///
/// Small and `Copy`, so it can be returned from a hook and logged without
/// allocation. Its `Display` says what is wrong, which rule of
/// SPECIFICATION.md it breaks, and the alert.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DecodeError {
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(kind: DecodeErrorKind) -> Self {
        Self { kind }
    }

    /// What is wrong, with the numbers involved.
    pub const fn kind(self) -> DecodeErrorKind {
        self.kind
    }

    /// The alert to abort the handshake with.
    pub const fn alert(self) -> Alert {
        self.kind.alert()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alert = self.alert();
        match self.kind {
            DecodeErrorKind::Empty => write!(
                f,
                "tls_flags extension_data is empty; it must hold a length octet \
                 of 1 to 255 and that many flag octets (TF-1, {alert})"
            ),
            DecodeErrorKind::ZeroLength => write!(
                f,
                "tls_flags extension_data declares 0 flag octets, below the \
                 minimum of 1; a sender with no flags omits the extension \
                 (TF-1, TF-3, {alert})"
            ),
            DecodeErrorKind::LengthMismatch { declared, actual } => write!(
                f,
                "tls_flags extension_data declares {declared} flag {} but carries \
                 {actual} (TF-1, {alert})",
                octets(usize::from(declared)),
            ),
            DecodeErrorKind::AllZero { declared } => write!(
                f,
                "tls_flags value of {declared} {} sets no flag; a sender with no \
                 flags omits the extension (TF-3, {alert})",
                octets(usize::from(declared)),
            ),
            DecodeErrorKind::TrailingZeroOctet { declared, needed } => write!(
                f,
                "tls_flags value is not minimal: it has {declared} {} but its \
                 highest flag needs {needed}, the last octet must not be zero \
                 (TF-3, {alert})",
                octets(usize::from(declared)),
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

impl From<DecodeError> for Alert {
    fn from(error: DecodeError) -> Self {
        error.alert()
    }
}

/// A received message carries a flag its sender was not allowed to set.
///
/// Returned by [`check_received`](crate::check_received): a response message
/// (SH, HRR, EE, CT) set a flag that was never proposed (TF-6). Always
/// aborts with `illegal_parameter`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Violation {
    message: MessageKind,
    flag: Flag,
}

impl Violation {
    pub(crate) const fn new(message: MessageKind, flag: Flag) -> Self {
        Self { message, flag }
    }

    /// The alert to abort the handshake with: `illegal_parameter` (TF-6).
    pub const fn alert(self) -> Alert {
        Alert::IllegalParameter
    }

    /// The message that carried the flag.
    pub const fn message(self) -> MessageKind {
        self.message
    }

    /// The first (lowest) unsolicited flag.
    pub const fn flag(self) -> Flag {
        self.flag
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) carries tls_flags flag {} that was not proposed; a response \
             may only acknowledge flags its peer proposed (TF-6, {})",
            self.message,
            self.message.abbreviation(),
            self.flag,
            self.alert(),
        )
    }
}

impl core::error::Error for Violation {}

impl From<Violation> for Alert {
    fn from(violation: Violation) -> Self {
        violation.alert()
    }
}

/// The buffer given to [`FlagSet::encode_into`](crate::FlagSet::encode_into)
/// cannot hold the encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BufferTooSmall {
    needed: usize,
    available: usize,
}

impl BufferTooSmall {
    pub(crate) const fn new(needed: usize, available: usize) -> Self {
        Self { needed, available }
    }

    /// Bytes the encoding needs: [`FlagSet::encoded_len`](crate::FlagSet::encoded_len),
    /// at most 256.
    pub const fn needed(self) -> usize {
        self.needed
    }

    /// Bytes the buffer had.
    pub const fn available(self) -> usize {
        self.available
    }
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tls_flags extension_data needs {} bytes but the buffer holds {}; \
             256 bytes always suffice",
            self.needed, self.available,
        )
    }
}

impl core::error::Error for BufferTooSmall {}

/// `octet` or `octets`.
const fn octets(n: usize) -> &'static str {
    if n == 1 {
        "octet"
    } else {
        "octets"
    }
}
