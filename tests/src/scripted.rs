//! Extension hooks driven by a script, recording everything they see.
//!
//! They exercise the fork's generic hook points without any TLS Flags logic:
//! what to add to which message, what to refuse, which verifier or resolver to
//! choose, what to store in tickets. After the handshake a test reads the log
//! back through `extension_hook()` on the connection.

use std::any::Any;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::hooks::{
    ClientConnectionHook, ClientHelloExtension, ClientHooks, EchPlacement, HandshakeMessage,
    HookError, RawExtension, Received, ServerConnectionHook, ServerHooks,
};
use rustls::pki_types::ServerName;
use rustls::server::danger::ClientCertVerifier;
use rustls::{AlertDescription, Error, ProtocolVersion};

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
    /// `extensions_to_send()` for this message and version.
    Sending(HandshakeMessage, ProtocolVersion),
    /// `client_cert_verifier()` was asked.
    VerifierAsked,
    /// `client_cert_resolver()` was asked.
    ResolverAsked,
    /// `resumption()` with this ticket data.
    Resumption(Option<Vec<u8>>),
}

/// Makes an extension to send; panics on a type rustls implements itself.
pub fn ext(typ: u16, body: &[u8]) -> RawExtension {
    RawExtension::for_sending(typ, body.to_vec()).expect("type rustls does not implement")
}

fn log_received(log: &mut Vec<Event>, received: &Received<'_>) {
    log.push(Event::Received {
        message: received.message,
        version: received.version,
        extensions: received
            .extensions
            .iter()
            .map(|e| (e.typ(), e.body().to_vec()))
            .collect(),
    });
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
#[derive(Clone, Debug, Default)]
pub struct ClientScript {
    /// ClientHello extensions.
    pub client_hello: Vec<ClientHelloExtension>,
    /// Extensions for entries of the client's Certificate: (index, extension).
    pub certificate: Vec<(usize, RawExtension)>,
    /// Refuse this received message with this alert.
    pub refuse: Option<(HandshakeMessage, AlertDescription)>,
    /// Resolver to answer a CertificateRequest with.
    pub resolver: Option<Arc<dyn ResolvesClientCert>>,
}

impl ClientScript {
    /// Adds `extension` to the ClientHello (inner and outer under ECH).
    #[must_use]
    pub fn with_client_hello(mut self, extension: RawExtension) -> Self {
        self.client_hello.push(ClientHelloExtension {
            extension,
            placement: EchPlacement::Both,
        });
        self
    }

    /// Installs this script in `config`.
    pub fn install(self, config: &mut rustls::ClientConfig) {
        config.extension_hooks = Some(Arc::new(self));
    }
}

impl ClientHooks for ClientScript {
    fn new_connection(&self, _server_name: &ServerName<'_>) -> Box<dyn ClientConnectionHook> {
        Box::new(ScriptedClient {
            script: self.clone(),
            log: Vec::new(),
        })
    }
}

/// A client connection's scripted hook.
#[derive(Debug)]
pub struct ScriptedClient {
    script: ClientScript,
    /// Everything seen, in order.
    pub log: Vec<Event>,
}

impl ClientConnectionHook for ScriptedClient {
    fn client_hello_extensions(&mut self) -> Vec<ClientHelloExtension> {
        self.script.client_hello.clone()
    }

    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        log_received(&mut self.log, received);
        refusal(self.script.refuse, received.message)
    }

    fn client_cert_resolver(&mut self) -> Option<Arc<dyn ResolvesClientCert>> {
        self.log.push(Event::ResolverAsked);
        self.script.resolver.clone()
    }

    fn certificate_extensions(&mut self, index: usize) -> Vec<RawExtension> {
        self.script
            .certificate
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What a scripted server hook does.
#[derive(Clone, Debug, Default)]
pub struct ServerScript {
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
}

impl ServerScript {
    /// Adds `extension` to every `message` the server sends.
    #[must_use]
    pub fn with(mut self, message: HandshakeMessage, extension: RawExtension) -> Self {
        self.add.push((message, extension));
        self
    }

    /// Installs this script in `config`.
    pub fn install(self, config: &mut rustls::ServerConfig) {
        config.extension_hooks = Some(Arc::new(self));
    }
}

impl ServerHooks for ServerScript {
    fn new_connection(&self) -> Box<dyn ServerConnectionHook> {
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

impl ServerConnectionHook for ScriptedServer {
    fn received(&mut self, received: &Received<'_>) -> Result<(), HookError> {
        log_received(&mut self.log, received);
        refusal(self.script.refuse, received.message)
    }

    fn extensions_to_send(
        &mut self,
        message: HandshakeMessage,
        version: ProtocolVersion,
    ) -> Vec<RawExtension> {
        self.log.push(Event::Sending(message, version));
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
        self.log.push(Event::VerifierAsked);
        match self.script.verifier_if_client_hello_has {
            Some(typ) if !self.client_hello_had(typ) => None,
            _ => self.script.verifier.clone(),
        }
    }

    fn ticket_data(&mut self) -> Option<Vec<u8>> {
        self.script.ticket_data.clone()
    }

    fn resumption(&mut self, ticket_data: Option<&[u8]>) -> bool {
        self.log
            .push(Event::Resumption(ticket_data.map(<[u8]>::to_vec)));
        !self.script.refuse_resumption
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The scripted client hook of `conn`.
pub fn client_log(conn: &rustls::ClientConnection) -> &[Event] {
    &conn
        .extension_hook()
        .and_then(|hook| hook.as_any().downcast_ref::<ScriptedClient>())
        .expect("a ScriptedClient hook")
        .log
}

/// The scripted server hook of `conn`.
pub fn server_log(conn: &rustls::ServerConnection) -> &[Event] {
    &conn
        .extension_hook()
        .and_then(|hook| hook.as_any().downcast_ref::<ScriptedServer>())
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
