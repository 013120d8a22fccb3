//! The proxy's session cache (session IDs in TLS 1.2, stateful tickets in
//! TLS 1.3 when there is no ticket-key file), emptied when the partner CA
//! file changes.
//!
//! RCA-11 asks that a resumed session keep the authentication path it was
//! verified on, under the trust it was verified with. TLS 1.3 sessions carry
//! a record of that trust (see `ServerFlags::normal_trust_id`) and are
//! retired one by one; a TLS 1.2 session carries none, and rustls resumes it
//! without asking the verifier. So a change of the partner CA set retires
//! every cached session here, and [`crate::proxy::tls::tickets::FleetTicketer`] does the
//! same for tickets: one full handshake per client after a CA change, never a
//! partner admitted by a CA that is gone.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};

/// Sessions rustls's default cache would hold.
const CAPACITY: usize = 256;

/// The partner CA set new sessions are bound to.
///
/// A handshake whose client the old set verified can finish after a change,
/// up to the handshake timeout later (TLS 1.2 stores the session, or seals
/// the ticket, at the client's Finished, after the certificate was checked).
/// So for that long after a change no session is made at all: none verified
/// by the old set is bound to the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrustEpoch {
    /// The SHA-256 of the partner CA file (of nothing without partners).
    pub(crate) digest: [u8; 32],
    /// Until when no session may be made, after a change.
    quiet_until: Option<Instant>,
}

impl TrustEpoch {
    pub(crate) fn new(trust: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, trust);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self {
            digest: out,
            quiet_until: None,
        }
    }

    /// Moves to `trust`; if that is a change, no session may be made for
    /// `handshake_timeout`. Whether it was a change.
    pub(crate) fn bind(&mut self, trust: &[u8], handshake_timeout: Duration) -> bool {
        let next = Self::new(trust);
        if next.digest == self.digest {
            return false;
        }
        let now = Instant::now();
        // A timeout past what `Instant` holds: quiet for a year instead.
        let until = now
            .checked_add(handshake_timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        *self = Self {
            quiet_until: Some(until),
            ..next
        };
        true
    }

    /// Whether a session may be made now.
    pub(crate) fn may_issue(&self) -> bool {
        self.quiet_until.is_none_or(|until| Instant::now() >= until)
    }
}

/// A session cache bound to one partner CA set.
pub struct TrustBoundSessions {
    current: RwLock<(TrustEpoch, Arc<ServerSessionMemoryCache>)>,
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
            current: RwLock::new((
                TrustEpoch::new(trust),
                ServerSessionMemoryCache::new(CAPACITY),
            )),
        }
    }

    /// From now on sessions are verified under `trust`: if that is not the
    /// trust of the cached sessions, they are all dropped, and none is cached
    /// for `handshake_timeout` (see `TrustEpoch`).
    pub fn bind_to_trust(&self, trust: &[u8], handshake_timeout: Duration) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.0.bind(trust, handshake_timeout) {
            current.1 = ServerSessionMemoryCache::new(CAPACITY);
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
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.0.may_issue() && current.1.put(key, value)
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
        sessions.bind_to_trust(b"partner CA, version 1", Duration::ZERO);
        assert_eq!(sessions.get(b"id").as_deref(), Some(&b"session"[..]));
        sessions.bind_to_trust(b"partner CA, version 2", Duration::ZERO);
        assert_eq!(sessions.get(b"id"), None);
        assert!(sessions.put(b"id".to_vec(), b"session".to_vec()));
    }

    #[test]
    fn no_session_is_cached_for_a_handshake_timeout_after_a_change() {
        let sessions = TrustBoundSessions::new(b"partner CA, version 1");
        sessions.bind_to_trust(b"partner CA, version 2", Duration::from_secs(60));
        assert!(!sessions.put(b"id".to_vec(), b"session".to_vec()));
        assert_eq!(sessions.get(b"id"), None);
        // The same trust again is no change: the quiet time is not renewed.
        let mut epoch = TrustEpoch::new(b"a");
        assert!(!epoch.bind(b"a", Duration::from_secs(60)));
        assert!(epoch.may_issue());
        // Any configured timeout, however long, is no panic.
        assert!(epoch.bind(b"b", Duration::MAX));
        assert!(!epoch.may_issue());
    }
}
