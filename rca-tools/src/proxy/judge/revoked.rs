//! Bots whose certificate stopped verifying while connected. A reload's
//! CRLs, deny list or bot CA set apply to new handshakes, and (through the
//! trust id) to sessions resumed from tickets; a connection that is already
//! open would keep working, HTTP/1.1 keep-alive or HTTP/2 for as long as
//! the bot keeps it busy (also after its certificate expired: a session
//! whose leaf has expired is no longer resumed, but one resumed before
//! stays open), and so would a session resumed after the CRLs' `nextUpdate`
//! passed (time moves on without a reload, and a resumption verifies
//! nothing). So each flag-path client's certificate chain (and each
//! partner's, on the normal path) is verified again with its path's
//! verifier in force: at its first request after a reload, and at least
//! once every [`RECHECK_AFTER`]; a refused one gets 403 and its connection
//! is closed. A WebSocket tunnel has no requests: it is checked at each
//! reload and whenever its verdict's time is up
//! ([`StillTrusted::until_refused`]), and closed once refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls_req_client_auth::{describe_tls_error, AuthPath, FlagVerifier, PeerIdentity};

/// How long a bot's verdict stands before its chain is verified again:
/// how late, at most, an expired certificate or an out-of-date CRL is
/// noticed on a connection or a resumed session (one verification per bot
/// per interval, not per request).
pub const RECHECK_AFTER: Duration = Duration::from_secs(60);

/// Bots whose verdicts are kept; past this the stale ones are dropped, and
/// if that frees no room, a new bot's verdict is not kept (it is made
/// again at its next request).
const CAPACITY: usize = 4096;

/// Chains kept per bot: one, but for a bot seen with intermediates of
/// another issuance (a CA re-issued) too.
const CHAINS_PER_BOT: usize = 4;

/// The reloads so far, counted, and told to whoever waits for the next
/// (a tunnel, which has no request to be checked at).
#[derive(Debug, Default)]
pub struct Generation {
    count: AtomicU64,
    reloaded: tokio::sync::Notify,
}

impl Generation {
    /// Counts a reload (after its swap) and wakes the tunnels waiting.
    pub fn advance(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.reloaded.notify_waiters();
    }

    fn current(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// Whether clients verified at their handshake (or before the latest
/// reload), bots and partners, still are.
#[derive(Debug)]
pub struct StillTrusted {
    verifier: FlagVerifier,
    /// The normal path's verifier (partners), if there is one.
    partners: Option<Arc<dyn ClientCertVerifier>>,
    generation: Arc<Generation>,
    /// The verdicts of the generation they were made in.
    verdicts: RwLock<(u64, Verdicts)>,
}

/// Verdicts by leaf thumbprint, one per chain the leaf came with.
type Verdicts = HashMap<String, Vec<Verdict>>;

/// Whether one chain verified, and until when that stands.
#[derive(Debug)]
struct Verdict {
    path: AuthPath,
    intermediates: Vec<CertificateDer<'static>>,
    verified: bool,
    until: Instant,
}

impl StillTrusted {
    /// Checks against `verifier` (the flag path's live handle), the
    /// verdicts made anew when `generation` moves on.
    pub fn new(verifier: FlagVerifier, generation: Arc<Generation>) -> Self {
        Self {
            verifier,
            partners: None,
            generation,
            verdicts: RwLock::new((0, HashMap::new())),
        }
    }

    /// Checks partners (the normal path) too, against `partners`, the
    /// verifier a reload replaces.
    #[must_use]
    pub fn with_partners(mut self, partners: Arc<dyn ClientCertVerifier>) -> Self {
        self.partners = Some(partners);
        self
    }

    /// Whether `peer` may be served: an anonymous client always may; a bot
    /// (or a partner, with partners configured) whose chain its path's
    /// current verifier refuses, now, may not. A verdict stands for at most
    /// [`RECHECK_AFTER`], and not past the leaf's `notAfter`; a refusal
    /// too (a clock set right, or a CA's CRL renewed without a reload).
    pub fn allows(&self, peer: &PeerIdentity) -> bool {
        self.verdict(peer).0
    }

    /// As [`StillTrusted::allows`], and until when that answer stands: at
    /// most [`RECHECK_AFTER`], less when a verdict made earlier (by another
    /// connection of the same bot) was used; `None` for a client it never
    /// checks (no clock read on that path, which every request takes).
    fn verdict(&self, peer: &PeerIdentity) -> (bool, Option<Instant>) {
        let path = peer.path();
        let partners = match (path, &self.partners) {
            (AuthPath::Flag, _) => None,
            (AuthPath::Normal, Some(partners)) => Some(partners),
            _ => return (true, None),
        };
        let generation = self.generation.current();
        let Some((leaf, intermediates)) = peer.chain().split_first() else {
            return (true, None);
        };
        let Some(leaf_fields) = peer.leaf() else {
            return (true, None);
        };
        let thumbprint = leaf_fields.thumbprint_sha256();
        {
            let verdicts = self.verdicts.read().unwrap_or_else(PoisonError::into_inner);
            if verdicts.0 == generation {
                let now = Instant::now();
                let standing = verdicts.1.get(thumbprint).and_then(|chains| {
                    chains.iter().find(|verdict| {
                        verdict.path == path
                            && verdict.intermediates == intermediates
                            && now < verdict.until
                    })
                });
                if let Some(verdict) = standing {
                    return (verdict.verified, Some(verdict.until));
                }
            }
        }
        let now = UnixTime::now();
        let verified = match partners {
            None => self
                .verifier
                .current()
                .verify_client_cert(leaf, intermediates, now)
                .map(|_| ()),
            Some(partners) => partners
                .verify_client_cert(leaf, intermediates, now)
                .map(|_| ()),
        };
        if let Err(error) = &verified {
            let who = if partners.is_some() { "partner" } else { "bot" };
            // Named as the handshake's refusal lines name a certificate, so
            // one search finds both.
            let named =
                rustls_req_client_auth::RefusedCertificate::named(leaf, peer.server_name(), path);
            log::info!(
                "a connected {who} is refused: {named}: it no longer verifies: {}",
                describe_tls_error(error)
            );
        }
        let verified = verified.is_ok();
        let until = Instant::now() + stands_for(leaf_fields.not_after());
        let mut verdicts = self
            .verdicts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match verdicts.0.cmp(&generation) {
            std::cmp::Ordering::Less => *verdicts = (generation, HashMap::new()),
            // A reload came in between: this verdict is of the old set.
            std::cmp::Ordering::Greater => return (verified, Some(Instant::now())),
            std::cmp::Ordering::Equal => {}
        }
        let map = &mut verdicts.1;
        if !map.contains_key(thumbprint) && map.len() >= CAPACITY {
            let now = Instant::now();
            map.retain(|_, chains| chains.iter().any(|verdict| now < verdict.until));
            if map.len() >= CAPACITY {
                return (verified, Some(until));
            }
        }
        let chains = map.entry(thumbprint.to_owned()).or_default();
        chains.retain(|verdict| verdict.path != path || verdict.intermediates != intermediates);
        if chains.len() >= CHAINS_PER_BOT {
            chains.remove(0);
        }
        chains.push(Verdict {
            path,
            intermediates: intermediates.to_vec(),
            verified,
            until,
        });
        (verified, Some(until))
    }

    /// Whether [`StillTrusted::allows`] could ever refuse `peer`: a bot, or
    /// a partner with partners checked; never an anonymous client.
    pub fn watches(&self, peer: &PeerIdentity) -> bool {
        let checked_path = match peer.path() {
            AuthPath::Flag => true,
            AuthPath::Normal => self.partners.is_some(),
            AuthPath::None => false,
        };
        checked_path && peer.leaf().is_some()
    }

    /// Resolves once `peer` is refused (for a tunnel, which has no request
    /// to be refused at): checked again at each reload and whenever its
    /// verdict's time is up (at most [`RECHECK_AFTER`], and just past the
    /// leaf's `notAfter`). Never, for a peer it does not
    /// [`StillTrusted::watches`].
    pub async fn until_refused(&self, peer: &PeerIdentity) {
        if !self.watches(peer) {
            return std::future::pending().await;
        }
        loop {
            // Made before the check: a reload during it still wakes this.
            let reloaded = self.generation.reloaded.notified();
            let (allowed, until) = self.verdict(peer);
            if !allowed {
                return;
            }
            // Not a busy loop where a verdict stands no time at all.
            let now = Instant::now();
            let until = until
                .unwrap_or(now + RECHECK_AFTER)
                .max(now + Duration::from_secs(1));
            tokio::select! {
                () = reloaded => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

/// How long a verdict made now stands: [`RECHECK_AFTER`], or less if the
/// leaf expires sooner (until a second past its `notAfter`, when webpki
/// stops taking it).
fn stands_for(not_after: Option<SystemTime>) -> Duration {
    let Some(not_after) = not_after else {
        return RECHECK_AFTER;
    };
    let left = not_after
        .checked_add(Duration::from_secs(1))
        .and_then(|end| end.duration_since(SystemTime::now()).ok())
        .unwrap_or(Duration::ZERO);
    left.min(RECHECK_AFTER)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{stands_for, RECHECK_AFTER};

    /// A verdict stands for the interval, or until just past the leaf's
    /// expiry when that is sooner; not at all once it has passed.
    #[test]
    fn verdicts_stand_until_the_interval_or_the_expiry() {
        let now = SystemTime::now();
        assert_eq!(stands_for(None), RECHECK_AFTER);
        assert_eq!(
            stands_for(Some(now + Duration::from_secs(3600))),
            RECHECK_AFTER
        );
        let soon = stands_for(Some(now + Duration::from_secs(10)));
        assert!(
            soon > Duration::from_secs(10) && soon <= Duration::from_secs(11),
            "{soon:?}"
        );
        assert_eq!(
            stands_for(Some(now - Duration::from_secs(10))),
            Duration::ZERO
        );
    }
}
