//! Where things are: the repository root and the fixed locations below it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Environment variable that overrides where rustls's unit-test fixtures are read from.
pub(crate) const FIXTURES_ENV: &str = "RUSTLS_FIXTURES_DIR";

pub(crate) struct Paths {
    pub(crate) root: PathBuf,
}

impl Paths {
    /// The repository root is the parent of this tool's manifest directory; that holds
    /// however cargo was invoked (`cargo xtask` from a subdirectory included).
    pub(crate) fn discover() -> anyhow::Result<Self> {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .context("xtask manifest directory has no parent")?
            .to_path_buf();
        if !root.join("fork").join("pin.toml").is_file() {
            bail!(
                "{} does not look like the project root (no fork/pin.toml)",
                root.display()
            );
        }
        Ok(Self { root })
    }

    pub(crate) fn fork_dir(&self) -> PathBuf {
        self.root.join("fork")
    }

    pub(crate) fn pin_file(&self) -> PathBuf {
        self.fork_dir().join("pin.toml")
    }

    pub(crate) fn patches_dir(&self) -> PathBuf {
        self.fork_dir().join("patches")
    }

    /// The generated, patched crate. Git-ignored.
    pub(crate) fn generated_crate(&self) -> PathBuf {
        self.fork_dir().join("rustls")
    }

    /// The pristine crate renamed `rustls-vanilla`, for side-by-side benchmarks.
    pub(crate) fn vanilla_crate(&self) -> PathBuf {
        self.fork_dir().join("vanilla")
    }

    pub(crate) fn stamp_file(&self) -> PathBuf {
        self.fork_dir().join(".stamp")
    }

    pub(crate) fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    /// rustls's unit-test data files live outside the repository (they are rustls's,
    /// not ours): `$RUSTLS_FIXTURES_DIR`, else `../shared/rustls-0.23-fixtures`.
    pub(crate) fn fixtures_dir(&self) -> PathBuf {
        match std::env::var_os(FIXTURES_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => self
                .root
                .join("..")
                .join("shared")
                .join("rustls-0.23-fixtures"),
        }
    }
}

/// `path` relative to `base` for messages, or `path` itself.
pub(crate) fn shown<'a>(path: &'a Path, base: &Path) -> std::borrow::Cow<'a, str> {
    match path.strip_prefix(base) {
        Ok(rel) => rel.to_string_lossy().into_owned().into(),
        Err(_) => path.to_string_lossy(),
    }
}
