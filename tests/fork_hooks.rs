//! The rustls fork's generic extension hooks, exercised by real handshakes.
//!
//! Each test names the hook capability it covers (fork/README.md):
//! 1 keep unknown extensions, 2 add extensions, 3 see and refuse with an alert,
//! 4 server chooses the client verifier, 5 client chooses the certificate
//! resolver, 6 per-connection state (readable afterwards, kept in tickets).
//! Nothing here knows about TLS Flags.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::scripted::{
    client_log, ext, received_in, server_log, ClientScript, Event, ScriptedClient, ScriptedServer,
    ServerScript, TEST_TYPES,
};
use integration_tests::{provider_tests, Provider, Side, TestPki};
use rustls::hooks::HandshakeMessage as Msg;
use rustls::{AlertDescription, Error, HandshakeKind, PeerMisbehaved, ProtocolVersion};

/// The scripted hooks' two extension types.
const T: u16 = TEST_TYPES[0];
const U: u16 = TEST_TYPES[1];

fn client_hello_with_t() -> ClientScript {
    ClientScript::default().with_client_hello(ext(T, &[1, 2]))
}

/// Capabilities 1 and 2: the client's ClientHello extension reaches the server
/// hook, and the server's answer in EncryptedExtensions is not "unsolicited".
fn client_hello_extension_reaches_server_and_may_be_answered(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    client_hello_with_t()
        .install(&mut client)
        .expect("the test types are free");
    let mut server = config::server(pki, provider);
    ServerScript::default()
        .with(Msg::EncryptedExtensions, ext(T, &[3]))
        .install(&mut server)
        .expect("the test types are free");

    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    assert_eq!(
        received_in(server_log(&s), Msg::ClientHello),
        vec![vec![(T, vec![1, 2])]]
    );
    assert_eq!(
        received_in(client_log(&c), Msg::EncryptedExtensions),
        vec![vec![(T, vec![3])]]
    );
}

/// Capabilities 1 and 2: every server message that may carry extensions gets
/// the hook's, and the client hook sees each of them (certificates plain or
/// compressed).
fn server_extensions_reach_client_in_every_message(provider: Provider, compressed: bool) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    if !compressed {
        client.cert_decompressors = Vec::new();
    }
    client_hello_with_t()
        .install(&mut client)
        .expect("the test types are free");
    let mut server = config::server(pki, provider);
    ServerScript {
        verifier: Some(config::verifier(&pki.bot_ca, provider, false)),
        ..ServerScript::default()
    }
    .with(Msg::ServerHello, ext(T, &[0x51]))
    .with(Msg::EncryptedExtensions, ext(T, &[0xee]))
    .with(Msg::CertificateRequest, ext(T, &[0xc4]))
    .with(Msg::Certificate { index: 0 }, ext(T, &[0xc0]))
    .with(Msg::Certificate { index: 1 }, ext(T, &[0xc1]))
    .with(Msg::NewSessionTicket, ext(T, &[0x7c]))
    .install(&mut server)
    .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    let log = client_log(&c);
    for (message, body) in [
        (Msg::ServerHello, 0x51),
        (Msg::EncryptedExtensions, 0xee),
        (Msg::CertificateRequest, 0xc4),
        (Msg::Certificate { index: 0 }, 0xc0),
        (Msg::Certificate { index: 1 }, 0xc1),
    ] {
        assert_eq!(
            received_in(log, message),
            vec![vec![(T, vec![body])]],
            "{message:?}"
        );
    }
    // Two tickets by default, each with the extension.
    assert_eq!(
        received_in(log, Msg::NewSessionTicket),
        vec![vec![(T, vec![0x7c])], vec![(T, vec![0x7c])]]
    );
    assert!(log.iter().any(|e| matches!(
        e,
        Event::Received {
            message: Msg::ServerHello,
            version: Some(ProtocolVersion::TLSv1_3),
            ..
        }
    )));
}

fn server_extensions_plain_certificate(provider: Provider) {
    server_extensions_reach_client_in_every_message(provider, false);
}

fn server_extensions_compressed_certificate(provider: Provider) {
    server_extensions_reach_client_in_every_message(provider, true);
}

/// Capability 3: an extension nobody claimed keeps rustls's behaviour. The
/// client did not send `T`; the server's hook adds it anyway.
fn unclaimed_extensions_are_refused_as_in_vanilla_rustls(provider: Provider) {
    let cases = [
        (Msg::ServerHello, AlertDescription::UnsupportedExtension),
        (
            Msg::EncryptedExtensions,
            AlertDescription::UnsupportedExtension,
        ),
        (
            Msg::HelloRetryRequest,
            AlertDescription::UnsupportedExtension,
        ),
        (Msg::Certificate { index: 0 }, AlertDescription::DecodeError),
    ];
    for (message, alert) in cases {
        for client_hook in [false, true] {
            let pki = TestPki::shared();
            let mut client = config::client(pki, provider);
            // plain certificates: the compressed path answers bad_certificate
            client.cert_decompressors = Vec::new();
            if client_hook {
                ClientScript::default()
                    .install(&mut client)
                    .expect("the test types are free");
            }
            let mut server = match message {
                Msg::HelloRetryRequest => config::server_with(
                    pki,
                    provider.crypto_with_only_group(provider.group_without_key_share()),
                    rustls::DEFAULT_VERSIONS,
                ),
                _ => config::server(pki, provider),
            };
            ServerScript::default()
                .with(message, ext(T, &[9]))
                .install(&mut server)
                .expect("the test types are free");
            let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
            handshake(&mut c, &mut s).assert_alert(Side::Client, alert);
        }
    }
}

/// Capability 3 (compressed path): an unclaimed Certificate entry extension
/// inside a compressed Certificate gets `bad_certificate`, as before.
fn unclaimed_certificate_extension_compressed(provider: Provider) {
    let pki = TestPki::shared();
    let client = config::client(pki, provider);
    let mut server = config::server(pki, provider);
    ServerScript::default()
        .with(Msg::Certificate { index: 0 }, ext(T, &[9]))
        .install(&mut server)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_alert(Side::Client, AlertDescription::BadCertificate);
}

/// Capability 3: the client hook refuses a message; its alert reaches the server.
fn client_hook_refusal_sends_its_alert(provider: Provider) {
    for message in [
        Msg::ServerHello,
        Msg::EncryptedExtensions,
        Msg::CertificateRequest,
        Msg::Certificate { index: 0 },
        Msg::NewSessionTicket,
    ] {
        let pki = TestPki::shared();
        let mut client = config::client(pki, provider);
        ClientScript {
            refuse: Some((message, AlertDescription::IllegalParameter)),
            ..ClientScript::default()
        }
        .install(&mut client)
        .expect("the test types are free");
        let server = config::server_requesting(
            pki,
            provider,
            config::verifier(&pki.bot_ca, provider, false),
        );
        let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
        let outcome = handshake(&mut c, &mut s);
        let raised = outcome.assert_alert(Side::Client, AlertDescription::IllegalParameter);
        assert!(
            matches!(raised, Error::General(text) if text.contains("scripted refusal")),
            "{message:?}: {raised:?}"
        );
    }
}

/// Capability 3: the server hook refuses the ClientHello or the client's
/// Certificate; its alert reaches the client.
fn server_hook_refusal_sends_its_alert(provider: Provider) {
    for message in [Msg::ClientHello, Msg::Certificate { index: 0 }] {
        let pki = TestPki::shared();
        let mut client = config::client(pki, provider);
        client.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
        let mut server = config::server_requesting(
            pki,
            provider,
            config::verifier(&pki.bot_ca, provider, false),
        );
        ServerScript {
            refuse: Some((message, AlertDescription::AccessDenied)),
            ..ServerScript::default()
        }
        .install(&mut server)
        .expect("the test types are free");
        let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
        handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::AccessDenied);
    }
}

/// Capabilities 1 and 2 across a HelloRetryRequest: the second ClientHello
/// carries the same hook extensions, and the HRR's own extension is seen.
fn hello_retry_request_keeps_client_hello_extensions(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript::default()
        .with_client_hello(ext(T, &[1]))
        .with_client_hello(ext(U, &[2, 2]))
        .install(&mut client)
        .expect("the test types are free");
    let mut server = config::server_with(
        pki,
        provider.crypto_with_only_group(provider.group_without_key_share()),
        rustls::DEFAULT_VERSIONS,
    );
    ServerScript::default()
        .with(Msg::HelloRetryRequest, ext(U, &[0x44]))
        .install(&mut server)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    let hellos = received_in(server_log(&s), Msg::ClientHello);
    assert_eq!(hellos.len(), 2);
    // rustls randomizes the ClientHello's extension order, the same way in both.
    assert_eq!(hellos[0], hellos[1]);
    let mut first = hellos[0].clone();
    first.sort();
    assert_eq!(first, vec![(T, vec![1]), (U, vec![2, 2])]);
    assert_eq!(
        received_in(client_log(&c), Msg::HelloRetryRequest),
        vec![vec![(U, vec![0x44])]]
    );
}

/// Capability 4: the server hook picks a verifier per connection; a client
/// that did not send `T` gets no CertificateRequest.
fn server_chooses_client_verifier_per_connection(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript {
        verifier: Some(config::verifier(&pki.bot_ca, provider, true)),
        verifier_if_client_hello_has: Some(T),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);

    for sends_t in [true, false] {
        let mut client = config::client(pki, provider);
        client.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
        let script = if sends_t {
            client_hello_with_t()
        } else {
            ClientScript::default()
        };
        script
            .install(&mut client)
            .expect("the test types are free");
        let (mut c, mut s) = connect(&Arc::new(client), &server);
        handshake(&mut c, &mut s).assert_ok();

        assert!(server_log(&s).contains(&Event::VerifierAsked));
        let requested = !received_in(client_log(&c), Msg::CertificateRequest).is_empty();
        assert_eq!(requested, sends_t);
        assert_eq!(s.peer_certificates().is_some(), sends_t);
        if sends_t {
            assert_eq!(s.peer_certificates().unwrap(), &pki.bot.chain[..]);
        }
    }
}

/// Capability 5: the client hook chooses the identity for a CertificateRequest.
fn client_chooses_resolver_for_certificate_request(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript {
        resolver: Some(config::resolver(&pki.bot, provider)),
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("the test types are free");
    let server =
        config::server_requesting(pki, provider, config::verifier(&pki.bot_ca, provider, true));
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    assert!(client_log(&c).contains(&Event::ResolverAsked));
    assert_eq!(s.peer_certificates().unwrap(), &pki.bot.chain[..]);
}

/// Capabilities 1 and 2 for the client's Certificate: entry extensions reach
/// the server hook when the CertificateRequest carried their type, and are
/// refused with `decode_error` (as before) when it did not.
fn client_certificate_entry_extensions(provider: Provider) {
    for request_carries_t in [true, false] {
        let pki = TestPki::shared();
        let mut client = config::client(pki, provider);
        client.cert_compressors = Vec::new();
        client.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
        ClientScript {
            certificate: vec![(0, ext(T, &[0xcc]))],
            ..ClientScript::default()
        }
        .install(&mut client)
        .expect("the test types are free");
        let mut server =
            config::server_requesting(pki, provider, config::verifier(&pki.bot_ca, provider, true));
        let mut script = ServerScript::default();
        if request_carries_t {
            script = script.with(Msg::CertificateRequest, ext(T, &[1]));
        }
        script
            .install(&mut server)
            .expect("the test types are free");
        let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
        let outcome = handshake(&mut c, &mut s);
        if request_carries_t {
            outcome.assert_ok();
            assert_eq!(
                received_in(server_log(&s), Msg::Certificate { index: 0 }),
                vec![vec![(T, vec![0xcc])]]
            );
        } else {
            outcome.assert_alert(Side::Server, AlertDescription::DecodeError);
        }
    }
}

/// Capability 6: what the hook stores in a ticket comes back when the ticket is
/// used; a resumed handshake asks for no verifier and sends no CertificateRequest.
fn ticket_data_survives_resumption(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript {
        verifier: Some(config::verifier(&pki.bot_ca, provider, false)),
        ticket_data: Some(b"path=flag".to_vec()),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);
    let mut client = config::client(pki, provider);
    ClientScript::default()
        .install(&mut client)
        .expect("the test types are free");
    let client = Arc::new(client);

    let [(_, first), (c, s)] = config::connect_twice(&client, &server);
    assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    let log = server_log(&s);
    assert!(log.contains(&Event::Resumption(Some(b"path=flag".to_vec()))));
    assert!(!log.contains(&Event::VerifierAsked), "{log:?}");
    assert!(received_in(client_log(&c), Msg::CertificateRequest).is_empty());
}

/// Capability 6: a hook may refuse a ticket (here: one without its data), and
/// the handshake becomes a full one.
fn refused_ticket_makes_a_full_handshake(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript {
        refuse_resumption: true,
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);
    let client = Arc::new(config::client(pki, provider));

    let [_, (_, s)] = config::connect_twice(&client, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    let log = server_log(&s);
    assert!(log.contains(&Event::Resumption(None)), "{log:?}");
    assert!(log.contains(&Event::VerifierAsked));
}

/// Capability 6: ticket data that does not fit the ticket's 16-bit field is not
/// stored, so the hook sees a ticket without data (and may refuse it).
fn oversized_ticket_data_is_not_stored(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript {
        ticket_data: Some(vec![7; 70_000]),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);
    let client = Arc::new(config::client(pki, provider));
    let [_, (_, s)] = config::connect_twice(&client, &server);
    assert!(server_log(&s).contains(&Event::Resumption(None)));
}

/// TLS 1.2: the hooks see the ClientHello and the ServerHello with version 1.2;
/// the server is never asked for a client verifier there.
fn tls12_server_hello_and_no_verifier_choice(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12]);
    client_hello_with_t()
        .install(&mut client)
        .expect("the test types are free");
    let mut server = config::server(pki, provider);
    ServerScript {
        verifier: Some(config::verifier(&pki.bot_ca, provider, true)),
        ..ServerScript::default()
    }
    .with(Msg::ServerHello, ext(T, &[0x12]))
    .install(&mut server)
    .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    assert_eq!(s.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    let server_events = server_log(&s);
    assert!(server_events.contains(&Event::Sending(Msg::ServerHello, ProtocolVersion::TLSv1_2)));
    assert!(!server_events.contains(&Event::VerifierAsked));
    assert!(server_events.contains(&Event::Received {
        message: Msg::ClientHello,
        version: Some(ProtocolVersion::TLSv1_2),
        extensions: vec![(T, vec![1, 2])],
    }));
    assert!(client_log(&c).contains(&Event::Received {
        message: Msg::ServerHello,
        version: Some(ProtocolVersion::TLSv1_2),
        extensions: vec![(T, vec![0x12])],
    }));
    assert!(s.peer_certificates().is_none());
}

/// Without hooks nothing is installed, and unknown extension handling is
/// vanilla rustls's (an EE extension the client did not send is refused).
fn no_hooks_installed(provider: Provider) {
    let pki = TestPki::shared();
    let client = Arc::new(config::client(pki, provider));
    let server = Arc::new(config::server(pki, provider));
    let (mut c, mut s) = connect(&client, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert!(c.extension_hook::<ScriptedClient>().is_none());
    assert!(s.extension_hook::<ScriptedServer>().is_none());

    let mut hooked = config::server(pki, provider);
    ServerScript::default()
        .with(Msg::EncryptedExtensions, ext(T, &[1]))
        .install(&mut hooked)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&client, &Arc::new(hooked));
    let outcome = handshake(&mut c, &mut s);
    let raised = outcome.assert_alert(Side::Client, AlertDescription::UnsupportedExtension);
    assert_eq!(
        raised,
        &Error::PeerMisbehaved(PeerMisbehaved::UnsolicitedEncryptedExtension)
    );
}

/// Capability 2 under ECH: an inner-only extension never appears in the outer
/// ClientHello (the one a non-ECH server receives); a "both" one does.
#[test]
fn cap2_inner_only_extension_stays_out_of_the_outer_hello() {
    let pki = TestPki::shared();
    let mut client = config::ech_client(pki);
    ClientScript {
        client_hello: vec![ext(T, &[1]), ext(U, &[2])],
        inner_only: vec![U],
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("the test types are free");
    let mut server = config::server(pki, Provider::AwsLcRs);
    ServerScript::default()
        .install(&mut server)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    // The server does not do ECH, so the client ends up refusing the connection.
    let outcome = handshake(&mut c, &mut s);
    assert!(outcome.client_error.is_some(), "{outcome:?}");

    let outer = &received_in(server_log(&s), Msg::ClientHello)[0];
    assert!(outer.contains(&(T, vec![1])), "{outer:?}");
    assert!(outer.iter().all(|(typ, _)| *typ != U), "{outer:?}");
}

/// A hook cannot add or replace an extension rustls implements: such a type
/// cannot be registered, and neither can a type another registration owns.
#[test]
fn hooks_cannot_send_extensions_rustls_implements() {
    use rustls::hooks::RegistrationError;
    let pki = TestPki::shared();
    let mut config = config::client(pki, Provider::AwsLcRs);
    for (typ, name) in [(0x0000, "server_name"), (0x002b, "supported_versions")] {
        let script = ClientScript {
            types: vec![typ],
            ..ClientScript::default()
        };
        assert_eq!(
            script.install(&mut config),
            Err(RegistrationError::ImplementedByRustls(typ)),
            "{name}"
        );
    }
    ClientScript::default()
        .install(&mut config)
        .expect("the test types are free");
    assert_eq!(
        ClientScript::default().install(&mut config),
        Err(RegistrationError::AlreadyRegistered(T))
    );
}

provider_tests! {
    cap1_2_client_hello_extension_reaches_server_and_may_be_answered => client_hello_extension_reaches_server_and_may_be_answered;
    cap1_2_server_extensions_plain_certificate => server_extensions_plain_certificate;
    cap1_2_server_extensions_compressed_certificate => server_extensions_compressed_certificate;
    cap3_unclaimed_extensions_are_refused_as_in_vanilla_rustls => unclaimed_extensions_are_refused_as_in_vanilla_rustls;
    cap3_unclaimed_certificate_extension_compressed => unclaimed_certificate_extension_compressed;
    cap3_client_hook_refusal_sends_its_alert => client_hook_refusal_sends_its_alert;
    cap3_server_hook_refusal_sends_its_alert => server_hook_refusal_sends_its_alert;
    cap1_2_hello_retry_request_keeps_client_hello_extensions => hello_retry_request_keeps_client_hello_extensions;
    cap4_server_chooses_client_verifier_per_connection => server_chooses_client_verifier_per_connection;
    cap5_client_chooses_resolver_for_certificate_request => client_chooses_resolver_for_certificate_request;
    cap1_2_client_certificate_entry_extensions => client_certificate_entry_extensions;
    cap6_ticket_data_survives_resumption => ticket_data_survives_resumption;
    cap6_refused_ticket_makes_a_full_handshake => refused_ticket_makes_a_full_handshake;
    cap6_oversized_ticket_data_is_not_stored => oversized_ticket_data_is_not_stored;
    tls12_server_hello_and_no_verifier_choice => tls12_server_hello_and_no_verifier_choice;
    no_hooks_installed => no_hooks_installed;
}
