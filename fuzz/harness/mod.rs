//! What the handshake fuzz targets run, shared with their replay test.
//!
//! `fuzz_targets/handshake_server.rs` and `fuzz_targets/handshake_client.rs`
//! run it under libFuzzer; `rustls-req-client-auth/tests/fuzz_corpora.rs`
//! replays every committed seed through the same code under `cargo test`, and
//! `rustls-req-client-auth/examples/record_fuzz_seeds.rs` records the seeds.
//! It lives outside `fuzz_targets/` because `cargo xtask fuzz` runs every file
//! there as a target.

#![forbid(unsafe_code)]

pub mod corpus;
pub mod pki;
pub mod provider;
pub mod targets;
pub mod wire;
