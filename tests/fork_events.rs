//! The fork's explicit events and its floor under a hook's verifier, in real
//! handshakes: the server hook is told whether a handshake is full or resumed
//! (with its ticket data), what a session offered for resumption restores, and
//! whose verifier sends a CertificateRequest; the
//! client hook is told whose resolver answered it; and a hook's verifier never
//! authenticates less than the configured one demands.
//! Nothing here knows about TLS Flags.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::scripted::{
    client_log, mirror, mirrored, server_log, ClientScript, Event, ServerScript,
};
use integration_tests::{provider_tests, Provider, Side, TestPki};
use rustls::hooks::ChosenBy;
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, HandshakeKind, ProtocolVersion};

/// A full TLS 1.3 handshake, then one that resumes it: the events say which,
/// the resumed one with what the hook stored in the ticket.
fn server_is_told_full_or_resumed_with_ticket_data(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript {
        ticket_data: Some(b"stored".to_vec()),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);
    let client = Arc::new(config::client(pki, provider));

    let [(_, first), (_, second)] = config::connect_twice(&client, &server);
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
    let first = server_log(&first);
    assert!(first.contains(&Event::FullHandshake(ProtocolVersion::TLSv1_3)));
    assert!(!first.iter().any(|e| matches!(e, Event::Resumed(..))));
    let second = server_log(&second);
    assert!(second.contains(&Event::Resumed(
        ProtocolVersion::TLSv1_3,
        Some(b"stored".to_vec())
    )));
    assert!(!second.iter().any(|e| matches!(e, Event::FullHandshake(_))));
}

/// A server whose hook refuses every session offered for resumption.
fn refusing_server(pki: &TestPki, provider: Provider) -> Arc<rustls::ServerConfig> {
    let mut server = config::server(pki, provider);
    ServerScript {
        refuse_resumption: true,
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    Arc::new(server)
}

/// A ticket a hook refuses leads to a full handshake, and the event says so,
/// although the hook was asked about the ticket.
fn refused_ticket_is_followed_by_a_full_handshake_event(provider: Provider) {
    let pki = TestPki::shared();
    let client = Arc::new(config::client(pki, provider));

    let [_, (_, s)] = config::connect_twice(&client, &refusing_server(pki, provider));
    let log = server_log(&s);
    assert!(log.contains(&Event::Resumption(None)), "{log:?}");
    assert!(log.contains(&Event::FullHandshake(ProtocolVersion::TLSv1_3)));
    assert!(!log.iter().any(|e| matches!(e, Event::Resumed(..))));
}

/// TLS 1.2: full, then resumed (its tickets carry no hook data).
fn tls12_full_and_resumed_events(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerScript::default()
        .install(&mut server)
        .expect("the test types are free");
    let server = Arc::new(server);
    let client = Arc::new(config::client_with(
        pki,
        provider.crypto(),
        &[&rustls::version::TLS12],
    ));

    let [(_, first), (_, second)] = config::connect_twice(&client, &server);
    assert!(server_log(&first).contains(&Event::FullHandshake(ProtocolVersion::TLSv1_2)));
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(server_log(&second).contains(&Event::Resumed(ProtocolVersion::TLSv1_2, None)));
}

/// TLS 1.2: a CertificateRequest from the config's verifier is told too (hooks
/// choose no verifier there), once, and not on the resumption that follows.
fn tls12_certificate_request_event(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, false),
    );
    ServerScript::default()
        .install(&mut server)
        .expect("the test types are free");
    let mut client = config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12]);
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);

    let [(_, first), (_, second)] = config::connect_twice(&Arc::new(client), &Arc::new(server));
    assert_eq!(first.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    let requests = |log: &[Event]| {
        log.iter()
            .filter(|event| matches!(event, Event::CertificateRequest(_)))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        requests(server_log(&first)),
        [Event::CertificateRequest(ChosenBy::Config)]
    );
    assert_eq!(
        first.peer_certificates(),
        Some(&pki.normal_client.chain[..])
    );
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(requests(server_log(&second)), []);
}

/// The CertificateRequest event names whose verifier asks: the config's, this
/// hook's, or another registration's.
fn server_is_told_whose_verifier_requests(provider: Provider) {
    let pki = TestPki::shared();
    let client = Arc::new(config::client(pki, provider));

    let mut by_config = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.bot_ca, provider, false),
    );
    ServerScript::default()
        .install(&mut by_config)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&client, &Arc::new(by_config));
    handshake(&mut c, &mut s).assert_ok();
    assert!(server_log(&s).contains(&Event::CertificateRequest(ChosenBy::Config)));

    // Two registrations: the first one's verifier asks.
    let (first, second) = (mirror(), mirror());
    let mut by_hook = config::server(pki, provider);
    ServerScript {
        types: vec![0xff77],
        verifier: Some(config::verifier(&pki.bot_ca, provider, false)),
        mirror: Some(first.clone()),
        ..ServerScript::default()
    }
    .install(&mut by_hook)
    .expect("0xff77 is free");
    ServerScript {
        types: vec![0xff78],
        verifier: Some(config::verifier(&pki.normal_ca, provider, false)),
        mirror: Some(second.clone()),
        ..ServerScript::default()
    }
    .install(&mut by_hook)
    .expect("0xff78 is free");
    let (mut c, mut s) = connect(&client, &Arc::new(by_hook));
    handshake(&mut c, &mut s).assert_ok();
    assert!(mirrored(&first).contains(&Event::CertificateRequest(ChosenBy::ThisHook)));
    let second = mirrored(&second);
    assert!(second.contains(&Event::CertificateRequest(ChosenBy::OtherHook)));
    // The second registration was not asked: the first one answered.
    assert!(!second.contains(&Event::VerifierAsked));
}

/// The client hook is told, when its Certificate goes out, whose resolver
/// answered and whether it carried a certificate.
fn client_is_told_whose_resolver_answered(provider: Provider) {
    let pki = TestPki::shared();
    let server = Arc::new(config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.bot_ca, provider, false),
    ));

    // This hook's resolver.
    let mut client = config::client(pki, provider);
    ClientScript {
        resolver: Some(config::resolver(&pki.bot, provider)),
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &server);
    handshake(&mut c, &mut s).assert_ok();
    assert!(client_log(&c).contains(&Event::CertificateSent {
        resolver: ChosenBy::ThisHook,
        certificate: true,
    }));

    // The config's resolver, with and without a certificate.
    for (resolver, certificate) in [
        (config::resolver(&pki.bot, provider), true),
        (config::no_identity(), false),
    ] {
        let mut client = config::client(pki, provider);
        client.client_auth_cert_resolver = resolver;
        ClientScript::default()
            .install(&mut client)
            .expect("the test types are free");
        let (mut c, mut s) = connect(&Arc::new(client), &server);
        handshake(&mut c, &mut s).assert_ok();
        assert!(client_log(&c).contains(&Event::CertificateSent {
            resolver: ChosenBy::Config,
            certificate,
        }));
    }

    // Another registration's resolver.
    let second = mirror();
    let mut client = config::client(pki, provider);
    ClientScript {
        types: vec![0xff77],
        resolver: Some(config::resolver(&pki.bot, provider)),
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("0xff77 is free");
    ClientScript {
        types: vec![0xff78],
        mirror: Some(second.clone()),
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("0xff78 is free");
    let (mut c, mut s) = connect(&Arc::new(client), &server);
    handshake(&mut c, &mut s).assert_ok();
    assert!(mirrored(&second).contains(&Event::CertificateSent {
        resolver: ChosenBy::OtherHook,
        certificate: true,
    }));
}

/// The floor: a configured verifier that makes client authentication
/// mandatory keeps it mandatory under a hook's optional verifier, so a client
/// without a certificate is refused with `certificate_required`.
fn hook_verifier_stays_mandatory_where_the_config_is(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, true),
    );
    ServerScript {
        verifier: Some(config::verifier(&pki.bot_ca, provider, false)),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");
    let server = Arc::new(server);

    let (mut c, mut s) = connect(&Arc::new(config::client(pki, provider)), &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::CertificateRequired);
    assert!(server_log(&s).contains(&Event::CertificateRequest(ChosenBy::ThisHook)));

    // The hook's verifier (bot CA) still decides which certificates pass.
    let mut bot = config::client(pki, provider);
    bot.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
    let (mut c, mut s) = connect(&Arc::new(bot), &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(s.peer_certificates(), Some(&pki.bot.chain[..]));
}

/// The floor: a hook's verifier that would not request a certificate where the
/// configured one does is not used; the configured one requests and verifies.
fn hook_verifier_cannot_switch_client_authentication_off(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, false),
    );
    ServerScript {
        verifier: Some(WebPkiClientVerifier::no_client_auth()),
        ..ServerScript::default()
    }
    .install(&mut server)
    .expect("the test types are free");

    let mut client = config::client(pki, provider);
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();
    let log = server_log(&s);
    assert!(log.contains(&Event::VerifierAsked));
    assert!(log.contains(&Event::CertificateRequest(ChosenBy::Config)));
    assert_eq!(s.peer_certificates(), Some(&pki.normal_client.chain[..]));
}

/// The session a client offers is shown to the hooks with the certificate
/// chain it would restore, in TLS 1.3 and in TLS 1.2 alike, so a hook can
/// refuse a session whose client certificate has since expired.
fn offered_session_shows_the_client_chain(provider: Provider) {
    let pki = TestPki::shared();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut server = config::server_requesting(
            pki,
            provider,
            config::verifier(&pki.normal_ca, provider, false),
        );
        ServerScript::default()
            .install(&mut server)
            .expect("the test types are free");
        let mut client = config::client_with(pki, provider.crypto(), &[version]);
        client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);

        let [_, (_, second)] = config::connect_twice(&Arc::new(client), &Arc::new(server));
        assert_eq!(second.handshake_kind(), Some(HandshakeKind::Resumed));
        let log = server_log(&second);
        assert!(
            log.contains(&Event::Offered(
                version.version,
                Some(pki.normal_client.chain.clone())
            )),
            "{log:?}"
        );
    }
}

/// TLS 1.2: a session a hook refuses leads to a full handshake, as in TLS 1.3.
fn tls12_refused_session_is_followed_by_a_full_handshake(provider: Provider) {
    let pki = TestPki::shared();
    let client = Arc::new(config::client_with(
        pki,
        provider.crypto(),
        &[&rustls::version::TLS12],
    ));

    let [_, (_, second)] = config::connect_twice(&client, &refusing_server(pki, provider));
    assert_eq!(second.handshake_kind(), Some(HandshakeKind::Full));
    let log = server_log(&second);
    assert!(
        log.contains(&Event::Offered(ProtocolVersion::TLSv1_2, None)),
        "{log:?}"
    );
    assert!(log.contains(&Event::FullHandshake(ProtocolVersion::TLSv1_2)));
    assert!(!log.iter().any(|e| matches!(e, Event::Resumed(..))));
}

provider_tests! {
    offered_session_shows_the_client_chain => offered_session_shows_the_client_chain;
    tls12_refused_session_is_followed_by_a_full_handshake => tls12_refused_session_is_followed_by_a_full_handshake;
    server_is_told_full_or_resumed_with_ticket_data => server_is_told_full_or_resumed_with_ticket_data;
    refused_ticket_is_followed_by_a_full_handshake_event => refused_ticket_is_followed_by_a_full_handshake_event;
    tls12_full_and_resumed_events => tls12_full_and_resumed_events;
    tls12_certificate_request_event => tls12_certificate_request_event;
    server_is_told_whose_verifier_requests => server_is_told_whose_verifier_requests;
    client_is_told_whose_resolver_answered => client_is_told_whose_resolver_answered;
    floor_hook_verifier_stays_mandatory_where_the_config_is => hook_verifier_stays_mandatory_where_the_config_is;
    floor_hook_verifier_cannot_switch_client_authentication_off => hook_verifier_cannot_switch_client_authentication_off;
}
