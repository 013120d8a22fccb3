//! A throw-away PKI as PEM files: a CA for the server, a CA for bots (the
//! flag path) and a CA for "normal" clients, which the server does not trust
//! for bots (RCA-10), with one leaf each, ECDSA P-256 throughout. The CAs come
//! from the tests' rcgen PKI (`integration_tests::pki`); the leaves carry the
//! examples' names.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use integration_tests::pki::{Identity, TestPki};
use rcgen::ExtendedKeyUsagePurpose;

/// The names the server certificate is issued for.
pub(crate) const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The whole PKI.
pub(crate) struct Pki {
    cas: TestPki,
    server: Identity,
    bot: Identity,
    normal: Identity,
}

impl Pki {
    /// Generates fresh keys and certificates.
    pub(crate) fn generate() -> Self {
        let cas = TestPki::new();
        let server = cas.server_ca.issue(
            SERVER_NAMES[0],
            &SERVER_NAMES,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let bot = cas.bot_ca.issue(
            "crawler.bot.example",
            &["crawler.bot.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let normal = cas.normal_ca.issue(
            "partner.client.example",
            &["partner.client.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            cas,
            server,
            bot,
            normal,
        }
    }

    /// Writes every certificate and key as PEM into `dir` (created if
    /// missing); returns the paths written.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let files = [
            ("server-ca.pem", &self.cas.server_ca.cert_pem, false),
            ("server.pem", &self.server.chain_pem, false),
            ("server.key", &self.server.key_pem, true),
            ("bot-ca.pem", &self.cas.bot_ca.cert_pem, false),
            ("bot.pem", &self.bot.chain_pem, false),
            ("bot.key", &self.bot.key_pem, true),
            ("normal-ca.pem", &self.cas.normal_ca.cert_pem, false),
            ("normal.pem", &self.normal.chain_pem, false),
            ("normal.key", &self.normal.key_pem, true),
        ];
        files
            .into_iter()
            .map(|(name, contents, private)| {
                let path = dir.join(name);
                write_file(&path, contents, private)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(path)
            })
            .collect()
    }
}

/// Writes `contents` to `path`; a private key is readable by its owner only.
fn write_file(path: &Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;

    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)?.write_all(contents.as_bytes())
}
