//! The load-time checks of `tls.bot_crl` against `tls.bot_ca`, the flag
//! path's own trust anchors (RCA-10), with which rustls verifies bots and
//! refuses a revoked one with `certificate_revoked`: what rustls
//! (webpki) would refuse at every handshake, and with it every bot under a
//! CA, said at `--check-config`, start and reload instead.
//!
//! Each check judges as webpki does: a CRL's signature with the crypto
//! provider's own algorithms (not another library's list), its issuer by
//! name as webpki picks it. A trust anchor's key usage is not checked,
//! since webpki does not check it either.

use std::path::{Path, PathBuf};

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::asn1_rs::{Any, FromDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::revocation_list::CertificateRevocationList;

/// `crls`, the CRLs rustls is given (one per issuer, picked from `given`,
/// every CRL read, with its file), checked against the bot CAs of
/// `bot_file` (PEM, read from `bot_ca`), with the signature algorithms
/// rustls will verify them with: every CRL signed with an algorithm rustls
/// takes; each bot CA's CRL signed by its key, and no CRL left out under a
/// bot CA's name signed by another; a CRL for each bot CA. Without CRLs
/// there is nothing to check. ([`check_bot_ca_names`] comes first.)
///
/// # Errors
///
/// The first check that fails, naming the CAs and what to do.
pub(crate) fn check_against_bot_cas(
    crls: &[CertificateRevocationListDer<'_>],
    given: &[(PathBuf, CertificateRevocationListDer<'_>)],
    bot_file: &[u8],
    bot_ca: &Path,
    algorithms: &WebPkiSupportedAlgorithms,
) -> anyhow::Result<()> {
    if crls.is_empty() {
        return Ok(());
    }
    let ders = ders_in(bot_file);
    let cas = parsed_cas(&ders);
    check_left_out_signers(crls, given, &cas, bot_ca, algorithms)?;
    let parsed = parsed_crls(crls);
    for crl in &parsed {
        let algorithm = signature_algorithm(crl).unwrap_or_default();
        if !algorithms
            .all
            .iter()
            .any(|known| known.signature_alg_id().as_ref() == algorithm)
        {
            anyhow::bail!(
                "tls.bot_crl: the CRL of {:?} is signed with {}, which rustls does not accept: \
                 every bot under that CA would be refused; sign it with SHA-256 or better \
                 (with openssl ca: default_md = sha256)",
                crl.issuer().to_string(),
                algorithm_name(crl)
            );
        }
    }
    for crl in &parsed {
        let Some(ca) = cas
            .iter()
            .find(|ca| ca.subject().as_raw() == crl.issuer().as_raw())
        else {
            // An intermediate's: its key is known only at a handshake.
            continue;
        };
        match signature_check(crl, ca, algorithms) {
            Signature::Valid => {}
            Signature::Invalid => anyhow::bail!(
                "tls.bot_crl: the CRL of {:?} is not signed by the key of that CA in tls.bot_ca \
                 {} (a CA re-keyed, or a CRL of another CA with the same name): rustls would \
                 refuse it at each handshake, and with it every bot under that CA",
                crl.issuer().to_string(),
                bot_ca.display()
            ),
            Signature::NotForThisKey => anyhow::bail!(
                "tls.bot_crl: the CRL of {:?} is signed with {}, which rustls does not take with \
                 that CA's key (tls.bot_ca {}): every bot under that CA would be refused",
                crl.issuer().to_string(),
                algorithm_name(crl),
                bot_ca.display()
            ),
        }
    }
    // A revoked CA is left out of the anchors (see `drop_revoked_anchors`):
    // it needs no CRL of its own.
    let uncovered: Vec<String> = cas
        .iter()
        .filter(|ca| !is_revoked(ca, &parsed))
        .filter(|ca| {
            !parsed
                .iter()
                .any(|crl| crl.issuer().as_raw() == ca.subject().as_raw())
        })
        .map(|ca| ca.subject().to_string())
        .collect();
    if !uncovered.is_empty() {
        // rustls compares names as encoded: the same name in another
        // string type (a PrintableString CA, a UTF8String CRL issuer)
        // names another CA, and printed, the two look alike.
        let encoded_otherwise = parsed
            .iter()
            .any(|crl| uncovered.contains(&crl.issuer().to_string()));
        anyhow::bail!(
            "tls.bot_crl: no CRL is issued by the bot CA {} (tls.bot_ca {}): with CRLs \
             configured, a certificate whose revocation status no CRL gives is refused, so \
             every bot under that CA would be; add the CA's own CRL (a CRL of another CA \
             covers none of its bots){}",
            quoted(&uncovered),
            bot_ca.display(),
            if encoded_otherwise {
                "; a CRL names that CA with its name encoded otherwise (string types such as \
                 PrintableString and UTF8String differ, and rustls compares names as encoded): \
                 issue the CRL with the issuer name exactly as the CA certificate's subject"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// The CRLs of `given` left out for a newer one of their issuer's that
/// are signed by another key than that of the bot CA of their name. The
/// one picked would be checked, but one left out was said nothing of,
/// while the CA whose it is (an intermediate of the same name, a CA's
/// successor) would have its bots refused (`BadSignature`): rustls picks a
/// CRL by its issuer's name (found by an outside attack, with CRLs that
/// carry no authority key identifier, which would tell the keys apart).
fn check_left_out_signers(
    crls: &[CertificateRevocationListDer<'_>],
    given: &[(PathBuf, CertificateRevocationListDer<'_>)],
    cas: &[X509Certificate<'_>],
    bot_ca: &Path,
    algorithms: &WebPkiSupportedAlgorithms,
) -> anyhow::Result<()> {
    let left_out = given
        .iter()
        .filter(|(_, crl)| !crls.iter().any(|kept| kept.as_ref() == crl.as_ref()));
    for (path, crl) in left_out {
        let Ok((_, crl)) = x509_parser::parse_x509_crl(crl) else {
            continue;
        };
        let Some(ca) = cas
            .iter()
            .find(|ca| ca.subject().as_raw() == crl.issuer().as_raw())
        else {
            continue;
        };
        if matches!(signature_check(&crl, ca, algorithms), Signature::Invalid) {
            anyhow::bail!(
                "tls.bot_crl: {} holds a CRL of {:?} that is not signed by the key of that CA \
                 in tls.bot_ca {} (a CA re-keyed, or another CA of the same name): rustls \
                 picks a CRL by its issuer's name, so the bots of the CA that signed it would \
                 be refused; take it out, or give that CA a name of its own",
                path.display(),
                crl.issuer().to_string(),
                bot_ca.display()
            );
        }
    }
    Ok(())
}

/// The name of `crl`'s signature algorithm (`ecdsa-with-SHA1`), or its
/// dotted identifier where neither x509-parser's registry nor the list of
/// the weak ones CAs still use (the ones an operator meets here) has it.
fn algorithm_name(crl: &CertificateRevocationList<'_>) -> String {
    let oid = &crl.signature_algorithm.algorithm;
    let dotted = oid.to_id_string();
    let weak = match dotted.as_str() {
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.5" => Some("sha1WithRSAEncryption"),
        "1.2.840.113549.1.1.14" => Some("sha224WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10045.4.3.1" => Some("ecdsa-with-SHA224"),
        "1.2.840.10040.4.3" => Some("dsa-with-sha1"),
        _ => None,
    };
    weak.map_or_else(
        || {
            x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
                .map_or(dotted.clone(), str::to_owned)
        },
        str::to_owned,
    )
}

/// With CRLs configured, no two bot CAs of `bot_file` (PEM, read from
/// `bot_ca`) may share a name with different keys: rustls picks a CRL by
/// its issuer's name. Checked before the CRLs are read, whose choice of
/// one per issuer could not tell such CAs' CRLs apart.
///
/// # Errors
///
/// The names shared, and what to do.
pub(crate) fn check_bot_ca_names(bot_file: &[u8], bot_ca: &Path) -> anyhow::Result<()> {
    let ders = ders_in(bot_file);
    let shared = names_with_several_keys(&parsed_cas(&ders));
    if shared.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "tls.bot_ca {}: the CAs named {} have different keys (a CA and its re-keyed \
         successor?); rustls picks a CRL by its issuer's name, so with tls.bot_crl set the \
         bots of all but one of them would be refused (BadSignature): keep one of them in \
         tls.bot_ca while CRLs are checked, or give the new CA a name of its own",
        bot_ca.display(),
        quoted(&shared)
    )
}

/// Leaves out of `roots` each CA of `bot_file` (PEM, read from `bot_ca`)
/// that a CRL of `crls` by its issuer revokes, with a warning naming it,
/// and warns of each other CA there that is not a root. webpki ends a chain at the first trust anchor
/// it reaches and never checks an anchor's revocation, so an intermediate
/// listed in `tls.bot_ca` beside its root (an nginx-style bundle) would go
/// on letting its bots in after its root's CRL revokes it (found by an
/// outside attack; `openssl verify -crl_check_all` refuses them). Left
/// out, its bots chain to the root, whose CRL refuses them, or to nothing.
/// Leaving it out rather than refusing the load makes a revocation take
/// effect at the reload that brings it.
pub(crate) fn drop_revoked_anchors(
    roots: &mut rustls::RootCertStore,
    bot_file: &[u8],
    crls: &[CertificateRevocationListDer<'_>],
    bot_ca: &Path,
) {
    if crls.is_empty() {
        return;
    }
    let parsed = parsed_crls(crls);
    let ders = ders_in(bot_file);
    for ca in parsed_cas(&ders) {
        if !is_revoked(&ca, &parsed) {
            if ca.issuer().as_raw() != ca.subject().as_raw() {
                // Its issuer could revoke it (or a copy of it signed by
                // another CA, found by an outside attack) without a word.
                log::warn!(
                    "tls.bot_ca {}: {:?} is not a root CA (its issuer is {:?}): as a trust \
                     anchor its own revocation is never checked, so if its issuer revokes it \
                     (or another certificate of its name and key), its bots are still let in; \
                     give only root CAs in tls.bot_ca when CRLs are used",
                    bot_ca.display(),
                    ca.subject().to_string(),
                    ca.issuer().to_string()
                );
            }
            continue;
        }
        let der = CertificateDer::from(ca.as_raw());
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&der) else {
            continue;
        };
        let before = roots.roots.len();
        roots.roots.retain(|kept| {
            kept.subject != anchor.subject
                || kept.subject_public_key_info != anchor.subject_public_key_info
        });
        if roots.roots.len() < before {
            log::warn!(
                "tls.bot_ca {}: {:?} is revoked by its issuer's CRL in tls.bot_crl, so it is left \
                 out of the bot CAs and the bots under it are refused (rustls never checks a \
                 trust anchor's revocation); take it out of tls.bot_ca",
                bot_ca.display(),
                ca.subject().to_string()
            );
        }
    }
}

/// Warns of each CRL of `crls` (one per issuer, see `current_per_issuer`)
/// whose scope leaves some of its issuer's certificates out: with CRLs
/// configured, rustls refuses a certificate whose revocation status no CRL
/// gives (`UnknownRevocationStatus`). An authority revocation list alone
/// refuses the bots a CA issues directly, a CRL of end-entity certificates
/// alone the intermediates under it, a partition's CRL the bots whose
/// certificates name another distribution point. Each may be what a CA
/// needs (a root that issues only intermediates has only an authority
/// revocation list), so it is a warning, said at load instead of found
/// one refused bot at a time (found by an outside attack).
pub(crate) fn warn_of_narrow_scopes(crls: &[CertificateRevocationListDer<'_>]) {
    for crl in parsed_crls(crls) {
        let Some(scope) =
            crl.extensions()
                .iter()
                .find_map(|extension| match extension.parsed_extension() {
                    ParsedExtension::IssuingDistributionPoint(scope) => Some(scope.clone()),
                    _ => None,
                })
        else {
            continue;
        };
        let issuer = crl.issuer().to_string();
        if scope.only_contains_ca_certs {
            log::warn!(
                "tls.bot_crl: the CRL of {issuer:?} covers only CA certificates (an authority \
                 revocation list): bots that CA issues directly are refused, their revocation \
                 status unknown; that is right only if it issues intermediates alone, whose own \
                 CRLs must then be in tls.bot_crl"
            );
        } else if scope.only_contains_user_certs {
            log::warn!(
                "tls.bot_crl: the CRL of {issuer:?} covers only end-entity certificates: an \
                 intermediate CA under it is refused, its revocation status unknown, and with \
                 it every bot under that intermediate; give the CA's full CRL if it issues \
                 intermediates"
            );
        }
        if let Some(point) = &scope.distribution_point {
            log::warn!(
                "tls.bot_crl: the CRL of {issuer:?} is a partition's, scoped to the distribution \
                 point {}: a certificate of that CA naming another distribution point is \
                 refused, its revocation status unknown; give the CA's full CRL if its \
                 certificates name several",
                point_names(point)
            );
        }
    }
}

/// The names of a distribution point, as an operator finds them in the
/// certificates' CRL distribution points.
fn point_names(point: &DistributionPointName<'_>) -> String {
    match point {
        DistributionPointName::FullName(names) => names
            .iter()
            .map(|name| match name {
                GeneralName::URI(uri) => format!("{uri:?}"),
                other => format!("{other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        DistributionPointName::NameRelativeToCRLIssuer(relative) => format!("{relative:?}"),
    }
}

/// The certificates of the PEM file `bot_file` that decode.
fn ders_in(bot_file: &[u8]) -> Vec<CertificateDer<'_>> {
    CertificateDer::pem_slice_iter(bot_file)
        .filter_map(Result::ok)
        .collect()
}

/// The certificates of `ders` x509-parser reads.
fn parsed_cas<'a>(ders: &'a [CertificateDer<'_>]) -> Vec<X509Certificate<'a>> {
    ders.iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, ca)| ca)
        .collect()
}

/// The CRLs of `crls` x509-parser reads (each was read once already, when
/// it was loaded).
fn parsed_crls<'a>(
    crls: &'a [CertificateRevocationListDer<'_>],
) -> Vec<CertificateRevocationList<'a>> {
    crls.iter()
        .filter_map(|crl| x509_parser::parse_x509_crl(crl).ok())
        .map(|(_, crl)| crl)
        .collect()
}

/// Whether a CRL of `crls` by `ca`'s issuer revokes it (by the issuer's
/// name and the serial number).
fn is_revoked(ca: &X509Certificate<'_>, crls: &[CertificateRevocationList<'_>]) -> bool {
    crls.iter()
        .filter(|crl| crl.issuer().as_raw() == ca.issuer().as_raw())
        .any(|crl| {
            crl.iter_revoked_certificates()
                .any(|revoked| revoked.raw_serial() == ca.raw_serial())
        })
}

/// `names` quoted and joined with commas.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The subjects that more than one CA of `cas` has, with keys of their own:
/// rustls (webpki) checks a certificate against the first CRL whose issuer
/// has its issuer's name and does not try another when that CRL's signature
/// fails, so only one of such CAs can have its CRL used.
fn names_with_several_keys(cas: &[X509Certificate<'_>]) -> Vec<String> {
    let mut shared = Vec::new();
    for (index, ca) in cas.iter().enumerate() {
        let another_key = cas[..index].iter().any(|other| {
            other.subject().as_raw() == ca.subject().as_raw()
                && other.public_key().raw != ca.public_key().raw
        });
        let name = ca.subject().to_string();
        if another_key && !shared.contains(&name) {
            shared.push(name);
        }
    }
    shared
}

/// How a CRL's signature stands with its CA's key.
enum Signature {
    Valid,
    Invalid,
    /// No algorithm rustls has is for this signature algorithm and this
    /// kind of key (a P-256 key's CRL signed with RSA, say).
    NotForThisKey,
}

/// `crl`'s signature checked with `ca`'s key, as webpki checks it: the
/// algorithms whose identifiers are the CRL's signature algorithm and the
/// key's algorithm, as encoded.
fn signature_check(
    crl: &CertificateRevocationList<'_>,
    ca: &X509Certificate<'_>,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Signature {
    let (Some(signature_algorithm), Some(key_algorithm)) =
        (signature_algorithm(crl), key_algorithm(ca))
    else {
        return Signature::NotForThisKey;
    };
    let key = ca.public_key().subject_public_key.data.as_ref();
    let signature = crl.signature_value.data.as_ref();
    let message = crl.tbs_cert_list.as_ref();
    let mut candidates = algorithms
        .all
        .iter()
        .filter(|known| {
            known.signature_alg_id().as_ref() == signature_algorithm
                && known.public_key_alg_id().as_ref() == key_algorithm
        })
        .peekable();
    if candidates.peek().is_none() {
        return Signature::NotForThisKey;
    }
    if candidates.any(|known| known.verify_signature(key, message, signature).is_ok()) {
        Signature::Valid
    } else {
        Signature::Invalid
    }
}

/// The contents of `crl`'s `signatureAlgorithm` (an `AlgorithmIdentifier`
/// without its outer tag and length, as webpki compares them).
fn signature_algorithm<'a>(crl: &CertificateRevocationList<'a>) -> Option<&'a [u8]> {
    // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
    let (_, list) = Any::from_der(crl.as_raw()).ok()?;
    let (after_tbs, _) = Any::from_der(list.data).ok()?;
    let (_, algorithm) = Any::from_der(after_tbs).ok()?;
    Some(algorithm.data)
}

/// The contents of the `AlgorithmIdentifier` of `ca`'s key.
fn key_algorithm<'c>(ca: &'c X509Certificate<'_>) -> Option<&'c [u8]> {
    // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey }
    let (_, info) = Any::from_der(ca.public_key().raw).ok()?;
    let (_, algorithm) = Any::from_der(info.data).ok()?;
    Some(algorithm.data)
}
