//! The system under test: the scenario as real configs and in-memory handshakes, and the state-machine property.

use super::*;

pub(crate) fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::new)
}

pub(crate) fn identity_resolver(
    identity: FlagIdentity,
    provider: Provider,
) -> Option<Arc<dyn ResolvesClientCert>> {
    let pki = pki();
    match identity {
        FlagIdentity::None => None,
        FlagIdentity::Bot => Some(config::resolver(&pki.bot, provider)),
        FlagIdentity::Normal => Some(config::resolver(&pki.normal_client, provider)),
        FlagIdentity::NoneSuitable => Some(config::nothing_suitable()),
        FlagIdentity::NothingAtHand => Some(config::no_identity()),
    }
}

pub(crate) fn build_client(scenario: &Scenario) -> Arc<ClientConfig> {
    let pki = pki();
    let spec = &scenario.client;
    let versions: &[&'static rustls::SupportedProtocolVersion] = if spec.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = config::client_with(pki, spec.provider.crypto(), versions);
    if spec.config_cert == Some(Cert::Normal) {
        config.client_auth_cert_resolver = config::resolver(&pki.normal_client, spec.provider);
    }
    let model = Model::new(scenario);
    match model.client {
        ClientActor::Plain => {}
        ClientActor::Flags => {
            let policy = match spec.identity {
                FlagIdentity::None => ClientFlags::without_identity(),
                FlagIdentity::Bot => {
                    ClientFlags::request_client_auth(config::certified_key(&pki.bot, spec.provider))
                }
                FlagIdentity::Normal => ClientFlags::request_client_auth(config::certified_key(
                    &pki.normal_client,
                    spec.provider,
                )),
                FlagIdentity::NoneSuitable => {
                    ClientFlags::request_client_auth_with(config::nothing_suitable())
                }
                FlagIdentity::NothingAtHand => {
                    ClientFlags::request_client_auth_with(config::no_identity())
                }
            };
            let policy = if spec.propose_3 {
                policy.propose(Flag::new(3).expect("flag"))
            } else {
                policy
            };
            policy
                .other_requests(spec.other_requests)
                .install(&mut config)
                .expect("TLS Flags registers its extension type");
        }
        ClientActor::Script => {
            let Some(Misbehaviour::Client(place, value)) = &scenario.misbehaviour else {
                unreachable!("a scripted client misbehaves");
            };
            ClientScript {
                client_hello: model.client_hello.iter().map(Value::extension).collect(),
                certificate: match place {
                    ClientPlace::Ct => vec![(0, value.extension())],
                    ClientPlace::Ch => Vec::new(),
                },
                resolver: identity_resolver(spec.identity, spec.provider),
                ..ClientScript::default()
            }
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
        }
    }
    Arc::new(config)
}

pub(crate) fn build_server(scenario: &Scenario) -> Arc<ServerConfig> {
    let pki = pki();
    let spec = &scenario.server;
    let crypto = if spec.hrr {
        spec.provider
            .crypto_with_only_group(spec.provider.group_without_key_share())
    } else {
        spec.provider.crypto()
    };
    let builder = ServerConfig::builder_with_provider(crypto)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions");
    let builder = match spec.own {
        OwnVerifier::None => builder.with_no_client_auth(),
        OwnVerifier::NormalOptional | OwnVerifier::NormalMandatory => builder
            .with_client_cert_verifier(config::verifier(
                &pki.normal_ca,
                spec.provider,
                spec.own.mandatory(),
            )),
    };
    let mut config = builder
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity");
    match Model::new(scenario).server {
        ServerActor::Plain => {}
        ServerActor::Flags(policy) => {
            let bots: Arc<dyn ClientCertVerifier> =
                config::verifier(&pki.bot_ca, spec.provider, policy.inner_mandatory);
            let flags = ServerFlags::request_client_auth(bots);
            let flags = if policy.require_certificate {
                flags.require_certificate()
            } else {
                flags
            };
            flags
                .install(&mut config)
                .expect("TLS Flags registers its extension type");
        }
        ServerActor::Script => {
            let Some(Misbehaviour::Server(place, value)) = &scenario.misbehaviour else {
                unreachable!("a scripted server misbehaves");
            };
            let message = match place {
                ServerPlace::Sh => Msg::ServerHello,
                ServerPlace::Hrr => Msg::HelloRetryRequest,
                ServerPlace::Ee => Msg::EncryptedExtensions,
                ServerPlace::Cr => Msg::CertificateRequest,
                ServerPlace::Ct => Msg::Certificate { index: 0 },
                ServerPlace::Nst => Msg::NewSessionTicket,
            };
            ServerScript::default()
                .with(message, value.extension())
                .install(&mut config)
                .expect("TLS Flags registers its extension type");
        }
    }
    Arc::new(config)
}

pub(crate) struct Real {
    pub(crate) client: Arc<ClientConfig>,
    pub(crate) server: Arc<ServerConfig>,
    /// The steps so far and what they did, for messages.
    pub(crate) history: Vec<String>,
}

pub(crate) fn cert_of(chain: &[CertificateDer<'static>]) -> Cert {
    let pki = pki();
    if chain == &pki.bot.chain[..] {
        Cert::Bot
    } else if chain == &pki.normal_client.chain[..] {
        Cert::Normal
    } else {
        panic!("unexpected client chain {chain:?}")
    }
}

pub(crate) fn numbers(flags: impl Iterator<Item = Flag>) -> Vec<u16> {
    flags.map(Flag::get).collect()
}

pub(crate) fn why(error: &Error) -> Why {
    if let Some(flags) = FlagsError::from_rustls(error) {
        return Why::Rule(flags.rule());
    }
    match error {
        Error::InvalidCertificate(_) => Why::BadCertificate,
        Error::NoCertificatesPresented => Why::NoCertificate,
        _ => Why::Rustls,
    }
}

pub(crate) fn observe(
    outcome: &Outcome,
    client: &ClientConnection,
    server: &ServerConnection,
    scenario: &Scenario,
) -> Observed {
    let raised = |side: Side| {
        outcome
            .error(side)
            .filter(|error| !matches!(error, Error::AlertReceived(_)))
    };
    for side in [Side::Client, Side::Server] {
        if let Some(error) = raised(side) {
            return Observed::Failure {
                aborts: side,
                alert: outcome.alert_received_by(side.peer()),
                why: why(error),
                error: format!("{error:?} / {outcome:?}"),
            };
        }
    }
    if !outcome.is_ok() {
        return Observed::Failure {
            aborts: Side::Client,
            alert: None,
            why: Why::Rustls,
            error: format!("only alerts received: {outcome:?}"),
        };
    }
    let model = Model::new(scenario);
    let who = peer(server);
    assert_eq!(
        client.handshake_kind(),
        server.handshake_kind(),
        "both sides agree on the handshake kind"
    );
    Observed::Success(Success {
        version: server.protocol_version().expect("negotiated"),
        kind: server.handshake_kind().expect("completed"),
        path: who.path,
        chain: who.chain.map(cert_of),
        client: match model.client {
            ClientActor::Flags => client_state(client).map(|state| ClientView {
                requested_client_auth: state.requested_client_auth(),
                certificate_request: state.certificate_request(),
                acknowledged: numbers(state.acknowledged().iter()),
            }),
            ClientActor::Plain => {
                assert!(client_state(client).is_none(), "no ClientFlags, no state");
                None
            }
            ClientActor::Script => None,
        },
        server: match model.server {
            ServerActor::Flags(_) => server_state(server).map(|state| ServerView {
                client_flags: numbers(state.client_flags().iter()),
                requested_client_auth: state.requested_client_auth(),
                certificate_request: state.certificate_request(),
                acknowledged: match numbers(state.acknowledged().iter())[..] {
                    [] => false,
                    [RCA] => true,
                    ref other => panic!("server acknowledged {other:?}"),
                },
                resumed: state.restored_from_ticket(),
            }),
            ServerActor::Plain | ServerActor::Script => None,
        },
    })
}

/// One line per connection for the history.
pub(crate) fn summary(observed: &Observed) -> String {
    match observed {
        Observed::Success(success) => format!(
            "{:?} {:?}, path {:?}",
            success.version, success.kind, success.path
        ),
        Observed::Failure {
            aborts, alert, why, ..
        } => format!("{aborts:?} aborts ({why:?}), peer receives {alert:?}"),
    }
}

pub(crate) fn matches(prediction: &Prediction, observed: &Observed) -> bool {
    match (prediction, observed) {
        (Prediction::Success(predicted), Observed::Success(observed)) => predicted == observed,
        (
            Prediction::Failure(predicted),
            Observed::Failure {
                aborts, alert, why, ..
            },
        ) => {
            predicted.aborts == *aborts
                && Some(predicted.alert) == *alert
                && predicted.why.contains(why)
        }
        _ => false,
    }
}

pub(crate) struct RealSystem;

impl StateMachineTest for RealSystem {
    type SystemUnderTest = Real;
    type Reference = Reference;

    fn init_test(ref_state: &ModelState) -> Self::SystemUnderTest {
        Real {
            client: build_client(&ref_state.scenario),
            server: build_server(&ref_state.scenario),
            history: Vec::new(),
        }
    }

    fn apply(mut real: Real, ref_state: &ModelState, transition: Step) -> Real {
        match transition {
            Step::FreshClient => {
                real.client = build_client(&ref_state.scenario);
                real.history.push("FreshClient".into());
            }
            Step::Connect => {
                let prediction = ref_state.last.as_ref().expect("predicted");
                let (mut client, mut server) = connect(&real.client, &real.server);
                let outcome = handshake(&mut client, &mut server);
                let observed = observe(&outcome, &client, &server, &ref_state.scenario);
                assert!(
                    matches(prediction, &observed),
                    "the implementation departs from the model\n\
                     scenario:  {:#?}\n\
                     earlier steps: {:#?}\n\
                     predicted: {prediction:#?}\n\
                     observed:  {observed:#?}",
                    ref_state.scenario,
                    real.history,
                );
                real.history
                    .push(format!("Connect: {}", summary(&observed)));
                // Application data flows exactly when the handshake succeeded.
                let data = exchange_data(&mut client, &mut server, b"ping");
                match prediction {
                    Prediction::Success(_) => {
                        let (at_server, at_client) = data.expect("data flows");
                        assert_eq!(
                            (&at_server[..], &at_client[..]),
                            (&b"ping"[..], &b"ping"[..])
                        );
                    }
                    Prediction::Failure(_) => assert!(
                        data.is_err(),
                        "application data flowed after a failed handshake"
                    ),
                }
            }
        }
        real
    }
}

pub(crate) fn proptest_config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(proptest_config())]

    /// Sequences of up to six steps (connections and fresh clients) per scenario.
    #[test]
    fn connections_follow_the_model(sequential 1..7 => RealSystem);
}

/// The reference model alone (no handshakes): over many generated cases,
/// every kind of outcome the model knows is predicted at least once, so the
/// generator does reach every branch the property compares. With
/// `--nocapture` it prints how often each was predicted.
#[test]
pub(crate) fn the_generator_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let strategy = (
        Reference::init_state(),
        proptest::collection::vec(Reference::transitions(&dummy_state()), 1..7),
    );
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeMap::<String, usize>::new();
    for _ in 0..10_000 {
        let (mut state, steps) = strategy.new_tree(&mut runner).expect("tree").current();
        for step in steps {
            state = Reference::apply(state, &step);
            if let (Step::Connect, Some(prediction)) = (step, &state.last) {
                for category in categories(&state.scenario, prediction) {
                    *seen.entry(category).or_default() += 1;
                }
            }
        }
    }
    for (category, count) in &seen {
        println!("{count:>7}  {category}");
    }
    let expected = [
        "success TLSv1_3 Full path Flag",
        "success TLSv1_3 Full path Normal",
        "success TLSv1_3 Full path None",
        "success TLSv1_3 FullWithHelloRetryRequest path Flag",
        "success TLSv1_3 Resumed path Flag",
        "success TLSv1_3 Resumed path Normal",
        "success TLSv1_3 Resumed path None",
        "success TLSv1_2 Full path Normal",
        "success TLSv1_2 Full path None",
        "success TLSv1_2 Resumed path None",
        "client sees CertificateRequest Flag",
        "client sees CertificateRequest ServerPolicy",
        "client acknowledged [3]",
        "client acknowledged [3, 80]",
        "Client aborts, DecodeError, [Rule(\"TF-1\")]",
        "Client aborts, IllegalParameter, [Rule(\"TF-3\")]",
        "Client aborts, IllegalParameter, [Rule(\"TF-5\")]",
        "Client aborts, IllegalParameter, [Rule(\"TF-6\")]",
        "Client aborts, IllegalParameter, [Rule(\"RCA-6\")]",
        "Client aborts, IllegalParameter, [Rule(\"RCA-7\")]",
        "Client aborts, IllegalParameter, [Rule(\"RCA-7\"), Rule(\"TF-6\")]",
        "Client aborts, UnsupportedExtension, [Rustls]",
        "Client aborts, BadCertificate, [Rustls]",
        "Server aborts, DecodeError, [Rule(\"TF-1\")]",
        "Server aborts, IllegalParameter, [Rule(\"TF-3\")]",
        "Server aborts, IllegalParameter, [Rule(\"TF-6\")]",
        "Server aborts, IllegalParameter, [Rule(\"RCA-8\"), Rule(\"TF-6\")]",
        "Server aborts, BadCertificate, [Rustls]",
        "Server aborts, UnknownCA, [BadCertificate]",
        "Server aborts, CertificateRequired, [NoCertificate]",
        "misbehaviour without effect",
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|category| !seen.contains_key(**category))
        .collect();
    assert!(missing.is_empty(), "never predicted: {missing:#?}");
}

pub(crate) fn dummy_state() -> ModelState {
    ModelState {
        scenario: Scenario {
            client: ClientSpec {
                provider: Provider::Ring,
                hook: ClientHook::Flags,
                identity: FlagIdentity::None,
                propose_3: false,
                other_requests: OtherRequests::ConfigResolver,
                tls12_only: false,
                config_cert: None,
            },
            server: ServerSpec {
                provider: Provider::Ring,
                flags: None,
                own: OwnVerifier::None,
                hrr: false,
            },
            misbehaviour: None,
        },
        memory: ClientMemory::default(),
        last: None,
    }
}

/// The categories a prediction falls in, for the coverage test.
pub(crate) fn categories(scenario: &Scenario, prediction: &Prediction) -> Vec<String> {
    let mut out = Vec::new();
    match prediction {
        Prediction::Success(success) => {
            out.push(format!(
                "success {:?} {:?} path {:?}",
                success.version, success.kind, success.path
            ));
            if let Some(client) = &success.client {
                if let Some(cause) = client.certificate_request {
                    out.push(format!("client sees CertificateRequest {cause:?}"));
                }
                if !client.acknowledged.is_empty() {
                    out.push(format!("client acknowledged {:?}", client.acknowledged));
                }
            }
            if scenario.misbehaviour.is_some() {
                out.push("misbehaviour without effect".into());
            }
        }
        Prediction::Failure(failure) => out.push(format!(
            "{:?} aborts, {:?}, {:?}",
            failure.aborts, failure.alert, failure.why
        )),
    }
    out
}
