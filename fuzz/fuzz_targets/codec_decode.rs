//! Fuzz target for `rustls_tls_flags::decode`, the codec's one entry point
//! for peer input.
//!
//! On success, `to_set().encode_into()` must reproduce the input exactly and
//! the view must agree with the set; on error, the alert must match the error
//! kind and the kind must describe the input. Never panics otherwise.
//!
//! The assertion lives in `rustls-tls-flags/decode-oracle/`, shared with
//! `cargo test` (`tests/fuzz_corpus.rs` replays this target's
//! corpus through it).

#![no_main]

use libfuzzer_sys::fuzz_target;

use rustls_tls_flags_decode_oracle as decode_oracle;

fuzz_target!(|data: &[u8]| {
    decode_oracle::check(data);
});
