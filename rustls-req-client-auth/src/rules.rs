//! The rules as pure functions: from a received `tls_flags` value and what this
//! side proposed, to the flags received or the rule the peer broke.
//!
//! No I/O and no rustls state: the hooks in `client.rs` and `server.rs` call
//! these and turn a [`FlagsError`] into the alert it names.

use rustls_tls_flags::{check_received, decode, Flag, FlagSet, MessageKind};

use crate::error::FlagsError;

fn decoded(
    message: MessageKind,
    body: &[u8],
) -> Result<rustls_tls_flags::FlagsView<'_>, FlagsError> {
    // TF-1, TF-2, TF-3: framing and minimal encoding.
    decode(body).map_err(|source| FlagsError::Malformed { message, source })
}

/// A client received `body` as the `tls_flags` of a server message `message`
/// (`tls12`: in a TLS 1.2 ServerHello), having proposed `proposed` in its
/// ClientHello. Returns the flags received.
pub(crate) fn client_receives(
    message: MessageKind,
    tls12: bool,
    body: &[u8],
    proposed: &FlagSet,
    request_client_auth: Flag,
) -> Result<FlagSet, FlagsError> {
    // TF-5: TLS Flags is a TLS 1.3 extension; a TLS 1.2 ServerHello may not carry it.
    if tls12 {
        return Err(FlagsError::Tls12ServerHello);
    }
    let flags = decoded(message, body)?;
    if flags.contains(request_client_auth) {
        if message != MessageKind::CertificateRequest {
            // RCA-7: request_client_auth only ever comes back in a CertificateRequest.
            return Err(FlagsError::FlagInServerMessage { message });
        }
        if !proposed.contains(request_client_auth) {
            // RCA-6: an acknowledgement of a flag we did not send.
            return Err(FlagsError::UnrequestedAcknowledgement);
        }
    }
    // TF-6 (responses must be solicited), TF-8 (requests may carry unknown flags).
    check_received(message, &flags, Some(proposed)).map_err(|violation| {
        FlagsError::Unsolicited {
            message,
            flag: violation.flag(),
        }
    })?;
    Ok(flags.to_set())
}

/// A server received `body` as the `tls_flags` of a ClientHello. Every flag is
/// accepted (TF-8); which ones the server acts on is its policy.
pub(crate) fn server_receives_client_hello(body: &[u8]) -> Result<FlagSet, FlagsError> {
    Ok(decoded(MessageKind::ClientHello, body)?.to_set())
}

/// The ClientHello after a HelloRetryRequest must propose what the first did (RCA-13).
pub(crate) fn server_checks_retry(first: &FlagSet, second: &FlagSet) -> Result<(), FlagsError> {
    if first == second {
        Ok(())
    } else {
        Err(FlagsError::RetryChangedFlags {
            first: first.to_string(),
            second: second.to_string(),
        })
    }
}

/// A server received `body` as the `tls_flags` of an entry of the client's
/// Certificate, having proposed `in_request` in its CertificateRequest.
pub(crate) fn server_receives_certificate(
    body: &[u8],
    in_request: &FlagSet,
    request_client_auth: Flag,
) -> Result<(), FlagsError> {
    let flags = decoded(MessageKind::Certificate, body)?;
    // RCA-8: the client sends request_client_auth in its ClientHello only.
    if flags.contains(request_client_auth) {
        return Err(FlagsError::FlagInClientCertificate);
    }
    // TF-6: the client's Certificate answers the CertificateRequest.
    check_received(MessageKind::Certificate, &flags, Some(in_request)).map_err(|violation| {
        FlagsError::Unsolicited {
            message: MessageKind::Certificate,
            flag: violation.flag(),
        }
    })
}

#[cfg(test)]
mod tests {
    use rustls::AlertDescription;

    use super::*;

    const RCA: Flag = Flag::REQUEST_CLIENT_AUTH;

    fn set(flags: &[u16]) -> FlagSet {
        flags.iter().filter_map(|f| Flag::new(*f)).collect()
    }

    fn body(flags: &[u16]) -> Vec<u8> {
        set(flags).to_extension_data().unwrap_or_default()
    }

    #[test]
    fn tf1_bad_framing_is_decode_error_in_every_message() {
        for message in [
            MessageKind::ServerHello,
            MessageKind::EncryptedExtensions,
            MessageKind::CertificateRequest,
            MessageKind::NewSessionTicket,
        ] {
            let err = client_receives(message, false, &[2, 1], &set(&[80]), RCA).unwrap_err();
            assert_eq!(err.alert(), AlertDescription::DecodeError, "{message}");
            assert_eq!(err.rule(), "TF-1");
        }
        let err = server_receives_client_hello(&[0]).unwrap_err();
        assert_eq!(err.alert(), AlertDescription::DecodeError);
    }

    #[test]
    fn tf3_trailing_zero_octet_is_illegal_parameter() {
        let err = server_receives_client_hello(&[2, 1, 0]).unwrap_err();
        assert_eq!(err.alert(), AlertDescription::IllegalParameter);
        assert_eq!(err.rule(), "TF-3");
    }

    #[test]
    fn tf5_tls12_server_hello_may_not_carry_flags() {
        let err = client_receives(MessageKind::ServerHello, true, &body(&[3]), &set(&[3]), RCA)
            .unwrap_err();
        assert_eq!(err, FlagsError::Tls12ServerHello);
        assert_eq!(err.alert(), AlertDescription::IllegalParameter);
    }

    #[test]
    fn tf6_unsolicited_flag_in_responses_is_illegal_parameter() {
        for message in [
            MessageKind::ServerHello,
            MessageKind::HelloRetryRequest,
            MessageKind::EncryptedExtensions,
            MessageKind::Certificate,
        ] {
            let err =
                client_receives(message, false, &body(&[4]), &set(&[3, 80]), RCA).unwrap_err();
            assert_eq!(
                err,
                FlagsError::Unsolicited {
                    message,
                    flag: Flag::new(4).unwrap()
                }
            );
            assert_eq!(err.alert(), AlertDescription::IllegalParameter);
        }
        // a proposed flag may come back
        assert_eq!(
            client_receives(
                MessageKind::EncryptedExtensions,
                false,
                &body(&[3]),
                &set(&[3, 80]),
                RCA
            ),
            Ok(set(&[3]))
        );
    }

    #[test]
    fn tf8_unknown_flags_in_requests_are_ignored() {
        assert_eq!(
            client_receives(
                MessageKind::CertificateRequest,
                false,
                &body(&[7, 80, 900]),
                &set(&[80]),
                RCA
            ),
            Ok(set(&[7, 80, 900]))
        );
        assert_eq!(
            client_receives(
                MessageKind::NewSessionTicket,
                false,
                &body(&[8, 1000]),
                &set(&[]),
                RCA
            ),
            Ok(set(&[8, 1000]))
        );
        assert_eq!(
            server_receives_client_hello(&body(&[5, 80, 2039])),
            Ok(set(&[5, 80, 2039]))
        );
    }

    #[test]
    fn rca6_unrequested_acknowledgement_is_illegal_parameter() {
        let err = client_receives(
            MessageKind::CertificateRequest,
            false,
            &body(&[80]),
            &set(&[3]),
            RCA,
        )
        .unwrap_err();
        assert_eq!(err, FlagsError::UnrequestedAcknowledgement);
        assert_eq!(err.alert(), AlertDescription::IllegalParameter);
    }

    #[test]
    fn rca7_flag_in_other_server_messages_is_illegal_parameter_even_if_sent() {
        for message in [
            MessageKind::ServerHello,
            MessageKind::HelloRetryRequest,
            MessageKind::EncryptedExtensions,
            MessageKind::Certificate,
            MessageKind::NewSessionTicket,
        ] {
            let err = client_receives(message, false, &body(&[80]), &set(&[80]), RCA).unwrap_err();
            assert_eq!(err, FlagsError::FlagInServerMessage { message });
            assert_eq!(err.rule(), "RCA-7");
        }
    }

    #[test]
    fn rca8_flag_in_client_certificate_is_illegal_parameter() {
        let err = server_receives_certificate(&body(&[80]), &set(&[80]), RCA).unwrap_err();
        assert_eq!(err, FlagsError::FlagInClientCertificate);
        assert_eq!(err.alert(), AlertDescription::IllegalParameter);
        // any other flag there is unsolicited: the request only carried request_client_auth
        let err = server_receives_certificate(&body(&[3]), &set(&[80]), RCA).unwrap_err();
        assert_eq!(err.rule(), "TF-6");
    }

    #[test]
    fn rca13_retry_must_repeat_the_flags() {
        assert!(server_checks_retry(&set(&[80]), &set(&[80])).is_ok());
        let err = server_checks_retry(&set(&[80]), &set(&[])).unwrap_err();
        assert_eq!(err.rule(), "RCA-13");
        assert_eq!(err.alert(), AlertDescription::IllegalParameter);
    }

    #[test]
    fn code_points_are_configurable() {
        // with another flag number, 80 is just an unknown flag
        let other = Flag::new(81).unwrap();
        assert!(client_receives(
            MessageKind::CertificateRequest,
            false,
            &body(&[80]),
            &set(&[]),
            other
        )
        .is_ok());
    }
}
