//! `--proxy-auth-file`: the credentials a client of the proxy port must
//! give (HTTP Basic, RFC 7617, in `Proxy-Authorization`; RFC 9110 section
//! 11.7) before its `CONNECT` or absolute-form request uses the bot's
//! identity. Without them, any local process that can reach the port acts as
//! the bot. Every client that takes a proxy URL sends them from
//! `http://user:password@127.0.0.1:8118`.
//!
//! The file holds one `user:password` per line; blank lines and lines
//! beginning with `#` are skipped. Only SHA-256 digests of the lines are
//! kept, compared in constant time, so neither the time a refusal takes nor
//! the process's memory gives a password away.

use std::path::{Path, PathBuf};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use base64::Engine as _;
use http::HeaderMap;

/// The credentials read from one file.
#[derive(Debug)]
pub struct ProxyCredentials {
    path: PathBuf,
    /// SHA-256 of each `user:password` line.
    digests: Vec<[u8; 32]>,
}

/// Why the file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ProxyCredentialsError {
    /// It could not be read.
    #[error("--proxy-auth-file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// A line is not `user:password`.
    #[error("--proxy-auth-file {0}, line {1}: expected user:password (a user name without ':', then ':' and the password)")]
    NotACredential(PathBuf, usize),
    /// It holds no credential, which would refuse every client.
    #[error("--proxy-auth-file {0} holds no user:password line")]
    Empty(PathBuf),
}

/// Why a request was refused (407), for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Proxy-Authorization` header.
    Missing,
    /// Not one `Basic` header whose value decodes to `user:password`.
    Malformed,
    /// Well formed, but not a line of the file; the user name it gave.
    Wrong(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str(
                "no proxy credentials (give them in the proxy URL: http://user:password@host:port)",
            ),
            Self::Malformed => {
                f.write_str("Proxy-Authorization is not one Basic user:password credential")
            }
            Self::Wrong(user) => write!(f, "wrong proxy credentials for user {user:?}"),
        }
    }
}

impl ProxyCredentials {
    /// Reads `path`, and warns when other users may read it (as for a key).
    ///
    /// # Errors
    ///
    /// The file cannot be read, a line is not `user:password`, or it has no
    /// credential at all.
    pub fn from_file(path: &Path) -> Result<Self, ProxyCredentialsError> {
        crate::common::key_file::warn_if_others_can_read(path, "--proxy-auth-file");
        let text = std::fs::read_to_string(path)
            .map_err(|error| ProxyCredentialsError::Read(path.to_owned(), error))?;
        let mut digests = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, _)) if !user.is_empty() => digests.push(sha256(line.as_bytes())),
                _ => {
                    return Err(ProxyCredentialsError::NotACredential(
                        path.to_owned(),
                        number + 1,
                    ))
                }
            }
        }
        if digests.is_empty() {
            return Err(ProxyCredentialsError::Empty(path.to_owned()));
        }
        Ok(Self {
            path: path.to_owned(),
            digests,
        })
    }

    /// The file the credentials came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many credentials the file holds.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether the file held none (never: [`ProxyCredentials::from_file`]
    /// refuses such a file).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `headers` hold one `Proxy-Authorization: Basic` credential
    /// that is a line of the file. Every line is compared, so the time taken
    /// does not say which one matched.
    ///
    /// # Errors
    ///
    /// Why not, for the log line.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(http::header::PROXY_AUTHORIZATION).iter();
        let value = values.next().ok_or(Refusal::Missing)?;
        if values.next().is_some() {
            return Err(Refusal::Malformed);
        }
        let credential = basic_credential(value.as_bytes()).ok_or(Refusal::Malformed)?;
        let given = sha256(&credential);
        let matched = self.digests.iter().fold(false, |matched, digest| {
            verify_slices_are_equal(digest, &given).is_ok() | matched
        });
        if matched {
            return Ok(());
        }
        let user = credential
            .split(|byte| *byte == b':')
            .next()
            .unwrap_or_default();
        Err(Refusal::Wrong(String::from_utf8_lossy(user).into_owned()))
    }
}

/// The decoded `user:password` of a `Basic` credential (the scheme's name
/// in any case, RFC 9110 section 11.1), if it is one.
fn basic_credential(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim_start())
        .ok()?;
    decoded.contains(&b':').then_some(decoded)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0_u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use http::{HeaderMap, HeaderValue};

    use super::{ProxyCredentials, ProxyCredentialsError, Refusal};

    fn credentials(text: &str) -> Result<ProxyCredentials, ProxyCredentialsError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth");
        std::fs::write(&path, text).expect("write");
        ProxyCredentials::from_file(&path)
    }

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                http::header::PROXY_AUTHORIZATION,
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    fn basic(credential: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credential)
        )
    }

    #[test]
    fn a_line_of_the_file_is_taken_in_any_scheme_case() {
        let file = credentials("# bots\n\ncrawler:s3cret:with:colons\r\nother:pw\n").expect("file");
        assert_eq!(file.len(), 2);
        assert_eq!(
            file.check(&with(&[&basic("crawler:s3cret:with:colons")])),
            Ok(())
        );
        assert_eq!(file.check(&with(&[&basic("other:pw")])), Ok(()));
        let lower = basic("other:pw").replacen("Basic", "bAsIc", 1);
        assert_eq!(file.check(&with(&[&lower])), Ok(()));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let file = credentials("crawler:s3cret\n").expect("file");
        assert_eq!(file.check(&HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(
            file.check(&with(&[&basic("crawler:wrong")])),
            Err(Refusal::Wrong("crawler".to_owned()))
        );
        assert_eq!(
            file.check(&with(&[&basic("crawler:s3cret "),])),
            Err(Refusal::Wrong("crawler".to_owned()))
        );
        for malformed in [
            "Bearer abc".to_owned(),
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            basic("no-colon"),
        ] {
            assert_eq!(
                file.check(&with(&[&malformed])),
                Err(Refusal::Malformed),
                "{malformed}"
            );
        }
        let good = basic("crawler:s3cret");
        assert_eq!(file.check(&with(&[&good, &good])), Err(Refusal::Malformed));
    }

    #[test]
    fn a_file_without_credentials_is_refused_with_its_line() {
        assert!(matches!(
            credentials("# only a comment\n\n"),
            Err(ProxyCredentialsError::Empty(_))
        ));
        assert!(matches!(
            credentials("ok:pw\njust-a-password\n"),
            Err(ProxyCredentialsError::NotACredential(_, 2))
        ));
        assert!(matches!(
            credentials(":no-user\n"),
            Err(ProxyCredentialsError::NotACredential(_, 1))
        ));
    }
}
