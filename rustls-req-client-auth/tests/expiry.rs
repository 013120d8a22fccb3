//! Sessions whose client certificate has expired are not resumed: the server
//! refuses the ticket (or TLS 1.2 session) and a full handshake verifies the
//! certificate the client holds now. So a bot that renewed its certificate
//! gets back in at once, and one that did not gets `certificate_expired`,
//! instead of resuming, on tickets that each resumption renews, a session an
//! application would have to refuse request after request. The server's clock
//! is a `TimeProvider` the test moves; in memory, both providers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::config::{self, connect};
use integration_tests::memory::handshake;
use integration_tests::pki::Identity;
use integration_tests::{provider_tests, Provider, Side, TestPki};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::UnixTime;
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{AlertDescription, ClientConfig, HandshakeKind, ServerConfig, SignatureScheme};
use rustls_req_client_auth::{AuthPath, ClientFlags, PeerIdentity, ServerFlags};

provider_tests! {
    expired_bot_session_is_not_resumed_and_the_renewed_bot_gets_in => renewed_bot_gets_in;
    expired_bot_is_refused_instead_of_resumed => expired_bot_is_refused;
    tls12_expired_partner_session_is_not_resumed => tls12_expired_partner_is_refused;
}

/// How long the expiring certificates are valid for, from their issue.
const VALID_FOR: Duration = Duration::from_secs(3600);

/// The server's clock: the real time when made, moved on by the test.
#[derive(Debug)]
struct Clock(AtomicU64);

impl Clock {
    fn now() -> Arc<Self> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970");
        Arc::new(Self(AtomicU64::new(now.as_secs())))
    }

    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            self.0.load(Ordering::SeqCst),
        )))
    }
}

/// A bot's certificate that it can replace in place, as a bot renewing its
/// certificate without rebuilding its `ClientConfig` (and so keeping its
/// tickets) does.
#[derive(Debug)]
struct Renewable(RwLock<Arc<CertifiedKey>>);

impl ResolvesClientCert for Renewable {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|key| Arc::clone(&key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn expiring_bot(pki: &TestPki) -> Identity {
    let valid_for = time::Duration::try_from(VALID_FOR).expect("an hour");
    pki.bot_ca
        .issue_expiring_in("expiring-bot.example", valid_for)
}

fn bot_server(pki: &TestPki, provider: Provider, clock: &Arc<Clock>) -> Arc<ServerConfig> {
    let mut server = config::server(pki, provider);
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    server.time_provider = Arc::<Clock>::clone(clock);
    Arc::new(server)
}

fn bot_with(
    pki: &TestPki,
    resolver: Arc<dyn ResolvesClientCert>,
    provider: Provider,
) -> Arc<ClientConfig> {
    let mut config = config::client(pki, provider);
    ClientFlags::request_client_auth_with(resolver)
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    Arc::new(config)
}

fn connect_once(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> rustls::ServerConnection {
    let (mut c, mut s) = connect(client, server);
    handshake(&mut c, &mut s).assert_ok();
    s
}

fn renewed_bot_gets_in(provider: Provider) {
    let pki = TestPki::shared();
    let clock = Clock::now();
    let server = bot_server(pki, provider, &clock);
    let expiring = expiring_bot(pki);
    let certificate = Arc::new(Renewable(RwLock::new(config::certified_key(
        &expiring, provider,
    ))));
    let bot = bot_with(pki, Arc::<Renewable>::clone(&certificate), provider);

    let s = connect_once(&bot, &server);
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Flag);
    // While the certificate is valid its session is resumed.
    let s = connect_once(&bot, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(PeerIdentity::of(&s).chain(), &expiring.chain[..]);

    // The certificate expires; the bot renews it in place, keeping its tickets.
    clock.advance(VALID_FOR + Duration::from_secs(60));
    *certificate.0.write().expect("not poisoned") = config::certified_key(&pki.bot, provider);

    let s = connect_once(&bot, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
    let peer = PeerIdentity::of(&s);
    assert_eq!(peer.path(), AuthPath::Flag);
    assert!(!peer.restored_from_ticket());
    assert_eq!(peer.chain(), &pki.bot.chain[..]);
    // Its new session is resumed again.
    let s = connect_once(&bot, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(PeerIdentity::of(&s).chain(), &pki.bot.chain[..]);
}

fn expired_bot_is_refused(provider: Provider) {
    let pki = TestPki::shared();
    let clock = Clock::now();
    let server = bot_server(pki, provider, &clock);
    let expiring = expiring_bot(pki);
    let bot = bot_with(pki, config::resolver(&expiring, provider), provider);

    connect_once(&bot, &server);
    // A second before the end of its validity the session is still resumed.
    clock.advance(VALID_FOR.saturating_sub(Duration::from_secs(1)));
    let s = connect_once(&bot, &server);
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));

    clock.advance(Duration::from_secs(61));
    let (mut c, mut s) = connect(&bot, &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::CertificateExpired);
}

/// TLS 1.2 (no flags there, RCA-12): a partner of the config's own verifier,
/// whose session (a session id, then a ticket) is refused once its
/// certificate expired.
fn tls12_expired_partner_is_refused(provider: Provider) {
    tls12_expired_partner_is_refused_with(provider, false);
    tls12_expired_partner_is_refused_with(provider, true);
}

fn tls12_expired_partner_is_refused_with(provider: Provider, tickets: bool) {
    let pki = TestPki::shared();
    let clock = Clock::now();
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, false),
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    server.time_provider = Arc::<Clock>::clone(&clock);
    if tickets {
        server.ticketer = provider.ticketer();
    }
    let server = Arc::new(server);
    let valid_for = time::Duration::try_from(VALID_FOR).expect("an hour");
    let expiring = pki
        .normal_ca
        .issue_expiring_in("expiring-partner.example", valid_for);
    let mut partner = config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12]);
    partner.client_auth_cert_resolver = config::resolver(&expiring, provider);
    let partner = Arc::new(partner);

    connect_once(&partner, &server);
    let s = connect_once(&partner, &server);
    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::Resumed),
        "tickets: {tickets}"
    );
    assert_eq!(PeerIdentity::of(&s).path(), AuthPath::Normal);

    clock.advance(VALID_FOR + Duration::from_secs(60));
    let (mut c, mut s) = connect(&partner, &server);
    handshake(&mut c, &mut s).assert_alert(Side::Server, AlertDescription::CertificateExpired);
    assert_eq!(
        s.handshake_kind(),
        Some(HandshakeKind::Full),
        "tickets: {tickets}"
    );
}
