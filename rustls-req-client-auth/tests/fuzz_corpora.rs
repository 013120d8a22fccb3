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
//! `fuzz/README.md`), made by `examples/record_fuzz_seeds.rs`. To record them
//! again, after a change that makes them stale: `cargo xtask fuzz-seeds`
//! (`--new-pki` first replaces the committed test PKI, `fuzz/pki/`).

use std::fs;

use rustls::{AlertDescription, HandshakeKind, ProtocolVersion};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause};
use rustls_req_client_auth::server::{peer, server_state, AuthPath};
use rustls_req_client_auth::{Flag, FlagSet, FlagsError};

use fuzz_harness as harness;
use harness::corpus::{corpus, seeds};

use harness::targets::{self, alert_optional, ClientRun, Drive, Input, SentAlert, ServerRun};
use harness::wire::{self};

const TLS_FLAGS: u16 = rustls_tls_flags::extension_type::TLS_FLAGS;

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
    assert_eq!(state.requested_client_auth(), flag_request);
    let (request, acknowledged) = if flag_request {
        (Some(CertificateRequestCause::Flag), request_client_auth())
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
    // the seed recorder makes): another SNI in the ClientHello after a
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
