//! The proxy's session cache (session IDs in TLS 1.2, stateful tickets in
//! TLS 1.3 when there is no ticket-key file), emptied when the partner CA
//! file changes.
//!
//! RCA-11 asks that a resumed session keep the authentication path it was
//! verified on, under the trust it was verified with. TLS 1.3 sessions carry
//! a record of that trust (see `ServerFlags::normal_trust_id`) and are
//! retired one by one; a TLS 1.2 session carries none, and rustls resumes it
//! without asking the verifier. So a change of the partner CA set retires
//! every cached session here, and [`crate::tickets::FleetTicketer`] does the
//! same for tickets: one full handshake per client after a CA change, never a
//! partner admitted by a CA that is gone.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};

/// Sessions rustls's default cache would hold.
const CAPACITY: usize = 256;

/// The SHA-256 of the trust the current sessions were verified under.
pub(crate) fn trust_digest(trust: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, trust);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A session cache bound to one partner CA set.
pub struct TrustBoundSessions {
    current: RwLock<([u8; 32], Arc<ServerSessionMemoryCache>)>,
}

impl fmt::Debug for TrustBoundSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustBoundSessions").finish_non_exhaustive()
    }
}

impl TrustBoundSessions {
    /// An empty cache for sessions verified under `trust` (the partner CA
    /// file's bytes; empty without partners).
    pub fn new(trust: &[u8]) -> Self {
        Self {
            current: RwLock::new((trust_digest(trust), ServerSessionMemoryCache::new(CAPACITY))),
        }
    }

    /// From now on sessions are verified under `trust`: if it is not the
    /// trust of the cached sessions, they are all dropped.
    pub fn bind_to_trust(&self, trust: &[u8]) {
        let digest = trust_digest(trust);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.0 != digest {
            *current = (digest, ServerSessionMemoryCache::new(CAPACITY));
        }
    }

    fn cache(&self) -> Arc<ServerSessionMemoryCache> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1,
        )
    }
}

impl StoresServerSessions for TrustBoundSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.cache().put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache().get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache().take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_trust_empties_the_cache() {
        let sessions = TrustBoundSessions::new(b"partner CA, version 1");
        assert!(sessions.put(b"id".to_vec(), b"session".to_vec()));
        sessions.bind_to_trust(b"partner CA, version 1");
        assert_eq!(sessions.get(b"id").as_deref(), Some(&b"session"[..]));
        sessions.bind_to_trust(b"partner CA, version 2");
        assert_eq!(sessions.get(b"id"), None);
    }
}
