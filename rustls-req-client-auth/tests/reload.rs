//! Replacing the flag path's trust anchors at run time (`FlagVerifier`),
//! without rebuilding the `ServerConfig`: handshakes before, during and after
//! the swap, in memory, both providers.

use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::{exchange_data, handshake, handshake_tampered};
use integration_tests::pki::Identity;
use integration_tests::{provider_tests, Provider, Side, TestPki};
use rustls::{AlertDescription, ClientConfig, HandshakeKind};
use rustls_req_client_auth::{AuthPath, ClientFlags, OnePortConfig, PeerIdentity, ServerFlags};

provider_tests! {
    swapped_bot_ca_applies_to_new_handshakes => swap_applies_to_new_handshakes;
    handshake_in_progress_keeps_its_verifier => in_progress_keeps_its_verifier;
    rca11_same_bot_ca_set_keeps_tickets_valid => same_trust_keeps_tickets;
    rca11_a_new_trust_id_retires_tickets => new_trust_id_retires_tickets;
    one_port_config_reloads_its_bot_ca => one_port_reload;
}

fn bot(pki: &TestPki, provider: Provider, identity: &Identity) -> Arc<ClientConfig> {
    let mut config = config::client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(identity, provider))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    Arc::new(config)
}

fn swap_applies_to_new_handshakes(provider: Provider) {
    let pki = TestPki::shared();
    let flags = ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true));
    let bot_ca = flags.flag_verifier();
    let mut server = config::server(pki, provider);
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let server = Arc::new(server);
    let old_bot = bot(pki, provider, &pki.bot);
    let new_bot = bot(pki, provider, &pki.normal_client);

    // Before: the bot CA's bot is in; the other CA's is refused.
    let (mut established, mut established_server) = connect(&old_bot, &server);
    handshake(&mut established, &mut established_server).assert_ok();
    assert_eq!(PeerIdentity::of(&established_server).path(), AuthPath::Flag);
    let (mut c, mut s) = connect(&new_bot, &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::UnknownCA);

    // The operator swaps the bot CA set; the config is the same Arc.
    bot_ca.replace(config::verifier(&pki.normal_ca, provider, true));

    let (mut c, mut s) = connect(&new_bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    let peer = PeerIdentity::of(&s);
    assert_eq!(peer.path(), AuthPath::Flag);
    assert_eq!(peer.chain(), &pki.normal_client.chain[..]);
    // RCA-11: the old bot's ticket (from before the swap) is not resumed: a
    // full handshake verifies it against the new set, which refuses it.
    let (mut c, mut s) = connect(&old_bot, &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::UnknownCA);

    // The connection established before the swap keeps working, as it was.
    let (at_server, at_client) =
        exchange_data(&mut established, &mut established_server, b"still here")
            .expect("established connection");
    assert_eq!(
        (&at_server[..], &at_client[..]),
        (&b"still here"[..], &b"still here"[..])
    );
    assert_eq!(
        PeerIdentity::of(&established_server).chain(),
        &pki.bot.chain[..]
    );
}

fn in_progress_keeps_its_verifier(provider: Provider) {
    let pki = TestPki::shared();
    let flags = ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true));
    let bot_ca = flags.flag_verifier();
    let mut server = config::server(pki, provider);
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let (mut c, mut s) = connect(&bot(pki, provider, &pki.bot), &Arc::new(server));
    // Swap while the server's flight (with its CertificateRequest) is on the
    // wire: this handshake already has its verifier.
    let mut swapped = false;
    let outcome = handshake_tampered(&mut c, &mut s, &mut |sender, _| {
        if sender == Side::Server && !swapped {
            bot_ca.replace(config::verifier(&pki.normal_ca, provider, true));
            swapped = true;
        }
    });
    outcome.assert_ok();
    assert!(swapped);
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Flag);
}

fn same_trust_keeps_tickets(provider: Provider) {
    let pki = TestPki::shared();
    let flags = ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true));
    let bot_ca = flags.flag_verifier();
    let mut server = config::server(pki, provider);
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let server = Arc::new(server);
    let bot = bot(pki, provider, &pki.bot);
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    // A reload that loads the same bot CA set (a new verifier object).
    bot_ca.replace(config::verifier(&pki.bot_ca, provider, true));
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(PeerIdentity::of(&s).restored_from_ticket());
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Flag);
}

fn new_trust_id_retires_tickets(provider: Provider) {
    let pki = TestPki::shared();
    // A verifier that names no anchors in its CertificateRequests: only the
    // trust id tells one set from another.
    let unnamed = || {
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(pki.bot_ca.roots()),
            provider.crypto(),
        )
        .clear_root_hint_subjects()
        .build()
        .expect("verifier")
    };
    let flags = ServerFlags::request_client_auth(unnamed()).trust_id(b"bot CA set 1");
    let bot_ca = flags.flag_verifier();
    let mut server = config::server(pki, provider);
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let server = Arc::new(server);
    let bot = bot(pki, provider, &pki.bot);
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();

    // Same anchors, say with a new CRL: another id, so the ticket is retired
    // and the bot is verified again in a full handshake.
    bot_ca.replace_with_trust_id(unnamed(), b"bot CA set 2");
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    assert!(!PeerIdentity::of(&s).restored_from_ticket());
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Flag);
}

fn one_port_reload(provider: Provider) {
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    };
    let cert = file("server.pem", &pki.server.chain_pem);
    let key = file("server.key", &pki.server.key_pem);
    let bot_ca = file("bot-ca.pem", &pki.bot_ca.cert_pem);
    let (server, handle) = OnePortConfig::from_pem_files(&cert, &key, &bot_ca)
        .expect("files")
        .crypto_provider(provider.crypto())
        .build_reloadable()
        .expect("config");
    let partner = bot(pki, provider, &pki.normal_client);
    let bot = bot(pki, provider, &pki.bot);
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(s.alpn_protocol(), None, "the test client offers no ALPN");

    // The operator puts the other CA in the file and reloads.
    std::fs::write(&bot_ca, &pki.normal_ca.cert_pem).expect("write");
    OnePortConfig::from_pem_files(&cert, &key, &bot_ca)
        .expect("files")
        .crypto_provider(provider.crypto())
        .replace_bot_ca(&handle)
        .expect("reload");
    let (mut c, mut s) = connect(&partner, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(PeerIdentity::of(&s).chain(), &pki.normal_client.chain[..]);
    // The bot's ticket is from the old set: full handshake, refused.
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::UnknownCA);
}
