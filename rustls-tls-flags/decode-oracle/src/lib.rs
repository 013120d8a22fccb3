//! The assertion the `codec_decode` fuzz target makes on every input, shared
//! with the codec's tests that replay its corpus and with its proptests
//! (`fuzz/fuzz_targets/codec_decode.rs`, `rustls-tls-flags/tests/*.rs`).
//! Free of dependencies other than `rustls_tls_flags` and `std`.

#![forbid(unsafe_code)]

use rustls_tls_flags::{decode, Alert, DecodeErrorKind, FlagSet};

/// An independent statement of TF-1 + TF-3: valid iff a length octet L in
/// 1..=255 is followed by exactly L octets, the last of which is non-zero.
pub fn is_minimal_encoding(data: &[u8]) -> bool {
    match data.split_first() {
        Some((&l, rest)) => l != 0 && rest.len() == usize::from(l) && rest.last() != Some(&0),
        None => false,
    }
}

/// Decodes `data` and checks everything the codec promises about it.
/// Returns whether `data` decoded.
///
/// # Panics
///
/// On any broken promise: that is the fuzz target's finding.
pub fn check(data: &[u8]) -> bool {
    let result = decode(data);
    assert_eq!(
        result.is_ok(),
        is_minimal_encoding(data),
        "decode disagrees with the reference predicate on {data:02x?}: {result:?}"
    );
    match result {
        Ok(view) => {
            // Zero-copy: the view is the input minus its length octet.
            assert_eq!(Some(view.as_bytes()), data.get(1..));
            assert!(!view.is_empty(), "TF-3: a decoded value sets a flag");

            // Round trip: re-encoding the owned set reproduces the input.
            let set = view.to_set();
            let mut buf = [0u8; 256];
            let n = set.encode_into(&mut buf).expect("256 bytes always suffice");
            assert_eq!(n, set.encoded_len());
            assert_eq!(buf.get(..n), Some(data), "encode(decode(x)) != x");

            // The view and the set agree on every flag, in the same order.
            assert!(
                view.iter().eq(set.iter()),
                "view and set iterate differently"
            );
            assert_eq!(view.len(), set.len());
            assert_eq!(view.highest(), set.highest());
            assert!(view
                .iter()
                .all(|flag| view.contains(flag) && set.contains(flag)));
            assert!(view.is_subset_of(&set));
            assert_eq!(view.first_not_in(&set), None);
            assert_eq!(view.first_not_in(&FlagSet::new()), view.iter().next());
            assert_eq!(view, set);
            true
        }
        Err(err) => {
            let kind = err.kind();
            let expected_alert = match kind {
                DecodeErrorKind::Empty
                | DecodeErrorKind::ZeroLength
                | DecodeErrorKind::LengthMismatch { .. } => Alert::DecodeError,
                DecodeErrorKind::AllZero { .. } | DecodeErrorKind::TrailingZeroOctet { .. } => {
                    Alert::IllegalParameter
                }
                _ => panic!("unexpected error kind {kind:?}"),
            };
            assert_eq!(
                err.alert(),
                expected_alert,
                "alert inconsistent with {kind:?}"
            );

            // The kind describes this very input.
            let Some((&declared, flags)) = data.split_first() else {
                assert_eq!(kind, DecodeErrorKind::Empty);
                return false;
            };
            match kind {
                DecodeErrorKind::ZeroLength => assert_eq!(declared, 0),
                DecodeErrorKind::LengthMismatch {
                    declared: d,
                    actual,
                } => {
                    assert_eq!((d, actual), (declared, flags.len()));
                    assert_ne!(usize::from(declared), flags.len());
                    assert_ne!(declared, 0);
                }
                DecodeErrorKind::AllZero { declared: d } => {
                    assert_eq!(d, declared);
                    assert!(flags.iter().all(|o| *o == 0));
                }
                DecodeErrorKind::TrailingZeroOctet {
                    declared: d,
                    needed,
                } => {
                    assert_eq!(d, declared);
                    assert!(needed >= 1 && needed < declared);
                    let needed = usize::from(needed);
                    assert_ne!(flags.get(needed - 1), Some(&0));
                    assert!(flags.get(needed..).unwrap().iter().all(|o| *o == 0));
                }
                other => panic!("{other:?} for non-empty input {data:02x?}"),
            }

            // The message names the rule and the alert.
            let text = err.to_string();
            assert!(text.contains(err.alert().name()), "{text}");
            assert!(text.contains("(TF-"), "{text}");
            false
        }
    }
}
