//! The reference model, written from SPECIFICATION.md.

use super::*;

/// What the client remembers between connections.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientMemory {
    /// TLS 1.3 tickets, oldest first, each with the path it was issued on;
    /// rustls keeps the 8 newest and uses (and removes) the newest.
    pub(crate) tickets: VecDeque<AuthPath>,
    /// The TLS 1.2 session (session ID) and its path.
    pub(crate) tls12_session: Option<AuthPath>,
    /// rustls remembers the server's key-exchange group once the client has
    /// sent its Finished; a client with the hint sends the right key share and
    /// gets no HelloRetryRequest.
    pub(crate) kx_hint: bool,
}

/// Who runs the client side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientActor {
    Flags,
    Plain,
    Script,
}

/// Who runs the server side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerActor {
    Flags(FlagsPolicy),
    Plain,
    Script,
}

/// A client-certificate verifier: which CA it trusts, whether it refuses an
/// empty Certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verifier {
    pub(crate) trusts: Cert,
    pub(crate) mandatory: bool,
    pub(crate) path: AuthPath,
}

/// Decodes a `tls_flags` `extension_data` as TF-1, TF-2 and TF-3 say.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<u16>, Failure> {
    let fail = |alert, rule| Failure {
        aborts: Side::Client, // fixed up by the caller
        alert,
        why: vec![Why::Rule(rule)],
    };
    let Some((&len, octets)) = bytes.split_first() else {
        return Err(fail(AlertDescription::DecodeError, "TF-1"));
    };
    // TF-1: L in 1..=255 and exactly L octets; TF-3: L = 0 is a decode error.
    if len == 0 || octets.len() != usize::from(len) {
        return Err(fail(AlertDescription::DecodeError, "TF-1"));
    }
    // TF-3: minimal: not all zero, no trailing zero octet.
    if octets.last() == Some(&0) {
        return Err(fail(AlertDescription::IllegalParameter, "TF-3"));
    }
    let mut flags = Vec::new();
    for (k, octet) in (0u16..).zip(octets) {
        for j in 0..8 {
            if octet & (1 << j) != 0 {
                flags.push(8 * k + j);
            }
        }
    }
    Ok(flags)
}

/// A message a server sends that may carry `tls_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerMessage {
    Tls12Sh,
    Sh,
    Hrr,
    Ee,
    Cr,
    Ct,
    Nst,
}

/// The reference model of one connection, written from SPECIFICATION.md.
///
/// Where the spec leaves room, the model decides (each marked "Decision" at
/// its place): (1) `tls_flags` in a TLS 1.2 ServerHello is TF-5
/// `illegal_parameter` whatever its content; (2) on TLS 1.2 the server
/// ignores `tls_flags` in the ClientHello, malformed or not (RCA-12); (3)
/// `OtherRequests::FlagIdentityOn` without a flag-identity resolver leaves the
/// answer to the config's resolver; (4) a proposed flag set in a CertificateRequest
/// counts as acknowledged, like `request_client_auth` (RCA-2).
///
/// What is rustls's choice rather than the spec's is modelled as rustls does
/// it: `unknown_ca` for a certificate from a CA the verifier does not trust,
/// `certificate_required` for an empty one where one is required,
/// `unsupported_extension` (`bad_certificate` in a Certificate entry) for an
/// unrequested extension at a side without hooks, two tickets per connection
/// (the newest used first), TLS 1.2 session-ID resumption, and the
/// key-exchange hint that spares a returning client the HelloRetryRequest.
pub(crate) struct Model<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) client: ClientActor,
    pub(crate) server: ServerActor,
    /// What the client's ClientHello carries as `tls_flags`.
    pub(crate) client_hello: Option<Value>,
}

impl<'a> Model<'a> {
    pub(crate) fn new(scenario: &'a Scenario) -> Self {
        let spec = &scenario.client;
        let client = match (&scenario.misbehaviour, spec.hook) {
            (Some(Misbehaviour::Client(..)), _) => ClientActor::Script,
            (_, ClientHook::Flags) => ClientActor::Flags,
            (_, ClientHook::Plain) => ClientActor::Plain,
        };
        let server = match (&scenario.misbehaviour, scenario.server.flags) {
            (Some(Misbehaviour::Server(..)), _) => ServerActor::Script,
            (_, Some(policy)) => ServerActor::Flags(policy),
            (_, None) => ServerActor::Plain,
        };
        // RCA-1: the flag only with an identity at hand; TF-4: no flags, no
        // extension; TF-9: several flags in one extension.
        let request = match (spec.propose_3, spec.identity.has_certs()) {
            (false, false) => None,
            (false, true) => Some(Value::Flags(&[RCA])),
            (true, false) => Some(Value::Flags(&[3])),
            (true, true) => Some(Value::Flags(&[3, RCA])),
        };
        let client_hello = match (&scenario.misbehaviour, client) {
            (Some(Misbehaviour::Client(ClientPlace::Ch, value)), _) => Some(value.clone()),
            (_, ClientActor::Flags | ClientActor::Script) => request,
            (_, ClientActor::Plain) => None,
        };
        Self {
            scenario,
            client,
            server,
            client_hello,
        }
    }

    /// The flags the honest client proposed (its own `offered`).
    pub(crate) fn offered(&self) -> Vec<u16> {
        match (self.client, &self.client_hello) {
            (ClientActor::Flags, Some(value)) => decode(&value.bytes()).expect("honest"),
            _ => Vec::new(),
        }
    }

    pub(crate) fn injected(&self, message: ServerMessage) -> Option<&Value> {
        let Some(Misbehaviour::Server(place, value)) = &self.scenario.misbehaviour else {
            return None;
        };
        let hit = matches!(
            (place, message),
            (ServerPlace::Sh, ServerMessage::Sh | ServerMessage::Tls12Sh)
                | (ServerPlace::Hrr, ServerMessage::Hrr)
                | (ServerPlace::Ee, ServerMessage::Ee)
                | (ServerPlace::Cr, ServerMessage::Cr)
                | (ServerPlace::Ct, ServerMessage::Ct)
                | (ServerPlace::Nst, ServerMessage::Nst)
        );
        hit.then_some(value)
    }

    /// The client receives `value` as `tls_flags` in `message`; returns the
    /// flags it takes from it.
    pub(crate) fn client_receives(
        &self,
        message: ServerMessage,
        value: Option<&Value>,
    ) -> Result<Vec<u16>, Failure> {
        let client_fails = |alert, why| Failure {
            aborts: Side::Client,
            alert,
            why,
        };
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        match self.client {
            // A misbehaving client accepts anything (its peer is honest anyway).
            ClientActor::Script => Ok(Vec::new()),
            // Without a hook, rustls refuses extensions it did not send where
            // RFC 8446 §4.2 says so, and ignores unknown ones in CR and NST.
            ClientActor::Plain => match message {
                ServerMessage::Cr | ServerMessage::Nst => Ok(Vec::new()),
                _ => Err(client_fails(unsolicited_alert(message), vec![Why::Rustls])),
            },
            ClientActor::Flags => {
                // TF-5: no tls_flags in a TLS 1.2 ServerHello, whatever its
                // content. (Decision: the message check comes before decoding:
                // the extension does not belong there at all.)
                if message == ServerMessage::Tls12Sh {
                    return Err(client_fails(
                        AlertDescription::IllegalParameter,
                        vec![Why::Rule("TF-5")],
                    ));
                }
                let flags = decode(&value.bytes()).map_err(|f| Failure {
                    aborts: Side::Client,
                    ..f
                })?;
                let offered = self.offered();
                let has_rca = flags.contains(&RCA);
                match message {
                    ServerMessage::Cr => {
                        // RCA-6; other flags are requests (TF-8).
                        if has_rca && !offered.contains(&RCA) {
                            return Err(client_fails(
                                AlertDescription::IllegalParameter,
                                vec![Why::Rule("RCA-6")],
                            ));
                        }
                        Ok(flags)
                    }
                    ServerMessage::Nst => {
                        // RCA-7; unknown flags are requests (TF-8).
                        if has_rca {
                            return Err(client_fails(
                                AlertDescription::IllegalParameter,
                                vec![Why::Rule("RCA-7")],
                            ));
                        }
                        Ok(flags)
                    }
                    _ => {
                        // Responses: TF-6 (proposed only), RCA-7 (never 80).
                        let mut why = Vec::new();
                        if has_rca {
                            why.push(Why::Rule("RCA-7"));
                        }
                        if flags.iter().any(|f| !offered.contains(f)) {
                            why.push(Why::Rule("TF-6"));
                        }
                        if why.is_empty() {
                            Ok(flags)
                        } else {
                            Err(client_fails(AlertDescription::IllegalParameter, why))
                        }
                    }
                }
            }
        }
    }

    /// The server receives the ClientHello; returns the flags it takes from it.
    pub(crate) fn server_receives_client_hello(&self, tls13: bool) -> Result<Vec<u16>, Failure> {
        let ServerActor::Flags(_) = self.server else {
            // Plain and scripted servers have no flag path; rustls ignores an
            // unknown ClientHello extension.
            return Ok(Vec::new());
        };
        // RCA-12 (decision): on TLS 1.2 the server ignores tls_flags in the
        // ClientHello altogether, malformed or not: TLS Flags is a TLS 1.3
        // extension and an unknown extension in a TLS 1.2 hello is ignored.
        let (true, Some(value)) = (tls13, &self.client_hello) else {
            return Ok(Vec::new());
        };
        // TF-8: every flag is accepted; the server acts on 80 only.
        decode(&value.bytes()).map_err(|f| Failure {
            aborts: Side::Server,
            ..f
        })
    }

    /// What the client sends in answer to a CertificateRequest.
    pub(crate) fn client_answer(&self, cause: CertificateRequestCause) -> Option<Cert> {
        let spec = &self.scenario.client;
        match (self.client, cause) {
            (ClientActor::Plain, _) => spec.config_cert,
            // The scripted client answers every request with its flag
            // identity if it has one, else with the config's resolver.
            (ClientActor::Script, _) => {
                if spec.identity.configured() {
                    spec.identity.answer()
                } else {
                    spec.config_cert
                }
            }
            // RCA-5: the acknowledged request gets the flag identity (empty
            // if nothing suitable).
            (ClientActor::Flags, CertificateRequestCause::Flag) => spec.identity.answer(),
            // RCA-9: other requests per `OtherRequests`.
            (ClientActor::Flags, _) => match spec.other_requests {
                OtherRequests::Anonymous => None,
                // Decision: `FlagIdentityOn` without a flag identity resolver
                // leaves the answer to the config's resolver.
                OtherRequests::FlagIdentityOn(_) if spec.identity.configured() => {
                    spec.identity.answer()
                }
                _ => spec.config_cert,
            },
        }
    }

    /// The server verifies the client's certificate; returns the path.
    pub(crate) fn verify(verifier: Verifier, cert: Option<Cert>) -> Result<AuthPath, Failure> {
        match cert {
            Some(cert) if cert == verifier.trusts => Ok(verifier.path),
            // RCA-10: the other CA is unknown to this path; rustls says unknown_ca.
            Some(_) => Err(Failure {
                aborts: Side::Server,
                alert: AlertDescription::UnknownCA,
                why: vec![Why::BadCertificate],
            }),
            None if verifier.mandatory => Err(Failure {
                aborts: Side::Server,
                alert: AlertDescription::CertificateRequired,
                why: vec![Why::NoCertificate],
            }),
            // RCA-14: anonymous.
            None => Ok(AuthPath::None),
        }
    }

    /// The server receives entry 0 of the client's Certificate carrying the
    /// misbehaving client's value.
    pub(crate) fn server_receives_certificate(&self, value: &Value) -> Result<(), Failure> {
        let server_fails = |alert, why| Failure {
            aborts: Side::Server,
            alert,
            why,
        };
        match self.server {
            ServerActor::Flags(_) => {
                let flags = decode(&value.bytes()).map_err(|f| Failure {
                    aborts: Side::Server,
                    ..f
                })?;
                // RCA-8 for the flag; TF-6 for anything the CertificateRequest
                // did not propose (at most 80). Either way illegal_parameter.
                let mut why = Vec::new();
                if flags.contains(&RCA) {
                    why.extend([Why::Rule("RCA-8"), Why::Rule("TF-6")]);
                }
                if flags.iter().any(|f| *f != RCA) && why.is_empty() {
                    why.push(Why::Rule("TF-6"));
                }
                Err(server_fails(AlertDescription::IllegalParameter, why))
            }
            // No hook: the CertificateRequest proposed no tls_flags, and rustls
            // refuses an extension it did not request.
            ServerActor::Plain | ServerActor::Script => Err(server_fails(
                unsolicited_alert(ServerMessage::Ct),
                vec![Why::Rustls],
            )),
        }
    }

    pub(crate) fn client_view(
        &self,
        certificate_request: Option<CertificateRequestCause>,
        acknowledged: &BTreeSet<u16>,
    ) -> Option<ClientView> {
        (self.client == ClientActor::Flags).then(|| ClientView {
            requested_client_auth: self.offered().contains(&RCA),
            certificate_request,
            acknowledged: acknowledged.iter().copied().collect(),
        })
    }

    pub(crate) fn server_view(
        &self,
        client_flags: &[u16],
        certificate_request: Option<CertificateRequestCause>,
        resumed: bool,
    ) -> Option<ServerView> {
        matches!(self.server, ServerActor::Flags(_)).then(|| ServerView {
            client_flags: client_flags.to_vec(),
            requested_client_auth: client_flags.contains(&RCA),
            certificate_request,
            // The server acknowledges request_client_auth only, and only in
            // its CertificateRequest (TF-11).
            acknowledged: certificate_request == Some(CertificateRequestCause::Flag),
            resumed,
        })
    }

    /// One connection: the prediction, and the client's memory afterwards.
    pub(crate) fn connect(&self, memory: &mut ClientMemory) -> Prediction {
        let result = if self.scenario.client.tls12_only {
            self.connect_tls12(memory)
        } else {
            self.connect_tls13(memory)
        };
        match result {
            Ok(success) => Prediction::Success(success),
            Err(failure) => Prediction::Failure(failure),
        }
    }

    pub(crate) fn connect_tls12(&self, memory: &mut ClientMemory) -> Result<Success, Failure> {
        let spec = &self.scenario;
        // RCA-12: the ClientHello's flags have no effect (and are not checked).
        self.server_receives_client_hello(false)?;
        self.client_receives(
            ServerMessage::Tls12Sh,
            self.injected(ServerMessage::Tls12Sh),
        )?;
        let no_flags = BTreeSet::new();
        if let Some(path) = memory.tls12_session {
            // Session-ID resumption restores the path (RCA-11).
            return Ok(Success {
                version: ProtocolVersion::TLSv1_2,
                kind: HandshakeKind::Resumed,
                path,
                chain: chain_of(path),
                client: self.client_view(None, &no_flags),
                // `restored_from_ticket` is about TLS 1.3 tickets only (documented).
                server: self.server_view(&[], None, false),
            });
        }
        // The config's own verifier asks (RCA-3); the flag plays no part (RCA-12).
        let verifier = (spec.server.own != OwnVerifier::None).then_some(Verifier {
            trusts: Cert::Normal,
            mandatory: spec.server.own.mandatory(),
            path: AuthPath::Normal,
        });
        // The fork has no TLS 1.2 CertificateRequest hook on the client
        // (documented): the config's resolver answers, whatever
        // `OtherRequests` says, and the client records no cause. The server's
        // hook is told of the request, which its config's verifier sends.
        let sent_request = verifier.map(|_| CertificateRequestCause::ServerPolicy);
        let path = match verifier {
            Some(verifier) => Self::verify(verifier, spec.client.config_cert)?,
            None => AuthPath::None,
        };
        memory.tls12_session = Some(path);
        Ok(Success {
            version: ProtocolVersion::TLSv1_2,
            kind: HandshakeKind::Full,
            path,
            chain: chain_of(path),
            client: self.client_view(None, &no_flags),
            server: self.server_view(&[], sent_request, false),
        })
    }

    pub(crate) fn connect_tls13(&self, memory: &mut ClientMemory) -> Result<Success, Failure> {
        let spec = &self.scenario;
        // rustls uses (and removes) the newest ticket, whatever happens next.
        let ticket = memory.tickets.pop_back();
        // Forced (the server has one group the client sends no share for),
        // or the two providers' defaults disagree; either way not once the
        // client has learnt the server's group.
        let hrr = (spec.server.hrr
            || spec
                .client
                .provider
                .needs_hello_retry_with(spec.server.provider))
            && !memory.kx_hint;
        // The server checks the ClientHello (the second one after an HRR
        // carries the same flags, RCA-13).
        let client_flags = self.server_receives_client_hello(true)?;
        let flagged = client_flags.contains(&RCA);
        // Flags the client takes as acknowledged (TF-7).
        let mut acknowledged = BTreeSet::new();
        if hrr {
            acknowledged.extend(
                self.client_receives(ServerMessage::Hrr, self.injected(ServerMessage::Hrr))?,
            );
        }
        acknowledged
            .extend(self.client_receives(ServerMessage::Sh, self.injected(ServerMessage::Sh))?);
        acknowledged
            .extend(self.client_receives(ServerMessage::Ee, self.injected(ServerMessage::Ee))?);

        let full = if ticket.is_none() {
            Some(self.full_handshake(flagged, memory, &mut acknowledged)?)
        } else {
            // RCA-11: no CertificateRequest under a PSK (and no server
            // Certificate); the path and the certificate come from the ticket.
            memory.kx_hint = true;
            None
        };
        // The server sends two NewSessionTickets after the handshake; their
        // flags are requests (TF-8), never acknowledgements.
        self.client_receives(ServerMessage::Nst, self.injected(ServerMessage::Nst))?;
        let (path, chain, kind, client_request, server_request) = match (full, ticket) {
            (Some(full), _) => (
                full.path,
                full.chain,
                if hrr {
                    HandshakeKind::FullWithHelloRetryRequest
                } else {
                    HandshakeKind::Full
                },
                full.client_request,
                full.server_request,
            ),
            (None, Some(path)) => (path, chain_of(path), HandshakeKind::Resumed, None, None),
            (None, None) => unreachable!("resumed without a ticket"),
        };
        for _ in 0..2 {
            if memory.tickets.len() == 8 {
                memory.tickets.pop_front();
            }
            memory.tickets.push_back(path);
        }
        Ok(Success {
            version: ProtocolVersion::TLSv1_3,
            kind,
            path,
            chain,
            client: self.client_view(client_request, &acknowledged),
            server: self.server_view(&client_flags, server_request, ticket.is_some()),
        })
    }

    /// A full TLS 1.3 handshake from the CertificateRequest on.
    pub(crate) fn full_handshake(
        &self,
        flagged: bool,
        memory: &mut ClientMemory,
        acknowledged: &mut BTreeSet<u16>,
    ) -> Result<Full, Failure> {
        let spec = &self.scenario;
        let own = (spec.server.own != OwnVerifier::None).then_some(Verifier {
            trusts: Cert::Normal,
            mandatory: spec.server.own.mandatory(),
            path: AuthPath::Normal,
        });
        // Which CertificateRequest, carrying what, checked by which verifier.
        let request = match self.server {
            // RCA-2: the accepted flag gets an acknowledging request and the
            // flag path's verifier (RCA-10); RCA-14: empty is anonymous
            // unless the policy says so: `require_certificate`, or a config
            // whose own verifier requires every client to authenticate (the
            // flag never gets a client past that) ...
            ServerActor::Flags(policy) if flagged => Some((
                Some(Value::Flags(&[RCA])),
                CertificateRequestCause::Flag,
                Verifier {
                    trusts: Cert::Bot,
                    mandatory: policy.require_certificate || spec.server.own.mandatory(),
                    path: AuthPath::Flag,
                },
            )),
            // ... RCA-3/RCA-4: the config's own verifier asks without it.
            _ => own.map(|own| {
                (
                    self.injected(ServerMessage::Cr).cloned(),
                    CertificateRequestCause::ServerPolicy,
                    own,
                )
            }),
        };
        let mut client_request = None;
        let mut cert = None;
        if let Some((carried, _, _)) = &request {
            let flags = self.client_receives(ServerMessage::Cr, carried.as_ref())?;
            // Decision: a proposed flag set in the CertificateRequest counts as
            // acknowledged, as request_client_auth does (RCA-2, TF-7).
            acknowledged.extend(flags.iter().filter(|f| self.offered().contains(f)));
            // RCA-9: the acknowledgement tells the client why it is asked.
            let cause = if flags.contains(&RCA) {
                CertificateRequestCause::Flag
            } else {
                CertificateRequestCause::ServerPolicy
            };
            client_request = Some(cause);
            cert = self.client_answer(cause);
        }
        acknowledged
            .extend(self.client_receives(ServerMessage::Ct, self.injected(ServerMessage::Ct))?);
        // The client has processed the server's flight and sends its Finished.
        memory.kx_hint = true;
        let Some((_, reason, verifier)) = request else {
            return Ok(Full {
                path: AuthPath::None,
                chain: None,
                client_request: None,
                server_request: None,
            });
        };
        if let (Some(_), Some(Misbehaviour::Client(ClientPlace::Ct, value))) =
            (cert, &spec.misbehaviour)
        {
            self.server_receives_certificate(value)?;
        }
        let path = Self::verify(verifier, cert)?;
        Ok(Full {
            path,
            chain: cert.filter(|_| path != AuthPath::None),
            client_request,
            server_request: Some(reason),
        })
    }
}

/// What a full TLS 1.3 handshake decided.
pub(crate) struct Full {
    pub(crate) path: AuthPath,
    pub(crate) chain: Option<Cert>,
    pub(crate) client_request: Option<CertificateRequestCause>,
    pub(crate) server_request: Option<CertificateRequestCause>,
}

/// The certificate that goes with a path.
pub(crate) fn chain_of(path: AuthPath) -> Option<Cert> {
    match path {
        AuthPath::Flag => Some(Cert::Bot),
        AuthPath::Normal => Some(Cert::Normal),
        AuthPath::None => None,
    }
}

/// The alert rustls sends for a `tls_flags` extension it did not offer, in a
/// side without hooks: `unsupported_extension` (RFC 8446 §4.2), except in a
/// Certificate entry, where rustls's parser refuses an unknown extension with
/// `bad_certificate` (rustls's choice, like `unknown_ca`).
pub(crate) fn unsolicited_alert(message: ServerMessage) -> AlertDescription {
    match message {
        ServerMessage::Ct => AlertDescription::BadCertificate,
        _ => AlertDescription::UnsupportedExtension,
    }
}

/// The reference state.
#[derive(Clone)]
pub(crate) struct ModelState {
    pub(crate) scenario: Scenario,
    pub(crate) memory: ClientMemory,
    /// The prediction for the last `Connect`.
    pub(crate) last: Option<Prediction>,
}

impl fmt::Debug for ModelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shrunk failures print the initial state: the scenario is all there is.
        self.scenario.fmt(f)
    }
}

pub(crate) struct Reference;

impl ReferenceStateMachine for Reference {
    type State = ModelState;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Self::State> {
        scenario()
            .prop_map(|scenario| ModelState {
                scenario,
                memory: ClientMemory::default(),
                last: None,
            })
            .boxed()
    }

    fn transitions(_state: &Self::State) -> BoxedStrategy<Self::Transition> {
        prop_oneof![4 => Just(Step::Connect), 1 => Just(Step::FreshClient)].boxed()
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        match transition {
            Step::Connect => {
                let prediction = Model::new(&state.scenario).connect(&mut state.memory);
                state.last = Some(prediction);
            }
            Step::FreshClient => {
                state.memory = ClientMemory::default();
                state.last = None;
            }
        }
        state
    }
}
