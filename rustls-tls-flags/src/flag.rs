//! One flag number.

use core::fmt;

/// A TLS flag number, `0..=2039` (TF-2).
///
/// The extension's `flags<1..255>` field holds at most 255 octets of eight
/// bits each, so 2040 flags can be expressed; `Flag` can only hold a number
/// in that range, which lets every set and view index its octets without a
/// bounds failure.
///
/// The flag registry is open and mostly unassigned: unknown numbers are
/// valid flags (they are carried, never dropped — TF-8), only [`Flag::name`]
/// returns `None` for them.
///
/// ```
/// use rustls_tls_flags::Flag;
///
/// let flag = Flag::new(80).expect("80 is in 0..=2039");
/// assert_eq!(flag, Flag::REQUEST_CLIENT_AUTH);
/// assert_eq!(flag.to_string(), "80 (request_client_auth)");
/// assert_eq!(Flag::new(2040), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Flag(u16);

impl Flag {
    /// The highest flag number the wire format can carry: 255 octets × 8 − 1.
    pub const MAX: Self = Self(2039);

    /// `resumption_across_names` (8), the first entry of the TLS Flags
    /// registry: a server says in a `NewSessionTicket` that the ticket may be
    /// used for other names its certificate covers.
    pub const RESUMPTION_ACROSS_NAMES: Self = Self(8);

    /// `request_client_auth` (80): the client asks the server to request a
    /// client certificate from it.
    ///
    /// The draft leaves the number to IANA ("TBD"); 80 is the experimental
    /// value Cloudflare deploys. Callers that must interoperate with a
    /// different assignment construct their own with [`Flag::new`].
    pub const REQUEST_CLIENT_AUTH: Self = Self(80);

    /// Returns the flag numbered `number`, or `None` if it is above
    /// [`Flag::MAX`] and so cannot be put on the wire (TF-2).
    pub const fn new(number: u16) -> Option<Self> {
        if number <= Self::MAX.0 {
            Some(Self(number))
        } else {
            None
        }
    }

    /// The flag number, `0..=2039`.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The registered or experimental name of this flag, if this crate knows
    /// it (`"request_client_auth"`, `"resumption_across_names"`).
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Self::RESUMPTION_ACROSS_NAMES => Some("resumption_across_names"),
            Self::REQUEST_CLIENT_AUTH => Some("request_client_auth"),
            _ => None,
        }
    }

    /// Index of the octet that holds this flag: flag `8k + j` lives in octet
    /// `k` (TF-2). At most 254.
    pub(crate) fn octet(self) -> usize {
        usize::from(self.0 >> 3)
    }

    /// Bit of [`Flag::octet`] that holds this flag: flag `8k + j` is the bit
    /// with value `1 << j`, least significant bit first (TF-2).
    pub(crate) const fn mask(self) -> u8 {
        1 << (self.0 & 7)
    }

    /// The flag at bit `bit` of the octet whose first flag is `base`.
    ///
    /// Only for callers that took `base` from a position in a flags field of
    /// at most 255 octets, so the result is at most [`Flag::MAX`].
    pub(crate) fn from_octet_bit(base: u16, octet: u8) -> Self {
        debug_assert!(octet != 0);
        Self(base + lowest_bit(octet.trailing_zeros()))
    }

    /// The flag at the lowest set bit of `word`, the `index`th 64-bit
    /// little-endian word of a flags field of at most 255 octets.
    pub(crate) fn from_word_bit(index: u16, word: u64) -> Self {
        debug_assert!(word != 0);
        Self(index * 64 + lowest_bit(word.trailing_zeros()))
    }
}

/// A bit position from `trailing_zeros`, as a `u16`.
#[allow(clippy::as_conversions, clippy::cast_possible_truncation)]
fn lowest_bit(trailing_zeros: u32) -> u16 {
    // `trailing_zeros` of a `u8` or `u64` is at most 64, which fits a `u16`.
    trailing_zeros as u16
}

impl From<Flag> for u16 {
    fn from(flag: Flag) -> Self {
        flag.0
    }
}

impl fmt::Display for Flag {
    /// The number, followed by the name in parentheses when known:
    /// `80 (request_client_auth)`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}
