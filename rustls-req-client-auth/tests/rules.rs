//! Every TF and RCA rule the hook crate enforces, checked over real handshakes
//! (in memory, both crypto providers). The violations that end a handshake
//! with an alert are rows of one table ([`refusals`], each row naming its
//! rule); every other test's name starts with the rule ids of
//! SPECIFICATION.md. CONFORMANCE.md maps each rule to its row or test.
//!
//! Misbehaving peers are built from the scripted hooks of `integration-tests`:
//! a server or client that puts `tls_flags` where the rules forbid it.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::{exchange_data, handshake};
use integration_tests::scripted::{ext, received_in, server_log, ClientScript, ServerScript};
use integration_tests::{provider_tests, Provider, Side, TestPki};
use rustls::hooks::{HandshakeMessage as Msg, RawExtension};
use rustls::{AlertDescription, ClientConfig, Error, HandshakeKind, ServerConfig};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause};
use rustls_req_client_auth::server::{peer, server_state, AuthPath};
use rustls_req_client_auth::{
    ClientFlags, CodePoints, Flag, FlagSet, FlagsError, OtherRequests, ServerFlags,
};
use rustls_tls_flags::MessageKind;

const TLS_FLAGS: u16 = 62;

fn flags(numbers: &[u16]) -> FlagSet {
    numbers
        .iter()
        .map(|n| Flag::new(*n).expect("flag number"))
        .collect()
}

/// A `tls_flags` extension carrying `numbers`.
fn tls_flags(numbers: &[u16]) -> RawExtension {
    ext(
        TLS_FLAGS,
        &flags(numbers).to_extension_data().expect("non-empty"),
    )
}

/// A flag-enabled server whose flag path trusts the bot CA only.
fn flag_server(pki: &TestPki, provider: Provider) -> ServerConfig {
    let mut config = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

/// A bot presenting `identity` on the flag path.
fn bot(
    pki: &TestPki,
    provider: Provider,
    identity: &integration_tests::pki::Identity,
) -> ClientConfig {
    let mut config = config::client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(identity, provider))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

fn run(
    client: ClientConfig,
    server: ServerConfig,
) -> (
    rustls::ClientConnection,
    rustls::ServerConnection,
    integration_tests::Outcome,
) {
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    let outcome = handshake(&mut c, &mut s);
    (c, s, outcome)
}

/// The `FlagsError` behind `error`.
#[track_caller]
fn flags_error(error: &Error) -> &FlagsError {
    FlagsError::from_rustls(error).unwrap_or_else(|| panic!("not a FlagsError: {error:?}"))
}

/// A misbehaving client: its ClientHello carries `extension` as given.
fn client_sending(pki: &TestPki, provider: Provider, extension: RawExtension) -> ClientConfig {
    let mut config = config::client(pki, provider);
    ClientScript {
        client_hello: vec![extension],
        ..ClientScript::default()
    }
    .install(&mut config)
    .expect("TLS Flags registers its extension type");
    config
}

/// A server that puts `extension` into `message`, whatever the client sent.
fn server_sending(mut config: ServerConfig, message: Msg, extension: RawExtension) -> ServerConfig {
    ServerScript::default()
        .with(message, extension)
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

/// What the refusing side of a [`Refusal`] raises.
#[derive(Debug)]
enum Raised {
    /// A `FlagsError` for `rule`, equal to `exactly` where given, whose
    /// message contains `mentions`.
    Flags {
        rule: &'static str,
        exactly: Option<FlagsError>,
        mentions: &'static str,
    },
    /// rustls's own refusal of the peer's certificate.
    InvalidCertificate,
}

/// A handshake one side must refuse: who refuses, with which alert, raising
/// which error. After the refusal no application data flows.
struct Refusal {
    /// The rule the row checks (its id first) and how the peer breaks it.
    case: &'static str,
    client: fn(&TestPki, Provider) -> ClientConfig,
    server: fn(&TestPki, Provider) -> ServerConfig,
    refuser: Side,
    alert: AlertDescription,
    raised: Raised,
}

/// The rules whose violation ends the handshake with an alert, one row per
/// form of violation.
#[expect(clippy::too_many_lines, reason = "a table, one row per violation")]
fn refusals() -> Vec<Refusal> {
    use AlertDescription::{DecodeError, IllegalParameter, UnknownCA};
    let by_rule = |rule, exactly, mentions| Raised::Flags {
        rule,
        exactly,
        mentions,
    };
    vec![
        Refusal {
            case: "TF-1: tls_flags in the ClientHello says L = 2 but one octet follows",
            client: |pki, provider| client_sending(pki, provider, ext(TLS_FLAGS, &[2, 1])),
            server: flag_server,
            refuser: Side::Server,
            alert: DecodeError,
            raised: by_rule("TF-1", None, "ClientHello"),
        },
        Refusal {
            case: "TF-3: a trailing zero octet after flag 0",
            client: |pki, provider| client_sending(pki, provider, ext(TLS_FLAGS, &[2, 1, 0])),
            server: flag_server,
            refuser: Side::Server,
            alert: IllegalParameter,
            raised: by_rule("TF-3", None, ""),
        },
        Refusal {
            case: "TF-3: a single zero octet",
            client: |pki, provider| client_sending(pki, provider, ext(TLS_FLAGS, &[1, 0])),
            server: flag_server,
            refuser: Side::Server,
            alert: IllegalParameter,
            raised: by_rule("TF-3", None, ""),
        },
        Refusal {
            case: "TF-6: EncryptedExtensions carries flag 3, which the client never sent",
            client: |pki, provider| bot(pki, provider, &pki.bot),
            server: |pki, provider| {
                server_sending(
                    config::server(pki, provider),
                    Msg::EncryptedExtensions,
                    tls_flags(&[3]),
                )
            },
            refuser: Side::Client,
            alert: IllegalParameter,
            raised: by_rule(
                "TF-6",
                Some(FlagsError::Unsolicited {
                    message: MessageKind::EncryptedExtensions,
                    flag: Flag::new(3).expect("flag"),
                }),
                "",
            ),
        },
        Refusal {
            case: "RCA-6: a CertificateRequest acknowledges a flag a client without identity never sent",
            client: |pki, provider| {
                let mut config = config::client(pki, provider);
                ClientFlags::without_identity()
                    .install(&mut config)
                    .expect("TLS Flags registers its extension type");
                config
            },
            server: |pki, provider| {
                let requesting = config::server_requesting(
                    pki,
                    provider,
                    config::verifier(&pki.normal_ca, provider, false),
                );
                server_sending(requesting, Msg::CertificateRequest, tls_flags(&[80]))
            },
            refuser: Side::Client,
            alert: IllegalParameter,
            raised: by_rule(
                "RCA-6",
                Some(FlagsError::UnrequestedAcknowledgement),
                "RCA-6",
            ),
        },
        Refusal {
            case: "RCA-7: request_client_auth in EncryptedExtensions",
            client: |pki, provider| bot(pki, provider, &pki.bot),
            server: |pki, provider| {
                server_sending(
                    config::server(pki, provider),
                    Msg::EncryptedExtensions,
                    tls_flags(&[80]),
                )
            },
            refuser: Side::Client,
            alert: IllegalParameter,
            raised: by_rule(
                "RCA-7",
                Some(FlagsError::FlagInServerMessage {
                    message: MessageKind::EncryptedExtensions,
                }),
                "",
            ),
        },
        Refusal {
            case: "RCA-8: request_client_auth in the client's Certificate entry",
            client: |pki, provider| {
                let mut config = config::client(pki, provider);
                config.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
                config.cert_compressors = Vec::new();
                ClientScript {
                    client_hello: vec![tls_flags(&[80])],
                    certificate: vec![(0, tls_flags(&[80]))],
                    ..ClientScript::default()
                }
                .install(&mut config)
                .expect("TLS Flags registers its extension type");
                config
            },
            server: flag_server,
            refuser: Side::Server,
            alert: IllegalParameter,
            raised: by_rule("RCA-8", Some(FlagsError::FlagInClientCertificate), ""),
        },
        Refusal {
            case: "RCA-10: a certificate of the normal CA on the flag path",
            client: |pki, provider| bot(pki, provider, &pki.normal_client),
            server: flag_server,
            refuser: Side::Server,
            alert: UnknownCA,
            raised: Raised::InvalidCertificate,
        },
    ]
}

fn refusals_end_the_handshake_with_their_alert(provider: Provider) {
    let pki = TestPki::shared();
    for row in refusals() {
        let case = row.case;
        let (mut c, mut s, outcome) = run((row.client)(pki, provider), (row.server)(pki, provider));
        let raised = outcome.assert_alert(row.refuser, row.alert);
        match &row.raised {
            Raised::Flags {
                rule,
                exactly,
                mentions,
            } => {
                let error = flags_error(raised);
                assert_eq!(error.rule(), *rule, "{case}");
                if let Some(exactly) = exactly {
                    assert_eq!(error, exactly, "{case}");
                }
                assert!(raised.to_string().contains(mentions), "{case}: {raised}");
            }
            Raised::InvalidCertificate => {
                assert!(
                    matches!(raised, Error::InvalidCertificate(_)),
                    "{case}: {raised:?}"
                );
            }
        }
        assert!(
            exchange_data(&mut c, &mut s, b"no data after a fatal alert").is_err(),
            "{case}"
        );
    }
}

fn rca1_tf4_client_without_identity_sends_no_extension(provider: Provider) {
    let pki = TestPki::shared();
    // a resolver that has no certificate at hand
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::no_identity())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = config::server(pki, provider);
    ServerScript::default()
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (c, s, outcome) = run(client, server);
    outcome.assert_ok();

    let state = client_state(&c).expect("installed");
    assert!(!state.requested_client_auth());
    assert!(state.offered().is_empty());
    // TF-4: no tls_flags extension at all, not an empty one
    let hellos = received_in(server_log(&s), Msg::ClientHello);
    assert!(
        hellos[0].iter().all(|(typ, _)| *typ != TLS_FLAGS),
        "{hellos:?}"
    );
}

fn rca2_flagged_client_gets_acknowledging_certificate_request(provider: Provider) {
    let pki = TestPki::shared();
    let (c, s, outcome) = run(bot(pki, provider, &pki.bot), flag_server(pki, provider));
    outcome.assert_ok();

    let client = client_state(&c).expect("installed");
    assert!(client.requested_client_auth());
    assert_eq!(
        client.certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(client.acknowledged(), &flags(&[80]));
    let server = server_state(&s).expect("installed");
    assert!(server.requested_client_auth());
    assert_eq!(
        server.certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(server.acknowledged(), &flags(&[80]));
    let who = peer(&s);
    assert_eq!(who.path, AuthPath::Flag);
    assert_eq!(who.chain, Some(&pki.bot.chain[..]));
}

fn tf8_tf9_unknown_and_several_flags_in_client_hello_are_accepted(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .propose(Flag::new(5).expect("flag"))
        .propose(Flag::new(2039).expect("flag"))
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (c, s, outcome) = run(client, flag_server(pki, provider));
    outcome.assert_ok();
    assert_eq!(
        client_state(&c).expect("installed").offered(),
        &flags(&[5, 80, 2039])
    );
    let server = server_state(&s).expect("installed");
    assert_eq!(server.client_flags(), &flags(&[5, 80, 2039]));
    // only request_client_auth is acknowledged
    assert_eq!(server.acknowledged(), &flags(&[80]));
    assert_eq!(peer(&s).path, AuthPath::Flag);
}

/// A flag-enabled server that also asks everyone for a certificate from the
/// normal CA (optional), as in RCA-3.
fn policy_server(pki: &TestPki, provider: Provider) -> ServerConfig {
    let mut config = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, false),
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

fn rca3_rca4_server_policy_request_carries_no_acknowledgement(provider: Provider) {
    let pki = TestPki::shared();
    // A partner without the flag, with a certificate from the normal CA.
    let mut client = config::client(pki, provider);
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    ClientFlags::without_identity()
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (c, s, outcome) = run(client, policy_server(pki, provider));
    outcome.assert_ok();

    assert_eq!(
        client_state(&c).expect("installed").certificate_request(),
        Some(CertificateRequestCause::ServerPolicy)
    );
    let server = server_state(&s).expect("installed");
    assert_eq!(
        server.certificate_request(),
        Some(CertificateRequestCause::ServerPolicy)
    );
    assert!(server.acknowledged().is_empty(), "RCA-4");
    // RCA-10: reported apart from the flag path
    assert_eq!(peer(&s).path, AuthPath::Normal);

    // ... and a bot on the same server goes through the flag path.
    let (_, s, outcome) = run(bot(pki, provider, &pki.bot), policy_server(pki, provider));
    outcome.assert_ok();
    assert_eq!(peer(&s).path, AuthPath::Flag);
}

fn rca5_flagged_client_without_suitable_certificate_sends_empty_certificate(provider: Provider) {
    let pki = TestPki::shared();
    // has a certificate, but none that suits this request
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (mut c, mut s, outcome) = run(client, server);
    outcome.assert_ok();
    assert_eq!(
        client_state(&c).expect("installed").certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(peer(&s).path, AuthPath::None);
    exchange_data(&mut c, &mut s, b"served anonymously").expect("data flows");
}

fn rca9_client_answers_policy_requests_with_its_other_identity(provider: Provider) {
    let pki = TestPki::shared();
    let make_client = || {
        let mut client = config::client(pki, provider);
        client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
        ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
        client
    };
    // A flag-enabled server: the acknowledged request gets the bot identity.
    let (_, s, outcome) = run(make_client(), policy_server(pki, provider));
    outcome.assert_ok();
    assert_eq!(peer(&s).chain, Some(&pki.bot.chain[..]));

    // A server that knows nothing of flags but asks everyone: the request does
    // not acknowledge the flag, so the client answers with its other identity.
    let server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, true),
    );
    let (c, s, outcome) = run(make_client(), server);
    outcome.assert_ok();
    assert_eq!(
        client_state(&c).expect("installed").certificate_request(),
        Some(CertificateRequestCause::ServerPolicy)
    );
    assert_eq!(s.peer_certificates(), Some(&pki.normal_client.chain[..]));
}

fn rca9_other_requests_anonymous_and_flag_identity(provider: Provider) {
    let pki = TestPki::shared();
    for (other, expected) in [
        (OtherRequests::Anonymous, None),
        (
            OtherRequests::FlagIdentityOn(CodePoints::DEFAULT),
            Some(&pki.bot.chain[..]),
        ),
    ] {
        let mut client = config::client(pki, provider);
        client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
        ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
            .other_requests(other)
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
        // a server that requests a certificate on its own terms, trusting both CAs
        let mut roots = pki.bot_ca.roots();
        roots.add(pki.normal_ca.cert.clone()).expect("add root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.crypto(),
        )
        .allow_unauthenticated()
        .build()
        .expect("verifier");
        let server = config::server_requesting(pki, provider, verifier);
        let (_, s, outcome) = run(client, server);
        outcome.assert_ok();
        assert_eq!(s.peer_certificates(), expected, "{other:?}");
    }
}

fn rca11_resumption_keeps_the_flag_path_without_certificate_request(provider: Provider) {
    let pki = TestPki::shared();
    let server = Arc::new(flag_server(pki, provider));
    let client = Arc::new(bot(pki, provider, &pki.bot));

    let [(_, first), (c, s)] = config::connect_twice(&client, &server);
    assert_eq!(peer(&first).path, AuthPath::Flag);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    let state = server_state(&s).expect("installed");
    assert!(state.restored_from_ticket());
    assert_eq!(
        state.certificate_request(),
        None,
        "no CertificateRequest under PSK"
    );
    assert_eq!(
        client_state(&c).expect("installed").certificate_request(),
        None
    );
    let who = peer(&s);
    assert_eq!(who.path, AuthPath::Flag);
    assert_eq!(who.chain, Some(&pki.bot.chain[..]));
}

fn rca11_anonymous_ticket_does_not_resume_authenticated(provider: Provider) {
    let pki = TestPki::shared();
    let server = Arc::new(flag_server_allowing_anonymous(pki, provider));
    // First: a flagged client that has no suitable certificate (anonymous).
    let mut anonymous = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut anonymous)
        .expect("TLS Flags registers its extension type");
    let anonymous = Arc::new(anonymous);
    let [(_, first), (_, s)] = config::connect_twice(&anonymous, &server);
    assert_eq!(peer(&first).path, AuthPath::None);

    // Then the same client resumes: still anonymous, no certificate asked.
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(peer(&s).path, AuthPath::None);
    assert!(s.peer_certificates().is_none());
}

fn flag_server_allowing_anonymous(pki: &TestPki, provider: Provider) -> ServerConfig {
    let mut config = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, false))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

fn rca11_ticket_without_path_is_not_used(provider: Provider) {
    let pki = TestPki::shared();
    // Two servers share a session cache; only the second runs ServerFlags.
    let plain = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.bot_ca, provider, false),
    );
    let mut flagged = flag_server(pki, provider);
    flagged.session_storage = Arc::clone(&plain.session_storage);
    let mut client = config::client(pki, provider);
    client.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
    let client = Arc::new(client);

    let (mut c, mut s) = connect(&client, &Arc::new(plain));
    handshake(&mut c, &mut s).assert_ok();
    assert!(s.peer_certificates().is_some());

    // The ticket carries a client certificate but no record of its path: a
    // full handshake instead of a resumption.
    let (mut c, mut s) = connect(&client, &Arc::new(flagged));
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    assert!(!server_state(&s).expect("installed").restored_from_ticket());
}

fn rca12_flag_has_no_effect_on_tls12(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12]);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (c, s, outcome) = run(client, flag_server(pki, provider));
    outcome.assert_ok();
    assert_eq!(s.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert!(client_state(&c).expect("installed").requested_client_auth());
    let server = server_state(&s).expect("installed");
    assert!(!server.requested_client_auth());
    assert_eq!(server.certificate_request(), None);
    assert_eq!(peer(&s).path, AuthPath::None);
}

fn rca13_hello_retry_request_keeps_the_flag(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server_with(
        pki,
        provider.crypto_with_only_group(provider.group_without_key_share()),
        rustls::DEFAULT_VERSIONS,
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (_, s, outcome) = run(bot(pki, provider, &pki.bot), server);
    outcome.assert_ok();
    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    assert_eq!(peer(&s).path, AuthPath::Flag);
}

/// RCA-13: under ECH the flag goes in the inner ClientHello only, so a server
/// that sees the outer hello (here: one without ECH) never sees it.
#[test]
fn rca13_flag_stays_out_of_the_outer_client_hello_under_ech() {
    let pki = TestPki::shared();
    for visible in [false, true] {
        let mut client = config::ech_client(pki);
        let policy =
            ClientFlags::request_client_auth(config::certified_key(&pki.bot, Provider::AwsLcRs));
        let policy = if visible {
            policy.visible_outside_ech()
        } else {
            policy
        };
        policy
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
        let mut server = config::server(pki, Provider::AwsLcRs);
        ServerScript::default()
            .install(&mut server)
            .expect("TLS Flags registers its extension type");
        let (_, s, outcome) = run(client, server);
        assert!(
            outcome.client_error.is_some(),
            "ECH is refused by this server: {outcome:?}"
        );
        let outer = &received_in(server_log(&s), Msg::ClientHello)[0];
        let carries_flags = outer.iter().any(|(typ, _)| *typ == TLS_FLAGS);
        assert_eq!(carries_flags, visible, "{outer:?}");
    }
}

fn rca14_flagged_client_without_certificate_is_anonymous(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (mut c, mut s, outcome) = run(client, flag_server(pki, provider));
    outcome.assert_ok();
    assert_eq!(
        server_state(&s).expect("installed").certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(peer(&s).path, AuthPath::None);
    exchange_data(&mut c, &mut s, b"anonymous bot").expect("data flows");
}

fn rca14_policy_may_refuse_anonymous_bots(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .require_certificate()
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (_, _, outcome) = run(client, server);
    let raised = outcome.assert_alert(Side::Server, AlertDescription::CertificateRequired);
    assert_eq!(raised, &Error::NoCertificatesPresented);
}

/// RCA-14's "unless the server's policy says so" includes a server config that
/// requires every client to authenticate: the flag is no way around it.
fn rca14_mandatory_server_policy_applies_to_flagged_clients(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, true),
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, false))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (_, _, outcome) = run(client, server);
    let raised = outcome.assert_alert(Side::Server, AlertDescription::CertificateRequired);
    assert_eq!(raised, &Error::NoCertificatesPresented);
}

/// On TLS 1.2 the config's own verifier authenticates: the normal path, also
/// with `ServerFlags` installed (RCA-12, RCA-10).
fn rca12_tls12_certificate_is_the_normal_path(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12]);
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, true),
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (_, s, outcome) = run(client, server);
    outcome.assert_ok();
    let who = peer(&s);
    assert_eq!(who.path, AuthPath::Normal);
    assert_eq!(who.chain, Some(&pki.normal_client.chain[..]));
    // The config's verifier sent the CertificateRequest, and the server's
    // state says so (what rca-proxy counts).
    assert_eq!(
        server_state(&s).expect("installed").certificate_request(),
        Some(CertificateRequestCause::ServerPolicy)
    );
}

fn code_points_must_match_on_both_sides(provider: Provider) {
    let pki = TestPki::shared();
    let experimental = CodePoints::experimental();
    let fe01_server = || {
        let mut config = config::server(pki, provider);
        ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
            .code_points(experimental)
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
        config
    };
    let mut fe01_bot = config::client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .code_points(experimental)
        .install(&mut fe01_bot)
        .expect("TLS Flags registers its extension type");
    let (_, s, outcome) = run(fe01_bot, fe01_server());
    outcome.assert_ok();
    assert_eq!(peer(&s).path, AuthPath::Flag);

    // A bot on extension 62 talking to a server on 0xFE01 is just a client.
    let (_, s, outcome) = run(bot(pki, provider, &pki.bot), fe01_server());
    outcome.assert_ok();
    assert_eq!(peer(&s).path, AuthPath::None);
    assert!(!server_state(&s).expect("installed").requested_client_auth());
}

provider_tests! {
    refusals_end_the_handshake_with_their_alert => refusals_end_the_handshake_with_their_alert;
    rca1_tf4_client_without_identity_sends_no_extension => rca1_tf4_client_without_identity_sends_no_extension;
    rca2_flagged_client_gets_acknowledging_certificate_request => rca2_flagged_client_gets_acknowledging_certificate_request;
    tf8_tf9_unknown_and_several_flags_in_client_hello_are_accepted => tf8_tf9_unknown_and_several_flags_in_client_hello_are_accepted;
    rca3_rca4_server_policy_request_carries_no_acknowledgement => rca3_rca4_server_policy_request_carries_no_acknowledgement;
    rca5_flagged_client_without_suitable_certificate_sends_empty_certificate => rca5_flagged_client_without_suitable_certificate_sends_empty_certificate;
    rca9_client_answers_policy_requests_with_its_other_identity => rca9_client_answers_policy_requests_with_its_other_identity;
    rca9_other_requests_anonymous_and_flag_identity => rca9_other_requests_anonymous_and_flag_identity;
    rca11_resumption_keeps_the_flag_path_without_certificate_request => rca11_resumption_keeps_the_flag_path_without_certificate_request;
    rca11_anonymous_ticket_does_not_resume_authenticated => rca11_anonymous_ticket_does_not_resume_authenticated;
    rca11_ticket_without_path_is_not_used => rca11_ticket_without_path_is_not_used;
    rca12_flag_has_no_effect_on_tls12 => rca12_flag_has_no_effect_on_tls12;
    rca13_hello_retry_request_keeps_the_flag => rca13_hello_retry_request_keeps_the_flag;
    rca14_flagged_client_without_certificate_is_anonymous => rca14_flagged_client_without_certificate_is_anonymous;
    rca14_policy_may_refuse_anonymous_bots => rca14_policy_may_refuse_anonymous_bots;
    rca14_mandatory_server_policy_applies_to_flagged_clients => rca14_mandatory_server_policy_applies_to_flagged_clients;
    rca12_tls12_certificate_is_the_normal_path => rca12_tls12_certificate_is_the_normal_path;
    code_points_must_match_on_both_sides => code_points_must_match_on_both_sides;
}
