//! Extension hooks driven by a script, recording everything they see.
//!
//! They exercise the fork's generic hook points without any TLS Flags logic:
//! what to add to which message, what to refuse, which verifier or resolver to
//! choose, what to store in tickets. After the handshake a test reads the log
//! back through `extension_hook()` on the connection.

use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::hooks::{
    ChosenBy, ClientConnectionHook, ClientEvent, ClientHooks, EchPlacement, HandshakeMessage,
    HookError, OfferedSession, RawExtension, Received, Sending, ServerConnectionHook, ServerEvent,
    ServerHooks,
};
use rustls::pki_types::{CertificateDer, DnsName, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::{AlertDescription, Error, ProtocolVersion};

/// Extension types no TLS implementation assigns, which the scripted hooks
/// register by default: the tests are about the mechanism, not about any
/// particular extension.
pub const TEST_TYPES: [u16; 2] = [0xff77, 0xff78];

/// What the scripted hooks register by default: [`TEST_TYPES`] and both TLS
/// Flags extension types (62, 0xFE01), so a script can play a peer that
/// misbehaves with them, or watch them.
pub const DEFAULT_TYPES: [u16; 4] = [TEST_TYPES[0], TEST_TYPES[1], 62, 0xfe01];

/// A copy of a scripted hook's log outside the connection, for tests with
/// several scripted hooks on one connection (`extension_hook` finds only the
/// first of a type). Holds the log of the latest connection.
pub type Mirror = Arc<Mutex<Vec<Event>>>;

fn record(log: &mut Vec<Event>, mirror: Option<&Mirror>, event: Event) {
    if let Some(mirror) = mirror {
        lock(mirror).push(event.clone());
    }
    log.push(event);
}

fn lock(mirror: &Mirror) -> std::sync::MutexGuard<'_, Vec<Event>> {
    mirror
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A new, empty mirror.
pub fn mirror() -> Mirror {
    Mirror::default()
}

/// What `mirror` holds now.
pub fn mirrored(mirror: &Mirror) -> Vec<Event> {
    lock(mirror).clone()
}

/// One thing a scripted hook saw or was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `received()` with these extensions (type, body).
    Received {
        /// The message.
        message: HandshakeMessage,
        /// The negotiated version, if known.
        version: Option<ProtocolVersion>,
        /// The extensions as (type, body).
        extensions: Vec<(u16, Vec<u8>)>,
    },
    /// `extensions_to_send()` for this message and version (server side).
    Sending(HandshakeMessage, ProtocolVersion),
    /// `client_cert_verifier()` was asked.
    VerifierAsked,
    /// `client_cert_resolver()` was asked.
    ResolverAsked,
    /// `accept_ticket()` with this ticket data.
    Resumption(Option<Vec<u8>>),
    /// `accept_ticket()` for a session of this version whose client presented
    /// this chain (`None`: no certificate).
    Offered(ProtocolVersion, Option<Vec<CertificateDer<'static>>>),
    /// `ServerEvent::FullHandshake`.
    FullHandshake(ProtocolVersion),
    /// `ServerEvent::Resumed` with this ticket data.
    Resumed(ProtocolVersion, Option<Vec<u8>>),
    /// `ServerEvent::CertificateRequest`.
    CertificateRequest(ChosenBy),
    /// `ClientEvent::CertificateSent`.
    CertificateSent {
        /// Whose resolver answered.
        resolver: ChosenBy,
        /// Whether a certificate was sent.
        certificate: bool,
    },
}

/// Makes an extension to send.
pub fn ext(typ: u16, body: &[u8]) -> RawExtension {
    RawExtension::new(typ, body)
}

fn received_event(received: &Received<'_>) -> Event {
    Event::Received {
        message: received.message(),
        version: received.version(),
        extensions: received
            .extensions()
            .map(|e| (e.typ(), e.body().to_vec()))
            .collect(),
    }
}

fn refusal(
    refuse: Option<(HandshakeMessage, AlertDescription)>,
    message: HandshakeMessage,
) -> Result<(), HookError> {
    match refuse {
        Some((target, alert)) if target == message => Err(HookError::new(
            alert,
            Error::General(format!("scripted refusal of {message:?}")),
        )),
        _ => Ok(()),
    }
}

/// What a scripted client hook does.
#[derive(Clone, Debug)]
pub struct ClientScript {
    /// The extension types it registers ([`DEFAULT_TYPES`] by default).
    pub types: Vec<u16>,
    /// ClientHello extensions.
    pub client_hello: Vec<RawExtension>,
    /// Types that go in the inner ClientHello only under ECH.
    pub inner_only: Vec<u16>,
    /// Extensions for entries of the client's Certificate: (index, extension).
    pub certificate: Vec<(usize, RawExtension)>,
    /// Refuse this received message with this alert.
    pub refuse: Option<(HandshakeMessage, AlertDescription)>,
    /// Resolver to answer a CertificateRequest with.
    pub resolver: Option<Arc<dyn ResolvesClientCert>>,
    /// Where to copy the log, too.
    pub mirror: Option<Mirror>,
}

impl ClientScript {
    /// Adds `extension` to the ClientHello (inner and outer under ECH).
    #[must_use]
    pub fn with_client_hello(mut self, extension: RawExtension) -> Self {
        self.client_hello.push(extension);
        self
    }

    /// Registers this script in `config` for its types.
    ///
    /// # Errors
    ///
    /// As `ExtensionHooks::register`.
    pub fn install(
        self,
        config: &mut rustls::ClientConfig,
    ) -> Result<(), rustls::hooks::RegistrationError> {
        let types = self.types.clone();
        config.extension_hooks.register(&types, Arc::new(self))
    }
}

impl Default for ClientScript {
    fn default() -> Self {
        Self {
            types: DEFAULT_TYPES.to_vec(),
            client_hello: Vec::new(),
            inner_only: Vec::new(),
            certificate: Vec::new(),
            refuse: None,
            resolver: None,
            mirror: None,
        }
    }
}

impl ClientHooks for ClientScript {
    fn new_connection(&self, _server_name: &ServerName<'_>) -> Box<dyn ClientConnectionHook> {
        if let Some(mirror) = &self.mirror {
            lock(mirror).clear();
        }
        Box::new(ScriptedClient {
            script: self.clone(),
            log: Vec::new(),
        })
    }

    fn ech_placement(&self, typ: u16) -> EchPlacement {
        if self.inner_only.contains(&typ) {
            EchPlacement::InnerOnly
        } else {
            EchPlacement::Both
        }
    }
}

/// A client connection's scripted hook.
#[derive(Debug)]
pub struct ScriptedClient {
    script: ClientScript,
    /// Everything seen, in order.
    pub log: Vec<Event>,
}

impl ScriptedClient {
    fn record(&mut self, event: Event) {
        record(&mut self.log, self.script.mirror.as_ref(), event);
    }
}

impl ClientConnectionHook for ScriptedClient {
    fn extensions_to_send(&mut self, sending: &Sending) -> Vec<RawExtension> {
        match sending.message {
            HandshakeMessage::ClientHello => self.script.client_hello.clone(),
            HandshakeMessage::Certificate { index } => self
                .script
                .certificate
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, e)| e.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        self.record(received_event(received));
        refusal(self.script.refuse, received.message())
    }

    fn client_cert_resolver(&mut self) -> Option<Arc<dyn ResolvesClientCert>> {
        self.record(Event::ResolverAsked);
        self.script.resolver.clone()
    }

    fn event(&mut self, event: &ClientEvent) {
        if let ClientEvent::CertificateSent {
            resolver,
            certificate,
        } = *event
        {
            self.record(Event::CertificateSent {
                resolver,
                certificate,
            });
        }
    }
}

/// What a scripted server hook does.
#[derive(Clone, Debug)]
pub struct ServerScript {
    /// The extension types it registers ([`DEFAULT_TYPES`] by default).
    pub types: Vec<u16>,
    /// Extensions to add: (message, extension).
    pub add: Vec<(HandshakeMessage, RawExtension)>,
    /// Refuse this received message with this alert.
    pub refuse: Option<(HandshakeMessage, AlertDescription)>,
    /// Verifier to choose for the connection ...
    pub verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// ... but only if the ClientHello carried this extension type.
    pub verifier_if_client_hello_has: Option<u16>,
    /// Data to store in tickets.
    pub ticket_data: Option<Vec<u8>>,
    /// Refuse to resume with any ticket.
    pub refuse_resumption: bool,
    /// Where to copy the log, too.
    pub mirror: Option<Mirror>,
}

impl ServerScript {
    /// Adds `extension` to every `message` the server sends.
    #[must_use]
    pub fn with(mut self, message: HandshakeMessage, extension: RawExtension) -> Self {
        self.add.push((message, extension));
        self
    }

    /// Registers this script in `config` for its types.
    ///
    /// # Errors
    ///
    /// As `ExtensionHooks::register`.
    pub fn install(
        self,
        config: &mut rustls::ServerConfig,
    ) -> Result<(), rustls::hooks::RegistrationError> {
        let types = self.types.clone();
        config.extension_hooks.register(&types, Arc::new(self))
    }
}

impl Default for ServerScript {
    fn default() -> Self {
        Self {
            types: DEFAULT_TYPES.to_vec(),
            add: Vec::new(),
            refuse: None,
            verifier: None,
            verifier_if_client_hello_has: None,
            ticket_data: None,
            refuse_resumption: false,
            mirror: None,
        }
    }
}

impl ServerHooks for ServerScript {
    fn new_connection(&self, _server_name: Option<&DnsName<'_>>) -> Box<dyn ServerConnectionHook> {
        if let Some(mirror) = &self.mirror {
            lock(mirror).clear();
        }
        Box::new(ScriptedServer {
            script: self.clone(),
            log: Vec::new(),
        })
    }
}

/// A server connection's scripted hook.
#[derive(Debug)]
pub struct ScriptedServer {
    script: ServerScript,
    /// Everything seen, in order.
    pub log: Vec<Event>,
}

impl ScriptedServer {
    fn client_hello_had(&self, typ: u16) -> bool {
        self.log.iter().any(|event| {
            matches!(event, Event::Received { message: HandshakeMessage::ClientHello, extensions, .. }
                if extensions.iter().any(|(t, _)| *t == typ))
        })
    }
}

impl ScriptedServer {
    fn record(&mut self, event: Event) {
        record(&mut self.log, self.script.mirror.as_ref(), event);
    }
}

impl ServerConnectionHook for ScriptedServer {
    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        self.record(received_event(received));
        refusal(self.script.refuse, received.message())
    }

    fn extensions_to_send(&mut self, sending: &Sending) -> Vec<RawExtension> {
        let message = sending.message;
        if let Some(version) = sending.version {
            self.record(Event::Sending(message, version));
        }
        self.script
            .add
            .iter()
            .filter(|(m, _)| *m == message)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn client_cert_verifier(
        &mut self,
        _configured: &Arc<dyn ClientCertVerifier>,
    ) -> Option<Arc<dyn ClientCertVerifier>> {
        self.record(Event::VerifierAsked);
        match self.script.verifier_if_client_hello_has {
            Some(typ) if !self.client_hello_had(typ) => None,
            _ => self.script.verifier.clone(),
        }
    }

    fn ticket_data(&mut self) -> Option<Vec<u8>> {
        self.script.ticket_data.clone()
    }

    fn accept_ticket(&mut self, session: &OfferedSession<'_>) -> bool {
        self.log
            .push(Event::Resumption(session.data.map(<[u8]>::to_vec)));
        self.log.push(Event::Offered(
            session.version,
            session.peer_certificates.map(<[_]>::to_vec),
        ));
        !self.script.refuse_resumption
    }

    fn event(&mut self, event: &ServerEvent<'_>) {
        self.record(match *event {
            ServerEvent::FullHandshake { version } => Event::FullHandshake(version),
            ServerEvent::Resumed {
                version,
                ticket_data,
            } => Event::Resumed(version, ticket_data.map(<[u8]>::to_vec)),
            ServerEvent::CertificateRequest { verifier } => Event::CertificateRequest(verifier),
            _ => return,
        });
    }
}

/// The scripted client hook of `conn`.
pub fn client_log(conn: &rustls::ClientConnection) -> &[Event] {
    &conn
        .extension_hook::<ScriptedClient>()
        .expect("a ScriptedClient hook")
        .log
}

/// The scripted server hook of `conn`.
pub fn server_log(conn: &rustls::ServerConnection) -> &[Event] {
    &conn
        .extension_hook::<ScriptedServer>()
        .expect("a ScriptedServer hook")
        .log
}

/// The extensions logged as received in `message`, in order of receipt.
pub fn received_in(log: &[Event], message: HandshakeMessage) -> Vec<Vec<(u16, Vec<u8>)>> {
    log.iter()
        .filter_map(|event| match event {
            Event::Received {
                message: m,
                extensions,
                ..
            } if *m == message => Some(extensions.clone()),
            _ => None,
        })
        .collect()
}
