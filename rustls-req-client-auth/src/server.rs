//! The server side: request a certificate from the clients that set
//! `request_client_auth`, verify it on a trust path of its own, and tell the
//! application which path authenticated the peer.

use std::sync::{Arc, OnceLock, RwLock};

use log::debug;

use rustls::hooks::{
    ChosenBy, HandshakeMessage, HookError, OfferedSession, RawExtension, Received,
    RegistrationError, Sending, ServerConnectionHook, ServerEvent, ServerHooks,
};
use rustls::pki_types::{CertificateDer, DnsName};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ProtocolVersion, ServerConfig, ServerConnection};
use rustls_tls_flags::{Flag, FlagSet};

use crate::code_points::CodePoints;
use crate::error::FlagsError;
use crate::events::{EventObserver, FlagsEvent};
use crate::rules;
use crate::ticket::{self, TrustFingerprint};
use crate::verifier::FlagPathVerifier;

/// The server's TLS Flags policy; install it in a [`ServerConfig`].
///
/// The verifier given here checks flagged clients only (RCA-10); the config's
/// own verifier (often `with_no_client_auth()`) keeps serving everyone else.
///
/// ```no_run
/// # fn demo(config: &mut rustls::ServerConfig, bot_roots: std::sync::Arc<rustls::RootCertStore>)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use rustls::server::WebPkiClientVerifier;
/// use rustls_req_client_auth::ServerFlags;
///
/// let bots = WebPkiClientVerifier::builder(bot_roots).build()?;
/// ServerFlags::request_client_auth(bots).install(config)?;
/// # Ok(()) }
/// ```
///
/// The flag path's trust anchors can be replaced while the server runs, see
/// [`ServerFlags::flag_verifier`]; tickets of the normal path are bound to the
/// config's own verifier, see [`ServerFlags::normal_path_trust`].
#[derive(Clone, Debug)]
pub struct ServerFlags {
    code_points: CodePoints,
    verifier: FlagVerifier,
    require_certificate: bool,
    normal_trust: NormalPathTrust,
    /// The config's own verifier, by its root hints: rustls shows it to the
    /// hook in full handshakes only, so it is taken at the first one. Each
    /// `install` gets its own (one config, one verifier).
    configured_trust: Arc<OnceLock<TrustFingerprint>>,
    /// Told of each [`FlagsEvent`] as it happens.
    observer: Option<EventObserver>,
}

/// The trust set of the normal path (the config's own verifier, for clients
/// without the flag), as session tickets record it: a ticket of the normal
/// path issued under another set is not resumed (RCA-11), so after an
/// operator removes a partner CA its clients are verified again.
///
/// By default the set is told by the anchors the config's verifier names in
/// its certificate requests (`root_hint_subjects`), taken at the config's
/// first full handshake (until then a normal-path ticket is not resumed: a
/// server that has just started verifies its first partner again). A verifier that is replaced at run time behind one `Arc`, or
/// that names no anchors, needs a trust id: give one with
/// [`ServerFlags::normal_trust_id`], and after each swap of the anchors call
/// [`NormalPathTrust::set_trust_id`] (after the swap, not before: a ticket
/// verified by the old anchors must not carry the new id).
///
/// Every clone is a handle on the same id.
#[derive(Clone, Debug, Default)]
pub struct NormalPathTrust(Arc<RwLock<Option<TrustFingerprint>>>);

impl NormalPathTrust {
    /// Names the normal path's trust set with `trust_id` (for example the
    /// bytes of the partner CA file) from now on.
    pub fn set_trust_id(&self, trust_id: &[u8]) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(TrustFingerprint::of_id(trust_id));
        debug!("tls_flags: the normal path's trust id was replaced");
    }

    fn get(&self) -> Option<TrustFingerprint> {
        *self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The verifier of the flag path, replaceable at run time: an operator swaps
/// the bot CA set without rebuilding the `ServerConfig`. Handshakes that start
/// after [`FlagVerifier::replace`] use the new verifier; connections already
/// past their CertificateRequest keep the one they started with.
///
/// Every clone is a handle on the same verifier.
///
/// Sessions resumed from tickets issued before a swap are not resumed: such a
/// ticket makes the handshake a full one, verified by the new set (RCA-11).
/// Servers of a fleet that share ticket keys and the same bot CA set resume
/// each other's sessions. Trust sets are told apart by a trust id the
/// application gives ([`FlagVerifier::replace_with_trust_id`],
/// [`ServerFlags::trust_id`]; [`crate::OnePortConfig`] uses its anchors'
/// names and keys), else by the trust anchors the verifier names in its
/// certificate requests (`root_hint_subjects`). Without a trust id, a swap
/// that keeps those names (new CRLs, a CA re-keyed under the same name, a
/// verifier that names no anchors) does not retire old tickets.
#[derive(Clone, Debug)]
pub struct FlagVerifier(Arc<RwLock<TrustedVerifier>>);

#[derive(Clone, Debug)]
struct TrustedVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
    fingerprint: TrustFingerprint,
}

impl TrustedVerifier {
    fn new(verifier: Arc<dyn ClientCertVerifier>, trust_id: Option<&[u8]>) -> Self {
        Self {
            fingerprint: trust_id.map_or_else(
                || TrustFingerprint::of(verifier.as_ref()),
                TrustFingerprint::of_id,
            ),
            verifier,
        }
    }
}

impl FlagVerifier {
    /// Makes `verifier` the flag path's verifier for new handshakes.
    pub fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        self.set(TrustedVerifier::new(verifier, None));
    }

    /// Like [`FlagVerifier::replace`], naming the trust set with `trust_id`
    /// (for example a hash of the CA and CRL files): tickets issued under a
    /// set with another id are not resumed.
    pub fn replace_with_trust_id(&self, verifier: Arc<dyn ClientCertVerifier>, trust_id: &[u8]) {
        self.set(TrustedVerifier::new(verifier, Some(trust_id)));
    }

    fn set(&self, trusted: TrustedVerifier) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = trusted;
        debug!("tls_flags: the flag-path verifier was replaced");
    }

    /// The verifier new handshakes use.
    pub fn current(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.trusted().verifier)
    }

    fn trusted(&self) -> TrustedVerifier {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ServerFlags {
    /// Answers `request_client_auth` with an acknowledging CertificateRequest
    /// (RCA-2) and verifies the client with `flag_verifier` (RCA-10).
    ///
    /// A flagged client that sends no certificate is served anonymously
    /// (RCA-14), unless [`ServerFlags::require_certificate`] is set or the
    /// config's own verifier requires a certificate from every client: setting
    /// the flag never gets a client past a mandatory client authentication.
    pub fn request_client_auth(flag_verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Self {
            code_points: CodePoints::DEFAULT,
            verifier: FlagVerifier(Arc::new(RwLock::new(TrustedVerifier::new(
                flag_verifier,
                None,
            )))),
            require_certificate: false,
            normal_trust: NormalPathTrust::default(),
            configured_trust: Arc::default(),
            observer: None,
        }
    }

    /// Calls `observer` with each [`FlagsEvent`] as it happens, on the
    /// thread driving the handshake (keep it quick: a counter). Metrics
    /// counted this way include handshakes that never complete.
    #[must_use]
    pub fn on_event(mut self, observer: impl Fn(FlagsEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(EventObserver(Arc::new(observer)));
        self
    }

    /// Names the normal path's trust set with `trust_id`; see
    /// [`NormalPathTrust`].
    #[must_use]
    pub fn normal_trust_id(self, trust_id: &[u8]) -> Self {
        self.normal_trust.set_trust_id(trust_id);
        self
    }

    /// The handle that renames the normal path's trust set at run time; see
    /// [`NormalPathTrust`].
    pub fn normal_path_trust(&self) -> NormalPathTrust {
        self.normal_trust.clone()
    }

    /// The normal path's trust set as tickets record it.
    fn normal_fingerprint(&self) -> Option<TrustFingerprint> {
        self.normal_trust
            .get()
            .or_else(|| self.configured_trust.get().copied())
    }

    /// Names the flag path's trust set with `trust_id`; see [`FlagVerifier`].
    #[must_use]
    pub fn trust_id(self, trust_id: &[u8]) -> Self {
        let verifier = self.verifier.current();
        self.verifier.replace_with_trust_id(verifier, trust_id);
        self
    }

    /// The handle that replaces the flag path's verifier at run time; it
    /// stays connected to this policy and every config it is installed in.
    pub fn flag_verifier(&self) -> FlagVerifier {
        self.verifier.clone()
    }

    /// Refuses (with `certificate_required`) a flagged client that answers the
    /// CertificateRequest with an empty Certificate (RCA-14's "unless the
    /// server's policy says so").
    #[must_use]
    pub fn require_certificate(mut self) -> Self {
        self.require_certificate = true;
        self
    }

    /// Uses other code points than extension 62 and flag 80.
    #[must_use]
    pub fn code_points(mut self, code_points: CodePoints) -> Self {
        self.code_points = code_points;
        self
    }

    /// Registers the policy in `config` as the owner of its extension type,
    /// beside any other extension hooks there.
    ///
    /// # Errors
    ///
    /// If that type is already registered in `config` (by an earlier policy:
    /// `config.extension_hooks.deregister(type)` removes it) or is one rustls
    /// implements.
    pub fn install(mut self, config: &mut ServerConfig) -> Result<(), RegistrationError> {
        self.configured_trust = Arc::default();
        config
            .extension_hooks
            .register(&[self.code_points.extension_type], Arc::new(self))
    }
}

impl ServerHooks for ServerFlags {
    fn new_connection(&self, server_name: Option<&DnsName<'_>>) -> Box<dyn ServerConnectionHook> {
        // One copy of the name, shared by the hook, the flag path's verifier
        // and the refusal slot of an `Acceptor`.
        let server_name: Option<Arc<str>> = server_name.map(|name| Arc::from(name.as_ref()));
        if let Some(name) = &server_name {
            crate::refusal::remember_server_name(name);
        }
        Box::new(ServerFlagsHook {
            policy: self.clone(),
            server_name,
            state: ServerFlagsState {
                client_flags: None,
                acknowledged: FlagSet::new(),
                certificate_request: None,
                flag_trust: None,
                normal_trust: None,
                client_certificate: false,
                resumed: None,
                request_client_auth: self.code_points.request_client_auth,
            },
        })
    }
}

pub use crate::auth_path::AuthPath;
pub use crate::request_cause::CertificateRequestCause;

/// What TLS Flags did on a server connection; see [`server_state`].
#[derive(Clone, Debug)]
pub struct ServerFlagsState {
    client_flags: Option<FlagSet>,
    acknowledged: FlagSet,
    certificate_request: Option<CertificateRequestCause>,
    /// Set when the flag was accepted: the trust anchors of the verifier used.
    flag_trust: Option<TrustFingerprint>,
    /// Set in a full TLS 1.3 handshake without the flag: the trust anchors of
    /// the config's verifier.
    normal_trust: Option<TrustFingerprint>,
    client_certificate: bool,
    /// The record of the ticket this connection resumes.
    resumed: Option<ticket::Record>,
    request_client_auth: Flag,
}

impl ServerFlagsState {
    /// The flags the client proposed (empty if it sent none, or on TLS 1.2,
    /// where they have no effect: RCA-12).
    pub fn client_flags(&self) -> &FlagSet {
        static NONE: FlagSet = FlagSet::new();
        self.client_flags.as_ref().unwrap_or(&NONE)
    }

    /// Whether the client set `request_client_auth` in a TLS 1.3 ClientHello.
    pub fn requested_client_auth(&self) -> bool {
        self.client_flags
            .as_ref()
            .is_some_and(|flags| flags.contains(self.request_client_auth))
    }

    /// The flags this server acknowledged (in its CertificateRequest).
    pub fn acknowledged(&self) -> &FlagSet {
        &self.acknowledged
    }

    /// Why a CertificateRequest was sent, if one was.
    pub fn certificate_request(&self) -> Option<CertificateRequestCause> {
        self.certificate_request
    }

    /// Whether the authentication path was restored from a TLS 1.3 ticket that
    /// carries this crate's record (RCA-11). Whether a connection resumed at
    /// all, TLS 1.2 included, is `ServerConnection::handshake_kind()`.
    pub fn restored_from_ticket(&self) -> bool {
        self.resumed.is_some()
    }

    /// The path of a client that holds certificates (see [`peer`]).
    fn path_with_certificate(&self) -> AuthPath {
        match self.resumed {
            Some(record) => record.path(),
            None if self.flag_trust.is_some() => AuthPath::Flag,
            // TLS 1.2, or no flag: the config's own verifier checked it.
            None => AuthPath::Normal,
        }
    }

    /// The record for a ticket issued at the end of a TLS 1.3 handshake.
    fn ticket_record(&self) -> ticket::Record {
        match (self.resumed, self.client_certificate, self.flag_trust) {
            (Some(record), _, _) => record,
            (None, false, _) => ticket::Record::None,
            (None, true, Some(trust)) => ticket::Record::Flag(trust),
            // No flag: the config's own verifier checked it.
            (None, true, None) => match self.normal_trust {
                Some(trust) => ticket::Record::Normal(trust),
                // Unknown anchors: the ticket claims nothing.
                None => ticket::Record::None,
            },
        }
    }
}

/// The TLS Flags state of `conn`, if [`ServerFlags`] is installed in its config
/// and a ClientHello has been processed.
pub fn server_state(conn: &ServerConnection) -> Option<&ServerFlagsState> {
    conn.extension_hook::<ServerFlagsHook>()
        .map(|hook| &hook.state)
}

/// The authenticated client of a completed handshake.
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    /// The trust path that authenticated it.
    pub path: AuthPath,
    /// Its certificate chain, end entity first (`None` when anonymous).
    pub chain: Option<&'a [CertificateDer<'static>]>,
}

/// Who the client of `conn` is, for the application: treat [`AuthPath::Flag`]
/// clients (bots) differently from [`AuthPath::Normal`] ones (RCA-10). On a
/// resumed connection, the path of the session it resumes (RCA-11).
///
/// Meaningful once the handshake has completed.
pub fn peer(conn: &ServerConnection) -> Peer<'_> {
    let chain = conn.peer_certificates();
    let path = match (server_state(conn), chain) {
        (_, None) => AuthPath::None,
        (Some(state), Some(_)) => state.path_with_certificate(),
        // without the hook every certificate came through the config's verifier
        (None, Some(_)) => AuthPath::Normal,
    };
    Peer { path, chain }
}

fn log_refusal(error: &FlagsError) {
    debug!(
        "tls_flags: refusing the client: {error} [{}, alert {:?}]",
        error.rule(),
        error.alert()
    );
}

#[derive(Debug)]
struct ServerFlagsHook {
    policy: ServerFlags,
    /// The server name the client asked for, for a refusal's line.
    server_name: Option<Arc<str>>,
    state: ServerFlagsState,
}

impl ServerFlagsHook {
    fn tls_flags<'a>(&self, received: &Received<'a>) -> Option<&'a [u8]> {
        received.extension(self.policy.code_points.extension_type)
    }

    fn client_hello(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        if received.version() != Some(ProtocolVersion::TLSv1_3) {
            // RCA-12: on TLS 1.2 the flag has no effect.
            if self.tls_flags(received).is_some() {
                debug!("tls_flags: TLS 1.2 ClientHello; its flags have no effect (RCA-12)");
            }
            return Ok(());
        }
        let flags = match self.tls_flags(received) {
            Some(body) => rules::server_receives_client_hello(body).inspect_err(log_refusal)?,
            None => FlagSet::new(),
        };
        if let Some(first) = &self.state.client_flags {
            // RCA-13: the second ClientHello repeats the first's flags.
            rules::server_checks_retry(first, &flags).inspect_err(log_refusal)?;
        } else if flags.contains(self.state.request_client_auth) {
            EventObserver::tell(
                self.policy.observer.as_ref(),
                FlagsEvent::RequestClientAuthReceived,
            );
        }
        self.state.client_flags = Some(flags);
        Ok(())
    }

    /// The CertificateRequest's extensions: the acknowledgement, if this
    /// hook's verifier asks.
    fn certificate_request_extensions(&mut self) -> Vec<RawExtension> {
        if self.state.certificate_request != Some(CertificateRequestCause::Flag) {
            return Vec::new();
        }
        // RCA-2: acknowledge the flag in the CertificateRequest; RCA-4: only
        // because the ClientHello carried it.
        self.state.acknowledged = [self.state.request_client_auth].into_iter().collect();
        self.state
            .acknowledged
            .to_extension_data()
            .map(|body| RawExtension::new(self.policy.code_points.extension_type, body))
            .into_iter()
            .collect()
    }
}

impl ServerConnectionHook for ServerFlagsHook {
    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        match received.message() {
            HandshakeMessage::ClientHello => self.client_hello(received),
            HandshakeMessage::Certificate { index } => {
                if index == 0 {
                    self.state.client_certificate = true;
                }
                if let Some(body) = self.tls_flags(received) {
                    // RCA-8, TF-6.
                    rules::server_receives_certificate(
                        body,
                        &self.state.acknowledged,
                        self.state.request_client_auth,
                    )
                    .inspect_err(log_refusal)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn event(&mut self, event: &ServerEvent<'_>) {
        match *event {
            ServerEvent::FullHandshake { .. } => self.state.resumed = None,
            ServerEvent::Resumed { ticket_data, .. } => {
                // accept_ticket refused TLS 1.3 tickets without a record;
                // TLS 1.2 sessions carry none (the config's verifier checked
                // them).
                self.state.resumed = ticket_data.and_then(ticket::decode);
                if let Some(record) = self.state.resumed {
                    debug!(
                        "tls_flags: resumed a session of the {} path; no CertificateRequest (RCA-11)",
                        record.path()
                    );
                }
            }
            ServerEvent::CertificateRequest { verifier } => {
                let cause = match verifier {
                    ChosenBy::ThisHook => CertificateRequestCause::Flag,
                    _ => CertificateRequestCause::ServerPolicy,
                };
                self.state.certificate_request = Some(cause);
                EventObserver::tell(
                    self.policy.observer.as_ref(),
                    FlagsEvent::CertificateRequestSent(cause),
                );
            }
            _ => {}
        }
    }

    fn client_cert_verifier(
        &mut self,
        configured: &Arc<dyn ClientCertVerifier>,
    ) -> Option<Arc<dyn ClientCertVerifier>> {
        // Only asked in full TLS 1.3 handshakes: never under a PSK (RCA-11),
        // never on TLS 1.2 (RCA-12).
        if !self.state.requested_client_auth() {
            if configured.offer_client_auth() {
                // Only a verifier that asks has anchors to name (rustls's
                // `NoClientAuth` does not implement `root_hint_subjects`).
                let configured_trust = *self
                    .policy
                    .configured_trust
                    .get_or_init(|| TrustFingerprint::of(configured.as_ref()));
                self.state.normal_trust =
                    Some(self.policy.normal_trust.get().unwrap_or(configured_trust));
                debug!("tls_flags: no request_client_auth; the config's own verifier requests a certificate (RCA-3)");
            } else {
                debug!("tls_flags: no request_client_auth; no CertificateRequest");
            }
            return None;
        }
        let trusted = self.policy.verifier.trusted();
        self.state.flag_trust = Some(trusted.fingerprint);
        // RCA-14: anonymous unless the policy says otherwise. A config whose
        // own verifier requires every client to authenticate keeps requiring
        // it: rustls holds a hook's verifier to the configured one's demands.
        let certificate_required = self.policy.require_certificate;
        debug!(
            "tls_flags: request_client_auth received; CertificateRequest on the flag path (certificate {})",
            if certificate_required || configured.client_auth_mandatory() {
                "required"
            } else {
                "optional"
            }
        );
        Some(Arc::new(FlagPathVerifier {
            inner: trusted.verifier,
            certificate_required,
            server_name: self.server_name.clone(),
        }))
    }

    fn extensions_to_send(&mut self, sending: &Sending) -> Vec<RawExtension> {
        match sending.message {
            HandshakeMessage::CertificateRequest => self.certificate_request_extensions(),
            // Nothing else is ever acknowledged: RCA-4 and TF-11.
            _ => Vec::new(),
        }
    }

    fn ticket_data(&mut self) -> Option<Vec<u8>> {
        Some(ticket::encode(self.state.ticket_record()))
    }

    fn accept_ticket(&mut self, offered: &OfferedSession<'_>) -> bool {
        // A session restores the client's chain unverified: once its leaf has
        // expired, a full handshake verifies the certificate the client holds
        // now (and refuses it if it is still the expired one), instead of an
        // application refusing every resumption of a session that renews its
        // own tickets.
        if let Some(leaf) = offered.peer_certificates.and_then(<[_]>::first) {
            if !ticket::still_valid(leaf, offered.now) {
                debug!("tls_flags: session of a client whose certificate has expired refused; full handshake");
                return false;
            }
        }
        if offered.version != ProtocolVersion::TLSv1_3 {
            // TLS 1.2 sessions carry no record: the config's verifier
            // checked them (RCA-12).
            return true;
        }
        // RCA-11: a ticket keeps the path it was issued on; one without our
        // record (or with a damaged one) is not used, so it cannot lead to a
        // more privileged state.
        match offered.data.and_then(ticket::decode) {
            Some(ticket::Record::Flag(trust))
                if trust != self.policy.verifier.trusted().fingerprint =>
            {
                debug!("tls_flags: flag-path ticket issued under a replaced bot CA set refused; full handshake (RCA-11)");
                false
            }
            Some(ticket::Record::Normal(trust))
                if Some(trust) != self.policy.normal_fingerprint() =>
            {
                debug!("tls_flags: normal-path ticket issued under a replaced CA set refused; full handshake (RCA-11)");
                false
            }
            Some(_) => true,
            None => {
                debug!("tls_flags: ticket without this crate's record refused; full handshake (RCA-11)");
                false
            }
        }
    }
}
