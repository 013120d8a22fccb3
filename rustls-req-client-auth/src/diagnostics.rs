//! Telling a user why a connection failed: the TLS error inside whatever
//! error a stack (tokio-rustls, hyper, reqwest) returned, in one line.

use std::error::Error as StdError;

use rustls::{AlertDescription, CertificateError, Error};

use crate::error::FlagsError;

/// The `rustls::Error` somewhere in `error`'s chain of causes (an `io::Error`
/// from tokio-rustls, a `hyper::Error`, a `reqwest::Error` ...), if any.
///
/// ```
/// # fn demo(error: &(dyn std::error::Error + 'static)) {
/// if let Some(tls) = rustls_req_client_auth::find_tls_error(error) {
///     eprintln!("{}", rustls_req_client_auth::describe_tls_error(tls));
/// }
/// # }
/// ```
pub fn find_tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<Error>() {
            return Some(tls);
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return Some(tls);
        }
        cause = current.source();
    }
    None
}

/// A one-line account of a TLS error: for a TLS Flags rule, the rule and the
/// alert; for an alert from the peer, what it usually means for a bot.
pub fn describe_tls_error(error: &Error) -> String {
    if let Some(flags) = FlagsError::from_rustls(error) {
        return format!("{flags} [{}, alert {:?}]", flags.rule(), flags.alert());
    }
    match error {
        Error::AlertReceived(alert) => {
            let meaning = match alert {
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied => {
                    ": the peer refused the certificate it was given"
                }
                AlertDescription::CertificateRequired => {
                    ": the peer requires a certificate and got none"
                }
                _ => "",
            };
            format!("the peer sent alert {alert:?}{meaning}")
        }
        Error::InvalidCertificate(reason) => {
            format!(
                "invalid peer certificate: {reason:?}{}",
                certificate_hint(reason)
            )
        }
        other => other.to_string(),
    }
}

/// What a refusal means in words, where the variant's name does not say it.
fn certificate_hint(reason: &CertificateError) -> String {
    match reason {
        CertificateError::InvalidPurposeContext {
            required,
            presented,
        } => {
            let presented = if presented.is_empty() {
                "none".to_owned()
            } else {
                presented
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            format!(" (its extended key usage does not allow {required}; it allows: {presented})")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use rustls::{CertificateError, Error, ExtendedKeyPurpose};

    use super::describe_tls_error;

    #[test]
    fn a_certificate_for_the_wrong_purpose_is_said_in_words() {
        let error = Error::InvalidCertificate(CertificateError::InvalidPurposeContext {
            required: ExtendedKeyPurpose::ClientAuth,
            presented: vec![ExtendedKeyPurpose::ServerAuth],
        });
        let text = describe_tls_error(&error);
        assert!(
            text.starts_with("invalid peer certificate: InvalidPurposeContext"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "(its extended key usage does not allow client authentication; it allows: \
                 server authentication)"
            ),
            "{text}"
        );
    }
}
