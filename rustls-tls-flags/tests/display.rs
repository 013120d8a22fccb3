//! What users read: every error says what is wrong, which rule it breaks and
//! which alert is sent; flags are printed with their names.

use core::error::Error;

use rustls_tls_flags::{check_received, decode, extension_type, Alert, Flag, FlagSet, MessageKind};

fn decode_err(data: &[u8]) -> String {
    decode(data).unwrap_err().to_string()
}

macro_rules! error_text {
    ($($name:ident: $data:expr => $text:expr;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(decode_err(&$data), $text);
        }
    )*};
}

error_text! {
    tf1_display_empty: [] =>
        "tls_flags extension_data is empty; it must hold a length octet of 1 to 255 \
         and that many flag octets (TF-1, decode_error)";
    tf1_display_zero_length: [0x00] =>
        "tls_flags extension_data declares 0 flag octets, below the minimum of 1; \
         a sender with no flags omits the extension (TF-1, TF-3, decode_error)";
    tf1_display_truncated: [0x03, 0x28, 0x00] =>
        "tls_flags extension_data declares 3 flag octets but carries 2 (TF-1, decode_error)";
    tf1_display_trailing_data: [0x01, 0x22, 0x00, 0x00] =>
        "tls_flags extension_data declares 1 flag octet but carries 3 (TF-1, decode_error)";
    tf3_display_all_zero: [0x03, 0x00, 0x00, 0x00] =>
        "tls_flags value of 3 octets sets no flag; a sender with no flags omits the \
         extension (TF-3, illegal_parameter)";
    tf3_display_all_zero_one_octet: [0x01, 0x00] =>
        "tls_flags value of 1 octet sets no flag; a sender with no flags omits the \
         extension (TF-3, illegal_parameter)";
    tf3_display_trailing_zero_octet: [0x02, 0x01, 0x00] =>
        "tls_flags value is not minimal: it has 2 octets but its highest flag needs 1, \
         the last octet must not be zero (TF-3, illegal_parameter)";
}

#[test]
fn tf6_display_violation() {
    let proposed = FlagSet::from([Flag::new(3).unwrap()]);
    let view = decode(&[0x0b, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]).unwrap();
    let violation =
        check_received(MessageKind::EncryptedExtensions, &view, Some(&proposed)).unwrap_err();
    assert_eq!(
        violation.to_string(),
        "EncryptedExtensions (EE) carries tls_flags flag 80 (request_client_auth) that was \
         not proposed; a response may only acknowledge flags its peer proposed \
         (TF-6, illegal_parameter)"
    );
}

#[test]
fn errors_are_std_errors() {
    let err: Box<dyn Error> = Box::new(decode(&[]).unwrap_err());
    assert!(err.source().is_none());
    let view = decode(&[0x01, 0x01]).unwrap();
    let violation = check_received(MessageKind::ServerHello, &view, None).unwrap_err();
    let err: Box<dyn Error> = Box::new(violation);
    assert!(err
        .to_string()
        .starts_with("ServerHello (SH) carries tls_flags flag 0 "));
}

#[test]
fn flag_display_names_known_flags() {
    assert_eq!(
        Flag::REQUEST_CLIENT_AUTH.to_string(),
        "80 (request_client_auth)"
    );
    assert_eq!(
        Flag::RESUMPTION_ACROSS_NAMES.to_string(),
        "8 (resumption_across_names)"
    );
    assert_eq!(Flag::new(3).unwrap().to_string(), "3");
    assert_eq!(Flag::MAX.to_string(), "2039");
    assert_eq!(
        Flag::REQUEST_CLIENT_AUTH.name(),
        Some("request_client_auth")
    );
    assert_eq!(Flag::new(81).unwrap().name(), None);
    assert_eq!(format!("{:?}", Flag::REQUEST_CLIENT_AUTH), "Flag(80)");
}

#[test]
fn set_and_view_display_list_flags() {
    let set = FlagSet::from([Flag::REQUEST_CLIENT_AUTH, Flag::new(3).unwrap()]);
    assert_eq!(set.to_string(), "{3, 80 (request_client_auth)}");
    assert_eq!(format!("{set:?}"), "{3, 80 (request_client_auth)}");
    assert_eq!(FlagSet::new().to_string(), "{}");

    let view = decode(&[0x03, 0x28, 0x00, 0x80]).unwrap();
    assert_eq!(view.to_string(), "{3, 5, 23}");
    assert_eq!(format!("{view:?}"), "{3, 5, 23}");
}

#[test]
fn alerts_have_rfc8446_names_and_codes() {
    assert_eq!(Alert::DecodeError.code(), 50);
    assert_eq!(Alert::IllegalParameter.code(), 47);
    assert_eq!(Alert::DecodeError.name(), "decode_error");
    assert_eq!(Alert::IllegalParameter.to_string(), "illegal_parameter");
    assert_eq!(Alert::from(decode(&[]).unwrap_err()), Alert::DecodeError);
}

#[test]
fn extension_code_points() {
    assert_eq!(extension_type::TLS_FLAGS, 62);
    assert_eq!(extension_type::TLS_FLAGS_EXPERIMENTAL, 0xfe01);
}

#[test]
fn message_kind_names() {
    assert_eq!(
        MessageKind::HelloRetryRequest.to_string(),
        "HelloRetryRequest"
    );
    assert_eq!(MessageKind::HelloRetryRequest.abbreviation(), "HRR");
}
