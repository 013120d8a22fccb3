//! TLS Flags beside another extension user on the same configs: the fork
//! registers extension hooks per type, so `ClientFlags`/`ServerFlags` and a
//! second, test-only user (the scripted hooks, on their own types) both work
//! in one handshake. Real handshakes in memory, both providers.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::scripted::{
    client_log, ext, received_in, server_log, ClientScript, ServerScript, TEST_TYPES,
};
use integration_tests::{provider_tests, Provider, TestPki};
use rustls::hooks::{HandshakeMessage as Msg, RegistrationError};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause, SentIdentity};
use rustls_req_client_auth::server::{self, AuthPath};
use rustls_req_client_auth::{ClientFlags, ServerFlags};

const OTHER: u16 = TEST_TYPES[0];

provider_tests! {
    tls_flags_and_another_extension_user_in_one_handshake => side_by_side;
    a_second_tls_flags_policy_is_refused_not_swapped_in => second_policy_refused;
}

/// RCA-1/RCA-2/RCA-10 on the flag path, while the other user's ClientHello
/// extension reaches its server hook and its EncryptedExtensions answer
/// reaches its client hook; neither sees the other's extension type.
fn side_by_side(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript {
        types: vec![OTHER],
        ..ClientScript::default()
    }
    .with_client_hello(ext(OTHER, &[0x0c]))
    .install(&mut client)
    .expect("the test type is free");
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut client)
        .expect("62 is free");

    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("62 is free");
    ServerScript {
        types: vec![OTHER],
        ..ServerScript::default()
    }
    .with(Msg::EncryptedExtensions, ext(OTHER, &[0x5e]))
    .install(&mut server)
    .expect("the test type is free");

    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    // TLS Flags did its part ...
    let flags = client_state(&c).expect("ClientFlags is registered");
    assert!(flags.requested_client_auth());
    assert_eq!(
        flags.certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(flags.sent_identity(), SentIdentity::FlagIdentity);
    assert_eq!(server::peer(&s).path, AuthPath::Flag);
    assert_eq!(s.peer_certificates(), Some(&pki.bot.chain[..]));

    // ... and so did the other user, seeing only its own type.
    assert_eq!(
        received_in(server_log(&s), Msg::ClientHello),
        vec![vec![(OTHER, vec![0x0c])]]
    );
    assert_eq!(
        received_in(client_log(&c), Msg::EncryptedExtensions),
        vec![vec![(OTHER, vec![0x5e])]]
    );
    // The CertificateRequest carried the acknowledgement; the other user's
    // client hook was shown the message without it.
    assert_eq!(
        received_in(client_log(&c), Msg::CertificateRequest),
        vec![Vec::new()]
    );
}

/// Installing TLS Flags twice on one config is an error that names the type,
/// not a silent replacement of the first policy.
fn second_policy_refused(provider: Provider) {
    let pki = TestPki::shared();
    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("62 is free");
    let again = ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server);
    assert_eq!(again, Err(RegistrationError::AlreadyRegistered(62)));
    assert_eq!(
        again.expect_err("refused").to_string(),
        "extension type 62 is already registered"
    );

    // Deregistering the type makes room for a replacement.
    server.extension_hooks.deregister(62);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, false))
        .install(&mut server)
        .expect("62 is free again");
}
