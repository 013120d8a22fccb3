//! Decoding: the draft's vectors (TF-2) and every malformed form with its
//! exact error kind and alert (TF-1, TF-3). One named test per vector.

use rustls_tls_flags::{decode, Alert, DecodeErrorKind, Flag, FlagSet};

fn flags(numbers: &[u16]) -> Vec<Flag> {
    numbers.iter().map(|n| Flag::new(*n).unwrap()).collect()
}

/// `name: [flags] <=> [extension_data]`: decoding the bytes gives exactly
/// these flags, in ascending order, and encoding the flags gives the bytes.
macro_rules! valid {
    ($($name:ident: [$($flag:expr),*] <=> [$($byte:expr),*];)*) => {$(
        #[test]
        fn $name() {
            let data: &[u8] = &[$($byte),*];
            let expected = flags(&[$($flag),*]);

            let view = decode(data).unwrap();
            assert_eq!(view.iter().collect::<Vec<_>>(), expected);
            assert_eq!(view.as_bytes(), &data[1..]);
            assert_eq!(view.len(), expected.len());

            let set: FlagSet = expected.iter().copied().collect();
            let mut buf = [0u8; 256];
            let n = set.encode_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], data);
            assert_eq!(view.to_set(), set);
        }
    )*};
}

valid! {
    // The draft's three examples (TF-2).
    tf2_draft_vector_flag_0: [0] <=> [0x01, 0x01];
    tf2_draft_vector_flags_1_5: [1, 5] <=> [0x01, 0x22];
    tf2_draft_vector_flags_3_5_23: [3, 5, 23] <=> [0x03, 0x28, 0x00, 0x80];
    // Bit 7 of an octet is the octet's highest flag (LSB first).
    tf2_flag_7_is_top_bit_of_octet_0: [7] <=> [0x01, 0x80];
    tf2_flag_8_starts_octet_1: [8] <=> [0x02, 0x00, 0x01];
    tf2_request_client_auth_is_octet_10_bit_0: [80] <=> [0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
    tf9_several_flags_in_one_octet: [0, 1, 2, 3, 4, 5, 6, 7] <=> [0x01, 0xff];
    tf9_several_flags_across_octets: [0, 8, 80] <=> [0x0b, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
}

/// `name: [extension_data] => kind, alert`.
macro_rules! invalid {
    ($($name:ident: $data:expr => $kind:expr, $alert:expr;)*) => {$(
        #[test]
        fn $name() {
            let data: Vec<u8> = $data;
            let err = decode(&data).unwrap_err();
            assert_eq!(err.kind(), $kind);
            assert_eq!(err.alert(), $alert);
            assert_eq!(err.kind().alert(), $alert);
        }
    )*};
}

/// `L` followed by `n` octets of `fill`.
fn framed(l: u8, n: usize, fill: u8) -> Vec<u8> {
    let mut data = vec![l];
    data.resize(1 + n, fill);
    data
}

use DecodeErrorKind::{AllZero, Empty, LengthMismatch, TrailingZeroOctet, ZeroLength};

invalid! {
    tf1_empty_input_is_decode_error: vec![] => Empty, Alert::DecodeError;
    tf1_zero_length_is_decode_error: vec![0x00] => ZeroLength, Alert::DecodeError;
    tf1_zero_length_with_trailing_octets_is_decode_error:
        vec![0x00, 0x01] => ZeroLength, Alert::DecodeError;
    tf1_length_octet_alone_is_decode_error:
        vec![0x01] => LengthMismatch { declared: 1, actual: 0 }, Alert::DecodeError;
    tf1_truncated_is_decode_error:
        vec![0x03, 0x28, 0x00] => LengthMismatch { declared: 3, actual: 2 }, Alert::DecodeError;
    tf1_trailing_data_is_decode_error:
        vec![0x01, 0x22, 0x01] => LengthMismatch { declared: 1, actual: 2 }, Alert::DecodeError;
    tf1_truncated_255_is_decode_error:
        framed(0xff, 254, 0x01) => LengthMismatch { declared: 255, actual: 254 }, Alert::DecodeError;
    tf1_257_bytes_is_decode_error:
        framed(0xff, 256, 0x01) => LengthMismatch { declared: 255, actual: 256 }, Alert::DecodeError;
    tf1_300_bytes_is_decode_error:
        framed(0x01, 299, 0x01) => LengthMismatch { declared: 1, actual: 299 }, Alert::DecodeError;
    tf1_300_bytes_zero_length_is_decode_error:
        framed(0x00, 299, 0x01) => ZeroLength, Alert::DecodeError;
    // Framing is checked before content: a zero octet that is also surplus
    // is a decode_error, not an illegal_parameter.
    tf1_framing_before_minimality:
        vec![0x01, 0x01, 0x00] => LengthMismatch { declared: 1, actual: 2 }, Alert::DecodeError;

    tf3_all_zero_one_octet_is_illegal_parameter:
        vec![0x01, 0x00] => AllZero { declared: 1 }, Alert::IllegalParameter;
    tf3_all_zero_three_octets_is_illegal_parameter:
        vec![0x03, 0x00, 0x00, 0x00] => AllZero { declared: 3 }, Alert::IllegalParameter;
    tf3_all_zero_255_octets_is_illegal_parameter:
        framed(0xff, 255, 0x00) => AllZero { declared: 255 }, Alert::IllegalParameter;
    tf3_trailing_zero_octet_is_illegal_parameter:
        vec![0x02, 0x01, 0x00] => TrailingZeroOctet { declared: 2, needed: 1 },
        Alert::IllegalParameter;
    tf3_two_trailing_zero_octets_is_illegal_parameter:
        vec![0x04, 0x28, 0x00, 0x80, 0x00] => TrailingZeroOctet { declared: 4, needed: 3 },
        Alert::IllegalParameter;
    tf3_trailing_zero_octet_at_255_is_illegal_parameter:
        framed(0xff, 255, 0x01).into_iter().take(255).chain([0x00]).collect()
        => TrailingZeroOctet { declared: 255, needed: 254 }, Alert::IllegalParameter;
}

#[test]
fn tf2_flag_2039_needs_255_octets() {
    let set = FlagSet::from([Flag::MAX]);
    assert_eq!(Flag::MAX.get(), 2039);
    assert_eq!(set.encoded_len(), 256);

    let data = encode(&set);
    assert_eq!(data.len(), 256);
    assert_eq!(data[0], 255);
    assert!(data[1..255].iter().all(|o| *o == 0));
    assert_eq!(data[255], 0x80);

    let view = decode(&data).unwrap();
    assert_eq!(view.iter().collect::<Vec<_>>(), [Flag::MAX]);
    assert_eq!(view.highest(), Some(Flag::MAX));
    assert_eq!(view.as_bytes().len(), 255);
}

#[test]
fn tf2_all_2040_flags_decode_in_order() {
    let data = framed(0xff, 255, 0xff);
    let view = decode(&data).unwrap();
    assert_eq!(view.len(), 2040);
    assert!(view.iter().map(Flag::get).eq(0..=2039));
    assert_eq!(view.to_set().len(), 2040);
}

#[test]
fn tf2_flag_numbers_above_2039_do_not_exist() {
    assert_eq!(Flag::new(2039), Some(Flag::MAX));
    assert_eq!(Flag::new(2040), None);
    assert_eq!(Flag::new(u16::MAX), None);
}

#[test]
fn tf8_unknown_flags_are_kept() {
    // Flags nobody registered are decoded like any other.
    let view = decode(&[0x02, 0x00, 0x40]).unwrap();
    let flag = Flag::new(14).unwrap();
    assert_eq!(flag.name(), None);
    assert!(view.contains(flag));
    assert!(!view.contains(Flag::new(13).unwrap()));
    assert!(
        !view.contains(Flag::MAX),
        "flags beyond the last octet are unset"
    );
}

/// Encodes through the caller-buffer API, available without `alloc`.
fn encode(set: &FlagSet) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = set.encode_into(&mut buf).unwrap();
    buf[..n].to_vec()
}
