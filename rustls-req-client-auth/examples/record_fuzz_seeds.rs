//! Records the seeds of the handshake fuzz targets (`fuzz/corpus/`) from
//! real, deterministic rustls peers: the transcripts of complete handshakes
//! on the flag path and off it, every malformed `tls_flags` form in a
//! ClientHello, and misbehaving servers played by the scripted hooks. Run it
//! with `cargo xtask fuzz-seeds [--new-pki]` after a change that makes the
//! seeds stale; `tests/fuzz_corpora.rs` replays them under `cargo test`.

use std::fs;
use std::sync::Arc;

use integration_tests::memory::{flush, record_flights, Flights};
use integration_tests::scripted::{ext, ServerScript};
use integration_tests::TestPki;
use rustls::hooks::HandshakeMessage;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{ClientConfig, ClientConnection, NamedGroup, ServerConfig, SignatureScheme};
use rustls_req_client_auth::{ClientFlags, Flag, FlagSet};

use fuzz_harness as harness;
use harness::corpus::{corpus, fuzz_dir, seeds};

use harness::pki::{Pki, FILES, SERVER_NAME};
use harness::provider::{provider, provider_with_only, End};
use harness::targets::{
    bot_identity, client_base, client_config, server_base, server_config, variant, Input,
};
use harness::wire::{self, Record};

const TLS_FLAGS: u16 = rustls_tls_flags::extension_type::TLS_FLAGS;

/// Records every seed again and writes them to
/// `fuzz/corpus/handshake_{server,client}/`; with `--new-pki`, first a new
/// test PKI to `fuzz/pki/`.
fn main() {
    let new = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--new-pki") => true,
        Some(other) => {
            eprintln!("usage: record_fuzz_seeds [--new-pki] (got {other})");
            std::process::exit(2);
        }
    };
    let pki = if new {
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

/// A new fuzz PKI: Ed25519 keys, so that the recorded peers sign
/// deterministically and the seeds replay byte for byte.
fn new_pki() -> Pki {
    let pki = TestPki::with_keys(&rcgen::PKCS_ED25519);
    Pki {
        server_ca: pki.server_ca.cert.to_vec(),
        server: pki.server.chain[0].to_vec(),
        server_key: pki.server.key().secret_der().to_vec(),
        bot_ca: pki.bot_ca.cert.to_vec(),
        bot: pki.bot.chain[0].to_vec(),
        bot_key: pki.bot.key().secret_der().to_vec(),
    }
}

/// The ClientHello (first flight) of a client config.
fn client_hello(config: ClientConfig) -> Vec<u8> {
    let name = SERVER_NAME.try_into().expect("DNS name");
    let mut conn = ClientConnection::new(Arc::new(config), name).expect("client");
    flush(&mut conn)
}

fn request_client_auth() -> FlagSet {
    [Flag::REQUEST_CLIENT_AUTH].into_iter().collect()
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
            &record_flights(&flag_client, &server(0)).client_bytes(),
        ),
        seed_of(
            "complete-require-certificate",
            variant::REQUIRE_CERTIFICATE,
            &record_flights(&flag_client, &server(variant::REQUIRE_CERTIFICATE)).client_bytes(),
        ),
        seed_of(
            "complete-flag-absent",
            0,
            &record_flights(&plain_client, &server(0)).client_bytes(),
        ),
        seed_of(
            "silent-client-refuses-server",
            0,
            &record_flights(&Arc::new(distrustful), &server(0)).client_bytes(),
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
    let first_flight = |talk: Flights| talk.server[0].clone();

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

    let flight = first_flight(record_flights(&client(0), &Arc::new(flag_server(0))));
    let hrr_flight = record_flights(&client(0), &Arc::new(hrr)).server_bytes();
    let tls12_flight = record_flights(&client(0), &Arc::new(tls12)).server_bytes();
    let policy_flight = first_flight(record_flights(&client(0), &Arc::new(policy)));
    let mut seeds = vec![
        seed_of("complete-flag-path", 0, &flight),
        seed_of(
            "complete-flag-path-with-tickets",
            0,
            &record_flights(&client(0), &Arc::new(with_tickets)).server_bytes(),
        ),
        seed_of(
            "complete-experimental-flag-path",
            variant::EXPERIMENTAL,
            &first_flight(record_flights(
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
            &first_flight(record_flights(&client(0), &Arc::new(plain))),
        ),
        seed_of(
            "silent-server-refuses-client-hello",
            0,
            &first_flight(record_flights(&client(0), &Arc::new(refusing_server(pki)))),
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
        script
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
        record_flights(&Arc::new(client_config(pki, 0)), &Arc::new(config)).server_bytes()
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
