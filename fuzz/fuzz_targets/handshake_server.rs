//! Fuzz target: a flag-enabled rustls server (`ServerFlags`, a WebPki
//! verifier for the bot CA) reads arbitrary bytes as the client's side of the
//! connection.
//!
//! Input: `[variant, chunk, client bytes ...]`. Asserts, besides no panic:
//! a failed `process_new_packets` has queued an alert, and it is the last
//! record written (except for the errors rustls by design does not answer);
//! no application data; the flag path's invariants. See
//! `harness/targets.rs`; `rustls-req-client-auth/tests/fuzz_corpora.rs`
//! replays the seeds of `corpus/handshake_server/` through the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

use fuzz_harness as harness;

fuzz_target!(
    init: {
        // This build's server must answer as the one the seeds were recorded
        // with, or the fuzzer starts from handshakes that go nowhere.
        let run = harness::targets::server(include_bytes!(
            "../corpus/handshake_server/complete-flag-path.bin"
        ));
        assert!(
            run.drive.error.is_none() && !run.conn.is_handshaking(),
            "stale seeds (run cargo xtask fuzz-seeds, see README.md): {:?}",
            run.drive.error
        );
    },
    |data: &[u8]| {
        harness::targets::server(data);
    }
);
