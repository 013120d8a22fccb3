//! Fuzz target: a flag-enabled rustls client (`ClientFlags` with the bot
//! identity) reads arbitrary bytes as the server's side of the connection.
//!
//! The client is deterministic (`harness/provider.rs`): its ClientHello is
//! the same on every run, so recorded server flights keep decrypting and the
//! fuzzer starts from complete handshakes. Input: `[variant, chunk, server
//! bytes ...]`. Asserts, besides no panic: a failed `process_new_packets` has
//! queued an alert, and it is the last record written (except for the errors
//! rustls by design does not answer); no application data; a completed
//! handshake has the server's certificates. See `harness/targets.rs`;
//! `rustls-req-client-auth/tests/fuzz_corpora.rs` replays the seeds of
//! `corpus/handshake_client/` through the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

use fuzz_harness as harness;

fuzz_target!(
    init: {
        // This build's client must write the ClientHello the seeds answer,
        // or the fuzzer starts from flights that no longer decrypt.
        let run = harness::targets::client(include_bytes!(
            "../corpus/handshake_client/complete-flag-path.bin"
        ));
        assert!(
            run.drive.error.is_none() && !run.conn.is_handshaking(),
            "stale seeds (run cargo xtask fuzz-seeds, see README.md): {:?}",
            run.drive.error
        );
    },
    |data: &[u8]| {
        harness::targets::client(data);
    }
);
