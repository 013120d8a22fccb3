//! What the client records of each connection (`ClientFlagsState`, and the
//! per-server-name `ClientOutcomes` handle for clients that cannot reach the
//! connection), and when the bot identity leaves the process: real handshakes
//! in memory, both providers.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::pki::SERVER_NAME;
use integration_tests::{provider_tests, Provider, TestPki};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause, SentIdentity};
use rustls_req_client_auth::{ClientFlags, CodePoints, OtherRequests, ServerFlags};

provider_tests! {
    default_settings_never_send_the_bot_identity_unacknowledged_on_62 => never_disclosed_by_default;
    flag_identity_on_other_code_points_does_not_apply => compatibility_is_per_code_point;
    flag_identity_on_the_experimental_code_points_answers_any_request => compatibility_on_fe01;
    sent_identity_flag_path => sent_flag_identity;
    sent_identity_config_resolver => sent_config_identity;
    sent_identity_empty_when_nothing_suitable => sent_empty;
    sent_identity_not_requested => sent_nothing;
    sent_identity_tls12 => sent_tls12;
    outcomes_per_server_name => outcomes_handle;
}

/// A server that asks every client for a certificate on its own terms (RCA-3),
/// trusting both the bot CA and the normal CA, certificates optional.
fn asks_everyone(pki: &TestPki, provider: Provider) -> ServerConfig {
    config::server_requesting(pki, provider, trusting_both(pki, provider))
}

fn trusting_both(pki: &TestPki, provider: Provider) -> Arc<dyn ClientCertVerifier> {
    let mut roots = pki.bot_ca.roots();
    roots.add(pki.normal_ca.cert.clone()).expect("add root");
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.crypto())
        .allow_unauthenticated()
        .build()
        .expect("verifier")
}

fn flag_server(pki: &TestPki, provider: Provider) -> ServerConfig {
    let mut config = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

fn bot_flags(pki: &TestPki, provider: Provider) -> ClientFlags {
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
}

/// Runs one handshake; returns the client's state and the certificates the
/// server received.
fn run(
    client: ClientConfig,
    server: ServerConfig,
) -> (
    rustls_req_client_auth::client::ClientFlagsState,
    Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
) {
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();
    let state = client_state(&c).expect("ClientFlags installed").clone();
    (state, s.peer_certificates().map(<[_]>::to_vec))
}

fn never_disclosed_by_default(provider: Provider) {
    let pki = TestPki::shared();
    // Without a resolver of its own, and with one: the bot identity stays home.
    for own in [None, Some(&pki.normal_client)] {
        let mut client = config::client(pki, provider);
        if let Some(own) = own {
            client.client_auth_cert_resolver = config::resolver(own, provider);
        }
        bot_flags(pki, provider)
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
        let (state, received) = run(client, asks_everyone(pki, provider));
        assert!(state.requested_client_auth());
        assert!(!state.flag_acknowledged());
        assert_eq!(
            state.certificate_request(),
            Some(CertificateRequestCause::ServerPolicy)
        );
        match own {
            None => {
                assert_eq!(received, None);
                assert_eq!(state.sent_identity(), SentIdentity::Empty);
            }
            Some(own) => {
                assert_eq!(received.as_deref(), Some(&own.chain[..]));
                assert_eq!(state.sent_identity(), SentIdentity::ConfigIdentity);
            }
        }
    }
}

fn compatibility_is_per_code_point(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    // Enabled for 0xFE01, but the client speaks 62: it does not apply.
    bot_flags(pki, provider)
        .other_requests(OtherRequests::FlagIdentityOn(CodePoints::experimental()))
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, asks_everyone(pki, provider));
    assert_eq!(received, None);
    assert_eq!(state.sent_identity(), SentIdentity::Empty);
}

fn compatibility_on_fe01(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    let experimental = CodePoints::experimental();
    bot_flags(pki, provider)
        .code_points(experimental)
        .other_requests(OtherRequests::FlagIdentityOn(experimental))
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, asks_everyone(pki, provider));
    assert!(!state.flag_acknowledged());
    assert_eq!(received.as_deref(), Some(&pki.bot.chain[..]));
    assert_eq!(state.sent_identity(), SentIdentity::FlagIdentity);
}

fn sent_flag_identity(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    // The config's own identity is not used for an acknowledged request.
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    bot_flags(pki, provider)
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, flag_server(pki, provider));
    assert!(state.flag_acknowledged());
    assert_eq!(
        state.certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    assert_eq!(state.sent_identity(), SentIdentity::FlagIdentity);
    assert_eq!(received.as_deref(), Some(&pki.bot.chain[..]));
}

fn sent_config_identity(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    client.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    ClientFlags::without_identity()
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, asks_everyone(pki, provider));
    assert!(!state.requested_client_auth());
    assert_eq!(state.sent_identity(), SentIdentity::ConfigIdentity);
    assert_eq!(received.as_deref(), Some(&pki.normal_client.chain[..]));
}

fn sent_empty(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    ClientFlags::request_client_auth_with(config::nothing_suitable())
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, flag_server(pki, provider));
    assert!(state.flag_acknowledged());
    assert_eq!(state.sent_identity(), SentIdentity::Empty);
    assert_eq!(received, None);
}

fn sent_nothing(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    bot_flags(pki, provider)
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    // A server without TLS Flags and without client authentication.
    let (state, received) = run(client, config::server(pki, provider));
    assert!(state.requested_client_auth());
    assert!(!state.flag_acknowledged());
    assert_eq!(state.certificate_request(), None);
    assert_eq!(state.sent_identity(), SentIdentity::NotRequested);
    assert_eq!(received, None);
}

fn sent_tls12(provider: Provider) {
    let pki = TestPki::shared();
    let mut client = config::client(pki, provider);
    bot_flags(pki, provider)
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut server = ServerConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_client_cert_verifier(trusting_both(pki, provider))
        .with_single_cert(pki.server.chain.clone(), pki.server.key())
        .expect("server identity");
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (state, received) = run(client, server);
    // RCA-12: the config's own resolver (none) answered; the hook did not see it.
    assert_eq!(state.sent_identity(), SentIdentity::NotObserved);
    assert_eq!(received, None);
}

fn outcomes_handle(provider: Provider) {
    let pki = TestPki::shared();
    let flags = bot_flags(pki, provider);
    let outcomes = flags.outcomes();
    let mut client = config::client(pki, provider);
    flags
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let client = Arc::new(client);
    assert!(outcomes.get(SERVER_NAME).is_none());

    let (mut c, mut s) = connect(&client, &Arc::new(flag_server(pki, provider)));
    handshake(&mut c, &mut s).assert_ok();
    let first = outcomes.get(SERVER_NAME).expect("recorded");
    assert!(first.flag_acknowledged());
    assert_eq!(first.sent_identity(), SentIdentity::FlagIdentity);
    assert!(outcomes.get("other.example").is_none());

    // The next connection to the same name replaces the record.
    let (mut c, mut s) = connect(&client, &Arc::new(config::server(pki, provider)));
    handshake(&mut c, &mut s).assert_ok();
    let second = outcomes.get(SERVER_NAME).expect("recorded");
    assert!(!second.flag_acknowledged());
    assert_eq!(second.sent_identity(), SentIdentity::NotRequested);
}
