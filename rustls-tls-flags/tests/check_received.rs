//! The request/response rule for every message kind (TF-5, TF-6, TF-8).

use rustls_tls_flags::{check_received, decode, Alert, Flag, FlagSet, FlagsView, MessageKind};

fn flag(n: u16) -> Flag {
    Flag::new(n).unwrap()
}

/// Flags `{3, 80 (request_client_auth), 2039}`: 3 and 2039 are unknown.
fn received() -> FlagsView<'static> {
    static DATA: [u8; 256] = {
        let mut data = [0u8; 256];
        data[0] = 255;
        data[1] = 0x08; // flag 3
        data[11] = 0x01; // flag 80
        data[255] = 0x80; // flag 2039
        data
    };
    decode(&DATA).unwrap()
}

macro_rules! request_kind {
    ($($name:ident: $kind:expr;)*) => {$(
        #[test]
        fn $name() {
            let kind = $kind;
            assert!(kind.is_request());
            let view = received();
            // TF-8: unknown and unproposed flags are ignored in a request.
            assert_eq!(check_received(kind, &view, None), Ok(()));
            assert_eq!(check_received(kind, &view, Some(&FlagSet::new())), Ok(()));
            assert_eq!(check_received(kind, &view, Some(&FlagSet::from([flag(4)]))), Ok(()));
            assert_eq!(check_received(kind, &view, Some(&view.to_set())), Ok(()));
        }
    )*};
}

request_kind! {
    tf8_client_hello_accepts_unknown_flags: MessageKind::ClientHello;
    tf8_certificate_request_accepts_unknown_flags: MessageKind::CertificateRequest;
    tf8_new_session_ticket_accepts_unknown_flags: MessageKind::NewSessionTicket;
}

macro_rules! response_kind {
    ($($reject:ident, $accept:ident: $kind:expr;)*) => {$(
        #[test]
        fn $reject() {
            let kind = $kind;
            assert!(!kind.is_request());
            let view = received();

            // Nothing proposed: the lowest flag is the one named.
            let v = check_received(kind, &view, None).unwrap_err();
            assert_eq!((v.message(), v.flag(), v.alert()), (kind, flag(3), Alert::IllegalParameter));

            // An empty proposal is the same as none.
            let v = check_received(kind, &view, Some(&FlagSet::new())).unwrap_err();
            assert_eq!(v.flag(), flag(3));

            // Proposed 3 and 80 only: 2039 is unsolicited.
            let proposed = FlagSet::from([flag(3), Flag::REQUEST_CLIENT_AUTH]);
            let v = check_received(kind, &view, Some(&proposed)).unwrap_err();
            assert_eq!((v.flag(), Alert::from(v)), (Flag::MAX, Alert::IllegalParameter));

            // Proposed 3 and 2039: 80 is unsolicited.
            let proposed = FlagSet::from([flag(3), Flag::MAX]);
            let v = check_received(kind, &view, Some(&proposed)).unwrap_err();
            assert_eq!(v.flag(), Flag::REQUEST_CLIENT_AUTH);
            assert!(v.to_string().contains(kind.abbreviation()));
        }

        #[test]
        fn $accept() {
            let kind = $kind;
            let view = received();
            // Exactly what was proposed.
            assert_eq!(check_received(kind, &view, Some(&view.to_set())), Ok(()));
            // A strict subset of what was proposed (not every flag acknowledged).
            let mut proposed = view.to_set();
            proposed.extend([flag(0), flag(1000)]);
            assert_eq!(check_received(kind, &view, Some(&proposed)), Ok(()));
            // A single acknowledged flag out of several proposed.
            let ack = decode(&[0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]).unwrap();
            assert_eq!(check_received(kind, &ack, Some(&proposed)), Ok(()));
        }
    )*};
}

response_kind! {
    tf6_server_hello_rejects_unsolicited_flags, tf6_server_hello_accepts_proposed_subset:
        MessageKind::ServerHello;
    tf6_hello_retry_request_rejects_unsolicited_flags, tf6_hello_retry_request_accepts_proposed_subset:
        MessageKind::HelloRetryRequest;
    tf6_encrypted_extensions_rejects_unsolicited_flags, tf6_encrypted_extensions_accepts_proposed_subset:
        MessageKind::EncryptedExtensions;
    tf6_certificate_rejects_unsolicited_flags, tf6_certificate_accepts_proposed_subset:
        MessageKind::Certificate;
}

#[test]
fn tf5_message_kinds_are_the_seven_that_may_carry_it() {
    use MessageKind::{
        Certificate, CertificateRequest, ClientHello, EncryptedExtensions, HelloRetryRequest,
        NewSessionTicket, ServerHello,
    };
    let all = [
        ClientHello,
        ServerHello,
        HelloRetryRequest,
        EncryptedExtensions,
        CertificateRequest,
        Certificate,
        NewSessionTicket,
    ];
    let abbreviations: Vec<_> = all.iter().map(|k| k.abbreviation()).collect();
    assert_eq!(abbreviations, ["CH", "SH", "HRR", "EE", "CR", "CT", "NST"]);
    let requests: Vec<_> = all
        .iter()
        .filter(|k| k.is_request())
        .map(|k| k.abbreviation())
        .collect();
    assert_eq!(
        requests,
        ["CH", "CR", "NST"],
        "TF-6: only these may be unsolicited"
    );
}
