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

use crate::proxy::tls::wrapped::Wrapper;

/// The characters of an `x5t#S256` thumbprint: the SHA-256 of the
/// certificate's DER in unpadded base64url (RFC 8705 §3.1).
const THUMBPRINT_LENGTH: usize = 43;

/// What revokes bots: the CRLs, the denied thumbprints, and the bytes they
/// were read from (which go into the trust id).
#[derive(Debug, Default)]
pub(crate) struct Revocation {
    pub(crate) crls: Vec<CertificateRevocationListDer<'static>>,
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
        revocation.crls = newest_per_issuer(crls)?;
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
    let pem = bytes.windows(11).any(|window| window == b"-----BEGIN ");
    let crls = if pem {
        CertificateRevocationListDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| anyhow::anyhow!("{field}: {}: {error}", path.display()))?
    } else {
        vec![CertificateRevocationListDer::from(bytes.to_vec())]
    };
    if crls.is_empty() {
        anyhow::bail!("{field}: {} holds no X509 CRL block", path.display());
    }
    for crl in &crls {
        let (_, parsed) = x509_parser::parse_x509_crl(crl).map_err(|error| {
            anyhow::anyhow!(
                "{field}: {} is not a certificate revocation list (PEM or DER): {error}",
                path.display()
            )
        })?;
        let algorithm = parsed.signature_algorithm.algorithm.to_id_string();
        if let Some(name) = refused_signature_algorithm(&algorithm) {
            anyhow::bail!(
                "{field}: {}: the CRL of {} is signed with {name}, which rustls does not accept: \
                 every bot under that CA would be refused; sign it with SHA-256 or better (with \
                 openssl ca: default_md = sha256)",
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

/// The name of the signature algorithm `oid` (dotted) if rustls refuses
/// it outright: those on MD5 and SHA-1. x509-parser's own check takes
/// `sha1WithRSAEncryption`, and webpki loads such a CRL and refuses it only
/// at each handshake (found by an outside attack).
fn refused_signature_algorithm(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Some("sha1WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10040.4.3" => Some("dsa-with-sha1"),
        _ => None,
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

/// Of several CRLs from one issuer and for one scope (the same issuing
/// distribution point, or none), the newest (highest CRL number, else
/// latest `thisUpdate`): rustls checks a certificate against the first CRL
/// of its issuer whose scope covers it, so an older one listed first would
/// hide a revocation, or refuse every bot once it expires. CRLs of one CA
/// with different distribution points (a CA that partitions its CRL) each
/// stay, newest first: a CA's full CRL covers every scope, so an older
/// partition's CRL listed before a newer full one would hide what only the
/// full one revokes (found by an outside attack: a revoked bot let in).
fn newest_per_issuer(
    crls: Vec<(PathBuf, CertificateRevocationListDer<'static>)>,
) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    struct Seen {
        issuer: Vec<u8>,
        /// The issuing distribution point extension's value, as encoded.
        scope: Option<Vec<u8>>,
        number: Option<Vec<u8>>,
        this_update: i64,
        crl: CertificateRevocationListDer<'static>,
    }
    let mut newest: Vec<Seen> = Vec::new();
    for (path, crl) in crls {
        let (_, parsed) = x509_parser::parse_x509_crl(&crl)
            .map_err(|error| anyhow::anyhow!("tls.bot_crl: {}: {error}", path.display()))?;
        let seen = Seen {
            issuer: parsed.issuer().as_raw().to_vec(),
            scope: parsed
                .extensions()
                .iter()
                .find(|extension| {
                    extension.oid
                        == x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT
                })
                .map(|extension| extension.value.to_vec()),
            number: parsed
                .crl_number()
                .map(x509_parser::num_bigint::BigUint::to_bytes_be),
            this_update: parsed.last_update().timestamp(),
            crl: crl.clone(),
        };
        let newer = |old: &Seen| match (&seen.number, &old.number) {
            // Big-endian magnitudes: the longer one is larger.
            (Some(new), Some(old_number)) => {
                (new.len(), new.as_slice()) > (old_number.len(), old_number.as_slice())
            }
            _ => seen.this_update > old.this_update,
        };
        match newest
            .iter_mut()
            .find(|old| old.issuer == seen.issuer && old.scope == seen.scope)
        {
            Some(old) if newer(old) => *old = seen,
            Some(_) => {}
            None => newest.push(seen),
        }
    }
    // Each issuer's CRLs newest first (a total order: big-endian numbers
    // compare by length, then bytes; a CRL without a number, which rustls
    // does not load anyway, after those with one).
    newest.sort_by(|a, b| {
        let number = |seen: &Seen| {
            seen.number
                .as_ref()
                .map(|number| (number.len(), number.clone()))
        };
        a.issuer
            .cmp(&b.issuer)
            .then_with(|| number(b).cmp(&number(a)))
            .then_with(|| b.this_update.cmp(&a.this_update))
    });
    Ok(newest.into_iter().map(|seen| seen.crl).collect())
}

/// The CRLs `crls` checked against the bot CAs of `bot_file` (PEM, read from
/// `bot_ca`) at load: each CA needs a CRL of its own, signed by its key
/// (see [`cas_without_crl`] and [`crls_not_signed_by_their_ca`]); without
/// CRLs there is nothing to check.
pub(crate) fn check_against_bot_cas(
    crls: &[CertificateRevocationListDer<'_>],
    bot_file: &[u8],
    bot_ca: &Path,
) -> anyhow::Result<()> {
    if !crls.is_empty() {
        let shared = names_with_several_keys(bot_file);
        if !shared.is_empty() {
            anyhow::bail!(
                "tls.bot_ca {}: the CAs named {} have different keys (a CA and its re-keyed \
                 successor?); rustls picks a CRL by its issuer's name, so with tls.bot_crl set \
                 the bots of all but one of them would be refused (BadSignature): keep one of \
                 them in tls.bot_ca while CRLs are checked, or give the new CA a name of its own",
                bot_ca.display(),
                shared
                    .iter()
                    .map(|subject| format!("{subject:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let unsigned = crls_not_signed_by_their_ca(bot_file, crls);
        if !unsigned.is_empty() {
            anyhow::bail!(
                "tls.bot_crl: the CRL of {} is not signed by the key of that CA in tls.bot_ca {} \
                 (a CA re-keyed, or a CRL of another CA with the same name): rustls would refuse \
                 it at each handshake, and with it every bot under that CA",
                unsigned
                    .iter()
                    .map(|issuer| format!("{issuer:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                bot_ca.display()
            );
        }
        let not_crl_signers = crl_issuers_without_crl_sign(bot_file, crls);
        if !not_crl_signers.is_empty() {
            anyhow::bail!(
                "tls.bot_crl: the bot CA {} (tls.bot_ca {}) has a key usage without cRLSign, so \
                 it may not sign CRLs: rustls would refuse its CRL at each handshake, and with it \
                 every bot under that CA; issue the CA again with cRLSign in its key usage",
                not_crl_signers
                    .iter()
                    .map(|subject| format!("{subject:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                bot_ca.display()
            );
        }
        let uncovered = cas_without_crl(bot_file, crls);
        if !uncovered.is_empty() {
            anyhow::bail!(
                "tls.bot_crl: no CRL is issued by the bot CA {} (tls.bot_ca {}): with CRLs \
                 configured, a certificate whose revocation status no CRL gives is refused, so \
                 every bot under that CA would be; add the CA's own CRL (a CRL of another CA \
                 covers none of its bots)",
                uncovered
                    .iter()
                    .map(|subject| format!("{subject:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                bot_ca.display()
            );
        }
    }
    Ok(())
}

/// The subject of each CA in `bot_file` (PEM) that no CRL of `crls` is
/// issued by. With CRLs configured, rustls refuses every certificate of a
/// chain whose revocation status no CRL gives (RCA-9's fail-closed), the
/// one a trust anchor issued included: every bot under such a CA would be
/// refused, which a CRL from the wrong CA (or one CA's CRL left out) does
/// without a word at load.
pub(crate) fn cas_without_crl(
    bot_file: &[u8],
    crls: &[CertificateRevocationListDer<'_>],
) -> Vec<String> {
    let issuers: Vec<Vec<u8>> = crls
        .iter()
        .filter_map(|crl| x509_parser::parse_x509_crl(crl).ok())
        .map(|(_, crl)| crl.issuer().as_raw().to_vec())
        .collect();
    CertificateDer::pem_slice_iter(bot_file)
        .filter_map(Result::ok)
        .filter_map(|der| {
            let (_, ca) = x509_parser::parse_x509_certificate(&der).ok()?;
            let subject = ca.subject();
            (!issuers.iter().any(|issuer| issuer == subject.as_raw())).then(|| subject.to_string())
        })
        .collect()
}

/// The issuer of each CRL of `crls` that names a CA of `bot_file` (PEM) as
/// its issuer but is not signed by that CA's key (a CA re-keyed, a CRL of
/// an impostor of the same name): rustls refuses such a CRL at each
/// handshake, and with it every bot under that CA, without a word at load.
/// CRLs of intermediate CAs, whose keys the file does not hold, are left to
/// the handshakes.
pub(crate) fn crls_not_signed_by_their_ca(
    bot_file: &[u8],
    crls: &[CertificateRevocationListDer<'_>],
) -> Vec<String> {
    let cas: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(bot_file)
        .filter_map(Result::ok)
        .collect();
    let cas: Vec<_> = cas
        .iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, ca)| ca)
        .collect();
    crls.iter()
        .filter_map(|crl| x509_parser::parse_x509_crl(crl).ok())
        .filter_map(|(_, crl)| {
            let named: Vec<_> = cas
                .iter()
                .filter(|ca| ca.subject().as_raw() == crl.issuer().as_raw())
                .collect();
            // Only a signature that fails to verify counts: an algorithm
            // x509-parser does not know (ECDSA with SHA-512, which rustls
            // takes) is left to the handshakes (found by an outside attack:
            // such a CRL was called "not signed by the key of that CA").
            let signed = named.iter().any(|ca| {
                !matches!(
                    crl.verify_signature(ca.public_key()),
                    Err(x509_parser::error::X509Error::SignatureVerificationError)
                )
            });
            (!named.is_empty() && !signed).then(|| crl.issuer().to_string())
        })
        .collect()
}

/// The subjects that more than one CA of `bot_file` (PEM) has, with keys
/// of their own: rustls (webpki) checks a certificate against the first CRL
/// whose issuer has its issuer's name and does not try another when that
/// CRL's signature fails, so only one of such CAs can have its CRL used.
pub(crate) fn names_with_several_keys(bot_file: &[u8]) -> Vec<String> {
    let cas: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(bot_file)
        .filter_map(Result::ok)
        .collect();
    let mut seen: Vec<(Vec<u8>, Vec<u8>, String)> = Vec::new();
    let mut shared = Vec::new();
    for der in &cas {
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        let subject = ca.subject().as_raw().to_vec();
        let key = ca.public_key().raw.to_vec();
        let name = ca.subject().to_string();
        let another_key = seen
            .iter()
            .any(|(other, other_key, _)| *other == subject && *other_key != key);
        if another_key && !shared.contains(&name) {
            shared.push(name.clone());
        }
        seen.push((subject, key, name));
    }
    shared
}

/// The subject of each CA in `bot_file` (PEM) that issued a CRL of `crls`
/// while its certificate's key usage leaves out cRLSign: RFC 5280 section
/// 4.2.1.3 forbids it that use, and rustls (webpki) refuses such a CRL at
/// each handshake, and with it every bot under the CA. A CA without a key
/// usage extension may sign anything, as webpki takes it.
pub(crate) fn crl_issuers_without_crl_sign(
    bot_file: &[u8],
    crls: &[CertificateRevocationListDer<'_>],
) -> Vec<String> {
    let issuers: Vec<Vec<u8>> = crls
        .iter()
        .filter_map(|crl| x509_parser::parse_x509_crl(crl).ok())
        .map(|(_, crl)| crl.issuer().as_raw().to_vec())
        .collect();
    CertificateDer::pem_slice_iter(bot_file)
        .filter_map(Result::ok)
        .filter_map(|der| {
            let (_, ca) = x509_parser::parse_x509_certificate(&der).ok()?;
            let subject = ca.subject();
            let issued_a_crl = issuers.iter().any(|issuer| issuer == subject.as_raw());
            let may_not_sign_crls = matches!(
                ca.key_usage(),
                Ok(Some(usage)) if !usage.value.crl_sign()
            );
            (issued_a_crl && may_not_sign_crls).then(|| subject.to_string())
        })
        .collect()
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
        if self.denied.contains(&thumbprint_sha256(end_entity)) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(())
    }
}

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
    /// (none: the whole CA).
    fn crl(
        ca: &rcgen::Issuer<'_, rcgen::KeyPair>,
        number: u64,
        uri: Option<&str>,
    ) -> (PathBuf, CertificateRevocationListDer<'static>) {
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
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

    #[test]
    fn the_newest_crl_counts_per_issuer_and_distribution_point() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::Issuer::new(params, key);
        let a = Some("http://crl.example/a.crl");
        let b = Some("http://crl.example/b.crl");
        let crls = vec![
            crl(&ca, 1, a),
            crl(&ca, 2, b),
            crl(&ca, 3, a),
            crl(&ca, 4, None),
            crl(&ca, 5, None),
        ];
        // One per distribution point, the newest first: rustls takes the
        // first whose scope covers a certificate.
        let expected = vec![crls[4].1.clone(), crls[2].1.clone(), crls[1].1.clone()];
        let kept = newest_per_issuer(crls.clone()).expect("CRLs");
        assert_eq!(kept, expected);
        let mut reversed = crls;
        reversed.reverse();
        assert_eq!(newest_per_issuer(reversed).expect("CRLs"), expected);
    }

    /// Two DER CRLs in one file are refused with what to do instead, not
    /// with the advice for version 1 CRLs (found by an outside attack).
    #[test]
    fn an_unusable_crl_gets_its_own_remedy() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::Issuer::new(params, key);
        let (_, first) = crl(&ca, 1, None);
        let (_, second) = crl(&ca, 2, None);
        let both = [first.as_ref(), second.as_ref()].concat();
        let error = crls_in("tls.bot_crl", Path::new("two.der"), &both).expect_err("two in DER");
        let text = error.to_string();
        assert!(text.contains("TrailingData"), "{text}");
        assert!(text.contains("a DER file holds one CRL"), "{text}");
        assert!(!text.contains("crlnumber"), "{text}");
        assert_eq!(
            refused_signature_algorithm("1.2.840.113549.1.1.5"),
            Some("sha1WithRSAEncryption")
        );
        assert_eq!(refused_signature_algorithm("1.2.840.10045.4.3.2"), None);
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
}
