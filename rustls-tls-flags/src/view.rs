//! The decoder, and the borrowed view it returns.

use core::fmt;

use crate::bits::{self, Iter};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::{Flag, FlagSet};

/// Decodes and validates the `extension_data` of a received `tls_flags`
/// extension, without copying or allocating.
///
/// `extension_data` is what follows the extension's type and length in the
/// extensions block: `opaque flags<1..255>` (draft-ietf-tls-tlsflags-15 §2).
///
/// It checks, in this order:
///
/// 1. TF-1: there is a length octet `L`, `L` is in `1..=255` (`L = 0` is
///    outside the vector bounds, our choice, as BoringSSL), and exactly `L`
///    octets follow. Input of more than 256 bytes can never pass. Failing
///    that, the input is truncated or overlong, not merely odd, and the
///    alert is `decode_error`.
/// 2. TF-3: the value is minimal: its last octet is not zero, which also
///    rules out an all-zero value. Failing that, the framing is sound but
///    the content is not, and the alert is `illegal_parameter`.
///
/// Unknown flags are not an error here: whether a flag may appear depends on
/// the message (TF-6, TF-8), see [`check_received`](crate::check_received).
///
/// # Errors
///
/// A [`DecodeError`] whose [`kind`](DecodeError::kind) says what is wrong
/// and whose [`alert`](DecodeError::alert) is the alert to send.
///
/// ```
/// use rustls_tls_flags::{decode, Alert, Flag};
///
/// let view = decode(&[0x03, 0x28, 0x00, 0x80])?;
/// let flags: Vec<u16> = view.iter().map(Flag::get).collect();
/// assert_eq!(flags, [3, 5, 23]);
///
/// let err = decode(&[0x02, 0x01, 0x00]).unwrap_err();
/// assert_eq!(err.alert(), Alert::IllegalParameter);
/// # Ok::<(), rustls_tls_flags::DecodeError>(())
/// ```
pub fn decode(extension_data: &[u8]) -> Result<FlagsView<'_>, DecodeError> {
    // TF-1: the length octet.
    let Some((&declared, flags)) = extension_data.split_first() else {
        return Err(DecodeError::new(DecodeErrorKind::Empty));
    };
    // TF-1, TF-3: `flags<1..255>` has a lower bound of one octet; L = 0 is a
    // framing error (decode_error), our choice as BoringSSL's.
    if declared == 0 {
        return Err(DecodeError::new(DecodeErrorKind::ZeroLength));
    }
    // TF-1: exactly L octets follow. As L <= 255, this also rejects any input
    // longer than 256 bytes.
    if flags.len() != usize::from(declared) {
        return Err(DecodeError::new(DecodeErrorKind::LengthMismatch {
            declared,
            actual: flags.len(),
        }));
    }
    // TF-3: minimal encoding; the last octet holds the highest flag.
    if flags.last() == Some(&0) {
        let kind = match flags.iter().rposition(|octet| *octet != 0) {
            None => DecodeErrorKind::AllZero { declared },
            Some(last_non_zero) => DecodeErrorKind::TrailingZeroOctet {
                declared,
                needed: u8::try_from(last_non_zero + 1).unwrap_or(declared),
            },
        };
        return Err(DecodeError::new(kind));
    }
    Ok(FlagsView { octets: flags })
}

/// A validated flags field borrowed from received `extension_data`.
///
/// Made only by [`decode`], so it always holds 1 to 255 octets whose last one
/// is non-zero: at least one flag is set and the encoding was minimal
/// (TF-1, TF-3). Looking up a flag reads one octet; nothing is copied until
/// [`FlagsView::to_set`].
///
/// Unknown flags are kept: the view reports every flag the peer set.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagsView<'a> {
    /// The flags octets, without the length octet.
    octets: &'a [u8],
}

impl<'a> FlagsView<'a> {
    /// Whether the peer set `flag`.
    pub fn contains(&self, flag: Flag) -> bool {
        bits::contains(self.octets, flag)
    }

    /// The flags the peer set, in ascending order.
    pub fn iter(&self) -> Iter<'a> {
        Iter::new(self.octets)
    }

    /// Always `false`: [`decode`] rejects a value that sets no flag (TF-3).
    pub fn is_empty(&self) -> bool {
        self.octets.iter().all(|octet| *octet == 0)
    }

    /// Number of flags the peer set; at least 1.
    pub fn len(&self) -> usize {
        bits::count(self.octets)
    }

    /// The highest flag the peer set; its octet is the last one (TF-3).
    pub fn highest(&self) -> Option<Flag> {
        bits::highest(self.octets)
    }

    /// An owned copy, for keeping past the lifetime of the received message
    /// (for example the flags a ClientHello proposed, to check the server's
    /// later responses against).
    pub fn to_set(&self) -> FlagSet {
        FlagSet::from_minimal_octets(self.octets)
    }

    /// The flags octets as received, without the length octet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.octets
    }

    /// Whether every flag the peer set is in `proposed`.
    pub fn is_subset_of(&self, proposed: &FlagSet) -> bool {
        self.first_not_in(proposed).is_none()
    }

    /// The lowest flag the peer set that is not in `proposed`: the one to name
    /// when refusing an unsolicited flag (TF-6).
    pub fn first_not_in(&self, proposed: &FlagSet) -> Option<Flag> {
        bits::first_not_in(self.octets, proposed.as_bytes())
    }
}

impl<'a> IntoIterator for &FlagsView<'a> {
    type Item = Flag;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for FlagsView<'a> {
    type Item = Flag;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for FlagsView<'_> {
    /// Same as [`Display`](fmt::Display): `{3, 80 (request_client_auth)}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bits::fmt_list(self.octets, f)
    }
}

impl fmt::Display for FlagsView<'_> {
    /// The flags in ascending order, named when known:
    /// `{3, 80 (request_client_auth)}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bits::fmt_list(self.octets, f)
    }
}

impl PartialEq<FlagSet> for FlagsView<'_> {
    fn eq(&self, other: &FlagSet) -> bool {
        self.octets == other.as_bytes()
    }
}

impl PartialEq<FlagsView<'_>> for FlagSet {
    fn eq(&self, other: &FlagsView<'_>) -> bool {
        self.as_bytes() == other.octets
    }
}
