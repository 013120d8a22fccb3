//! Several extension users on one config (the fork's registration per
//! extension type), in real handshakes: each sees only its own types, sends
//! only its own types, and what it may not send fails the handshake loudly on
//! both sides instead of being dropped.
//! Nothing here knows about TLS Flags.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::scripted::{
    ext, mirror, mirrored, received_in, ClientScript, Event, ServerScript, TEST_TYPES,
};
use integration_tests::{provider_tests, Provider, TestPki};
use rustls::hooks::HandshakeMessage as Msg;
use rustls::Error;

const T: u16 = TEST_TYPES[0];
const U: u16 = TEST_TYPES[1];

/// Two users, `T` and `U`, on both sides of one handshake: each one's
/// ClientHello extension reaches only its own server hook, and each server
/// hook's answer only its own client hook.
fn two_users_each_see_only_their_own_types(provider: Provider) {
    let pki = TestPki::shared();
    let logs = [mirror(), mirror(), mirror(), mirror()];
    let mut client = config::client(pki, provider);
    let mut server = config::server(pki, provider);
    for (i, typ) in [T, U].into_iter().enumerate() {
        ClientScript {
            types: vec![typ],
            mirror: Some(logs[i].clone()),
            ..ClientScript::default()
        }
        .with_client_hello(ext(typ, &[0xc0, u8::try_from(i).expect("small")]))
        .install(&mut client)
        .expect("distinct types");
        ServerScript {
            types: vec![typ],
            mirror: Some(logs[2 + i].clone()),
            ..ServerScript::default()
        }
        .with(
            Msg::EncryptedExtensions,
            ext(typ, &[0xee, u8::try_from(i).expect("small")]),
        )
        .install(&mut server)
        .expect("distinct types");
    }
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();

    let [client_t, client_u, server_t, server_u] = logs.each_ref().map(mirrored);
    assert_eq!(
        received_in(&server_t, Msg::ClientHello),
        vec![vec![(T, vec![0xc0, 0])]]
    );
    assert_eq!(
        received_in(&server_u, Msg::ClientHello),
        vec![vec![(U, vec![0xc0, 1])]]
    );
    assert_eq!(
        received_in(&client_t, Msg::EncryptedExtensions),
        vec![vec![(T, vec![0xee, 0])]]
    );
    assert_eq!(
        received_in(&client_u, Msg::EncryptedExtensions),
        vec![vec![(U, vec![0xee, 1])]]
    );
}

/// A user that sends a type it did not register fails the handshake with an
/// error that says so, on either side.
fn sending_an_unregistered_type_fails_loudly(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript {
        types: vec![T],
        ..ClientScript::default()
    }
    .with_client_hello(ext(U, &[1]))
    .install(&mut client)
    .expect("T is free");
    // The client refuses at the first ClientHello, before anything is sent.
    let refused = rustls::ClientConnection::new(Arc::new(client), server_name());
    assert_unregistered(&refused.expect_err("the client refuses"), U);

    let mut server = config::server(pki, provider);
    ServerScript {
        types: vec![T],
        ..ServerScript::default()
    }
    .with(Msg::EncryptedExtensions, ext(U, &[1]))
    .install(&mut server)
    .expect("T is free");
    let (mut c, mut s) = connect(&Arc::new(config::client(pki, provider)), &Arc::new(server));
    let outcome = handshake(&mut c, &mut s);
    assert_unregistered(outcome.server_error.as_ref().expect("the server fails"), U);
}

fn server_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name")
}

fn assert_unregistered(error: &Error, typ: u16) {
    assert!(
        matches!(error, Error::General(text) if text.contains(&typ.to_string()) && text.contains("did not register")),
        "{error:?}"
    );
}

/// A type twice in one message is an error on both sides (one duplicate
/// policy), never a silent drop.
fn a_type_twice_in_one_message_fails_on_both_sides(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript::default()
        .with_client_hello(ext(T, &[1]))
        .with_client_hello(ext(T, &[2]))
        .install(&mut client)
        .expect("the test types are free");
    let refused = rustls::ClientConnection::new(Arc::new(client), server_name());
    assert_twice(&refused.expect_err("the client refuses"));

    let mut server = config::server(pki, provider);
    ServerScript::default()
        .with(Msg::EncryptedExtensions, ext(T, &[1]))
        .with(Msg::EncryptedExtensions, ext(T, &[2]))
        .install(&mut server)
        .expect("the test types are free");
    let mut client = config::client(pki, provider);
    ClientScript::default()
        .with_client_hello(ext(T, &[1]))
        .install(&mut client)
        .expect("the test types are free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    let outcome = handshake(&mut c, &mut s);
    assert_twice(outcome.server_error.as_ref().expect("the server fails"));
}

fn assert_twice(error: &Error) {
    assert!(
        matches!(error, Error::General(text) if text.contains("twice")),
        "{error:?}"
    );
}

/// A body longer than the 16-bit length field is an error, not a truncation.
fn an_oversized_body_fails(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientScript::default()
        .with_client_hello(ext(T, &vec![0; 65536]))
        .install(&mut client)
        .expect("the test types are free");
    let refused = rustls::ClientConnection::new(Arc::new(client), server_name());
    assert!(matches!(refused, Err(Error::General(text)) if text.contains("too long")),);
}

/// Each registration's hook is created per connection and found by its type.
fn each_registration_has_its_own_connection_hook(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    let second = mirror();
    ClientScript {
        types: vec![T],
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("T is free");
    ClientScript {
        types: vec![U],
        mirror: Some(second.clone()),
        ..ClientScript::default()
    }
    .install(&mut client)
    .expect("U is free");
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(config::server(pki, provider)));
    handshake(&mut c, &mut s).assert_ok();
    let first = integration_tests::scripted::client_log(&c);
    let second = mirrored(&second);
    // Both saw the same messages, each in its own log.
    let messages = |log: &[Event]| {
        log.iter()
            .filter_map(|e| match e {
                Event::Received { message, .. } => Some(*message),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(!messages(first).is_empty());
    assert_eq!(messages(first), messages(&second));
}

provider_tests! {
    two_users_each_see_only_their_own_types => two_users_each_see_only_their_own_types;
    sending_an_unregistered_type_fails_loudly => sending_an_unregistered_type_fails_loudly;
    a_type_twice_in_one_message_fails_on_both_sides => a_type_twice_in_one_message_fails_on_both_sides;
    an_oversized_body_fails => an_oversized_body_fails;
    each_registration_has_its_own_connection_hook => each_registration_has_its_own_connection_hook;
}
