//! The client side: send `request_client_auth` when an identity is at hand, and
//! answer a CertificateRequest according to whether it acknowledged the flag.

use std::any::Any;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::hooks::{
    ClientConnectionHook, ClientHelloExtension, ClientHooks, EchPlacement, HookError, RawExtension,
    Received,
};
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, SignatureScheme};
use rustls_tls_flags::{Flag, FlagSet, MessageKind};

use crate::code_points::CodePoints;
use crate::message::kind_of;
use crate::rules;

/// How to answer a TLS 1.3 CertificateRequest that does not acknowledge the
/// flag (RCA-9: the client knows which requests its flag caused). A TLS 1.2
/// CertificateRequest is always answered by the config's own resolver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtherRequests {
    /// With the `ClientConfig`'s own `client_auth_cert_resolver` (the default).
    #[default]
    ConfigResolver,
    /// With an empty Certificate.
    Anonymous,
    /// With the flag identity too. For servers on the experimental code point
    /// 0xFE01 that request a certificate on the flag but do not echo it.
    FlagIdentity,
}

/// The client's TLS Flags policy; install it in a [`ClientConfig`].
///
/// ```no_run
/// # fn demo(config: &mut rustls::ClientConfig, bot: std::sync::Arc<rustls::sign::CertifiedKey>) {
/// use rustls_req_client_auth::ClientFlags;
///
/// ClientFlags::request_client_auth(bot).install(config);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientFlags {
    code_points: CodePoints,
    identity: Option<Arc<dyn ResolvesClientCert>>,
    also_propose: FlagSet,
    other_requests: OtherRequests,
    placement: EchPlacement,
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

    /// TLS Flags without `request_client_auth`: only what [`ClientFlags::propose`] adds.
    pub fn without_identity() -> Self {
        Self {
            code_points: CodePoints::DEFAULT,
            identity: None,
            also_propose: FlagSet::new(),
            other_requests: OtherRequests::default(),
            placement: EchPlacement::InnerOnly,
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

    /// Installs the policy in `config`, replacing any extension hooks there.
    pub fn install(self, config: &mut ClientConfig) {
        config.extension_hooks = Some(Arc::new(self));
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
    fn new_connection(&self, _server_name: &ServerName<'_>) -> Box<dyn ClientConnectionHook> {
        Box::new(ClientFlagsHook {
            policy: self.clone(),
            state: ClientFlagsState {
                offered: self.proposal(),
                acknowledged: FlagSet::new(),
                certificate_request: None,
                request_client_auth: self.code_points.request_client_auth,
            },
        })
    }
}

/// Why the server sent a CertificateRequest, as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateRequestCause {
    /// It acknowledged `request_client_auth` (RCA-2).
    Flag,
    /// It did not: the server asks for its own reasons (RCA-3).
    ServerPolicy,
}

/// What TLS Flags did on a client connection; see [`client_state`].
#[derive(Clone, Debug)]
pub struct ClientFlagsState {
    offered: FlagSet,
    acknowledged: FlagSet,
    certificate_request: Option<CertificateRequestCause>,
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
}

/// The TLS Flags state of `conn`, if [`ClientFlags`] is installed in its config.
pub fn client_state(conn: &ClientConnection) -> Option<&ClientFlagsState> {
    conn.extension_hook()
        .and_then(|hook| hook.as_any().downcast_ref::<ClientFlagsHook>())
        .map(|hook| &hook.state)
}

#[derive(Debug)]
struct ClientFlagsHook {
    policy: ClientFlags,
    state: ClientFlagsState,
}

impl ClientFlagsHook {
    fn flag(&self) -> Flag {
        self.policy.code_points.request_client_auth
    }
}

impl ClientConnectionHook for ClientFlagsHook {
    fn client_hello_extensions(&mut self) -> Vec<ClientHelloExtension> {
        // TF-4: no flags, no extension.
        let Some(body) = self.state.offered.to_extension_data() else {
            return Vec::new();
        };
        RawExtension::for_sending(self.policy.code_points.extension_type, body)
            .map(|extension| ClientHelloExtension {
                extension,
                placement: self.policy.placement,
            })
            .into_iter()
            .collect()
    }

    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        let Some(message) = kind_of(received.message) else {
            return Ok(());
        };
        let body = received
            .extensions
            .iter()
            .find(|ext| ext.typ() == self.policy.code_points.extension_type)
            .map(RawExtension::body);
        let flags = match body {
            Some(body) => {
                let tls12 = message == MessageKind::ServerHello
                    && received.version == Some(ProtocolVersion::TLSv1_2);
                rules::client_receives(message, tls12, body, &self.state.offered, self.flag())?
            }
            None => FlagSet::new(),
        };
        if message == MessageKind::CertificateRequest {
            // RCA-9: the acknowledgement tells the client why it is asked.
            self.state.certificate_request = Some(if flags.contains(self.flag()) {
                CertificateRequestCause::Flag
            } else {
                CertificateRequestCause::ServerPolicy
            });
        }
        if !message.is_request() || message == MessageKind::CertificateRequest {
            let acknowledged = flags.intersection(&self.state.offered);
            self.state.acknowledged = self.state.acknowledged.union(&acknowledged);
        }
        Ok(())
    }

    fn client_cert_resolver(&mut self) -> Option<Arc<dyn ResolvesClientCert>> {
        let flag_identity = || self.policy.identity.clone();
        match (self.state.certificate_request, self.policy.other_requests) {
            // RCA-5: answered with a Certificate; rustls sends an empty one if the
            // identity has nothing suitable, and does not abort.
            (Some(CertificateRequestCause::Flag), _) | (_, OtherRequests::FlagIdentity) => {
                flag_identity()
            }
            (_, OtherRequests::Anonymous) => Some(Arc::new(NoIdentity)),
            (_, OtherRequests::ConfigResolver) => None,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
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
