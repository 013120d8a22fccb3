//! What the handshake fuzz targets run, shared with their replay test.
//!
//! `fuzz_targets/handshake_server.rs` and `fuzz_targets/handshake_client.rs`
//! include this module with `#[path]`, and so does
//! `rustls-req-client-auth/tests/fuzz_corpora.rs`, which replays every
//! committed seed through the same code under `cargo test` and records the
//! seeds again on request. It lives outside `fuzz_targets/` because
//! `cargo xtask fuzz` runs every file there as a target.
//!
//! Items are `pub(crate)`: the including crates use them, none exports them.

pub(crate) mod pki;
pub(crate) mod provider;
pub(crate) mod targets;
pub(crate) mod wire;
