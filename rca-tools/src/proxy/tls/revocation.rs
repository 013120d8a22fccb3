//! Shutting out single bots without removing their CA: CRLs from the bot
//! CAs (`tls.bot_crl`, checked by rustls's own CRL support) and a deny list
//! of leaf thumbprints (`tls.bot_deny_list`).
//!
//! Both are part of what names the flag path's trust set (the trust id, see
//! `FlagVerifier::replace_with_trust_id`): a change to either retires every
//! flag-path ticket (RCA-11), so a revoked bot cannot come back on a session
//! it was given before the revocation; it gets a full handshake, and the
//! verifier refuses it there.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, DistinguishedName};
use rustls_req_client_auth::thumbprint_sha256;

use crate::common::bounded_log::within;
use crate::proxy::tls::ecdsa_twins::ecdsa_twins;
use crate::proxy::tls::wrapped::Wrapper;

/// The characters of an `x5t#S256` thumbprint: the SHA-256 of the
/// certificate's DER in unpadded base64url (RFC 8705 §3.1).
const THUMBPRINT_LENGTH: usize = 43;

/// What revokes bots: the CRLs, the denied thumbprints, and the bytes they
/// were read from (which go into the trust id).
#[derive(Debug, Default)]
pub(crate) struct Revocation {
    /// One CRL per issuer, the current one: what rustls is given.
    pub(crate) crls: Vec<CertificateRevocationListDer<'static>>,
    /// Every CRL as read, with its file: what the load checks judge.
    pub(crate) given: Vec<(PathBuf, CertificateRevocationListDer<'static>)>,
    pub(crate) denied: HashSet<String>,
    /// Every file's bytes, each with its length in front.
    pub(crate) identity: Vec<u8>,
}

impl Revocation {
    /// Reads `crl_files` (PEM or DER, each checked as a CRL) and
    /// `deny_list`.
    ///
    /// # Errors
    ///
    /// A file cannot be read, or a CRL or thumbprint in it is malformed; the
    /// message names the field, the file and, for the deny list, the line.
    pub(crate) fn load(crl_files: &[PathBuf], deny_list: Option<&Path>) -> anyhow::Result<Self> {
        let mut revocation = Self::default();
        let mut crls = Vec::new();
        for path in crl_files {
            let bytes = read("tls.bot_crl", path)?;
            for crl in crls_in("tls.bot_crl", path, &bytes)? {
                crls.push((path.clone(), crl));
            }
            revocation.add_to_identity(&bytes);
        }
        revocation.given.clone_from(&crls);
        revocation.crls = current_per_issuer(crls)?;
        if let Some(path) = deny_list {
            let bytes = read("tls.bot_deny_list", path)?;
            revocation.denied = thumbprints_in(path, &bytes)?;
            revocation.add_to_identity(&bytes);
        }
        Ok(revocation)
    }

    fn add_to_identity(&mut self, bytes: &[u8]) {
        let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.identity.extend_from_slice(&length.to_be_bytes());
        self.identity.extend_from_slice(bytes);
    }
}

fn read(field: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("{field}: cannot read {}: {error}", path.display()))
}

/// The CRLs in a file: every `X509 CRL` block of a PEM file, or the file
/// itself when it is DER. Each is parsed here so a broken one is named with
/// its file (rustls would only say that one of them is broken).
fn crls_in(
    field: &str,
    path: &Path,
    bytes: &[u8],
) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    if bytes.is_empty() {
        anyhow::bail!("{field}: {} is empty", path.display());
    }
    let pem = bytes.windows(11).any(|window| window == b"-----BEGIN ");
    let crls = if pem {
        CertificateRevocationListDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                anyhow::anyhow!(
                    "{field}: {}",
                    rustls_req_client_auth::pem::PemError::in_file(path, error)
                )
            })?
    } else {
        vec![CertificateRevocationListDer::from(bytes.to_vec())]
    };
    if crls.is_empty() {
        anyhow::bail!("{field}: {} holds no X509 CRL block", path.display());
    }
    for crl in &crls {
        let (_, parsed) = x509_parser::parse_x509_crl(crl).map_err(|error| {
            anyhow::anyhow!(
                "{field}: {} is not a certificate revocation list (PEM or DER): {error}{}",
                path.display(),
                if cut_short(&error) {
                    " (it ends early: is the file cut short?)"
                } else {
                    ""
                }
            )
        })?;
        // webpki reads a version 1 CRL (`openssl ca -gencrl` writes one
        // unless `crlnumber` is set) as malformed, without saying why.
        if parsed.version().is_none() {
            anyhow::bail!(
                "{field}: {}: the CRL of {} is a version 1 CRL, which rustls does not take: it \
                 takes version 2 CRLs, with a CRL number (with openssl ca: set crlnumber)",
                path.display(),
                parsed.issuer()
            );
        }
        // As rustls will read it.
        webpki::OwnedCertRevocationList::from_der(crl).map_err(|error| {
            anyhow::anyhow!(
                "{field}: {}: rustls cannot use this CRL ({error:?}){}",
                path.display(),
                unusable_crl_remedy(&error)
            )
        })?;
    }
    Ok(crls)
}

/// Whether x509-parser stopped at the end of the bytes, in the middle of
/// what it was reading.
fn cut_short(error: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> bool {
    use x509_parser::nom::{error::ErrorKind, Err};
    match error {
        Err::Incomplete(_) => true,
        Err::Error(error) | Err::Failure(error) => {
            matches!(
                error,
                x509_parser::error::X509Error::NomError(ErrorKind::Eof)
            )
        }
    }
}

/// What to do about a CRL webpki will not load, where there is one thing
/// to do (found by an outside attack: every such error was told to set
/// `crlnumber`, which mends only the first two).
fn unusable_crl_remedy(error: &webpki::Error) -> &'static str {
    match error {
        // `openssl ca -gencrl` writes a version 1 CRL unless `crlnumber` is set.
        webpki::Error::UnsupportedCrlVersion | webpki::Error::InvalidCrlNumber => {
            "; it takes version 2 CRLs with a CRL number and a next update (with openssl ca: \
             set crlnumber)"
        }
        webpki::Error::TrailingData(_) => {
            "; a DER file holds one CRL: give each its own file, or put them in one PEM file"
        }
        webpki::Error::UnsupportedIndirectCrl => {
            "; indirect CRLs (issued for another CA) are not supported: give each CA's own CRL"
        }
        webpki::Error::UnsupportedDeltaCrl => {
            "; delta CRLs are not supported: give the CA's full CRL"
        }
        webpki::Error::UnsupportedCrlIssuingDistributionPoint
        | webpki::Error::UnsupportedRevocationReasonsPartitioning => {
            "; its issuing distribution point is of a kind rustls does not take (it takes a \
             full name, without onlySomeReasons or attribute certificates)"
        }
        _ => "",
    }
}

/// One CRL per issuer: of several from one CA, the current one (the
/// highest CRL number, else the latest `thisUpdate`).
///
/// rustls (webpki) checks a certificate against the first CRL of its
/// issuer whose scope covers it, and takes a CRL scoped to a distribution
/// point as covering every certificate that names none. So CRLs of one CA
/// with different scopes (a partition's beside the full one, a CA's
/// authority revocation list) are refused: whichever came first would
/// decide, and an older or narrower one would hide a revocation (found by
/// two outside attacks, the second against an ordering that tried to pick
/// the right one). So are CRLs whose numbers and dates disagree (a CA
/// whose numbering started again): which is current cannot be told. And
/// so are CRLs of one name signed by different keys (their authority key
/// identifiers differ): two CAs of one name, of which rustls could use
/// only one's CRL.
fn current_per_issuer(
    crls: Vec<(PathBuf, CertificateRevocationListDer<'static>)>,
) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    let mut issued: Vec<Issued> = Vec::new();
    for (path, crl) in crls {
        let (_, parsed) = x509_parser::parse_x509_crl(&crl)
            .map_err(|error| anyhow::anyhow!("tls.bot_crl: {}: {error}", path.display()))?;
        let issued_now = Issued {
            issuer: parsed.issuer().as_raw().to_vec(),
            issuer_name: parsed.issuer().to_string(),
            scope: extension_value(
                &parsed,
                &x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
            ),
            signer: extension_value(
                &parsed,
                &x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
            ),
            // Big-endian magnitudes without leading zeros: the longer is
            // the larger, then byte by byte.
            number: parsed
                .crl_number()
                .map(x509_parser::num_bigint::BigUint::to_bytes_be)
                .map(|number| (number.len(), number)),
            this_update: parsed.last_update().timestamp(),
            path,
            crl: crl.clone(),
        };
        issued.push(issued_now);
    }
    let mut current: Vec<&Issued> = Vec::new();
    for crl in &issued {
        match current.iter_mut().find(|kept| kept.issuer == crl.issuer) {
            None => current.push(crl),
            Some(kept) => {
                if let (Some(one), Some(other)) = (&kept.signer, &crl.signer) {
                    if one != other {
                        anyhow::bail!(
                            "tls.bot_crl: {} and {} are CRLs of two CAs named {:?} with \
                             different keys (their authority key identifiers differ): rustls \
                             picks a CRL by its issuer's name, so the bots of one of them would \
                             be refused (BadSignature); give the CAs names of their own",
                            kept.path.display(),
                            crl.path.display(),
                            crl.issuer_name
                        );
                    }
                }
                if kept.scope != crl.scope {
                    anyhow::bail!(
                        "tls.bot_crl: {} and {} are CRLs of {:?} with different scopes (issuing \
                         distribution points, or one with and one without): rustls checks a \
                         certificate against the first CRL of its issuer whose scope covers it, \
                         so an older or narrower one could hide a revocation; give one CRL per \
                         CA, its full CRL",
                        kept.path.display(),
                        crl.path.display(),
                        crl.issuer_name
                    );
                }
                if crl.newer_than(kept)? {
                    *kept = crl;
                }
            }
        }
    }
    Ok(current.into_iter().map(|kept| kept.crl.clone()).collect())
}

/// The value of `crl`'s extension `oid`, as encoded, if it has one.
fn extension_value(
    crl: &x509_parser::revocation_list::CertificateRevocationList<'_>,
    oid: &x509_parser::oid_registry::Oid<'_>,
) -> Option<Vec<u8>> {
    crl.extensions()
        .iter()
        .find(|extension| extension.oid == *oid)
        .map(|extension| extension.value.to_vec())
}

/// A CRL as [`current_per_issuer`] weighs it.
struct Issued {
    issuer: Vec<u8>,
    issuer_name: String,
    /// The issuing distribution point extension's value, as encoded.
    scope: Option<Vec<u8>>,
    /// The authority key identifier extension's value, as encoded: which
    /// key signed it, where the CRL says.
    signer: Option<Vec<u8>>,
    number: Option<(usize, Vec<u8>)>,
    this_update: i64,
    path: PathBuf,
    crl: CertificateRevocationListDer<'static>,
}

impl Issued {
    /// Whether `self` replaces `other`, a CRL of the same issuer and scope;
    /// an error where their numbers and dates disagree, or nothing tells
    /// them apart.
    fn newer_than(&self, other: &Self) -> anyhow::Result<bool> {
        if self.crl == other.crl {
            return Ok(false);
        }
        let by_date = self.this_update.cmp(&other.this_update);
        let by_number = match (&self.number, &other.number) {
            (Some(mine), Some(theirs)) => mine.cmp(theirs),
            _ => std::cmp::Ordering::Equal,
        };
        let disagree = by_number.is_ne() && by_date.is_ne() && by_number != by_date;
        if disagree || (by_number.is_eq() && by_date.is_eq()) {
            anyhow::bail!(
                "tls.bot_crl: {} and {} are CRLs of {:?} {}: which is current cannot be told; \
                 give only the current one",
                other.path.display(),
                self.path.display(),
                self.issuer_name,
                if disagree {
                    "whose CRL numbers and thisUpdate dates disagree (a CA whose numbering \
                     started again?)"
                } else {
                    "with the same CRL number and thisUpdate"
                }
            );
        }
        Ok(if by_number.is_ne() {
            by_number.is_gt()
        } else {
            by_date.is_gt()
        })
    }
}

/// An `x5t#S256` thumbprint written as OpenSSL prints a SHA-256 fingerprint
/// (`openssl x509 -noout -fingerprint -sha256`: 64 hex digits, with or
/// without colons, `sha256 Fingerprint=` before them or not), as the
/// thumbprint it is: what operators who know nginx have at hand.
fn from_openssl_fingerprint(entry: &str) -> Option<String> {
    use base64::Engine as _;
    let hex = entry
        .split_once('=')
        .filter(|(label, _)| label.trim().eq_ignore_ascii_case("sha256 fingerprint"))
        .map_or(entry, |(_, hex)| hex)
        .replace(':', "");
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let digest = (0..32)
        .map(|at| u8::from_str_radix(hex.get(at * 2..at * 2 + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// The thumbprints in a deny list: one per line (`x5t#S256`, or the SHA-256
/// fingerprint as OpenSSL prints it), blank lines and `#` comments ignored.
fn thumbprints_in(path: &Path, bytes: &[u8]) -> anyhow::Result<HashSet<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("tls.bot_deny_list: {} is not UTF-8 text", path.display()))?;
    let mut denied = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        if let Some(thumbprint) = from_openssl_fingerprint(entry) {
            denied.insert(thumbprint);
            continue;
        }
        let well_formed = entry.len() == THUMBPRINT_LENGTH
            && entry
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !well_formed {
            anyhow::bail!(
                "tls.bot_deny_list: {} line {}: {entry:?} is not an x5t#S256 thumbprint \
                 (43 characters of unpadded base64url, as in the x-client-cert-x5t-s256 header \
                 and the access log) nor a SHA-256 fingerprint (`openssl x509 -in BOT.pem \
                 -noout -fingerprint -sha256`)",
                path.display(),
                index + 1
            );
        }
        denied.insert(entry.to_owned());
    }
    Ok(denied)
}

/// The bot verifier with the deny list in front: a denied leaf is refused
/// as revoked (alert `certificate_revoked`) before its chain is checked.
#[derive(Debug)]
pub(crate) struct DeniedLeaves {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) denied: HashSet<String>,
}

impl Wrapper for DeniedLeaves {
    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.inner)
    }

    fn hints(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn check_first(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        // Its ECDSA twins too: anyone holding a certificate can make them,
        // each with a thumbprint of its own.
        let denied = self.denied.contains(&thumbprint_sha256(end_entity))
            || ecdsa_twins(end_entity).into_iter().any(|twin| {
                self.denied
                    .contains(&thumbprint_sha256(&CertificateDer::from(twin)))
            });
        if denied {
            // rustls's error (`Revoked`, for the alert `certificate_revoked`)
            // is the same as a CRL's: this line tells the two apart.
            if let Some(left_out) = within(&DENIALS_LOGGED, log::Level::Info) {
                log::info!(
                    "tls.bot_deny_list lists x5t#S256 {} (or its ECDSA twin): refused as \
                     revoked{left_out}",
                    thumbprint_sha256(end_entity),
                );
            }
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(())
    }
}

/// The lines for certificates the deny list refuses: a denied bot can
/// cause one per handshake.
static DENIALS_LOGGED: rustls_req_client_auth::LogBudget = rustls_req_client_auth::LogBudget::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openssl_fingerprint_is_the_certificates_thumbprint() {
        let leaf = &integration_tests::TestPki::shared().bot.chain[0];
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
        // As `openssl x509 -noout -fingerprint -sha256` prints it.
        let printed = format!(
            "sha256 Fingerprint={}",
            digest
                .as_ref()
                .iter()
                .map(|byte| format!("{byte:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        );
        assert_eq!(
            from_openssl_fingerprint(&printed),
            Some(thumbprint_sha256(leaf))
        );
    }

    #[test]
    fn deny_lists_take_comments_and_name_the_bad_line() {
        let good =
            "# leaked 2026-12-01\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA  # crawler-7\n";
        let denied = thumbprints_in(Path::new("deny"), good.as_bytes()).expect("valid");
        assert_eq!(denied.len(), 1);
        let bad = format!("{good}sha256:abc\n");
        // OpenSSL's fingerprint of the same digest, in each spelling.
        let zeros = ["00"; 32].join(":");
        for spelling in [
            zeros.clone(),
            zeros.replace(':', ""),
            format!("sha256 Fingerprint={zeros}"),
            format!("SHA256 Fingerprint={}", zeros.to_lowercase()),
        ] {
            let denied = thumbprints_in(Path::new("deny"), spelling.as_bytes()).expect("valid");
            assert!(
                denied.contains("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "{spelling}: {denied:?}"
            );
        }
        let error = thumbprints_in(Path::new("deny"), bad.as_bytes()).expect_err("invalid");
        assert!(error.to_string().contains("line 4"), "{error}");
    }

    /// A CRL of `ca` numbered `number`, for the distribution point `uri`
    /// (none: the whole CA), issued `hours_ago`.
    fn crl(
        ca: &rcgen::Issuer<'_, rcgen::KeyPair>,
        number: u64,
        uri: Option<&str>,
        hours_ago: i64,
    ) -> (PathBuf, CertificateRevocationListDer<'static>) {
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(hours_ago),
            next_update: now + time::Duration::days(1),
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: uri.map(|uri| rcgen::CrlIssuingDistributionPoint {
                distribution_point: rcgen::CrlDistributionPoint {
                    uris: vec![uri.to_owned()],
                },
                scope: None,
            }),
            revoked_certs: Vec::new(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(ca).expect("CRL");
        (
            PathBuf::from(format!("{number}.crl")),
            CertificateRevocationListDer::from(crl.der().to_vec()),
        )
    }

    /// A CA named `name` for the CRL tests.
    fn crl_issuer(name: &str) -> rcgen::Issuer<'static, rcgen::KeyPair> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        rcgen::Issuer::new(params, key)
    }

    #[test]
    fn one_crl_per_issuer_the_current_one_in_any_order() {
        let ca = crl_issuer("CRL test CA");
        let crls = vec![
            crl(&ca, 1, None, 3),
            crl(&ca, 3, None, 1),
            crl(&ca, 2, None, 2),
        ];
        let current = vec![crls[1].1.clone()];
        assert_eq!(current_per_issuer(crls.clone()).expect("CRLs"), current);
        let mut reversed = crls;
        reversed.reverse();
        assert_eq!(current_per_issuer(reversed).expect("CRLs"), current);
        let other = crl_issuer("another CRL test CA");
        let both = vec![crl(&ca, 1, None, 1), crl(&other, 7, None, 1)];
        assert_eq!(current_per_issuer(both).expect("CRLs").len(), 2);
    }

    /// CRLs of one CA with different scopes are refused, whatever their
    /// numbers and order: rustls would take the first whose scope covers a
    /// certificate (and a scoped one covers every certificate that names no
    /// distribution point). Found by two outside attacks: an older
    /// partition's CRL listed first hid a revocation of the newer full
    /// CRL, and so did one with a higher number of its own sequence once
    /// the proxy sorted them.
    #[test]
    fn crls_of_one_ca_with_different_scopes_are_refused() {
        let ca = crl_issuer("CRL test CA");
        let a = Some("http://crl.example/a.crl");
        let b = Some("http://crl.example/b.crl");
        for crls in [
            vec![crl(&ca, 2, a, 2), crl(&ca, 3, None, 1)],
            vec![crl(&ca, 80, a, 2), crl(&ca, 3, None, 1)],
            vec![crl(&ca, 3, None, 1), crl(&ca, 80, a, 2)],
            vec![crl(&ca, 1, a, 1), crl(&ca, 2, b, 1)],
        ] {
            let error = current_per_issuer(crls).expect_err("two scopes");
            assert!(error.to_string().contains("different scopes"), "{error}");
        }
    }

    /// CRLs of two CAs of one name (intermediates under different roots,
    /// say) are refused at load: rustls would use only one of them, and the
    /// other CA's bots would be refused as if its CRL were forged (found by
    /// an outside attack: one was dropped without a word).
    #[test]
    fn crls_of_two_cas_of_one_name_are_refused() {
        let one = crl_issuer("CRL test CA");
        let other = crl_issuer("CRL test CA");
        let error = current_per_issuer(vec![crl(&one, 1, None, 1), crl(&other, 5, None, 1)])
            .expect_err("two keys");
        assert!(error.to_string().contains("different keys"), "{error}");
    }

    /// A newer CRL with a lower number (a CA whose numbering started
    /// again) is not silently dropped for the older one: which is current
    /// cannot be told (found by an outside attack).
    #[test]
    fn crls_whose_numbers_and_dates_disagree_are_refused() {
        let ca = crl_issuer("CRL test CA");
        let error = current_per_issuer(vec![crl(&ca, 1, None, 1), crl(&ca, 256, None, 5)])
            .expect_err("disagree");
        assert!(error.to_string().contains("disagree"), "{error}");
    }

    /// Two DER CRLs in one file are refused with what to do instead, not
    /// with the advice for version 1 CRLs (found by an outside attack).
    #[test]
    fn an_unusable_crl_gets_its_own_remedy() {
        let ca = crl_issuer("CRL test CA");
        let (_, first) = crl(&ca, 1, None, 1);
        let (_, second) = crl(&ca, 2, None, 1);
        let both = [first.as_ref(), second.as_ref()].concat();
        let error = crls_in("tls.bot_crl", Path::new("two.der"), &both).expect_err("two in DER");
        let text = error.to_string();
        assert!(text.contains("TrailingData"), "{text}");
        assert!(text.contains("a DER file holds one CRL"), "{text}");
        assert!(!text.contains("crlnumber"), "{text}");
    }

    #[test]
    fn a_file_that_is_no_crl_is_named() {
        let error = crls_in("tls.bot_crl", Path::new("x.crl"), b"\x30\x03\x02\x01\x01")
            .expect_err("not a CRL");
        assert!(error.to_string().contains("x.crl"), "{error}");
        let error = crls_in(
            "tls.bot_crl",
            Path::new("y.pem"),
            b"-----BEGIN CERTIFICATE-----\n",
        )
        .expect_err("no CRL block");
        assert!(error.to_string().contains("y.pem"), "{error}");
    }

    /// An empty file, a PEM CRL cut short and a DER CRL cut short each say
    /// so, where they said what the parsers did (found by an outside trial:
    /// `missing section end marker: [88, 53, ...]`, `NomError(Eof)`).
    #[test]
    fn an_empty_or_cut_crl_says_so() {
        let (_, der) = crl(&crl_issuer("CN=Cut CA"), 1, None, 1);
        let encoded = {
            use base64::Engine as _;
            let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            format!("-----BEGIN X509 CRL-----\n{body}\n-----END X509 CRL-----\n")
        };
        let said = |bytes: &[u8]| {
            crls_in("tls.bot_crl", Path::new("c.crl"), bytes)
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(said(b""), "tls.bot_crl: c.crl is empty");
        let cut_pem = said(&encoded.as_bytes()[..100]);
        assert!(
            cut_pem
                .contains("a block has no `-----END X509 CRL-----` line (is the file cut short?)"),
            "{cut_pem}"
        );
        let cut_der = said(&der.as_ref()[..60]);
        assert!(cut_der.contains("is the file cut short?"), "{cut_der}");
    }
}
