//! The handshake fuzz targets under `cargo test`: every committed seed of
//! `fuzz/corpus/handshake_server/` and `fuzz/corpus/handshake_client/` runs
//! through the targets' own code (`fuzz/harness/`, included below), and the
//! canonical seeds are checked to still reach the states they were recorded
//! for, so a seed made stale by a change to rustls, the fork or this crate is
//! noticed without a fuzzer.
//!
//! Seed names start with the outcome they promise: `complete-` (the
//! handshake completes), `progress-` (no error, handshake under way),
//! `alert-` (fails and queues an alert), `silent-` (fails with an error
//! rustls by design does not answer with an alert). Files without one of
//! these prefixes get the targets' assertions only.
//!
//! The seeds are recordings of real, deterministic rustls peers (see
//! `fuzz/README.md`). To record them again, after a change that makes them
//! stale:
//!
//! ```sh
//! cargo test -p rustls-req-client-auth --test fuzz_corpora -- --ignored --exact regenerate_seeds
//! ```
//!
//! With `FUZZ_NEW_PKI=1` it first replaces the committed test PKI
//! (`fuzz/pki/`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use integration_tests::scripted::{ext, ServerScript};
use rustls::hooks::HandshakeMessage;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, ConnectionCommon, HandshakeKind, NamedGroup,
    ProtocolVersion, ServerConfig, ServerConnection, SignatureScheme,
};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause};
use rustls_req_client_auth::server::{peer, server_state, AuthPath, RequestReason};
use rustls_req_client_auth::{ClientFlags, Flag, FlagSet, FlagsError};

#[path = "../../fuzz/harness/mod.rs"]
mod harness;

use harness::pki::{Pki, FILES, SERVER_NAME};
use harness::provider::{provider, provider_with_only, End};
use harness::targets::{
    self, alert_optional, bot_identity, client_base, client_config, server_base, server_config,
    variant, ClientRun, Drive, Input, SentAlert, ServerRun,
};
use harness::wire::{self, Record};

const TLS_FLAGS: u16 = rustls_tls_flags::extension_type::TLS_FLAGS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// Every file of a corpus directory: (name, contents), sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus(target);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the fuzz corpus {}: {e}", dir.display()));
    let mut seeds = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, fs::read(&path).expect("read seed"))
        })
        .collect::<Vec<_>>();
    seeds.sort();
    seeds
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = corpus(target).join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("seed {} is missing: {e}", path.display()))
}

/// Checks the outcome a seed's name promises; `false` for an unnamed file.
fn check_promise(name: &str, drive: &Drive, handshaking: bool) -> bool {
    let error = drive.error.as_ref();
    let (promised, kept) = if name.starts_with("complete-") {
        ("complete", error.is_none() && !handshaking)
    } else if name.starts_with("progress-") {
        ("progress", error.is_none() && handshaking)
    } else if name.starts_with("alert-") {
        ("alert", error.is_some() && drive.alert.is_some())
    } else if name.starts_with("silent-") {
        ("silent", error.is_some_and(alert_optional))
    } else {
        return false;
    };
    assert!(
        kept,
        "seed {name} promises {promised}, got error {error:?}, alert {:?}, handshaking {handshaking}",
        drive.alert
    );
    true
}

#[test]
fn fuzz_corpus_handshake_server_replays_cleanly() {
    let mut named = 0;
    for (name, data) in seeds("handshake_server") {
        let run = targets::server(&data);
        named += usize::from(check_promise(&name, &run.drive, run.conn.is_handshaking()));
    }
    assert!(named >= 15, "only {named} named server seeds");
}

#[test]
fn fuzz_corpus_handshake_client_replays_cleanly() {
    let mut named = 0;
    for (name, data) in seeds("handshake_client") {
        let run = targets::client(&data);
        named += usize::from(check_promise(&name, &run.drive, run.conn.is_handshaking()));
    }
    assert!(named >= 12, "only {named} named client seeds");
}

/// The client target's ClientHello is the one the client seeds answer: the
/// same bytes on every connection, and the ones the server seeds start with.
#[test]
fn fuzz_client_hello_is_deterministic() {
    let first = targets::client(&[]).drive.written;
    assert_eq!(first, targets::client(&[]).drive.written);
    let hello = wire::first_hello(&first).expect("a ClientHello");
    assert!(hello.position(TLS_FLAGS).is_some(), "the flag is offered");
    let recorded = seed("handshake_server", "progress-flag-set.bin");
    assert_eq!(Input::parse(&recorded).peer, &first[..]);
}

fn server_seed(name: &str) -> ServerRun {
    targets::server(&seed("handshake_server", name))
}

fn client_seed(name: &str) -> ClientRun {
    targets::client(&seed("handshake_client", name))
}

fn request_client_auth() -> FlagSet {
    [Flag::REQUEST_CLIENT_AUTH].into_iter().collect()
}

/// The server answered with a ServerHello, and asked for a certificate
/// because of the flag (or did not ask at all).
fn assert_server_hello(run: &ServerRun, flag_request: bool) {
    assert!(run.drive.error.is_none(), "{:?}", run.drive.error);
    assert!(run.drive.wrote_handshake(wire::SERVER_HELLO));
    let state = server_state(&run.conn).expect("ServerFlags state");
    assert_eq!(state.client_requested_auth(), flag_request);
    let (request, acknowledged) = if flag_request {
        (Some(RequestReason::Flag), request_client_auth())
    } else {
        (None, FlagSet::new())
    };
    assert_eq!(state.certificate_request(), request);
    assert_eq!(state.acknowledged(), &acknowledged);
}

#[test]
fn fuzz_server_seeds_reach_their_states() {
    let run = server_seed("progress-flag-set.bin");
    assert_server_hello(&run, true);
    assert_eq!(run.conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    for name in [
        "progress-flag-set-in-small-chunks.bin",
        "progress-flag-set-two-records.bin",
        "progress-experimental-flag-set.bin",
    ] {
        assert_server_hello(&server_seed(name), true);
    }
    for name in [
        "progress-flag-absent.bin",
        "progress-experimental-flag-unseen.bin",
    ] {
        assert_server_hello(&server_seed(name), false);
    }

    let run = server_seed("progress-several-flags.bin");
    assert_server_hello(&run, true);
    let state = server_state(&run.conn).expect("state");
    assert_eq!(state.client_flags().iter().count(), 3);

    let run = server_seed("progress-tls12-flag-ignored.bin");
    assert_eq!(run.conn.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_server_hello(&run, false);

    for name in ["complete-flag-path.bin", "complete-require-certificate.bin"] {
        let run = server_seed(name);
        assert!(!run.conn.is_handshaking(), "{name}: {:?}", run.drive.error);
        assert_eq!(peer(&run.conn).path, AuthPath::Flag, "{name}");
    }
    let run = server_seed("complete-flag-absent.bin");
    assert!(!run.conn.is_handshaking(), "{:?}", run.drive.error);
    assert_eq!(peer(&run.conn).path, AuthPath::None);
}

/// The malformed `tls_flags` seeds fail on the flag, with the alert the
/// rules name, in plaintext (nothing was encrypted yet).
#[test]
fn fuzz_server_malformed_flags_seeds_fail_on_the_flag() {
    use AlertDescription::{DecodeError, IllegalParameter};
    for (name, alert) in [
        ("alert-tls-flags-empty-extension-data.bin", DecodeError),
        ("alert-tls-flags-length-zero.bin", DecodeError),
        ("alert-tls-flags-length-exceeds-data.bin", DecodeError),
        ("alert-tls-flags-length-short-of-data.bin", DecodeError),
        ("alert-tls-flags-all-zero.bin", IllegalParameter),
        ("alert-tls-flags-trailing-zero-octet.bin", IllegalParameter),
        ("alert-tls-flags-duplicate.bin", IllegalParameter),
    ] {
        let run = server_seed(name);
        assert_eq!(run.drive.alert, Some(SentAlert::Plain(alert)), "{name}");
        assert!(!run.drive.wrote_handshake(wire::SERVER_HELLO), "{name}");
    }
    // rustls's own gap (see `alert_optional`): when it closes, this fails.
    let run = server_seed("silent-tls12-no-signature-scheme-for-server-key.bin");
    assert_eq!(
        run.drive.error,
        Some(rustls::Error::General("incompatible signing key".into()))
    );
    assert_eq!(run.drive.alert, None);
    // A second gap of rustls, found by the fuzzer (a seed it wrote, not one
    // `regenerate_seeds` makes): another SNI in the ClientHello after a
    // HelloRetryRequest fails without an alert.
    let run = server_seed("silent-server-name-differs-on-retry.bin");
    assert_eq!(
        run.drive.error,
        Some(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::ServerNameDifferedOnRetry
        ))
    );
    assert_eq!(run.drive.alert, None);
    for name in ["silent-fatal-alert.bin", "silent-client-refuses-server.bin"] {
        let run = server_seed(name);
        assert!(
            matches!(run.drive.error, Some(rustls::Error::AlertReceived(_))),
            "{name}: {:?}",
            run.drive.error
        );
    }
}

fn assert_complete(run: &ClientRun, cause: Option<CertificateRequestCause>) {
    assert!(
        run.drive.error.is_none() && !run.conn.is_handshaking(),
        "{:?}",
        run.drive.error
    );
    let state = client_state(&run.conn).expect("ClientFlags state");
    assert_eq!(state.certificate_request(), cause);
}

#[test]
fn fuzz_client_seeds_reach_their_states() {
    use CertificateRequestCause::{Flag as ByFlag, ServerPolicy};
    for name in [
        "complete-flag-path.bin",
        "complete-flag-path-with-tickets.bin",
        "complete-experimental-flag-path.bin",
    ] {
        let run = client_seed(name);
        assert_complete(&run, Some(ByFlag));
        let state = client_state(&run.conn).expect("state");
        assert_eq!(state.acknowledged(), &request_client_auth(), "{name}");
        assert_eq!(run.conn.handshake_kind(), Some(HandshakeKind::Full));
    }
    let run = client_seed("complete-certificate-request-proposes-a-flag.bin");
    assert_complete(&run, Some(ByFlag));
    let state = client_state(&run.conn).expect("state");
    assert_eq!(state.acknowledged(), &request_client_auth());

    let data = seed("handshake_client", "complete-hello-retry-request.bin");
    let hello = wire::first_hello(Input::parse(&data).peer).expect("a hello");
    assert!(hello.is_hello_retry_request());
    let run = targets::client(&data);
    assert_complete(&run, Some(ByFlag));
    assert_eq!(
        run.conn.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    for name in [
        "complete-server-policy-request.bin",
        "complete-server-policy-request-flag-identity.bin",
    ] {
        assert_complete(&client_seed(name), Some(ServerPolicy));
    }
    assert_complete(&client_seed("complete-no-certificate-request.bin"), None);
    let run = client_seed("complete-tls12.bin");
    assert_complete(&run, None);
    assert_eq!(run.conn.protocol_version(), Some(ProtocolVersion::TLSv1_2));
}

/// The misbehaving-server seeds fail on the flag rule they break.
#[test]
fn fuzz_client_misbehaving_seeds_fail_on_the_flag() {
    for name in [
        "alert-server-hello-with-tls-flags.bin",
        "alert-hello-retry-request-with-tls-flags.bin",
        "alert-tls12-server-hello-with-tls-flags.bin",
        "alert-acknowledgement-in-encrypted-extensions.bin",
        "alert-acknowledgement-in-certificate-entry.bin",
        "alert-acknowledgement-in-new-session-ticket.bin",
        "alert-malformed-flags-in-certificate-request.bin",
    ] {
        let run = client_seed(name);
        let error = run.drive.error.as_ref().expect(name);
        let flags = FlagsError::from_rustls(error)
            .unwrap_or_else(|| panic!("{name}: not a FlagsError: {error:?}"));
        if let Some(SentAlert::Plain(alert)) = run.drive.alert {
            assert_eq!(alert, flags.alert(), "{name}");
        }
    }
    let run = client_seed("silent-server-refuses-client-hello.bin");
    assert_eq!(
        run.drive.error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure
        ))
    );
}

// ---------------------------------------------------------------------------
// Recording the seeds.

/// Records every seed again from real (deterministic) rustls peers and
/// writes them to `fuzz/corpus/handshake_{server,client}/`; with
/// `FUZZ_NEW_PKI=1`, first a new test PKI to `fuzz/pki/`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after a change that makes the seeds stale"]
fn regenerate_seeds() {
    let pki = if std::env::var_os("FUZZ_NEW_PKI").is_some() {
        let pki = new_pki();
        for (file, contents) in FILES.iter().zip(pki.files()) {
            fs::write(fuzz_dir().join("pki").join(file), contents).expect("write PKI");
        }
        pki
    } else {
        Pki::embedded()
    };
    write_seeds("handshake_server", &server_seeds(&pki));
    write_seeds("handshake_client", &client_seeds(&pki));
}

fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = corpus(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    for (name, data) in seeds {
        fs::write(dir.join(name), data).expect("write seed");
    }
    for (name, _) in self::seeds(target) {
        if !seeds.iter().any(|(n, _)| *n == name) {
            eprintln!("{target}: kept {name} (not recorded here)");
        }
    }
}

fn new_pki() -> Pki {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let (server_ca_cert, server_ca) = authority("fuzz server CA");
    let (server, server_key) = leaf(&server_ca, SERVER_NAME, ServerAuth);
    let (bot_ca_cert, bot_ca) = authority("fuzz bot CA (flag path)");
    let (bot, bot_key) = leaf(&bot_ca, "crawler.bot.test", ClientAuth);
    Pki {
        server_ca: server_ca_cert,
        server,
        server_key,
        bot_ca: bot_ca_cert,
        bot,
        bot_key,
    }
}

fn authority(name: &str) -> (Vec<u8>, rcgen::Issuer<'static, rcgen::KeyPair>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.der().to_vec(), rcgen::Issuer::new(params, key))
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    name: &str,
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (Vec<u8>, Vec<u8>) {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("leaf key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("leaf");
    (cert.der().to_vec(), key.serialize_der())
}

/// What each side wrote, turn by turn, in an in-memory handshake.
struct Conversation {
    client: Vec<Vec<u8>>,
    server: Vec<Vec<u8>>,
}

impl Conversation {
    fn client_bytes(&self) -> Vec<u8> {
        self.client.concat()
    }

    fn server_bytes(&self) -> Vec<u8> {
        self.server.concat()
    }
}

/// Runs a client and a server against each other until neither writes.
fn converse(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> Conversation {
    let name = SERVER_NAME.try_into().expect("DNS name");
    let mut c = ClientConnection::new(Arc::clone(client), name).expect("client");
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server");
    let mut talk = Conversation {
        client: Vec::new(),
        server: Vec::new(),
    };
    loop {
        let from_client = flush(&mut c);
        deliver(&mut s, &from_client);
        let from_server = flush(&mut s);
        deliver(&mut c, &from_server);
        if from_client.is_empty() && from_server.is_empty() {
            return talk;
        }
        talk.client.push(from_client);
        talk.server.push(from_server);
    }
}

fn flush<D>(conn: &mut ConnectionCommon<D>) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write to a Vec");
    }
    out
}

fn deliver<D>(conn: &mut ConnectionCommon<D>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        if conn.read_tls(&mut bytes).expect("read_tls") == 0 || conn.process_new_packets().is_err()
        {
            return;
        }
    }
}

/// The ClientHello (first flight) of a client config.
fn client_hello(config: ClientConfig) -> Vec<u8> {
    let name = SERVER_NAME.try_into().expect("DNS name");
    let mut conn = ClientConnection::new(Arc::new(config), name).expect("client");
    flush(&mut conn)
}

fn flags(numbers: &[u16]) -> FlagSet {
    numbers
        .iter()
        .map(|n| Flag::new(*n).expect("flag number"))
        .collect()
}

fn server_seeds(pki: &Pki) -> Vec<(String, Vec<u8>)> {
    let flag_client = || client_config(pki, 0);
    let hello = client_hello(flag_client());
    let tls12_hello = client_hello(client_base(
        pki,
        &[&rustls::version::TLS12],
        Some(ClientFlags::request_client_auth(bot_identity(pki))),
    ));
    let mut seeds = vec![
        seed_of("progress-flag-set", 0, &hello),
        seed_of(
            "progress-experimental-flag-set",
            variant::EXPERIMENTAL,
            &client_hello(client_config(pki, variant::EXPERIMENTAL)),
        ),
        seed_of(
            "progress-experimental-flag-unseen",
            0,
            &client_hello(client_config(pki, variant::EXPERIMENTAL)),
        ),
        seed_of(
            "progress-flag-absent",
            0,
            &client_hello(client_base(pki, rustls::DEFAULT_VERSIONS, None)),
        ),
        seed_of(
            "progress-several-flags",
            0,
            &client_hello(client_base(
                pki,
                rustls::DEFAULT_VERSIONS,
                Some(
                    ClientFlags::request_client_auth(bot_identity(pki))
                        .propose(Flag::RESUMPTION_ACROSS_NAMES)
                        .propose(Flag::new(1000).expect("flag")),
                ),
            )),
        ),
        seed_of("progress-tls12-flag-ignored", 0, &tls12_hello),
        seed_of(
            "silent-tls12-no-signature-scheme-for-server-key",
            0,
            &without_signature_scheme(&tls12_hello, SignatureScheme::ED25519),
        ),
        (
            "progress-flag-set-in-small-chunks.bin".to_owned(),
            [&[0, 7][..], &hello].concat(),
        ),
        seed_of(
            "progress-flag-set-two-records",
            0,
            &split_first_record(&hello),
        ),
    ];
    seeds.extend(full_client_transcripts(pki));
    seeds.extend(malformed_client_hellos(&hello));
    seeds.push(seed_of(
        "silent-fatal-alert",
        0,
        &record(wire::ALERT, &[2, 40]),
    ));
    seeds
}

/// Whole client sides of handshakes with the target's server: replayed,
/// they complete it.
fn full_client_transcripts(pki: &Pki) -> Vec<(String, Vec<u8>)> {
    let server = |v| Arc::new(server_config(pki, v));
    let flag_client = Arc::new(client_config(pki, 0));
    let plain_client = Arc::new(client_base(pki, rustls::DEFAULT_VERSIONS, None));
    // A bot that does not trust the server: it answers the server's flight
    // with an (encrypted) alert.
    let mut distrustful = client_config(pki, 0);
    distrustful.dangerous().set_certificate_verifier(
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(pki.bot_roots()),
            provider(End::Client),
        )
        .build()
        .expect("verifier"),
    );
    vec![
        seed_of(
            "complete-flag-path",
            0,
            &converse(&flag_client, &server(0)).client_bytes(),
        ),
        seed_of(
            "complete-require-certificate",
            variant::REQUIRE_CERTIFICATE,
            &converse(&flag_client, &server(variant::REQUIRE_CERTIFICATE)).client_bytes(),
        ),
        seed_of(
            "complete-flag-absent",
            0,
            &converse(&plain_client, &server(0)).client_bytes(),
        ),
        seed_of(
            "silent-client-refuses-server",
            0,
            &converse(&Arc::new(distrustful), &server(0)).client_bytes(),
        ),
    ]
}

/// The flag-set ClientHello with each malformed `tls_flags` form of
/// SPECIFICATION.md (TF-1, TF-3) and a duplicate extension.
fn malformed_client_hellos(hello: &[u8]) -> Vec<(String, Vec<u8>)> {
    let good = wire::first_hello(hello).expect("ClientHello");
    let at = good.position(TLS_FLAGS).expect("tls_flags offered");
    let data = good.extensions[at].1.clone();
    let length = data[0];
    let with_data = |name: &str, new: Vec<u8>| {
        let edited = wire::edit_first_hello(hello, |h| h.extensions[at].1 = new).expect("edit");
        seed_of(name, 0, &edited)
    };
    let mut all_zero = vec![length];
    all_zero.resize(data.len(), 0);
    let mut trailing_zero = data.clone();
    trailing_zero[0] += 1;
    trailing_zero.push(0);
    let mut exceeds = data.clone();
    exceeds[0] += 1;
    let mut short = data.clone();
    short[0] -= 1;
    let duplicate = wire::edit_first_hello(hello, |h| {
        let copy = h.extensions[at].clone();
        h.extensions.insert(at + 1, copy);
    })
    .expect("edit");
    vec![
        with_data("alert-tls-flags-empty-extension-data", Vec::new()),
        with_data("alert-tls-flags-length-zero", vec![0]),
        with_data("alert-tls-flags-length-exceeds-data", exceeds),
        with_data("alert-tls-flags-length-short-of-data", short),
        with_data("alert-tls-flags-all-zero", all_zero),
        with_data("alert-tls-flags-trailing-zero-octet", trailing_zero),
        seed_of("alert-tls-flags-duplicate", 0, &duplicate),
    ]
}

fn client_seeds(pki: &Pki) -> Vec<(String, Vec<u8>)> {
    let client = |v| Arc::new(client_config(pki, v));
    let flag_server = |v| server_config(pki, v);
    let first_flight = |talk: Conversation| talk.server[0].clone();

    let mut with_tickets = flag_server(0);
    with_tickets.session_storage = ServerSessionMemoryCache::new(8);
    let mut hrr = server_base(
        pki,
        provider_with_only(End::Server, NamedGroup::secp256r1),
        rustls::DEFAULT_VERSIONS,
        None,
    );
    hrr.extension_hooks
        .clone_from(&flag_server(0).extension_hooks);
    let mut tls12 = server_base(pki, provider(End::Server), &[&rustls::version::TLS12], None);
    tls12
        .extension_hooks
        .clone_from(&flag_server(0).extension_hooks);
    let policy = server_base(
        pki,
        provider(End::Server),
        rustls::DEFAULT_VERSIONS,
        Some(
            WebPkiClientVerifier::builder_with_provider(
                Arc::new(pki.bot_roots()),
                provider(End::Server),
            )
            .allow_unauthenticated()
            .build()
            .expect("verifier"),
        ),
    );
    let plain = server_base(pki, provider(End::Server), rustls::DEFAULT_VERSIONS, None);

    let flight = first_flight(converse(&client(0), &Arc::new(flag_server(0))));
    let hrr_flight = converse(&client(0), &Arc::new(hrr)).server_bytes();
    let tls12_flight = converse(&client(0), &Arc::new(tls12)).server_bytes();
    let policy_flight = first_flight(converse(&client(0), &Arc::new(policy)));
    let mut seeds = vec![
        seed_of("complete-flag-path", 0, &flight),
        seed_of(
            "complete-flag-path-with-tickets",
            0,
            &converse(&client(0), &Arc::new(with_tickets)).server_bytes(),
        ),
        seed_of(
            "complete-experimental-flag-path",
            variant::EXPERIMENTAL,
            &first_flight(converse(
                &client(variant::EXPERIMENTAL),
                &Arc::new(flag_server(variant::EXPERIMENTAL)),
            )),
        ),
        seed_of("complete-hello-retry-request", 0, &hrr_flight),
        seed_of("complete-tls12", 0, &tls12_flight),
        seed_of("complete-server-policy-request", 0, &policy_flight),
        seed_of(
            "complete-server-policy-request-flag-identity",
            variant::FLAG_IDENTITY_FOR_ALL,
            &policy_flight,
        ),
        seed_of(
            "complete-no-certificate-request",
            0,
            &first_flight(converse(&client(0), &Arc::new(plain))),
        ),
        seed_of(
            "silent-server-refuses-client-hello",
            0,
            &first_flight(converse(&client(0), &Arc::new(refusing_server(pki)))),
        ),
    ];
    let add_flags = |hello: &mut wire::Hello| {
        let data = request_client_auth().to_extension_data().expect("flags");
        hello.add(TLS_FLAGS, data);
    };
    for (name, flight) in [
        ("alert-server-hello-with-tls-flags", &flight),
        ("alert-hello-retry-request-with-tls-flags", &hrr_flight),
        ("alert-tls12-server-hello-with-tls-flags", &tls12_flight),
    ] {
        let edited = wire::edit_first_hello(flight, add_flags).expect("edit ServerHello");
        seeds.push(seed_of(name, 0, &edited));
    }
    seeds.extend(misbehaving_servers(pki));
    seeds
}

/// Servers whose hooks put `tls_flags` where the rules forbid it: their
/// flights are encrypted, so they are recorded, not edited.
fn misbehaving_servers(pki: &Pki) -> Vec<(String, Vec<u8>)> {
    let ack = ext(
        TLS_FLAGS,
        &request_client_auth().to_extension_data().expect("flags"),
    );
    // A CertificateRequest is a request: besides the acknowledgement it may
    // propose flags of its own (TF-8), but never a malformed value (TF-3).
    let proposing = ext(
        TLS_FLAGS,
        &flags(&[80, 5]).to_extension_data().expect("flags"),
    );
    let malformed = ext(TLS_FLAGS, &[1, 0]);
    let bots = WebPkiClientVerifier::builder_with_provider(
        Arc::new(pki.bot_roots()),
        provider(End::Server),
    )
    .build()
    .expect("verifier");
    let scripted = |script: ServerScript, verifier, tickets: bool| {
        let mut config = server_base(
            pki,
            provider(End::Server),
            rustls::DEFAULT_VERSIONS,
            verifier,
        );
        if tickets {
            config.session_storage = ServerSessionMemoryCache::new(8);
        }
        script.install(&mut config);
        converse(&Arc::new(client_config(pki, 0)), &Arc::new(config)).server_bytes()
    };
    let in_message = |message| ServerScript::default().with(message, ack.clone());
    vec![
        seed_of(
            "alert-acknowledgement-in-encrypted-extensions",
            0,
            &scripted(
                in_message(HandshakeMessage::EncryptedExtensions),
                None,
                false,
            ),
        ),
        seed_of(
            "alert-acknowledgement-in-certificate-entry",
            0,
            &scripted(
                in_message(HandshakeMessage::Certificate { index: 0 }),
                None,
                false,
            ),
        ),
        seed_of(
            "alert-acknowledgement-in-new-session-ticket",
            0,
            &scripted(in_message(HandshakeMessage::NewSessionTicket), None, true),
        ),
        seed_of(
            "complete-certificate-request-proposes-a-flag",
            0,
            &scripted(
                ServerScript::default().with(HandshakeMessage::CertificateRequest, proposing),
                Some(Arc::clone(&bots)),
                false,
            ),
        ),
        seed_of(
            "alert-malformed-flags-in-certificate-request",
            0,
            &scripted(
                ServerScript::default().with(HandshakeMessage::CertificateRequest, malformed),
                Some(bots),
                false,
            ),
        ),
    ]
}

/// A server with no key-exchange group in common with the client: it
/// refuses the ClientHello with a plaintext `handshake_failure`.
fn refusing_server(pki: &Pki) -> ServerConfig {
    let mut crypto = rustls::crypto::aws_lc_rs::default_provider();
    crypto.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::SECP384R1];
    server_base(pki, Arc::new(crypto), rustls::DEFAULT_VERSIONS, None)
}

/// The ClientHello without `scheme` in its `signature_algorithms`.
fn without_signature_scheme(hello: &[u8], scheme: SignatureScheme) -> Vec<u8> {
    const SIGNATURE_ALGORITHMS: u16 = 13;
    let unwanted = u16::from(scheme).to_be_bytes();
    wire::edit_first_hello(hello, |h| {
        let at = h
            .position(SIGNATURE_ALGORITHMS)
            .expect("signature_algorithms");
        let list = h.extensions[at].1[2..]
            .chunks(2)
            .filter(|s| *s != unwanted)
            .flatten()
            .copied()
            .collect::<Vec<_>>();
        let mut data = u16::try_from(list.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        data.extend(list);
        h.extensions[at].1 = data;
    })
    .expect("edit ClientHello")
}

fn seed_of(name: &str, variant: u8, peer: &[u8]) -> (String, Vec<u8>) {
    (format!("{name}.bin"), Input::encode(variant, peer))
}

fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Record {
        typ,
        version: 0x0303,
        payload,
    }
    .encode(&mut out);
    out
}

/// The flight with its first record split in two (a handshake message
/// across records).
fn split_first_record(flight: &[u8]) -> Vec<u8> {
    let records = wire::records(flight).expect("whole records");
    let first = records[0];
    let half = first.payload.len() / 2;
    let mut out = Vec::new();
    for payload in [&first.payload[..half], &first.payload[half..]] {
        Record { payload, ..first }.encode(&mut out);
    }
    for rest in &records[1..] {
        rest.encode(&mut out);
    }
    out
}
