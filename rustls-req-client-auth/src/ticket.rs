//! What a session ticket remembers for this crate: which trust path
//! authenticated the client (RCA-11), so a resumed connection reports the
//! same, and for either path with a certificate which trust anchors verified
//! it, so a ticket issued before that path's CA set was replaced is not used;
//! and whether a session's client certificate is still valid.

use rustls::pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::auth_path::AuthPath;

/// Format version of the ticket data; data of another version is not used.
const VERSION: u8 = 3;

/// Identifies the trust set of a verifier (the flag path's or the config's
/// own): the same on every server of a fleet with the same CA set, different
/// after a swap to another.
///
/// Taken from a trust id the application gives (see
/// `FlagVerifier::replace_with_trust_id`, `NormalPathTrust::set_trust_id`),
/// else from the trust anchors the verifier names in its certificate requests
/// (`root_hint_subjects`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrustFingerprint([u8; 8]);

impl TrustFingerprint {
    /// From the verifier's root hints.
    pub(crate) fn of(verifier: &dyn rustls::server::danger::ClientCertVerifier) -> Self {
        Self::of_parts(
            b"root hints",
            verifier.root_hint_subjects().iter().map(AsRef::as_ref),
        )
    }

    /// From a trust id of the application's.
    pub(crate) fn of_id(trust_id: &[u8]) -> Self {
        Self::of_parts(b"trust id", [trust_id])
    }

    fn of_parts<'a>(kind: &[u8], parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hash = Sha256::new();
        hash.update(kind);
        for part in parts {
            hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut fingerprint = [0; 8];
        fingerprint.copy_from_slice(&digest[..8]);
        Self(fingerprint)
    }
}

/// The path and, for a path with a certificate, the trust anchors of the
/// session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    None,
    Flag(TrustFingerprint),
    Normal(TrustFingerprint),
}

impl Record {
    pub(crate) fn path(self) -> AuthPath {
        match self {
            Self::None => AuthPath::None,
            Self::Flag(_) => AuthPath::Flag,
            Self::Normal(_) => AuthPath::Normal,
        }
    }
}

pub(crate) fn encode(record: Record) -> Vec<u8> {
    let (path, trust) = match record {
        Record::None => (0, None),
        Record::Flag(trust) => (1, Some(trust)),
        Record::Normal(trust) => (2, Some(trust)),
    };
    let mut data = vec![VERSION, path];
    if let Some(TrustFingerprint(fingerprint)) = trust {
        data.extend_from_slice(&fingerprint);
    }
    data
}

/// `None` for data this crate did not write; such a ticket is refused.
pub(crate) fn decode(data: &[u8]) -> Option<Record> {
    match data {
        [VERSION, 0] => Some(Record::None),
        [VERSION, path @ (1 | 2), fingerprint @ ..] => {
            let trust = TrustFingerprint(<[u8; 8]>::try_from(fingerprint).ok()?);
            Some(if *path == 1 {
                Record::Flag(trust)
            } else {
                Record::Normal(trust)
            })
        }
        _ => None,
    }
}

/// Whether `leaf`, the client certificate a session would restore, is still
/// within its `notAfter` at `now`, by webpki's rule (valid through the second
/// of `notAfter`). One x509-parser cannot read is taken as expired: the full
/// handshake that follows verifies it anew. Only the leaf: the chain a client
/// sent may carry certificates that verification did not use, and the CA
/// set's own changes retire tickets by their trust fingerprint.
pub(crate) fn still_valid(leaf: &CertificateDer<'_>, now: UnixTime) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf) else {
        return false;
    };
    let not_after = parsed.validity().not_after.timestamp();
    i64::try_from(now.as_secs()).is_ok_and(|now| now <= not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_valid_through_the_second_of_its_not_after() {
        let mut params =
            rcgen::CertificateParams::new(vec!["bot.test".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.self_signed(&key).expect("certificate");
        // 2030-01-01T00:00:00Z
        let not_after = 1_893_456_000;
        let at = |seconds| UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
        assert!(still_valid(leaf.der(), at(not_after - 1)));
        assert!(still_valid(leaf.der(), at(not_after)));
        assert!(!still_valid(leaf.der(), at(not_after + 1)));
        assert!(!still_valid(&CertificateDer::from(vec![0x30, 0]), at(0)));
    }

    #[test]
    fn round_trip() {
        let flag = Record::Flag(TrustFingerprint(*b"12345678"));
        let normal = Record::Normal(TrustFingerprint(*b"87654321"));
        for record in [Record::None, flag, normal] {
            assert_eq!(decode(&encode(record)), Some(record));
        }
    }

    #[test]
    fn rca11_foreign_or_damaged_data_is_not_trusted() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[1, 1]), None);
        assert_eq!(decode(&[3, 3]), None);
        assert_eq!(decode(&[3, 0, 0]), None);
        // records of the earlier format (the normal path without anchors)
        assert_eq!(decode(&[2, 0]), None);
        assert_eq!(decode(&[2, 2]), None);
        assert_eq!(decode(&[2, 1, 1, 2, 3, 4, 5, 6, 7, 8]), None);
        // a record with a certificate but without (or with a cut) trust
        // fingerprint
        for path in [1, 2] {
            assert_eq!(decode(&[3, path]), None);
            assert_eq!(decode(&[3, path, 1, 2, 3, 4, 5, 6, 7]), None);
            assert_eq!(decode(&[3, path, 1, 2, 3, 4, 5, 6, 7, 8, 9]), None);
        }
    }
}
