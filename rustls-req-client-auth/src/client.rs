//! The client side: send `request_client_auth` when an identity is at hand, and
//! answer a CertificateRequest according to whether it acknowledged the flag.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use log::debug;

use rustls::client::ResolvesClientCert;
use rustls::hooks::{
    ChosenBy, ClientConnectionHook, ClientEvent, ClientHooks, EchPlacement, HandshakeMessage,
    HookError, RawExtension, Received, RegistrationError, Sending,
};
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, SignatureScheme};
use rustls_tls_flags::{Flag, FlagSet, MessageKind};

use crate::code_points::CodePoints;
use crate::diagnostics::{describe_tls_error, find_tls_error};
use crate::message::kind_of;
use crate::rules;

/// How to answer a TLS 1.3 CertificateRequest that does not acknowledge the
/// flag (RCA-9: the client knows which requests its flag caused). A TLS 1.2
/// CertificateRequest is always answered by the config's own resolver.
///
/// The flag identity leaves the process only in answer to a CertificateRequest
/// that acknowledges the flag, or under [`OtherRequests::FlagIdentityOn`] with
/// the code points the client uses; see [`ClientFlags`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtherRequests {
    /// With the `ClientConfig`'s own `client_auth_cert_resolver` (the default).
    #[default]
    ConfigResolver,
    /// With an empty Certificate.
    Anonymous,
    /// With the flag identity too, but only while the client uses exactly these
    /// code points; with any others, as [`OtherRequests::ConfigResolver`].
    ///
    /// A compatibility switch for servers that request a certificate because of
    /// the flag without acknowledging it (Cloudflare's deployments on extension
    /// 0xFE01, [`CodePoints::experimental`]). Such a server cannot be told
    /// apart from one that asks every client for its own reasons, so this sends
    /// the bot's identity to any server on these code points that asks for a
    /// certificate. Never enable it on the default code points unless every
    /// server the client talks to is one you trust with that identity.
    FlagIdentityOn(CodePoints),
}

/// Which certificate the client sent in answer to a CertificateRequest; see
/// [`ClientFlagsState::sent_identity`]. Recorded when rustls emits the
/// client's Certificate message, so it is what went on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SentIdentity {
    /// No CertificateRequest came (yet), so nothing was sent. Also on a
    /// resumed connection: the server keeps the path of the session it
    /// resumes (RCA-11) and asks for nothing.
    NotRequested,
    /// The flag identity: the request acknowledged the flag (RCA-2), or
    /// [`OtherRequests::FlagIdentityOn`] applied.
    FlagIdentity,
    /// A certificate of the `ClientConfig`'s own resolver.
    ConfigIdentity,
    /// A certificate of another extension hook's resolver (a second extension
    /// user on the same `ClientConfig` chose the answer).
    OtherHookIdentity,
    /// An empty Certificate: nothing suitable, or [`OtherRequests::Anonymous`]
    /// (or the handshake failed before the client's Certificate went out).
    Empty,
    /// Not seen: a TLS 1.2 connection, where a CertificateRequest is
    /// answered by the config's own resolver without this crate seeing it
    /// (RCA-12).
    NotObserved,
}

impl fmt::Display for SentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRequested => "no certificate requested",
            Self::FlagIdentity => "sent the flag identity",
            Self::ConfigIdentity => "sent the config's own certificate",
            Self::OtherHookIdentity => "sent a certificate another extension hook chose",
            Self::Empty => "sent an empty Certificate",
            Self::NotObserved => "TLS 1.2: what answered a request is not observed",
        })
    }
}

/// The client's TLS Flags policy; install it in a [`ClientConfig`].
///
/// ```no_run
/// # fn demo(config: &mut rustls::ClientConfig, bot: std::sync::Arc<rustls::sign::CertifiedKey>)
/// # -> Result<(), rustls::hooks::RegistrationError> {
/// use rustls_req_client_auth::ClientFlags;
///
/// ClientFlags::request_client_auth(bot).install(config)?;
/// # Ok(()) }
/// ```
///
/// # When the bot identity leaves the process
///
/// The identity given to [`ClientFlags::request_client_auth`] is sent only
/// - in answer to a TLS 1.3 CertificateRequest that acknowledges the flag,
///   which a server can only do after this client set it (RCA-6 refuses the
///   others), or
/// - with [`OtherRequests::FlagIdentityOn`] for the code points in use, in
///   answer to any TLS 1.3 CertificateRequest on those code points.
///
/// Every other CertificateRequest is answered by the config's own resolver
/// (by default none: an empty Certificate), whatever the server is.
///
/// # Outcomes without the connection
///
/// Where the `ClientConnection` is out of reach (reqwest, hyper-rustls),
/// [`ClientFlags::outcomes`] gives a handle that records, per server name,
/// the state of the latest connection: whether the flag was acknowledged and
/// which identity was sent.
#[derive(Clone, Debug)]
pub struct ClientFlags {
    code_points: CodePoints,
    identity: Option<Arc<dyn ResolvesClientCert>>,
    also_propose: FlagSet,
    other_requests: OtherRequests,
    placement: EchPlacement,
    outcomes: ClientOutcomes,
}

impl ClientFlags {
    /// Sends `request_client_auth` and answers a CertificateRequest that
    /// acknowledges it with `identity`.
    pub fn request_client_auth(identity: Arc<CertifiedKey>) -> Self {
        Self::request_client_auth_with(Arc::new(FixedIdentity(identity)))
    }

    /// Like [`ClientFlags::request_client_auth`], with a resolver that may
    /// choose among several certificates. The flag is sent only if
    /// `resolver.has_certs()` (RCA-1).
    pub fn request_client_auth_with(resolver: Arc<dyn ResolvesClientCert>) -> Self {
        Self {
            identity: Some(resolver),
            ..Self::without_identity()
        }
    }

    /// Sets (or replaces) the flag identity.
    pub(crate) fn identity(mut self, identity: Arc<CertifiedKey>) -> Self {
        self.identity = Some(Arc::new(FixedIdentity(identity)));
        self
    }

    /// Records outcomes in `outcomes` instead of a log of its own.
    pub(crate) fn sharing_outcomes(mut self, outcomes: &ClientOutcomes) -> Self {
        self.outcomes = outcomes.clone();
        self
    }

    /// TLS Flags without `request_client_auth`: only what [`ClientFlags::propose`] adds.
    pub fn without_identity() -> Self {
        Self {
            code_points: CodePoints::DEFAULT,
            identity: None,
            also_propose: FlagSet::new(),
            other_requests: OtherRequests::default(),
            placement: EchPlacement::InnerOnly,
            outcomes: ClientOutcomes::default(),
        }
    }

    /// Uses other code points than extension 62 and flag 80.
    #[must_use]
    pub fn code_points(mut self, code_points: CodePoints) -> Self {
        self.code_points = code_points;
        self
    }

    /// Also proposes `flag` in the ClientHello (TF-9); the server may
    /// acknowledge it in its ServerHello, EncryptedExtensions or Certificate.
    #[must_use]
    pub fn propose(mut self, flag: Flag) -> Self {
        self.also_propose.insert(flag);
        self
    }

    /// How to answer a CertificateRequest that does not acknowledge the flag.
    #[must_use]
    pub fn other_requests(mut self, other: OtherRequests) -> Self {
        self.other_requests = other;
        self
    }

    /// Also puts the flags in the outer ClientHello under ECH. By default they
    /// go in the inner (encrypted) hello only, as the flag reveals that the
    /// client is automated (RCA-13).
    #[must_use]
    pub fn visible_outside_ech(mut self) -> Self {
        self.placement = EchPlacement::Both;
        self
    }

    /// The record of this policy's connections, shared by all its clones and
    /// every config it is installed in.
    pub fn outcomes(&self) -> ClientOutcomes {
        self.outcomes.clone()
    }

    /// Registers the policy in `config` as the owner of its extension type,
    /// beside any other extension hooks there.
    ///
    /// # Errors
    ///
    /// If that type is already registered in `config` (by an earlier policy:
    /// `config.extension_hooks.deregister(type)` removes it) or is one rustls
    /// implements.
    pub fn install(self, config: &mut ClientConfig) -> Result<(), RegistrationError> {
        config
            .extension_hooks
            .register(&[self.code_points.extension_type], Arc::new(self))
    }

    /// Whether un-acknowledged requests get the flag identity.
    fn identity_for_other_requests(&self) -> bool {
        self.other_requests == OtherRequests::FlagIdentityOn(self.code_points)
    }

    /// The flags a ClientHello proposes under this policy.
    fn proposal(&self) -> FlagSet {
        let mut flags = self.also_propose.clone();
        // RCA-1: only with a certificate directly at hand; never prompt.
        if self
            .identity
            .as_ref()
            .is_some_and(|identity| identity.has_certs())
        {
            flags.insert(self.code_points.request_client_auth);
        }
        flags
    }
}

impl ClientHooks for ClientFlags {
    fn new_connection(&self, server_name: &ServerName<'_>) -> Box<dyn ClientConnectionHook> {
        let state = ClientFlagsState {
            offered: self.proposal(),
            acknowledged: FlagSet::new(),
            certificate_request: None,
            sent: SentIdentity::NotRequested,
            request_client_auth: self.code_points.request_client_auth,
        };
        if !state.requested_client_auth() && self.identity.is_some() {
            debug!("tls_flags: not sending request_client_auth to {server_name:?}: no certificate at hand (RCA-1)");
        }
        Box::new(ClientFlagsHook {
            policy: self.clone(),
            server_name: server_name.to_str().into_owned(),
            state,
        })
    }

    fn ech_placement(&self, _typ: u16) -> EchPlacement {
        self.placement
    }
}

pub use crate::request_cause::CertificateRequestCause;

/// What TLS Flags did on a client connection; see [`client_state`] and
/// [`ClientOutcomes`].
#[derive(Clone, Debug)]
pub struct ClientFlagsState {
    offered: FlagSet,
    acknowledged: FlagSet,
    certificate_request: Option<CertificateRequestCause>,
    sent: SentIdentity,
    request_client_auth: Flag,
}

impl ClientFlagsState {
    /// The flags this client proposed in its ClientHello (empty: no extension, TF-4).
    pub fn offered(&self) -> &FlagSet {
        &self.offered
    }

    /// The proposed flags the server acknowledged, in any message.
    pub fn acknowledged(&self) -> &FlagSet {
        &self.acknowledged
    }

    /// Whether `request_client_auth` was offered (RCA-1: only with an identity at hand).
    pub fn requested_client_auth(&self) -> bool {
        self.offered.contains(self.request_client_auth)
    }

    /// Why a CertificateRequest came, if one came.
    pub fn certificate_request(&self) -> Option<CertificateRequestCause> {
        self.certificate_request
    }

    /// Whether the server acknowledged `request_client_auth` (in its
    /// CertificateRequest, RCA-2).
    pub fn flag_acknowledged(&self) -> bool {
        self.acknowledged.contains(self.request_client_auth)
    }

    /// Which certificate answered the CertificateRequest.
    pub fn sent_identity(&self) -> SentIdentity {
        self.sent
    }

    /// Why a request on this connection failed with `error`, as far as the
    /// client can tell.
    ///
    /// In TLS 1.3 the server verifies the client's certificate after the
    /// client has finished its handshake, so a refusal arrives as an alert on
    /// the first read; HTTP stacks often report only that the connection
    /// closed (`broken pipe`, `channel closed`). This puts the alert, if the
    /// stack kept it, together with what the client sent.
    pub fn describe_failure(&self, error: &(dyn std::error::Error + 'static)) -> String {
        if let Some(tls) = find_tls_error(error) {
            return describe_tls_error(tls);
        }
        match (self.certificate_request, self.sent_identity()) {
            (Some(_), sent @ (SentIdentity::FlagIdentity | SentIdentity::ConfigIdentity)) => {
                format!(
                    "the server closed the connection after the handshake, in which it {} and the client {sent}: it most likely refused that certificate (its log says why); the error was: {error}",
                    if self.flag_acknowledged() {
                        "acknowledged request_client_auth"
                    } else {
                        "requested a certificate without acknowledging the flag"
                    }
                )
            }
            (Some(_), SentIdentity::Empty) => format!(
                "the server closed the connection after the client sent an empty Certificate: it most likely requires a certificate; the error was: {error}"
            ),
            _ => error.to_string(),
        }
    }
}

impl fmt::Display for ClientFlagsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = match self.certificate_request {
            None => "no CertificateRequest",
            Some(CertificateRequestCause::Flag) => "CertificateRequest acknowledging the flag",
            Some(CertificateRequestCause::ServerPolicy) => "CertificateRequest without the flag",
        };
        write!(
            f,
            "flags offered {}, acknowledged {}; {request}; {}",
            self.offered,
            self.acknowledged,
            self.sent_identity()
        )
    }
}

/// The latest [`ClientFlagsState`] per server name, for clients that cannot
/// reach the connection (reqwest, hyper-rustls); see [`ClientFlags::outcomes`].
///
/// It keeps the most recent [`ClientOutcomes::CAPACITY`] server names. Each
/// entry changes as its handshake proceeds and is final once the handshake
/// is done; the next connection to the same name replaces it, so with several
/// connections to one server at once (an HTTP/1.1 pool) the entry is the
/// latest one's. A resumed connection records no CertificateRequest
/// ([`SentIdentity::NotRequested`]): the server keeps the path of the session
/// it resumes.
#[derive(Clone, Debug, Default)]
pub struct ClientOutcomes {
    inner: Arc<Mutex<OutcomeLog>>,
}

#[derive(Debug, Default)]
struct OutcomeLog {
    next: u64,
    entries: HashMap<String, (u64, ClientFlagsState)>,
}

impl ClientOutcomes {
    /// How many server names are remembered; the oldest is forgotten first.
    pub const CAPACITY: usize = 256;

    /// The state of the latest connection to `server_name` (a DNS name or an
    /// IP address, as the client was given it).
    /// An IPv6 address may be given with or without the brackets of a URL.
    pub fn get(&self, server_name: &str) -> Option<ClientFlagsState> {
        let server_name = server_name
            .strip_prefix('[')
            .and_then(|name| name.strip_suffix(']'))
            .unwrap_or(server_name);
        self.log()
            .entries
            .get(server_name)
            .map(|(_, state)| state.clone())
    }

    fn record(&self, server_name: &str, state: &ClientFlagsState) {
        let mut log = self.log();
        log.next += 1;
        let seq = log.next;
        log.entries
            .insert(server_name.to_owned(), (seq, state.clone()));
        if log.entries.len() > Self::CAPACITY {
            let oldest = log
                .entries
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                log.entries.remove(&oldest);
            }
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, OutcomeLog> {
        // A panic elsewhere while holding the lock leaves a consistent map.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The TLS Flags state of `conn`, if [`ClientFlags`] is installed in its config.
pub fn client_state(conn: &ClientConnection) -> Option<&ClientFlagsState> {
    conn.extension_hook::<ClientFlagsHook>()
        .map(|hook| &hook.state)
}

#[derive(Debug)]
struct ClientFlagsHook {
    policy: ClientFlags,
    server_name: String,
    state: ClientFlagsState,
}

impl ClientFlagsHook {
    fn flag(&self) -> Flag {
        self.policy.code_points.request_client_auth
    }

    fn publish(&self) {
        self.policy.outcomes.record(&self.server_name, &self.state);
    }

    fn client_hello_extensions(&mut self) -> Vec<RawExtension> {
        self.publish();
        // TF-4: no flags, no extension.
        let Some(body) = self.state.offered.to_extension_data() else {
            return Vec::new();
        };
        debug!(
            "tls_flags: proposing {} to {} in extension {}",
            self.state.offered, self.server_name, self.policy.code_points.extension_type
        );
        vec![RawExtension::new(
            self.policy.code_points.extension_type,
            body,
        )]
    }
}

impl ClientConnectionHook for ClientFlagsHook {
    fn extensions_to_send(&mut self, sending: &Sending) -> Vec<RawExtension> {
        match sending.message {
            HandshakeMessage::ClientHello => self.client_hello_extensions(),
            // The flag is never echoed in the client's Certificate (TF-11).
            _ => Vec::new(),
        }
    }

    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        let Some(message) = kind_of(received.message()) else {
            return Ok(());
        };
        let tls12 = received.version() == Some(ProtocolVersion::TLSv1_2);
        let flags = match received.extension(self.policy.code_points.extension_type) {
            Some(body) => rules::client_receives(
                message,
                message == MessageKind::ServerHello && tls12,
                body,
                &self.state.offered,
                self.flag(),
            )
            .inspect_err(|error| {
                debug!(
                    "tls_flags: refusing {} from {}: {error} [{}]",
                    message,
                    self.server_name,
                    error.rule()
                );
            })?,
            None => FlagSet::new(),
        };
        if message == MessageKind::ServerHello && tls12 {
            // RCA-12: the hook does not see what answers a TLS 1.2 request.
            self.state.sent = SentIdentity::NotObserved;
        }
        if message == MessageKind::CertificateRequest {
            // RCA-9: the acknowledgement tells the client why it is asked.
            let cause = if flags.contains(self.flag()) {
                CertificateRequestCause::Flag
            } else {
                CertificateRequestCause::ServerPolicy
            };
            debug!(
                "tls_flags: CertificateRequest from {} ({cause:?})",
                self.server_name
            );
            self.state.certificate_request = Some(cause);
        }
        if !message.is_request() || message == MessageKind::CertificateRequest {
            let acknowledged = flags.intersection(&self.state.offered);
            if !acknowledged.is_empty() {
                debug!(
                    "tls_flags: {} acknowledged {acknowledged} in {message}",
                    self.server_name
                );
            }
            self.state.acknowledged = self.state.acknowledged.union(&acknowledged);
        }
        self.publish();
        Ok(())
    }

    fn client_cert_resolver(&mut self) -> Option<Arc<dyn ResolvesClientCert>> {
        let flag_requested = self.state.certificate_request == Some(CertificateRequestCause::Flag);
        // RCA-5: answered with a Certificate; rustls sends an empty one if the
        // identity has nothing suitable, and does not abort.
        let flag_identity = if flag_requested || self.policy.identity_for_other_requests() {
            self.policy.identity.clone()
        } else {
            None
        };
        let resolver: Option<Arc<dyn ResolvesClientCert>> =
            match (flag_identity, self.policy.other_requests) {
                (Some(identity), _) => Some(identity),
                (None, OtherRequests::Anonymous) if !flag_requested => Some(Arc::new(NoIdentity)),
                // `None`: the config's own resolver (or another hook's).
                (None, _) => None,
            };
        // Until rustls says what the Certificate carried (ClientEvent), the
        // answer is an empty one (also if the handshake fails before it goes out).
        self.state.sent = SentIdentity::Empty;
        self.publish();
        resolver
    }

    fn event(&mut self, event: &ClientEvent) {
        // Only one event exists now; others (the enum grows) are not ours to judge.
        #[allow(clippy::single_match)]
        match *event {
            ClientEvent::CertificateSent {
                resolver,
                certificate,
            } => {
                self.state.sent = match (resolver, certificate) {
                    (_, false) => SentIdentity::Empty,
                    (ChosenBy::ThisHook, true) => SentIdentity::FlagIdentity,
                    (ChosenBy::OtherHook, true) => SentIdentity::OtherHookIdentity,
                    (_, true) => SentIdentity::ConfigIdentity,
                };
                debug!(
                    "tls_flags: answered the CertificateRequest from {}: {}",
                    self.server_name, self.state.sent
                );
                self.publish();
            }
            _ => {}
        }
    }
}

/// Offers one certified key to every CertificateRequest it is used for.
#[derive(Debug)]
struct FixedIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedIdentity {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Offers nothing: the answer is an empty Certificate.
#[derive(Debug)]
struct NoIdentity;

impl ResolvesClientCert for NoIdentity {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}
