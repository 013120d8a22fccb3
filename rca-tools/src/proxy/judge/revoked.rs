//! Bots revoked while connected. A reload's CRLs, deny list or bot CA set
//! apply to new handshakes, and (through the trust id) to sessions
//! resumed from tickets; a connection that is already open would keep
//! working, HTTP/1.1 keep-alive or HTTP/2 for as long as the bot keeps it
//! busy. So after a reload each flag-path client's certificate chain is
//! verified again, once, with the verifier now in force, at its next
//! request; a refused one gets 403 and its connection is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::UnixTime;
use rustls_req_client_auth::{FlagVerifier, PeerIdentity};

/// Whether flag-path clients verified before the latest reload still are.
#[derive(Debug)]
pub struct StillTrusted {
    verifier: FlagVerifier,
    /// Incremented by each reload; 0: none yet, every handshake's own
    /// verification stands.
    generation: Arc<AtomicU64>,
    /// Verdicts by leaf thumbprint, for the generation they were made in.
    verdicts: RwLock<(u64, HashMap<String, bool>)>,
}

impl StillTrusted {
    /// Checks against `verifier` (the flag path's live handle) from the
    /// first time `generation` moves on.
    pub fn new(verifier: FlagVerifier, generation: Arc<AtomicU64>) -> Self {
        Self {
            verifier,
            generation,
            verdicts: RwLock::new((0, HashMap::new())),
        }
    }

    /// Whether `peer` may be served: a client that is not on the flag path
    /// always may (nothing it has was revoked); a bot whose chain the
    /// current verifier refuses may not.
    pub fn allows(&self, peer: &PeerIdentity) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == 0 || !peer.is_flag_path() {
            return true;
        }
        let Some((leaf, intermediates)) = peer.chain().split_first() else {
            return true;
        };
        let Some(thumbprint) = peer
            .leaf()
            .map(rustls_req_client_auth::LeafCertificate::thumbprint_sha256)
        else {
            return true;
        };
        {
            let verdicts = self.verdicts.read().unwrap_or_else(PoisonError::into_inner);
            if verdicts.0 == generation {
                if let Some(&verdict) = verdicts.1.get(thumbprint) {
                    return verdict;
                }
            }
        }
        let verdict = self
            .verifier
            .current()
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok();
        if !verdict {
            log::info!(
                "a bot connected before the reload is refused from now on: {thumbprint} (x5t#S256) no longer verifies"
            );
        }
        let mut verdicts = self
            .verdicts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if verdicts.0 != generation {
            *verdicts = (generation, HashMap::new());
        }
        verdicts.1.insert(thumbprint.to_owned(), verdict);
        verdict
    }
}
