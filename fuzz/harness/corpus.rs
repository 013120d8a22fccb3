//! Where the committed seeds are, and reading them: for the replay test and
//! the seed recorder.

use std::fs;
use std::path::{Path, PathBuf};

/// The `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The seed directory of `target`.
pub fn corpus(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// Every file of a corpus directory: (name, contents), sorted by name.
///
/// # Panics
///
/// If the directory or a file in it cannot be read.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
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
