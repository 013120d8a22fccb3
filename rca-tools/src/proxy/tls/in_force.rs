//! What the loaded CRLs and deny list revoke, kept from one load to the
//! next so that a reload can say whom it lets in again. A reload that
//! lifts a revocation is usually meant (a thumbprint taken off the deny
//! list, a CRL that dropped certificates past their expiry), but the same
//! reload comes from a deny list read while it was being written, or an
//! older CRL copied over the current one (found by an outside trial: both
//! let a revoked bot back in with nothing in the log but "reloaded").

use std::collections::HashSet;

use rustls::pki_types::CertificateRevocationListDer;
use x509_parser::num_bigint::BigUint;

/// What one load revokes.
#[derive(Debug, Default)]
pub struct InForce {
    crls: Vec<CrlInForce>,
    denied: HashSet<String>,
}

/// One CA's current CRL.
#[derive(Debug)]
struct CrlInForce {
    /// The issuer's name as encoded, and as text.
    issuer: Vec<u8>,
    issuer_name: String,
    number: Option<BigUint>,
    /// The revoked certificates' serial numbers, as encoded.
    serials: HashSet<Vec<u8>>,
}

/// A revocation a reload lifted, said in one line.
#[derive(Debug, PartialEq, Eq)]
pub struct Lifted {
    /// What was lifted, naming the field, the CA or the thumbprints.
    pub line: String,
    /// To be said as a warning: an older CRL in place of a newer one (a
    /// lower CRL number, never a CA's own way to lift a revocation), or
    /// thumbprints gone from the deny list (what a half-written file
    /// does). A CRL that dropped entries is the CA's doing: information.
    pub warning: bool,
}

/// How many of the lifted serials or thumbprints a line names.
const NAMED: usize = 5;

impl InForce {
    /// What `crls` (one current CRL per CA, as checked at load) and `denied`
    /// revoke. A CRL x509-parser cannot read (the load has refused it by
    /// then) counts as revoking nothing.
    pub(crate) fn of(crls: &[CertificateRevocationListDer<'_>], denied: &HashSet<String>) -> Self {
        let crls = crls
            .iter()
            .filter_map(|crl| x509_parser::parse_x509_crl(crl).ok())
            .map(|(_, parsed)| CrlInForce {
                issuer: parsed.issuer().as_raw().to_vec(),
                issuer_name: parsed.issuer().to_string(),
                number: parsed.crl_number().cloned(),
                serials: parsed
                    .iter_revoked_certificates()
                    .map(|revoked| revoked.raw_serial().to_vec())
                    .collect(),
            })
            .collect();
        Self {
            crls,
            denied: denied.clone(),
        }
    }

    /// The certificates the CRLs list.
    #[must_use]
    pub fn revoked_certificates(&self) -> usize {
        self.crls.iter().map(|crl| crl.serials.len()).sum()
    }

    /// The thumbprints the deny list holds.
    #[must_use]
    pub fn denied_thumbprints(&self) -> usize {
        self.denied.len()
    }

    /// What `self` no longer revokes of what `before` did: per CA, the
    /// certificates its CRL no longer lists, or an older CRL in place of a
    /// newer one; all CRLs gone; thumbprints gone from the deny list. A
    /// CA's CRL gone while others stay lifts nothing: its bots then have no
    /// revocation status and are refused.
    #[must_use]
    pub fn lifted_since(&self, before: &Self) -> Vec<Lifted> {
        let mut lifted = Vec::new();
        let revoked = before.revoked_certificates();
        if self.crls.is_empty() && revoked > 0 {
            lifted.push(Lifted {
                line: format!(
                    "tls.bot_crl: no CRL is read any more, so the {revoked} certificate{} the \
                     CRLs listed {} let in again",
                    if revoked == 1 { "" } else { "s" },
                    if revoked == 1 { "is" } else { "are" },
                ),
                warning: true,
            });
        }
        for now in &self.crls {
            let Some(then) = before.crls.iter().find(|then| then.issuer == now.issuer) else {
                continue;
            };
            let mut gone: Vec<String> = then
                .serials
                .difference(&now.serials)
                .map(|serial| hex(serial))
                .collect();
            let rolled_back =
                matches!((&now.number, &then.number), (Some(now), Some(then)) if now < then);
            if gone.is_empty() && !rolled_back {
                continue;
            }
            gone.sort();
            let numbers = match (&then.number, &now.number) {
                (Some(then), Some(now)) => format!(" (CRL number {then} -> {now})"),
                _ => String::new(),
            };
            let what = if gone.is_empty() {
                "is an older CRL than the one it replaces".to_owned()
            } else {
                format!(
                    "no longer lists {}, which {} let in again",
                    counted(&gone, "certificate", ("serial", "serials")),
                    if gone.len() == 1 { "is" } else { "are" },
                )
            };
            // CRL numbers only grow (RFC 5280 section 5.2.3): a CA lifts an
            // entry in a CRL numbered higher. An entry gone from one
            // numbered the same or lower is an old or made-up file.
            let unlike_a_ca = !gone.is_empty()
                && matches!((&now.number, &then.number), (Some(now), Some(then)) if now <= then);
            let warning = rolled_back || unlike_a_ca;
            let remedy = if warning {
                "; if that was not meant, put the current CRL back and reload"
            } else {
                ""
            };
            lifted.push(Lifted {
                line: format!(
                    "tls.bot_crl: the CRL of {:?}{numbers} {what}{remedy}",
                    now.issuer_name,
                ),
                warning,
            });
        }
        let mut gone: Vec<String> = before.denied.difference(&self.denied).cloned().collect();
        if !gone.is_empty() {
            gone.sort();
            lifted.push(Lifted {
                line: format!(
                    "tls.bot_deny_list: {} {} no longer denied; if that was not meant (a \
                     file read while it was being written?), write the whole list to a new \
                     file, rename it over the old one and reload",
                    counted(&gone, "thumbprint", ("x5t#S256", "x5t#S256")),
                    if gone.len() == 1 { "is" } else { "are" },
                ),
                warning: true,
            });
        }
        lifted
    }
}

/// `3 certificates (serials a, b, c)`, naming at most [`NAMED`]; the names
/// are called `named_as` (one, more than one).
fn counted(items: &[String], what: &str, named_as: (&str, &str)) -> String {
    let (plural, named_as) = if items.len() == 1 {
        ("", named_as.0)
    } else {
        ("s", named_as.1)
    };
    let mut named = items
        .iter()
        .take(NAMED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        named.push_str(", ...");
    }
    format!("{} {what}{plural} ({named_as} {named})", items.len())
}

/// A serial number in hex, as `openssl` prints it.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02X}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crl(number: u64, serials: &[u64]) -> CrlInForce {
        CrlInForce {
            issuer: b"bot ca".to_vec(),
            issuer_name: "CN=Bot CA".to_owned(),
            number: Some(BigUint::from(number)),
            serials: serials
                .iter()
                .map(|serial| serial.to_be_bytes().to_vec())
                .collect(),
        }
    }

    fn in_force(crls: Vec<CrlInForce>, denied: &[&str]) -> InForce {
        InForce {
            crls,
            denied: denied.iter().map(|&entry| entry.to_owned()).collect(),
        }
    }

    /// A newer CRL that adds entries lifts nothing; one that drops an entry
    /// says so; an older one is a rollback even if it drops nothing, and
    /// entries gone from one numbered the same are warned of too; a
    /// thumbprint gone from the deny list is named; all CRLs gone lifts all.
    #[test]
    fn says_what_a_reload_lets_in_again() {
        let before = in_force(vec![crl(5, &[1, 2])], &["denied-one", "denied-two"]);
        assert!(
            in_force(vec![crl(6, &[1, 2, 3])], &["denied-one", "denied-two"])
                .lifted_since(&before)
                .is_empty()
        );

        let dropped = in_force(vec![crl(6, &[1])], &["denied-one", "denied-two"]);
        assert_eq!(
            dropped.lifted_since(&before),
            [Lifted {
                line: "tls.bot_crl: the CRL of \"CN=Bot CA\" (CRL number 5 -> 6) no longer lists \
                       1 certificate (serial 0000000000000002), which is let in again"
                    .to_owned(),
                warning: false,
            }]
        );

        let older = in_force(vec![crl(4, &[1, 2])], &["denied-two"]);
        let lifted = older.lifted_since(&before);
        assert_eq!(lifted.len(), 2, "{lifted:?}");
        assert!(lifted[0].warning, "{lifted:?}");
        assert_eq!(
            lifted[0].line,
            "tls.bot_crl: the CRL of \"CN=Bot CA\" (CRL number 5 -> 4) is an older CRL than \
             the one it replaces; if that was not meant, put the current CRL back and reload"
        );
        assert!(
            lifted[1].line.starts_with(
                "tls.bot_deny_list: 1 thumbprint (x5t#S256 denied-one) is no longer denied"
            ),
            "{lifted:?}"
        );

        // Entries gone from a CRL numbered the same: not a CA's doing.
        let same = in_force(vec![crl(5, &[])], &["denied-one", "denied-two"]);
        let lifted = same.lifted_since(&before);
        assert!(lifted[0].warning, "{lifted:?}");
        assert!(
            lifted[0]
                .line
                .contains("2 certificates (serials 0000000000000001, "),
            "{lifted:?}"
        );

        let none = in_force(Vec::new(), &["denied-one", "denied-two"]);
        assert_eq!(
            none.lifted_since(&before)[0].line,
            "tls.bot_crl: no CRL is read any more, so the 2 certificates the CRLs listed are \
             let in again"
        );
    }
}
