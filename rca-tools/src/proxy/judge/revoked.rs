//! Bots whose certificate stopped verifying while connected. A reload's
//! CRLs, deny list or bot CA set apply to new handshakes, and (through the
//! trust id) to sessions resumed from tickets; a connection that is already
//! open would keep working, HTTP/1.1 keep-alive or HTTP/2 for as long as
//! the bot keeps it busy, and so would a session resumed after the bot's
//! certificate expired or after the CRLs' `nextUpdate` passed (time moves
//! on without a reload, and a resumption verifies nothing). So each
//! flag-path client's certificate chain is verified again with the
//! verifier in force: at its first request after a reload, and at least
//! once every [`RECHECK_AFTER`]; a refused one gets 403 and its connection
//! is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::UnixTime;
use rustls_req_client_auth::{describe_tls_error, FlagVerifier, PeerIdentity};

/// How long a bot's verdict stands before its chain is verified again:
/// how late, at most, an expired certificate or an out-of-date CRL is
/// noticed on a connection or a resumed session (one verification per bot
/// per interval, not per request).
pub const RECHECK_AFTER: Duration = Duration::from_secs(60);

/// Bots whose verdicts are kept; past this the stale ones are dropped, and
/// if none is, all are (each is made again at the bot's next request).
const CAPACITY: usize = 4096;

/// Whether flag-path clients verified at their handshake (or before the
/// latest reload) still are.
#[derive(Debug)]
pub struct StillTrusted {
    verifier: FlagVerifier,
    /// Incremented by each reload.
    generation: Arc<AtomicU64>,
    /// Verdicts by leaf thumbprint, and until when each stands, for the
    /// generation they were made in.
    verdicts: RwLock<(u64, Verdicts)>,
}

/// Whether each bot (by leaf thumbprint) verified, and until when that
/// stands.
type Verdicts = HashMap<String, (bool, Instant)>;

impl StillTrusted {
    /// Checks against `verifier` (the flag path's live handle), the
    /// verdicts made anew when `generation` moves on.
    pub fn new(verifier: FlagVerifier, generation: Arc<AtomicU64>) -> Self {
        Self {
            verifier,
            generation,
            verdicts: RwLock::new((0, HashMap::new())),
        }
    }

    /// Whether `peer` may be served: a client that is not on the flag path
    /// always may (nothing it has was revoked); a bot whose chain the
    /// current verifier refuses, now, may not.
    pub fn allows(&self, peer: &PeerIdentity) -> bool {
        if !peer.is_flag_path() {
            return true;
        }
        let generation = self.generation.load(Ordering::Acquire);
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
                if let Some(&(verdict, until)) = verdicts.1.get(thumbprint) {
                    // A refusal stands: nothing makes a chain verify again
                    // short of a reload, which starts a new generation.
                    if !verdict || Instant::now() < until {
                        return verdict;
                    }
                }
            }
        }
        let verified =
            self.verifier
                .current()
                .verify_client_cert(leaf, intermediates, UnixTime::now());
        if let Err(error) = &verified {
            log::info!(
                "a connected bot is refused from now on: {thumbprint} (x5t#S256) no longer verifies: {}",
                describe_tls_error(error)
            );
        }
        let verdict = verified.is_ok();
        // Verified again after the interval, or once the leaf expires if
        // that is sooner.
        let until =
            Instant::now() + not_after(leaf).map_or(RECHECK_AFTER, |left| left.min(RECHECK_AFTER));
        let mut verdicts = self
            .verdicts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if verdicts.0 != generation {
            *verdicts = (generation, HashMap::new());
        }
        if verdicts.1.len() >= CAPACITY {
            let now = Instant::now();
            verdicts
                .1
                .retain(|_, (verdict, until)| !*verdict || now < *until);
            if verdicts.1.len() >= CAPACITY {
                verdicts.1.clear();
            }
        }
        verdicts.1.insert(thumbprint.to_owned(), (verdict, until));
        verdict
    }
}

/// How long until `leaf`'s `notAfter` (zero once past); `None` if it
/// cannot be read.
fn not_after(leaf: &rustls::pki_types::CertificateDer<'_>) -> Option<Duration> {
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let left = certificate.validity().not_after.timestamp()
        - x509_parser::time::ASN1Time::now().timestamp();
    // One second past `notAfter`: webpki still takes the certificate at it.
    Some(Duration::from_secs(u64::try_from(left + 1).unwrap_or(0)))
}
