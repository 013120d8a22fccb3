//! When what the `[tls]` files hold stops being good, for the metrics an
//! operator alerts on: each certificate's `notAfter` (the server's, the bot
//! and partner CAs'), each CRL's `nextUpdate`. Read with x509-parser from
//! the same bytes the handshakes use.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::proxy::metrics::Expiry;

/// The `notAfter` of each DER certificate in `certificates`, from `file`.
pub(crate) fn of_certificates<'a>(
    file: &'static str,
    certificates: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<Expiry>,
) {
    for der in certificates {
        if let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) {
            out.push(Expiry {
                file,
                name: certificate.subject().to_string(),
                at: certificate.validity().not_after.timestamp(),
            });
        }
    }
}

/// As [`of_certificates`], for the PEM file `pem` (a CA set).
pub(crate) fn of_pem_certificates(file: &'static str, pem: &[u8], out: &mut Vec<Expiry>) {
    let certificates: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    of_certificates(file, certificates.iter().map(AsRef::as_ref), out);
}

/// The `nextUpdate` of each CRL (rustls takes none without one).
pub(crate) fn of_crls(crls: &[CertificateRevocationListDer<'_>], out: &mut Vec<Expiry>) {
    for der in crls {
        if let Ok((_, crl)) = x509_parser::parse_x509_crl(der) {
            if let Some(next_update) = crl.next_update() {
                out.push(Expiry {
                    file: "tls.bot_crl",
                    name: crl.issuer().to_string(),
                    at: next_update.timestamp(),
                });
            }
        }
    }
}

/// A warning for each of `expiries` that lapsed after `since` and by `now`
/// (seconds since the epoch; `i64::MIN` for all that have): what stops
/// working then, which the metrics show only as a negative number and the
/// handshakes only one refused client at a time.
pub(crate) fn lapsed(expiries: &[Expiry], since: i64, now: i64) -> Vec<String> {
    expiries
        .iter()
        .filter(|expiry| since < expiry.at && expiry.at <= now)
        .map(|expiry| {
            let at = jiff::Timestamp::from_second(expiry.at)
                .map_or_else(|_| expiry.at.to_string(), |at| at.to_string());
            let (what, consequence) = match expiry.file {
                "tls.bot_crl" => (
                    "the CRL of",
                    "passed its nextUpdate at {at}: every bot under that CA is refused until a newer CRL is loaded (SIGHUP)",
                ),
                "tls.cert" => (
                    "the certificate",
                    "expired at {at}: clients that check it refuse the server",
                ),
                _ => (
                    "the CA",
                    "expired at {at}: every client whose chain leads to it is refused",
                ),
            };
            format!(
                "{}: {what} {:?} {}",
                expiry.file,
                expiry.name,
                consequence.replace("{at}", &at)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_lapsed_in_the_window_is_said_once() {
        let expiries = vec![
            Expiry {
                file: "tls.bot_crl",
                name: "CN=Bot CA".into(),
                at: 100,
            },
            Expiry {
                file: "tls.cert",
                name: "CN=www.example".into(),
                at: 200,
            },
            Expiry {
                file: "tls.bot_ca",
                name: "CN=Bot CA".into(),
                at: 300,
            },
        ];
        let all = lapsed(&expiries, i64::MIN, 250);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0].starts_with(
                "tls.bot_crl: the CRL of \"CN=Bot CA\" passed its nextUpdate at 1970-01-01T00:01:40Z"
            ),
            "{all:?}"
        );
        assert!(all[1].contains("\"CN=www.example\" expired at"), "{all:?}");
        assert!(lapsed(&expiries, 250, 260).is_empty());
        let later = lapsed(&expiries, 250, 300);
        assert_eq!(later.len(), 1, "{later:?}");
        assert!(later[0].starts_with("tls.bot_ca: the CA"), "{later:?}");
    }
}
