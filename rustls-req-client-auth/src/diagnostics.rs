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

/// The name of an error's variant, as rustls's `Debug` writes it, without
/// its details and without the `Context` suffix of the variants that carry
/// them: `Expired` for both `Expired` and `ExpiredContext { .. }`. A
/// bounded name for a metric's label or a short log line.
pub fn variant_name(error: &impl std::fmt::Debug) -> String {
    let debug = format!("{error:?}");
    let name = debug.split(['(', ' ', '{']).next().unwrap_or("Other");
    name.strip_suffix("Context").unwrap_or(name).to_owned()
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
                "invalid peer certificate: {}",
                describe_certificate_error(reason)
            )
        }
        Error::InvalidCertRevocationList(reason) => {
            let meaning = match reason {
                rustls::CertRevocationListError::IssuerInvalidForCrl => {
                    ": the CA that issued it has a key usage without cRLSign, so it may not \
                     sign CRLs; every certificate under that CA is refused"
                }
                rustls::CertRevocationListError::BadSignature => {
                    ": it is not signed by the key of the CA it names; every certificate \
                     under that CA is refused"
                }
                rustls::CertRevocationListError::UnsupportedSignatureAlgorithmContext {
                    ..
                }
                | rustls::CertRevocationListError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                    ..
                } => {
                    ": it is signed with an algorithm rustls does not accept (SHA-1, say); \
                     every certificate under its CA is refused"
                }
                _ => "; every certificate it would be checked against is refused",
            };
            // The variant's name only: the details of some are lists of
            // algorithm identifiers as bytes, over a thousand characters.
            format!("a CRL could not be used: {}{meaning}", variant_name(reason))
        }
        Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            format!("{error}: the peer does not speak TLS here (plain HTTP on this port?)")
        }
        other => other.to_string(),
    }
}

/// Why a certificate was refused: rustls's name for it (without the
/// `Context` its detailed variants carry, so the name is the same with or
/// without details) and the details in words, with dates as dates.
fn describe_certificate_error(reason: &CertificateError) -> String {
    match reason {
        CertificateError::ExpiredContext { time, not_after } => format!(
            "Expired (not valid after {}; the time is {})",
            date(*not_after),
            date(*time)
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "NotValidYet (not valid before {}; the time is {})",
            date(*not_before),
            date(*time)
        ),
        CertificateError::ExpiredRevocationListContext { time, next_update } => format!(
            "ExpiredRevocationList (the CRL's nextUpdate was {}; the time is {}: a newer CRL is needed)",
            date(*next_update),
            date(*time)
        ),
        CertificateError::NotValidForNameContext { expected, presented } => {
            let presented = if presented.is_empty() {
                "no name".to_owned()
            } else {
                presented
                    .iter()
                    .map(|name| plain_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "NotValidForName (it is for {presented}, not {})",
                expected.to_str()
            )
        }
        CertificateError::UnknownIssuer => {
            "UnknownIssuer (its chain leads to no CA this side trusts)".to_owned()
        }
        CertificateError::Other(other)
            if other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity) =>
        {
            "CaUsedAsEndEntity (it is a CA's certificate, basicConstraints CA:TRUE, as \
             `openssl req -x509` makes by default; a peer presents one a CA issued)"
                .to_owned()
        }
        other => format!("{other:?}{}", certificate_hint(other)),
    }
}

/// A name webpki presents as `DnsName("a.example")`: `a.example`.
fn plain_name(presented: &str) -> &str {
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
}

/// `at` as a date, in UTC (as the certificate tools write them).
fn date(at: rustls::pki_types::UnixTime) -> String {
    i64::try_from(at.as_secs())
        .ok()
        .and_then(|seconds| x509_parser::time::ASN1Time::from_timestamp(seconds).ok())
        .map_or_else(
            || format!("{} s after 1970", at.as_secs()),
            |time| time.to_string(),
        )
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

    use rustls::pki_types::{ServerName, UnixTime};

    use super::{describe_tls_error, variant_name};

    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds))
    }

    /// A CRL that cannot be used is said by its variant's name and what it
    /// means, never with the details some variants carry (lists of
    /// algorithm identifiers: over a thousand characters in a log line).
    #[test]
    fn unusable_crls_are_said_briefly() {
        let unsupported = rustls::CertRevocationListError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: vec![6; 600],
            supported_algorithms: Vec::new(),
        };
        let text = describe_tls_error(&Error::InvalidCertRevocationList(unsupported.clone()));
        assert!(
            text.starts_with("a CRL could not be used: UnsupportedSignatureAlgorithm: "),
            "{text}"
        );
        assert!(text.len() < 200, "{text}");
        assert_eq!(variant_name(&unsupported), "UnsupportedSignatureAlgorithm");
        let text = describe_tls_error(&Error::InvalidCertRevocationList(
            rustls::CertRevocationListError::IssuerInvalidForCrl,
        ));
        assert!(
            text.contains("IssuerInvalidForCrl") && text.contains("cRLSign"),
            "{text}"
        );
    }

    #[test]
    fn dates_and_names_are_said_in_words() {
        // 2024-02-01T00:00:00Z and 2026-12-05T00:00:00Z
        let expired = Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: at(1_796_428_800),
            not_after: at(1_706_745_600),
        });
        let text = describe_tls_error(&expired);
        assert!(
            text.starts_with("invalid peer certificate: Expired (not valid after "),
            "{text}"
        );
        assert!(text.contains("2024") && text.contains("2026"), "{text}");
        assert!(!text.contains("UnixTime"), "{text}");

        let wrong_name = Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("localhost").expect("name"),
            presented: vec![
                "DnsName(\"other.example\")".to_owned(),
                "b.example".to_owned(),
            ],
        });
        assert_eq!(
            describe_tls_error(&wrong_name),
            "invalid peer certificate: NotValidForName (it is for other.example, b.example, not localhost)"
        );
        let unknown =
            describe_tls_error(&Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(
            unknown.starts_with("invalid peer certificate: UnknownIssuer ("),
            "{unknown}"
        );
        let ca = describe_tls_error(&Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity)),
        )));
        assert!(
            ca.starts_with("invalid peer certificate: CaUsedAsEndEntity (it is a CA's certificate"),
            "{ca}"
        );
    }

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
