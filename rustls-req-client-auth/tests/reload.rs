//! Replacing the flag path's trust anchors at run time (`FlagVerifier`),
//! without rebuilding the `ServerConfig`: handshakes before, during and after
//! the swap, in memory, both providers. And the normal path's tickets, bound
//! to the config's own CA set (`NormalPathTrust`, RCA-11).

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
    live_config_replaces_certificate_and_bot_ca => live_reload;
    rca11_normal_path_tickets_follow_the_normal_trust_id => normal_trust_id_retires_partner_tickets;
    rca11_normal_path_tickets_are_bound_to_the_configs_ca_set => partner_tickets_bound_to_config_anchors;
}

/// A partner: no flag, a certificate of the normal CA for any request.
fn partner(pki: &TestPki, provider: Provider) -> Arc<ClientConfig> {
    let mut config = config::client(pki, provider);
    config.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    Arc::new(config)
}

/// A server that asks everyone for a certificate of the normal CA (optional),
/// through `normal`, beside the flag path.
fn partner_server(
    pki: &TestPki,
    provider: Provider,
    normal: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    flags: ServerFlags,
) -> rustls::ServerConfig {
    let mut server = config::server_requesting(pki, provider, normal);
    flags
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    server
}

fn bot_flags(pki: &TestPki, provider: Provider) -> ServerFlags {
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
}

/// Connects `client` to `server`; returns the server side.
fn connect_once(
    client: &Arc<ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> rustls::ServerConnection {
    let (mut c, mut s) = connect(client, server);
    handshake(&mut c, &mut s).assert_ok();
    s
}

fn normal_trust_id_retires_partner_tickets(provider: Provider) {
    let pki = TestPki::shared();
    let flags = bot_flags(pki, provider).normal_trust_id(b"partner CAs 1");
    let trust = flags.normal_path_trust();
    let normal = config::verifier(&pki.normal_ca, provider, false);
    let server = Arc::new(partner_server(pki, provider, normal, flags));
    let partner = partner(pki, provider);

    let s = connect_once(&partner, &server);
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);
    let s = connect_once(&partner, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(PeerIdentity::of(&s).restored_from_ticket());
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);

    // The operator replaces the partner CA file: its tickets are retired, the
    // partner is verified again in a full handshake.
    trust.set_trust_id(b"partner CAs 2");
    let s = connect_once(&partner, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    assert!(!PeerIdentity::of(&s).restored_from_ticket());
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);
    assert_eq!(PeerIdentity::of(&s).chain(), &pki.normal_client.chain[..]);
}

fn partner_tickets_bound_to_config_anchors(provider: Provider) {
    let pki = TestPki::shared();
    let partner = partner(pki, provider);
    let named = || config::verifier(&pki.normal_ca, provider, false);
    // The same anchors, but named to nobody: another set for the tickets.
    let unnamed = || {
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(pki.normal_ca.roots()),
            provider.crypto(),
        )
        .allow_unauthenticated()
        .clear_root_hint_subjects()
        .build()
        .expect("verifier")
    };
    // Three configs (say, one per restart) sharing one session cache.
    let first = partner_server(pki, provider, named(), bot_flags(pki, provider));
    let mut same_set = partner_server(pki, provider, named(), bot_flags(pki, provider));
    let mut other_set = partner_server(pki, provider, unnamed(), bot_flags(pki, provider));
    same_set.session_storage = Arc::clone(&first.session_storage);
    other_set.session_storage = Arc::clone(&first.session_storage);
    let [first, same_set, other_set] = [first, same_set, other_set].map(Arc::new);

    assert_eq!(
        connect_once(&partner, &first).handshake_kind(),
        Some(HandshakeKind::Full)
    );
    // A config learns its verifier's anchors in its first full handshake:
    // until then it resumes no normal-path ticket.
    assert_eq!(
        connect_once(&partner, &same_set).handshake_kind(),
        Some(HandshakeKind::Full)
    );
    // Its own tickets resume there (those of the first config carry the same
    // anchors' fingerprint, so they would too).
    let s = connect_once(&partner, &same_set);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);

    // Another set: after its first full handshake, the tickets of the named
    // set are still not resumed there.
    let s = connect_once(&partner, &other_set);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    let s = connect_once(&partner, &first);
    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::Full),
        "a ticket of the unnamed set"
    );
    let s = connect_once(&partner, &other_set);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);
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
    let files = integration_tests::local::PemFiles::new(pki);
    let (cert, key, bot_ca) = (
        files.path("server.pem"),
        files.path("server.key"),
        files.path("bot-ca.pem"),
    );
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

/// `OnePortConfig::build_live`: the operator renews the server certificate
/// and key (and moves bots to another CA) in the files, and calls
/// `LiveConfig::replace`: a handshake after it gets the new certificate, a
/// connection made before keeps the old one and goes on working. A key that
/// does not belong to the certificate changes nothing.
fn live_reload(provider: Provider) {
    let pki = TestPki::shared();
    let files = integration_tests::local::PemFiles::new(pki);
    let (cert, key, bot_ca) = (
        files.path("server.pem"),
        files.path("server.key"),
        files.path("bot-ca.pem"),
    );
    let load = || {
        OnePortConfig::from_pem_files(&cert, &key, &bot_ca)
            .expect("files")
            .crypto_provider(provider.crypto())
    };
    let (server, live) = load().build_live().expect("config");
    let partner = bot(pki, provider, &pki.normal_client);
    let bot = bot(pki, provider, &pki.bot);
    let (mut before, mut before_server) = connect(&bot, &server);
    handshake(&mut before, &mut before_server).assert_ok();
    assert_eq!(before.peer_certificates(), Some(&pki.server.chain[..]));
    assert_eq!(PeerIdentity::of(&before_server).path(), AuthPath::Flag);

    // Renewed: the same name, a new key; and the other CA for bots.
    let renewed = pki.server_ca.issue(
        integration_tests::pki::SERVER_NAME,
        &[integration_tests::pki::SERVER_NAME],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(&cert, &renewed.chain_pem).expect("write");
    // A key that does not match is refused, and nothing changes.
    assert!(load().build().is_err());
    assert!(live.replace(&load()).is_err());
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(c.peer_certificates(), Some(&pki.server.chain[..]));

    std::fs::write(&key, &renewed.key_pem).expect("write");
    std::fs::write(&bot_ca, &pki.normal_ca.cert_pem).expect("write");
    live.replace(&load()).expect("reload");
    let (mut c, mut s) = connect(&partner, &server);
    handshake(&mut c, &mut s).assert_ok();
    assert_eq!(c.peer_certificates(), Some(&renewed.chain[..]));
    assert_eq!(PeerIdentity::of(&s).chain(), &pki.normal_client.chain[..]);

    // The connection made before keeps its certificate and works on.
    let (at_server, at_client) = exchange_data(&mut before, &mut before_server, b"still here")
        .expect("established connection");
    assert_eq!(
        (&at_server[..], &at_client[..]),
        (&b"still here"[..], &b"still here"[..])
    );
    assert_eq!(before.peer_certificates(), Some(&pki.server.chain[..]));
}
