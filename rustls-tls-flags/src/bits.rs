//! Operations on a flags field in wire order, shared by [`FlagSet`] (owned)
//! and [`FlagsView`] (borrowed), so that both agree on numbering (TF-2).
//!
//! Every function takes octet slices of at most 255 octets, the most a flags
//! field can hold; none of them panics, whatever the slices hold.
//!
//! [`FlagSet`]: crate::FlagSet
//! [`FlagsView`]: crate::FlagsView

use core::fmt;
use core::iter::FusedIterator;

use crate::Flag;

/// Whether `flag` is set in `octets`. Flags beyond the last octet are unset.
pub(crate) fn contains(octets: &[u8], flag: Flag) -> bool {
    octets
        .get(flag.octet())
        .is_some_and(|octet| octet & flag.mask() != 0)
}

/// Number of flags set in `octets`.
pub(crate) fn count(octets: &[u8]) -> usize {
    octets
        .iter()
        .map(|octet| usize::try_from(octet.count_ones()).unwrap_or(usize::MAX))
        .fold(0, usize::saturating_add)
}

/// The first (lowest) flag set in `a` but not in `b`.
///
/// Works on 64-bit little-endian words, eight octets at a time: with flags
/// numbered least significant bit first (TF-2), bit `i` of word `w` is flag
/// `64w + i`, so the lowest extra flag is the lowest set bit of the first
/// word with one.
pub(crate) fn first_not_in(a: &[u8], b: &[u8]) -> Option<Flag> {
    let mut b_chunks = b.chunks(8);
    for (a_chunk, index) in a.chunks(8).zip(0u16..) {
        let extra = word(a_chunk) & !b_chunks.next().map_or(0, word);
        if extra != 0 {
            return Some(Flag::from_word_bit(index, extra));
        }
    }
    None
}

/// Up to eight octets as a little-endian 64-bit word, zero-padded.
fn word(chunk: &[u8]) -> u64 {
    if let Ok(full) = <[u8; 8]>::try_from(chunk) {
        return u64::from_le_bytes(full);
    }
    // The last, shorter chunk: octet `i` goes to bits `8i..8i+8`.
    chunk
        .iter()
        .rev()
        .fold(0, |word, octet| (word << 8) | u64::from(*octet))
}

/// The highest flag set in `octets`.
pub(crate) fn highest(octets: &[u8]) -> Option<Flag> {
    octets
        .iter()
        .zip(octet_bases())
        .rev()
        .find(|(octet, _)| **octet != 0)
        .map(|(octet, base)| {
            // The highest bit of the octet: isolate it, then take its index.
            let top = 0x80 >> octet.leading_zeros();
            Flag::from_octet_bit(base, top)
        })
}

/// The flag number held by bit 0 of each octet, in order: 0, 8, 16, …, 2032.
fn octet_bases() -> impl DoubleEndedIterator<Item = u16> + ExactSizeIterator {
    (0..255u16).map(|k| k * 8)
}

/// Writes `{3, 80 (request_client_auth)}`: the flags in ascending order, each
/// with its name when known.
pub(crate) fn fmt_list(octets: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("{")?;
    for (i, flag) in Iter::new(octets).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        fmt::Display::fmt(&flag, f)?;
    }
    f.write_str("}")
}

/// Iterator over the flags of a [`FlagSet`](crate::FlagSet) or a
/// [`FlagsView`](crate::FlagsView), in ascending order.
///
/// Made by `iter()` on either; it borrows the octets and never allocates.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    /// Octets not yet loaded into `bits`.
    rest: &'a [u8],
    /// Flag number of bit 0 of `rest[0]`.
    next_base: u16,
    /// Bits of the current octet not yet yielded.
    bits: u8,
    /// Flag number of bit 0 of the current octet.
    base: u16,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(octets: &'a [u8]) -> Self {
        Self {
            rest: octets,
            next_base: 0,
            bits: 0,
            base: 0,
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Flag;

    fn next(&mut self) -> Option<Flag> {
        while self.bits == 0 {
            let (&octet, rest) = self.rest.split_first()?;
            self.rest = rest;
            self.bits = octet;
            self.base = self.next_base;
            // At most 255 octets: `next_base` stays at or below 2040.
            self.next_base = self.next_base.saturating_add(8);
        }
        let flag = Flag::from_octet_bit(self.base, self.bits);
        // Clear the lowest set bit, the one just yielded.
        self.bits &= self.bits - 1;
        Some(flag)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let current = usize::try_from(self.bits.count_ones()).unwrap_or(usize::MAX);
        let upper = self.rest.len().saturating_mul(8).saturating_add(current);
        (current, Some(upper))
    }
}

impl FusedIterator for Iter<'_> {}
