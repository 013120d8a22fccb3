//! The front side's TLS: the server identity and the bot CA set from the
//! configured files, both replaceable while the proxy runs (SIGHUP) without
//! dropping established connections.

mod chain_change;
mod crl_checks;
pub mod ecdsa_twins;
pub mod file_changes;
pub mod in_force;
mod revocation;
pub mod sessions;
pub mod tickets;
mod validity;
mod wrapped;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_req_client_auth::{
    pem, CodePoints, FlagVerifier, FlagsEvent, NormalPathTrust, ServerFlags,
};

use crate::proxy::config::Tls;
use crate::proxy::judge::revoked::{Generation, StillTrusted};
use crate::proxy::metrics::Expiry;
use crate::proxy::tls::in_force::{InForce, Lifted};
use crate::proxy::tls::revocation::{DeniedLeaves, Revocation};
use crate::proxy::tls::sessions::TrustBoundSessions;
use crate::proxy::tls::tickets::{FleetTicketer, TicketKeys};
use crate::proxy::tls::wrapped::{Wrapped, Wrapper};

/// The TLS side of a running proxy: its config and the handles that reload it.
#[derive(Clone, Debug)]
pub struct Front {
    /// The config every handshake uses.
    pub config: Arc<ServerConfig>,
    identity: Arc<ReloadableIdentity>,
    bot_ca: FlagVerifier,
    partners: Option<Arc<Wrapped<ReloadableVerifier>>>,
    partner_trust: NormalPathTrust,
    sessions: Arc<TrustBoundSessions>,
    tickets: Option<Arc<FleetTicketer>>,
    /// How long a handshake begun before a reload may still run after it.
    handshake_timeout: Duration,
    /// When what the files hold expires, as last loaded.
    expiries: Arc<RwLock<Vec<Expiry>>>,
    /// What the CRLs and deny list revoke, as last loaded.
    in_force: Arc<RwLock<InForce>>,
    /// Up to when (seconds since the epoch) lapses were said, for
    /// [`Front::lapses`].
    warned_until: Arc<AtomicI64>,
    /// Advanced by each reload, for [`StillTrusted`].
    generation: Arc<Generation>,
}

/// What the files hold, checked.
struct Loaded {
    identity: Arc<CertifiedKey>,
    bots: Arc<dyn ClientCertVerifier>,
    /// The partner verifier and the partner CA file's bytes, which name the
    /// set: any change retires the partners' sessions (RCA-11; every
    /// session, see [`crate::proxy::tls::sessions`]).
    partners: Option<(Arc<dyn ClientCertVerifier>, Vec<u8>)>,
    trust_id: Vec<u8>,
    ticket_keys: Option<TicketKeys>,
    expiries: Vec<Expiry>,
    in_force: InForce,
}

fn load(tls: &Tls, provider: &Arc<rustls::crypto::CryptoProvider>) -> anyhow::Result<Loaded> {
    let chain =
        pem::load_certificates(&tls.cert).map_err(|error| anyhow::anyhow!("tls.cert: {error}"))?;
    let key =
        pem::load_private_key(&tls.key).map_err(|error| anyhow::anyhow!("tls.key: {error}"))?;
    let mut expiries = Vec::new();
    // The whole chain: an intermediate that expires first (a CA's chain
    // replaced upstream, the file not) breaks every handshake as surely as
    // the leaf would.
    validity::of_certificates("tls.cert", chain.iter().map(AsRef::as_ref), &mut expiries);
    let identity = pem::certified_key(&tls.cert, chain, key, provider).map_err(|error| {
        anyhow::anyhow!("tls.cert and tls.key ({}): {error}", tls.key.display())
    })?;
    let (bot_file, roots) = load_trust("tls.bot_ca", &tls.bot_ca)?;
    validity::of_pem_certificates("tls.bot_ca", &bot_file, &mut expiries);
    let partners = match &tls.partner_ca {
        Some(path) => {
            let (partner_file, partner_roots) = load_trust("tls.partner_ca", path)?;
            validity::of_pem_certificates("tls.partner_ca", &partner_file, &mut expiries);
            // RCA-10: the flag path and the normal path trust no common CA.
            let shared = partner_roots.roots.iter().any(|partner| {
                roots
                    .roots
                    .iter()
                    .any(|bot| bot.subject_public_key_info == partner.subject_public_key_info)
            });
            if shared {
                anyhow::bail!(
                    "tls.partner_ca {} shares a CA with tls.bot_ca {}; the two trust paths must be disjoint (RCA-10)",
                    path.display(),
                    tls.bot_ca.display()
                );
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(partner_roots),
                Arc::clone(provider),
            )
            .allow_unauthenticated()
            .build()
            .map_err(|error| anyhow::anyhow!("tls.partner_ca {}: {error}", path.display()))?;
            Some((verifier, partner_file))
        }
        None => None,
    };
    if !tls.bot_crl.is_empty() {
        crl_checks::check_bot_ca_names(&bot_file, &tls.bot_ca)?;
    }
    let revocation = Revocation::load(&tls.bot_crl, tls.bot_deny_list.as_deref())?;
    crl_checks::check_against_bot_cas(
        &revocation.crls,
        &revocation.given,
        &bot_file,
        &tls.bot_ca,
        &provider.signature_verification_algorithms,
    )?;
    crl_checks::warn_of_narrow_scopes(&revocation.crls);
    let in_force = InForce::of(&revocation.crls, &revocation.denied);
    validity::of_crls(&revocation.crls, &mut expiries);
    let mut roots = roots;
    crl_checks::drop_revoked_anchors(&mut roots, &bot_file, &revocation.crls, &tls.bot_ca);
    let mut bots =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let fields = if revocation.crls.is_empty() {
        "tls.bot_ca"
    } else {
        "tls.bot_ca and tls.bot_crl"
    };
    if !revocation.crls.is_empty() {
        // Unknown status and expired lists refuse, as nginx's ssl_crl does.
        bots = bots
            .with_crls(revocation.crls)
            .enforce_revocation_expiration();
    }
    let bots = bots
        .build()
        .map_err(|error| anyhow::anyhow!("{fields} ({}): {error}", tls.bot_ca.display()))?;
    let bots: Arc<dyn ClientCertVerifier> = if revocation.denied.is_empty() {
        bots
    } else {
        Arc::new(Wrapped(DeniedLeaves {
            inner: bots,
            denied: revocation.denied,
        }))
    };
    // The CA file's bytes and the revocation files' name the set: any change
    // to either retires old tickets, so a revoked bot cannot resume.
    let mut trust_id = bot_file;
    if !revocation.identity.is_empty() {
        trust_id.extend_from_slice(b"\nrevocation\n");
        trust_id.extend_from_slice(&revocation.identity);
    }
    let ticket_keys = match &tls.ticket_keys {
        Some(path) => Some(
            TicketKeys::load(path).map_err(|error| anyhow::anyhow!("tls.ticket_keys: {error}"))?,
        ),
        None => None,
    };
    Ok(Loaded {
        partners,
        ticket_keys,
        identity: Arc::new(identity),
        bots,
        trust_id,
        expiries,
        in_force,
    })
}

/// A CA file's bytes (which name its set, for tickets) and its anchors, read
/// from the same contents: a file replaced while it is read is refused, so
/// the name and the anchors cannot come from two versions.
fn load_trust(
    field: &str,
    path: &std::path::Path,
) -> anyhow::Result<(Vec<u8>, rustls::RootCertStore)> {
    let read = || {
        std::fs::read(path)
            .map_err(|error| anyhow::anyhow!("{field}: cannot read {}: {error}", path.display()))
    };
    let before = read()?;
    let roots = pem::load_roots(path).map_err(|error| anyhow::anyhow!("{field}: {error}"))?;
    warn_of_leaves(field, path, &before);
    if read()? != before {
        anyhow::bail!(
            "{field}: {} changed while it was read; reload again",
            path.display()
        );
    }
    Ok((before, roots))
}

/// Warns of each certificate in the trust file at `path` (its PEM `bytes`,
/// as read for the roots) that is not a CA (no basicConstraints CA:TRUE):
/// a bot's own certificate put there by mistake lets no client in, since
/// clients' certificates chain to the CA that issued them, so the proxy
/// would refuse every bot without a word.
fn warn_of_leaves(field: &str, path: &std::path::Path, bytes: &[u8]) {
    use rustls::pki_types::pem::PemObject as _;
    for der in rustls::pki_types::CertificateDer::pem_slice_iter(bytes).flatten() {
        let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&der) else {
            continue;
        };
        if !certificate.is_ca() {
            log::warn!(
                "{field}: {} holds {}, which is not a CA certificate (no basicConstraints \
                 CA:TRUE): no client certificate chains to it; give the CA that issued the \
                 clients' certificates",
                path.display(),
                certificate.subject()
            );
        }
    }
}

impl Front {
    /// Loads the files and builds the config: no client authentication for
    /// clients without the flag, the flag path for bots, ALPN h2 and http/1.1.
    ///
    /// # Errors
    ///
    /// A file is unreadable or its contents unusable; the message names it.
    pub fn new(
        tls: &Tls,
        handshake_timeout: Duration,
        on_flags_event: Option<Arc<dyn Fn(FlagsEvent) + Send + Sync>>,
    ) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded = load(tls, &provider)?;
        let identity = Arc::new(ReloadableIdentity(RwLock::new(loaded.identity)));
        let (partners, partner_file) = match loaded.partners {
            Some((verifier, file)) => (
                Some(Arc::new(Wrapped(ReloadableVerifier(RwLock::new(verifier))))),
                Some(file),
            ),
            None => (None, None),
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match &partners {
            Some(partners) => builder.with_client_cert_verifier(partners.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(identity.clone());
        config.alpn_protocols = rustls_req_client_auth::http_alpn();
        let code_points = CodePoints {
            extension_type: tls.code_point,
            ..CodePoints::DEFAULT
        };
        let mut flags = ServerFlags::request_client_auth(loaded.bots)
            .code_points(code_points)
            .trust_id(&loaded.trust_id);
        if let Some(observer) = on_flags_event {
            flags = flags.on_event(move |event| observer(event));
        }
        if let Some(file) = &partner_file {
            // The partner verifier names no anchors (see ReloadableVerifier),
            // so partners' tickets are bound to the file's bytes.
            flags = flags.normal_trust_id(file);
        }
        // Without partners the normal path verifies nobody: nothing to bind.
        let partner_file = partner_file.unwrap_or_default();
        let bot_ca = flags.flag_verifier();
        let partner_trust = flags.normal_path_trust();
        flags.install(&mut config)?;
        let sessions = Arc::new(TrustBoundSessions::new(&partner_file));
        if tls.session_resumption {
            config.session_storage = sessions.clone();
        } else {
            // Nothing to resume from: no session cache, no tickets.
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        let tickets = loaded.ticket_keys.map(|keys| {
            Arc::new(FleetTicketer::new(
                keys,
                &partner_file,
                tls.ticket_lifetime_secs,
            ))
        });
        if let Some(tickets) = &tickets {
            config.ticketer = tickets.clone();
        }
        Ok(Self {
            config: Arc::new(config),
            identity,
            bot_ca,
            partners,
            partner_trust,
            sessions,
            tickets,
            handshake_timeout,
            expiries: Arc::new(RwLock::new(loaded.expiries)),
            in_force: Arc::new(RwLock::new(loaded.in_force)),
            warned_until: Arc::new(AtomicI64::new(i64::MIN)),
            generation: Arc::new(Generation::default()),
        })
    }

    /// The check that connected bots still verify (after a reload, and as
    /// time passes).
    pub fn still_trusted(&self) -> StillTrusted {
        let check = StillTrusted::new(self.bot_ca.clone(), Arc::clone(&self.generation));
        match &self.partners {
            Some(partners) => {
                let partners: Arc<dyn ClientCertVerifier> = partners.clone();
                check.with_partners(partners)
            }
            None => check,
        }
    }

    /// When the loaded certificates and CRLs expire (for the metrics).
    pub fn expiries(&self) -> Vec<Expiry> {
        self.expiries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many certificates the CRLs list and how many thumbprints the
    /// deny list holds, as last loaded.
    pub fn in_force(&self) -> (usize, usize) {
        let in_force = self.in_force.read().unwrap_or_else(PoisonError::into_inner);
        (
            in_force.revoked_certificates(),
            in_force.denied_thumbprints(),
        )
    }

    /// A warning for each certificate or CRL of the files as last loaded
    /// that has lapsed by `now` (seconds since the epoch): every one with
    /// `all` (after a load), else those that lapsed since the last call, so
    /// a periodic check and a reload say each once.
    #[must_use]
    pub fn lapses(&self, now: i64, all: bool) -> Vec<String> {
        let since = self.warned_until.swap(now, Ordering::Relaxed);
        let since = if all { i64::MIN } else { since };
        let expiries = self.expiries.read().unwrap_or_else(PoisonError::into_inner);
        validity::lapsed(&expiries, since, now)
    }

    /// Loads the files again and, if all of them are usable, swaps in the new
    /// server identity and bot CA set. New handshakes use them; established
    /// connections are not touched. On error nothing changes. Gives the
    /// revocations the new files no longer hold, to be said.
    ///
    /// # Errors
    ///
    /// As [`Front::new`].
    pub fn reload(&self, tls: &Tls) -> anyhow::Result<Vec<Lifted>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded = load(tls, &provider)?;
        // Every check first: a refused reload changes nothing.
        if self.partners.is_some() != loaded.partners.is_some() {
            anyhow::bail!("tls.partner_ca: adding or removing the partner CA takes a restart");
        }
        if self.tickets.is_some() != loaded.ticket_keys.is_some() {
            anyhow::bail!(
                "tls.ticket_keys: adding or removing the ticket key file takes a restart"
            );
        }
        if let (Some(current), Some((partners, file))) = (&self.partners, loaded.partners) {
            current.0.replace(partners);
            // After the swap: a ticket verified by the old set must not carry
            // the new set's id, and no session verified by it may resume.
            self.partner_trust.set_trust_id(&file);
            self.sessions.bind_to_trust(&file, self.handshake_timeout);
            if let Some(tickets) = &self.tickets {
                tickets.bind_to_trust(&file, self.handshake_timeout);
            }
        }
        if let (Some(tickets), Some(keys)) = (&self.tickets, loaded.ticket_keys) {
            tickets.replace(keys);
        }
        // Compared outside the lock every handshake reads (only reloads
        // write it, one at a time).
        let served = Arc::clone(
            &self
                .identity
                .0
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if let Some(lost) = chain_change::lost_issuer(&served.cert, &loaded.identity.cert) {
            log::warn!("{lost}");
        }
        *self
            .identity
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = loaded.identity;
        self.bot_ca
            .replace_with_trust_id(loaded.bots, &loaded.trust_id);
        *self
            .expiries
            .write()
            .unwrap_or_else(PoisonError::into_inner) = loaded.expiries;
        let lifted = {
            let mut in_force = self
                .in_force
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let lifted = loaded.in_force.lifted_since(&in_force);
            *in_force = loaded.in_force;
            lifted
        };
        // After the swap: open connections of bots and partners are
        // verified again.
        self.generation.advance();
        Ok(lifted)
    }
}

/// The normal path's verifier (partners), replaceable.
#[derive(Debug)]
struct ReloadableVerifier(RwLock<Arc<dyn ClientCertVerifier>>);

impl ReloadableVerifier {
    fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = verifier;
    }
}

impl Wrapper for ReloadableVerifier {
    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn hints(&self) -> &[rustls::DistinguishedName] {
        // No CA names: a reload can change the set, and a borrowed list could
        // not follow it. Partners pick their certificate without the names.
        &[]
    }

    fn refused(&self, end_entity: &CertificateDer<'_>) {
        rustls_req_client_auth::RefusedCertificate::note(end_entity);
    }
}

/// The server's certificate and key, replaceable.
#[derive(Debug)]
struct ReloadableIdentity(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for ReloadableIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}
