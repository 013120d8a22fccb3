//! What a session ticket remembers for this crate: which trust path
//! authenticated the client (RCA-11), so a resumed connection reports the
//! same, and for the flag path which trust anchors verified it, so a ticket
//! issued before the bot CA set was replaced is not used.

use sha2::{Digest, Sha256};

use crate::auth_path::AuthPath;

/// Format version of the ticket data; data of another version is not used.
const VERSION: u8 = 2;

/// Identifies the trust set of a flag-path verifier: the same on every server
/// of a fleet with the same bot CA set, different after a swap to another.
///
/// Taken from a trust id the application gives (see
/// `FlagVerifier::replace_with_trust_id`), else from the trust anchors the
/// verifier names in its certificate requests (`root_hint_subjects`).
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

/// The path and, for the flag path, the trust anchors of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    None,
    Flag(TrustFingerprint),
    Normal,
}

impl Record {
    pub(crate) fn path(self) -> AuthPath {
        match self {
            Self::None => AuthPath::None,
            Self::Flag(_) => AuthPath::Flag,
            Self::Normal => AuthPath::Normal,
        }
    }
}

pub(crate) fn encode(record: Record) -> Vec<u8> {
    match record {
        Record::None => vec![VERSION, 0],
        Record::Flag(TrustFingerprint(fingerprint)) => {
            let mut data = vec![VERSION, 1];
            data.extend_from_slice(&fingerprint);
            data
        }
        Record::Normal => vec![VERSION, 2],
    }
}

/// `None` for data this crate did not write; such a ticket is refused.
pub(crate) fn decode(data: &[u8]) -> Option<Record> {
    match data {
        [VERSION, 0] => Some(Record::None),
        [VERSION, 1, fingerprint @ ..] => Some(Record::Flag(TrustFingerprint(
            <[u8; 8]>::try_from(fingerprint).ok()?,
        ))),
        [VERSION, 2] => Some(Record::Normal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let flag = Record::Flag(TrustFingerprint(*b"12345678"));
        for record in [Record::None, flag, Record::Normal] {
            assert_eq!(decode(&encode(record)), Some(record));
        }
    }

    #[test]
    fn rca11_foreign_or_damaged_data_is_not_trusted() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[1, 1]), None);
        assert_eq!(decode(&[2, 3]), None);
        assert_eq!(decode(&[2, 0, 0]), None);
        // a flag-path record without (or with a cut) trust fingerprint
        assert_eq!(decode(&[2, 1]), None);
        assert_eq!(decode(&[2, 1, 1, 2, 3, 4, 5, 6, 7]), None);
        assert_eq!(decode(&[2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]), None);
    }
}
