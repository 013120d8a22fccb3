//! An owned set of flags, and the encoder.

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::bits::{self, Iter};
use crate::error::BufferTooSmall;
use crate::{Flag, FlagsView};

/// Octets needed for every flag up to [`Flag::MAX`].
const CAPACITY: usize = 255;

/// An owned set of flags: what a peer proposes, what we offer, what was
/// acknowledged.
///
/// A fixed 255-octet bit string in wire order (TF-2) plus the number of
/// octets in use, so it never allocates and its encoding is minimal by
/// construction (TF-3): [`FlagSet::encode_into`] writes exactly the octets up
/// to the highest flag, and an empty set encodes to nothing at all, meaning
/// "send no extension" (TF-4).
///
/// ```
/// use rustls_tls_flags::{Flag, FlagSet};
///
/// let mut set = FlagSet::new();
/// assert!(set.insert(Flag::REQUEST_CLIENT_AUTH));
/// assert!(set.insert(Flag::new(3).unwrap()));
/// assert_eq!(set.to_string(), "{3, 80 (request_client_auth)}");
/// assert_eq!(set.encoded_len(), 1 + 11);
/// ```
#[derive(Clone)]
pub struct FlagSet {
    /// Octet `k` holds flags `8k..8k+8`, bit `1 << j` for flag `8k + j`.
    octets: [u8; CAPACITY],
    /// Number of octets up to and including the last non-zero one; every
    /// octet from here on is zero. `0` for the empty set.
    used: u8,
}

impl FlagSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self {
            octets: [0; CAPACITY],
            used: 0,
        }
    }

    /// Adds `flag`; returns whether it was absent before.
    pub fn insert(&mut self, flag: Flag) -> bool {
        let Some(octet) = self.octets.get_mut(flag.octet()) else {
            return false; // unreachable: a `Flag` fits in 255 octets
        };
        let absent = *octet & flag.mask() == 0;
        *octet |= flag.mask();
        let needed = flag.get() / 8 + 1;
        if u16::from(self.used) < needed {
            self.used = u8::try_from(needed).unwrap_or(u8::MAX);
        }
        absent
    }

    /// Removes `flag`; returns whether it was present.
    pub fn remove(&mut self, flag: Flag) -> bool {
        let Some(octet) = self.octets.get_mut(flag.octet()) else {
            return false; // unreachable: a `Flag` fits in 255 octets
        };
        let present = *octet & flag.mask() != 0;
        *octet &= !flag.mask();
        self.trim();
        present
    }

    /// Whether `flag` is in the set.
    pub fn contains(&self, flag: Flag) -> bool {
        bits::contains(self.as_bytes(), flag)
    }

    /// Whether no flag is set; an empty set is sent as no extension (TF-4).
    pub const fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Number of flags in the set.
    pub fn len(&self) -> usize {
        bits::count(self.as_bytes())
    }

    /// The flags in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter::new(self.as_bytes())
    }

    /// The highest flag in the set; it decides the encoded length (TF-3).
    pub fn highest(&self) -> Option<Flag> {
        bits::highest(self.as_bytes())
    }

    /// Whether every flag of `self` is also in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        bits::first_not_in(self.as_bytes(), other.as_bytes()).is_none()
    }

    /// The flags in both `self` and `other`: for example what a server
    /// acknowledges, out of what the client proposed and what it supports.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (mine, theirs) in out.octets.iter_mut().zip(other.octets.iter()) {
            *mine &= theirs;
        }
        out.used = self.used.min(other.used);
        out.trim();
        out
    }

    /// The flags of `self` that are not in `other`.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (mine, theirs) in out.octets.iter_mut().zip(other.octets.iter()) {
            *mine &= !theirs;
        }
        out.trim();
        out
    }

    /// The flags in `self`, `other` or both.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (mine, theirs) in out.octets.iter_mut().zip(other.octets.iter()) {
            *mine |= theirs;
        }
        out.used = self.used.max(other.used);
        out
    }

    /// The flags octets of the minimal encoding, without the length octet;
    /// empty for the empty set.
    pub fn as_bytes(&self) -> &[u8] {
        self.octets
            .get(..usize::from(self.used))
            .unwrap_or_default()
    }

    /// Length of the `extension_data` [`FlagSet::encode_into`] writes: `0`
    /// for the empty set (no extension, TF-4), else one length octet plus
    /// the octets up to the highest flag (TF-1, TF-3).
    pub fn encoded_len(&self) -> usize {
        if self.used == 0 {
            0
        } else {
            1 + usize::from(self.used)
        }
    }

    /// Writes the `extension_data` of a `tls_flags` extension carrying this
    /// set into the start of `out`, and returns how many bytes it wrote.
    ///
    /// The encoding is minimal by construction (TF-3): one length octet `L`
    /// followed by `L` octets, the last of them non-zero. For the empty set
    /// it writes nothing and returns `Ok(0)`: the sender must then omit the
    /// extension altogether (TF-4).
    ///
    /// # Errors
    ///
    /// [`BufferTooSmall`] if `out` is shorter than
    /// [`FlagSet::encoded_len`]; `out` is left untouched then. A 256-byte
    /// buffer always suffices.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = self.encoded_len();
        if needed == 0 {
            return Ok(0); // TF-4
        }
        let available = out.len();
        let Some((length, flags)) = out.get_mut(..needed).and_then(<[u8]>::split_first_mut) else {
            return Err(BufferTooSmall::new(needed, available));
        };
        *length = self.used; // TF-1
        flags.copy_from_slice(self.as_bytes());
        Ok(needed)
    }

    /// The `extension_data` of a `tls_flags` extension carrying this set, or
    /// `None` for the empty set, which is sent as no extension (TF-4).
    #[cfg(feature = "alloc")]
    pub fn to_extension_data(&self) -> Option<alloc::vec::Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let mut data = alloc::vec::Vec::with_capacity(self.encoded_len());
        data.push(self.used);
        data.extend_from_slice(self.as_bytes());
        Some(data)
    }

    /// Lowers `used` past any zero octets at the end, restoring minimality.
    fn trim(&mut self) {
        while let Some(last) = self.used.checked_sub(1) {
            if self.octets.get(usize::from(last)).is_some_and(|o| *o != 0) {
                break;
            }
            self.used = last;
        }
    }

    /// Copies the octets of a decoded, hence minimal, flags field.
    pub(crate) fn from_minimal_octets(octets: &[u8]) -> Self {
        let mut set = Self::new();
        for (mine, theirs) in set.octets.iter_mut().zip(octets) {
            *mine = *theirs;
        }
        set.used = u8::try_from(octets.len().min(CAPACITY)).unwrap_or(u8::MAX);
        set.trim();
        set
    }
}

impl Default for FlagSet {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for FlagSet {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for FlagSet {}

impl Hash for FlagSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl<'a> IntoIterator for &'a FlagSet {
    type Item = Flag;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<Flag> for FlagSet {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

impl Extend<Flag> for FlagSet {
    fn extend<I: IntoIterator<Item = Flag>>(&mut self, iter: I) {
        for flag in iter {
            self.insert(flag);
        }
    }
}

impl<const N: usize> From<[Flag; N]> for FlagSet {
    fn from(flags: [Flag; N]) -> Self {
        flags.into_iter().collect()
    }
}

impl From<FlagsView<'_>> for FlagSet {
    fn from(view: FlagsView<'_>) -> Self {
        view.to_set()
    }
}

impl fmt::Debug for FlagSet {
    /// Same as [`Display`](fmt::Display): `{3, 80 (request_client_auth)}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bits::fmt_list(self.as_bytes(), f)
    }
}

impl fmt::Display for FlagSet {
    /// The flags in ascending order, named when known:
    /// `{3, 80 (request_client_auth)}`; `{}` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bits::fmt_list(self.as_bytes(), f)
    }
}
