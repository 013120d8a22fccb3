//! Property tests. Case counts are proptest's defaults (256 per property);
//! set `PROPTEST_CASES` to run more, e.g. `PROPTEST_CASES=100000`.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rustls_tls_flags::{decode, Flag, FlagSet};

use rustls_tls_flags_decode_oracle as decode_oracle;

/// Flag numbers: mostly small (where real flags live), sometimes anywhere up
/// to 2039, and the edges.
fn flag_number() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 0u16..96,
        4 => 0u16..=2039,
        1 => Just(0u16),
        1 => Just(2039u16),
    ]
}

fn model_set() -> impl Strategy<Value = BTreeSet<u16>> {
    prop_oneof![
        prop::collection::btree_set(flag_number(), 0..12),
        // Dense sets spanning many octets.
        prop::collection::btree_set(0u16..=2039, 0..600),
    ]
}

fn to_set(model: &BTreeSet<u16>) -> FlagSet {
    model.iter().map(|n| Flag::new(*n).unwrap()).collect()
}

fn to_model(set: &FlagSet) -> BTreeSet<u16> {
    set.iter().map(Flag::get).collect()
}

/// Byte strings that hit every branch of `decode`, not just the easy
/// rejections: arbitrary bytes, well-framed values, and well-framed values
/// with one thing wrong.
fn extension_data() -> impl Strategy<Value = Vec<u8>> {
    let octets = prop::collection::vec(any::<u8>(), 0..=255);
    let framed = octets.prop_map(|flags| {
        let mut data = vec![u8::try_from(flags.len()).unwrap()];
        data.extend(flags);
        data
    });
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..=300),
        3 => framed.clone(),
        // Last octet forced to zero: TF-3.
        1 => framed.clone().prop_map(|mut data| {
            if let Some(last) = data.last_mut() { *last = 0; }
            data
        }),
        // Length octet off by some amount: TF-1.
        1 => (framed.clone(), any::<u8>()).prop_map(|(mut data, delta)| {
            data[0] = data[0].wrapping_add(delta);
            data
        }),
        // An octet appended or removed: TF-1.
        1 => (framed, any::<u8>(), any::<bool>()).prop_map(|(mut data, extra, append)| {
            if append { data.push(extra); } else { data.pop(); }
            data
        }),
    ]
}

proptest! {
    /// TF-1, TF-2, TF-3: decode(encode(s)) == s, and the encoding is the
    /// minimal one, 1 + ceil((highest + 1) / 8) bytes.
    #[test]
    fn tf1_tf2_tf3_encode_decode_round_trip(model in model_set()) {
        let set = to_set(&model);
        let mut buf = [0u8; 256];
        let n = set.encode_into(&mut buf).unwrap();
        let expected_len = model.last().map_or(0, |h| 1 + usize::from(h / 8) + 1);
        prop_assert_eq!(n, expected_len);
        if model.is_empty() {
            prop_assert_eq!(n, 0, "TF-4: no extension for no flags");
        } else {
            let view = decode(&buf[..n]).unwrap();
            prop_assert_eq!(view.iter().map(Flag::get).collect::<BTreeSet<_>>(), model.clone());
            prop_assert_eq!(view.to_set(), set.clone());
            prop_assert!(decode_oracle::check(&buf[..n]));
        }
        #[cfg(feature = "alloc")]
        prop_assert_eq!(set.to_extension_data().unwrap_or_default(), buf[..n].to_vec());
    }

    /// TF-1, TF-3: decode accepts exactly the minimal encodings, compared with
    /// an independent reference predicate; the fuzz target's assertions hold.
    #[test]
    fn tf1_tf3_decode_accepts_exactly_minimal_encodings(data in extension_data()) {
        prop_assert_eq!(decode(&data).is_ok(), decode_oracle::is_minimal_encoding(&data));
        decode_oracle::check(&data);
    }

    /// Set algebra against a `BTreeSet` model.
    #[test]
    fn set_algebra_matches_btreeset_model(a in model_set(), b in model_set()) {
        let (sa, sb) = (to_set(&a), to_set(&b));
        prop_assert_eq!(to_model(&sa), a.clone());
        prop_assert_eq!(sa.len(), a.len());
        prop_assert_eq!(sa.is_empty(), a.is_empty());
        prop_assert_eq!(sa.highest().map(Flag::get), a.last().copied());

        let union = sa.union(&sb);
        let intersection = sa.intersection(&sb);
        let difference = sa.difference(&sb);
        prop_assert_eq!(to_model(&union), a.union(&b).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(to_model(&intersection), a.intersection(&b).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(to_model(&difference), a.difference(&b).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(sa.is_subset(&sb), a.is_subset(&b));
        prop_assert!(intersection.is_subset(&sa) && intersection.is_subset(&sb));
        prop_assert!(sa.is_subset(&union) && sb.is_subset(&union));

        // Results are equal to sets built from scratch, so their encodings
        // are minimal too (TF-3).
        prop_assert_eq!(&difference, &to_set(&to_model(&difference)));
        prop_assert_eq!(difference.as_bytes().last().copied().unwrap_or(1) != 0, true);
        prop_assert_eq!(intersection.as_bytes().last().copied().unwrap_or(1) != 0, true);

        // The view answers the same questions the same way.
        if let Some(data) = encode(&sa) {
            let view = decode(&data).unwrap();
            prop_assert_eq!(view.is_subset_of(&sb), a.is_subset(&b));
            prop_assert_eq!(
                view.first_not_in(&sb).map(Flag::get),
                a.difference(&b).next().copied()
            );
            for n in a.iter().chain(&b) {
                let flag = Flag::new(*n).unwrap();
                prop_assert_eq!(view.contains(flag), a.contains(n));
            }
        }
    }

    /// insert/remove report presence as a `BTreeSet` does, and keep the
    /// encoding minimal.
    #[test]
    fn insert_remove_match_model(ops in prop::collection::vec((any::<bool>(), flag_number()), 0..64)) {
        let mut set = FlagSet::new();
        let mut model = BTreeSet::new();
        for (insert, n) in ops {
            let flag = Flag::new(n).unwrap();
            if insert {
                prop_assert_eq!(set.insert(flag), model.insert(n));
            } else {
                prop_assert_eq!(set.remove(flag), model.remove(&n));
            }
            prop_assert_eq!(set.encoded_len(), model.last().map_or(0, |h| 2 + usize::from(h / 8)));
        }
        prop_assert_eq!(to_model(&set), model);
    }
}

fn encode(set: &FlagSet) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    let n = set.encode_into(&mut buf).unwrap();
    (n > 0).then(|| buf[..n].to_vec())
}
