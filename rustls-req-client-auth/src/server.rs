//! The server side: request a certificate from the clients that set
//! `request_client_auth`, verify it on a trust path of its own, and tell the
//! application which path authenticated the peer.

use std::any::Any;
use std::sync::Arc;

use rustls::hooks::{
    HandshakeMessage, HookError, RawExtension, Received, ServerConnectionHook, ServerHooks,
};
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ProtocolVersion, ServerConfig, ServerConnection};
use rustls_tls_flags::{Flag, FlagSet};

use crate::code_points::CodePoints;
use crate::rules;
use crate::ticket;
use crate::verifier::FlagPathVerifier;

/// The server's TLS Flags policy; install it in a [`ServerConfig`].
///
/// The verifier given here checks flagged clients only (RCA-10); the config's
/// own verifier (often `with_no_client_auth()`) keeps serving everyone else.
///
/// ```no_run
/// # fn demo(config: &mut rustls::ServerConfig, bot_roots: std::sync::Arc<rustls::RootCertStore>)
/// # -> Result<(), rustls::server::VerifierBuilderError> {
/// use rustls::server::WebPkiClientVerifier;
/// use rustls_req_client_auth::ServerFlags;
///
/// let bots = WebPkiClientVerifier::builder(bot_roots).build()?;
/// ServerFlags::request_client_auth(bots).install(config);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServerFlags {
    code_points: CodePoints,
    /// The flag-path verifier when an empty Certificate is acceptable ...
    optional: Arc<dyn ClientCertVerifier>,
    /// ... and when it is not.
    required: Arc<dyn ClientCertVerifier>,
    require_certificate: bool,
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
            optional: Arc::new(FlagPathVerifier {
                inner: Arc::clone(&flag_verifier),
                certificate_required: false,
            }),
            required: Arc::new(FlagPathVerifier {
                inner: flag_verifier,
                certificate_required: true,
            }),
            require_certificate: false,
        }
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

    /// Installs the policy in `config`, replacing any extension hooks there.
    pub fn install(self, config: &mut ServerConfig) {
        config.extension_hooks = Some(Arc::new(self));
    }
}

impl ServerHooks for ServerFlags {
    fn new_connection(&self) -> Box<dyn ServerConnectionHook> {
        Box::new(ServerFlagsHook {
            policy: self.clone(),
            state: ServerFlagsState {
                client_flags: None,
                acknowledged: FlagSet::new(),
                certificate_request: None,
                flag_accepted: false,
                client_certificate: false,
                resumed_path: None,
                request_client_auth: self.code_points.request_client_auth,
            },
        })
    }
}

/// Which trust path authenticated the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthPath {
    /// None: the client is anonymous.
    None,
    /// The flag path: the client set `request_client_auth` and its certificate
    /// was verified by the [`ServerFlags`] verifier.
    Flag,
    /// The normal path: the `ServerConfig`'s own verifier requested and
    /// verified the certificate (RCA-3).
    Normal,
}

impl AuthPath {
    /// `"none"`, `"flag"` or `"normal"`: the name used in logs and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Flag => "flag",
            Self::Normal => "normal",
        }
    }
}

impl std::fmt::Display for AuthPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the server sent a CertificateRequest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestReason {
    /// The client set `request_client_auth`, and the request acknowledged it (RCA-2).
    Flag,
    /// The config's own verifier asks every client (RCA-3).
    ServerPolicy,
}

/// What TLS Flags did on a server connection; see [`server_state`].
#[derive(Clone, Debug)]
pub struct ServerFlagsState {
    client_flags: Option<FlagSet>,
    acknowledged: FlagSet,
    certificate_request: Option<RequestReason>,
    flag_accepted: bool,
    client_certificate: bool,
    resumed_path: Option<AuthPath>,
    request_client_auth: Flag,
}

impl ServerFlagsState {
    /// The flags the client proposed (empty if it sent none, or on TLS 1.2,
    /// where they have no effect: RCA-12).
    pub fn client_flags(&self) -> FlagSet {
        self.client_flags.clone().unwrap_or_default()
    }

    /// Whether the client set `request_client_auth` in a TLS 1.3 ClientHello.
    pub fn client_requested_auth(&self) -> bool {
        self.client_flags
            .as_ref()
            .is_some_and(|flags| flags.contains(self.request_client_auth))
    }

    /// The flags this server acknowledged (in its CertificateRequest).
    pub fn acknowledged(&self) -> &FlagSet {
        &self.acknowledged
    }

    /// Why a CertificateRequest was sent, if one was.
    pub fn certificate_request(&self) -> Option<RequestReason> {
        self.certificate_request
    }

    /// Whether the authentication path was restored from a TLS 1.3 ticket that
    /// carries this crate's record (RCA-11). Whether a connection resumed at
    /// all, TLS 1.2 included, is `ServerConnection::handshake_kind()`.
    pub fn restored_from_ticket(&self) -> bool {
        self.resumed_path.is_some()
    }

    /// The path of a client that holds certificates (see [`peer`]).
    fn path_with_certificate(&self) -> AuthPath {
        match self.resumed_path {
            Some(path) => path,
            None if self.flag_accepted => AuthPath::Flag,
            // TLS 1.2, or no flag: the config's own verifier checked it.
            None => AuthPath::Normal,
        }
    }

    /// The path to record in a ticket issued at the end of a TLS 1.3 handshake.
    fn ticket_path(&self) -> AuthPath {
        match (self.resumed_path, self.client_certificate) {
            (Some(path), _) => path,
            (None, false) => AuthPath::None,
            (None, true) => self.path_with_certificate(),
        }
    }
}

/// The TLS Flags state of `conn`, if [`ServerFlags`] is installed in its config
/// and a ClientHello has been processed.
pub fn server_state(conn: &ServerConnection) -> Option<&ServerFlagsState> {
    conn.extension_hook()
        .and_then(|hook| hook.as_any().downcast_ref::<ServerFlagsHook>())
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

#[derive(Debug)]
struct ServerFlagsHook {
    policy: ServerFlags,
    state: ServerFlagsState,
}

impl ServerFlagsHook {
    fn tls_flags<'a>(&self, received: &'a Received<'_>) -> Option<&'a [u8]> {
        received
            .extensions
            .iter()
            .find(|ext| ext.typ() == self.policy.code_points.extension_type)
            .map(RawExtension::body)
    }

    fn client_hello(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        if received.version != Some(ProtocolVersion::TLSv1_3) {
            // RCA-12: on TLS 1.2 the flag has no effect.
            return Ok(());
        }
        let flags = match self.tls_flags(received) {
            Some(body) => rules::server_receives_client_hello(body)?,
            None => FlagSet::new(),
        };
        if let Some(first) = &self.state.client_flags {
            // RCA-13: the second ClientHello repeats the first's flags.
            rules::server_checks_retry(first, &flags)?;
        }
        self.state.client_flags = Some(flags);
        Ok(())
    }
}

impl ServerConnectionHook for ServerFlagsHook {
    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        match received.message {
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
                    )?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn client_cert_verifier(
        &mut self,
        configured: &Arc<dyn ClientCertVerifier>,
    ) -> Option<Arc<dyn ClientCertVerifier>> {
        // Only asked in full TLS 1.3 handshakes: never under a PSK (RCA-11),
        // never on TLS 1.2 (RCA-12). A ticket considered earlier was not used.
        self.state.resumed_path = None;
        if !self.state.client_requested_auth() {
            return None;
        }
        self.state.flag_accepted = true;
        // RCA-14: anonymous unless the policy says otherwise, and a server that
        // requires every client to authenticate says so.
        Some(Arc::clone(
            if self.policy.require_certificate || configured.client_auth_mandatory() {
                &self.policy.required
            } else {
                &self.policy.optional
            },
        ))
    }

    fn extensions_to_send(
        &mut self,
        message: HandshakeMessage,
        _version: ProtocolVersion,
    ) -> Vec<RawExtension> {
        if message != HandshakeMessage::CertificateRequest {
            // Nothing else is ever acknowledged: RCA-4 and TF-11.
            return Vec::new();
        }
        if !self.state.flag_accepted {
            self.state.certificate_request = Some(RequestReason::ServerPolicy);
            return Vec::new();
        }
        // RCA-2: acknowledge the flag in the CertificateRequest; RCA-4: only
        // because the ClientHello carried it.
        self.state.certificate_request = Some(RequestReason::Flag);
        self.state.acknowledged = [self.state.request_client_auth].into_iter().collect();
        self.state
            .acknowledged
            .to_extension_data()
            .and_then(|body| {
                RawExtension::for_sending(self.policy.code_points.extension_type, body)
            })
            .into_iter()
            .collect()
    }

    fn ticket_data(&mut self) -> Option<Vec<u8>> {
        Some(ticket::encode(self.state.ticket_path()))
    }

    fn resumption(&mut self, ticket_data: Option<&[u8]>) -> bool {
        // RCA-11: a ticket keeps the path it was issued on; one without our
        // record (or with a damaged one) is not used, so it cannot lead to a
        // more privileged state.
        match ticket_data.and_then(ticket::decode) {
            Some(path) => {
                self.state.resumed_path = Some(path);
                true
            }
            None => false,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
