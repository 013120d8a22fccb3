//! Which `[tls]` files a reload found changed, for its log line: "reloaded"
//! alone does not tell an operator whether the CRL just copied in was the
//! one read (a wrong path, a copy that had not finished, a config still
//! naming the old file). Each file is known by its field, its path and the
//! SHA-256 of its contents, read apart from the load itself: a file
//! replaced between the two readings can be misreported, never misloaded.

use std::path::{Path, PathBuf};

use crate::proxy::config::Tls;

/// The `[tls]` files as read once, by field and path.
#[derive(Debug, Default)]
pub struct TlsFiles(Vec<TlsFile>);

#[derive(Debug)]
struct TlsFile {
    field: &'static str,
    path: PathBuf,
    /// `None`: unreadable just now (the load said why, or will).
    digest: Option<aws_lc_rs::digest::Digest>,
}

impl TlsFile {
    fn read(field: &'static str, path: &Path) -> Self {
        let digest = std::fs::read(path)
            .ok()
            .map(|bytes| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes));
        Self {
            field,
            path: path.to_owned(),
            digest,
        }
    }

    fn same_file(&self, other: &Self) -> bool {
        self.field == other.field && self.path == other.path
    }

    fn same_contents(&self, other: &Self) -> bool {
        match (&self.digest, &other.digest) {
            (Some(mine), Some(theirs)) => mine.as_ref() == theirs.as_ref(),
            _ => false,
        }
    }

    fn named(&self) -> String {
        format!("{} ({})", self.field, self.path.display())
    }
}

impl TlsFiles {
    /// Reads every file `tls` names.
    #[must_use]
    pub fn read(tls: &Tls) -> Self {
        let mut files = vec![
            TlsFile::read("tls.cert", &tls.cert),
            TlsFile::read("tls.key", &tls.key),
            TlsFile::read("tls.bot_ca", &tls.bot_ca),
        ];
        for (index, crl) in tls.bot_crl.iter().enumerate() {
            // A file listed twice is one file.
            if !tls.bot_crl[..index].contains(crl) {
                files.push(TlsFile::read("tls.bot_crl", crl));
            }
        }
        let optional = [
            ("tls.bot_deny_list", &tls.bot_deny_list),
            ("tls.partner_ca", &tls.partner_ca),
            ("tls.ticket_keys", &tls.ticket_keys),
        ];
        for (field, path) in optional {
            if let Some(path) = path {
                files.push(TlsFile::read(field, path));
            }
        }
        Self(files)
    }

    /// What differs from `before`, each as `field (path)`: a file with other
    /// contents or newly named, then `(no longer read)` for a file `before`
    /// had and these do not (a CRL taken out of the list).
    #[must_use]
    pub fn changed_since(&self, before: &Self) -> Vec<String> {
        let changed = self.0.iter().filter(|file| {
            !before
                .0
                .iter()
                .any(|old| old.same_file(file) && old.same_contents(file))
        });
        let dropped = before
            .0
            .iter()
            .filter(|old| !self.0.iter().any(|file| file.same_file(old)));
        changed
            .map(TlsFile::named)
            .chain(dropped.map(|old| format!("{} (no longer read)", old.named())))
            .collect()
    }
}

/// The end of a reload's line: which files changed, or that none did.
#[must_use]
pub fn changes_said(changed: &[String]) -> String {
    if changed.is_empty() {
        "; no file changed since the last load".to_owned()
    } else {
        format!("; changed since the last load: {}", changed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_in(dir: &Path, crls: &[&str]) -> Tls {
        let text = format!(
            "cert = \"cert.pem\"\nkey = \"key.pem\"\nbot_ca = \"ca.pem\"\nbot_crl = [{}]\n",
            crls.iter()
                .map(|crl| format!("\"{crl}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut tls: Tls = toml::from_str(&text).expect("[tls]");
        tls.resolve_relative_to(dir);
        tls
    }

    /// Only what was rewritten, added or taken out is named; the same bytes
    /// written again are no change.
    #[test]
    fn names_the_files_whose_contents_or_list_changed() {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        for name in ["cert.pem", "key.pem", "ca.pem", "a.crl", "b.crl"] {
            write(name, name);
        }
        let before = TlsFiles::read(&tls_in(dir.path(), &["a.crl", "b.crl", "b.crl"]));
        assert!(TlsFiles::read(&tls_in(dir.path(), &["a.crl", "b.crl"]))
            .changed_since(&before)
            .is_empty());

        write("ca.pem", "ca.pem");
        write("a.crl", "a newer CRL");
        write("c.crl", "c.crl");
        let after = TlsFiles::read(&tls_in(dir.path(), &["a.crl", "c.crl"]));
        let path = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(
            after.changed_since(&before),
            [
                format!("tls.bot_crl ({})", path("a.crl")),
                format!("tls.bot_crl ({})", path("c.crl")),
                format!("tls.bot_crl ({}) (no longer read)", path("b.crl")),
            ]
        );
        assert_eq!(changes_said(&[]), "; no file changed since the last load");
    }
}
