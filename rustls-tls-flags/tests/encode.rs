//! Encoding: minimal by construction (TF-3), nothing for the empty set
//! (TF-4), and the caller-buffer contract.

use rustls_tls_flags::{decode, Flag, FlagSet};

fn flag(n: u16) -> Flag {
    Flag::new(n).unwrap()
}

fn encode(set: &FlagSet) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = set.encode_into(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn tf4_empty_set_encodes_to_no_extension() {
    let set = FlagSet::new();
    assert_eq!(set.encoded_len(), 0);
    let mut buf = [0xaa_u8; 4];
    assert_eq!(set.encode_into(&mut buf), Ok(0));
    assert_eq!(buf, [0xaa; 4], "nothing written");
    assert_eq!(set.encode_into(&mut []), Ok(0), "no buffer needed");
}

#[cfg(feature = "alloc")]
#[test]
fn tf4_empty_set_has_no_extension_data() {
    assert_eq!(FlagSet::new().to_extension_data(), None);
    let mut set = FlagSet::from([flag(3)]);
    set.remove(flag(3));
    assert_eq!(set.to_extension_data(), None);
}

#[cfg(feature = "alloc")]
#[test]
fn tf1_to_extension_data_matches_encode_into() {
    for numbers in [
        &[0_u16][..],
        &[1, 5],
        &[3, 5, 23],
        &[80],
        &[2039],
        &[0, 2039],
    ] {
        let set: FlagSet = numbers.iter().map(|n| flag(*n)).collect();
        assert_eq!(set.to_extension_data(), Some(encode(&set)), "{set}");
    }
}

#[test]
fn tf3_encoding_shrinks_when_highest_flag_is_removed() {
    let mut set = FlagSet::from([flag(3), flag(80)]);
    assert_eq!(encode(&set), [11, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
    assert!(set.remove(flag(80)));
    assert_eq!(encode(&set), [0x01, 0x08]);
    assert!(set.remove(flag(3)));
    assert_eq!(encode(&set), []);
}

#[test]
fn tf3_set_algebra_results_encode_minimally() {
    let a = FlagSet::from([flag(1), flag(2039)]);
    let b = FlagSet::from([flag(1), flag(16)]);
    assert_eq!(encode(&a.intersection(&b)), [0x01, 0x02]);
    assert_eq!(encode(&b.difference(&a)), [0x03, 0x00, 0x00, 0x01]);
    assert_eq!(encode(&a.union(&b)).len(), 256);
    assert_eq!(encode(&b.difference(&b)), []);
}

#[test]
fn tf1_encoding_decodes_back() {
    let set = FlagSet::from([flag(0), flag(8), flag(80), flag(2039)]);
    let data = encode(&set);
    assert_eq!(data.len(), set.encoded_len());
    assert_eq!(decode(&data).unwrap().to_set(), set);
}

#[test]
fn buffer_too_small_is_reported_and_leaves_buffer_alone() {
    let set = FlagSet::from([flag(23)]); // 03 00 00 80
    let mut buf = [0xaa_u8; 3];
    let err = set.encode_into(&mut buf).unwrap_err();
    assert_eq!((err.needed(), err.available()), (4, 3));
    assert_eq!(buf, [0xaa; 3]);
    assert_eq!(
        err.to_string(),
        "tls_flags extension_data needs 4 bytes but the buffer holds 3; 256 bytes always suffice"
    );
    assert!(set.encode_into(&mut []).is_err());
}

#[test]
fn encode_into_writes_only_the_prefix() {
    let set = FlagSet::from([flag(1), flag(5)]);
    let mut buf = [0xaa_u8; 8];
    assert_eq!(set.encode_into(&mut buf), Ok(2));
    assert_eq!(buf, [0x01, 0x22, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
}
