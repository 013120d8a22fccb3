//! Replays the committed seed corpus of the `codec_decode` fuzz target (and
//! anything a local fuzzing run left beside it) through the assertion the
//! target makes, so a regression shows up in `cargo test` without a fuzzer.
//!
//! Seed names start with the expected outcome: `ok-`, `decode_error-` or
//! `illegal_parameter-`; that is checked too.

use std::fs;
use std::path::PathBuf;

use rustls_tls_flags::decode;

use rustls_tls_flags_decode_oracle as decode_oracle;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/codec_decode")
}

#[test]
fn tf1_tf2_tf3_fuzz_corpus_codec_decode_replays_cleanly() {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the fuzz corpus {}: {e}", dir.display()));

    let mut seeds = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let data = fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let decoded = decode_oracle::check(&data);

        let expected = if name.starts_with("ok-") {
            Some(None)
        } else if name.starts_with("decode_error-") {
            Some(Some("decode_error"))
        } else if name.starts_with("illegal_parameter-") {
            Some(Some("illegal_parameter"))
        } else {
            None // a fuzzer-generated entry: the oracle is the whole check
        };
        if let Some(expected_alert) = expected {
            seeds += 1;
            let alert = decode(&data).err().map(|e| e.alert().name());
            assert_eq!(alert, expected_alert, "seed {name}");
            assert_eq!(decoded, expected_alert.is_none(), "seed {name}");
        }
    }
    assert!(
        seeds >= 15,
        "only {seeds} named seeds found in {}",
        dir.display()
    );
}
