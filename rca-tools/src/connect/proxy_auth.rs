//! `--proxy-auth-file`: the credentials a client of the proxy port must
//! give (HTTP Basic, RFC 7617, in `Proxy-Authorization`; RFC 9110 section
//! 11.7) before its `CONNECT` or absolute-form request uses the bot's
//! identity. Without them, any local process that can reach the port acts as
//! the bot. Every client that takes a proxy URL sends them from
//! `http://user:password@127.0.0.1:8118`.
//!
//! The file holds one `user:password` per line; blank lines and lines
//! beginning with `#` are skipped. No password is kept in clear: only the
//! SHA-256 of each line, compared at a fixed length in constant time, and
//! the user names, which are not secret and make the log line useful.

use std::path::{Path, PathBuf};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use base64::Engine as _;
use http::HeaderMap;

/// The credentials read from one file.
pub struct ProxyCredentials {
    path: PathBuf,
    /// SHA-256 of each `user:password` line.
    digests: Vec<Credential>,
    /// The user name of each line.
    users: Vec<String>,
}

/// One accepted credential, as kept: the SHA-256 of its `user:password`. A
/// tunnel remembers the one it was opened with, so a reload that removes
/// it refuses the tunnel's later requests.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential([u8; 32]);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential")
    }
}

impl std::fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("path", &self.path)
            .field("credentials", &self.digests.len())
            .finish_non_exhaustive()
    }
}

/// Why the file was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyCredentialsError {
    /// It could not be read.
    #[error("--proxy-auth-file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// A line is not `user:password`, or would never match what a client
    /// sends; the message says what to change.
    #[error("--proxy-auth-file {0}, line {1}: {2}")]
    Line(PathBuf, usize, &'static str),
    /// It holds no credential, which would refuse every client.
    #[error("--proxy-auth-file {0} holds no user:password line")]
    Empty(PathBuf),
}

/// Why a request was refused (407), for the log line and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No `Proxy-Authorization` header.
    Missing,
    /// Not one `Basic` header whose value decodes to `user:password`.
    Malformed,
    /// A user of the file, with another password.
    WrongPassword(String),
    /// A user name the file does not have; only its length is kept (a
    /// client given `http://TOKEN@host` sends the token as the user).
    UnknownUser(usize),
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
            Self::WrongPassword(user) => write!(f, "wrong password for user {user:?}"),
            Self::UnknownUser(length) => {
                write!(f, "a user name of {length} bytes that is not in the file")
            }
        }
    }
}

impl Refusal {
    /// What the client is told to do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Missing => "this proxy needs credentials: give them in the proxy URL (http://user:password@host:port)",
            Self::Malformed => "give one user:password in the proxy URL (http://user:password@host:port); the proxy takes HTTP Basic only",
            Self::WrongPassword(_) | Self::UnknownUser(_) => {
                "these proxy credentials are not in --proxy-auth-file; in the proxy URL, percent-encode @ : / % in the user and password"
            }
        }
    }
}

impl ProxyCredentials {
    /// Reads `path`, and warns when other users may read it (as for a key).
    ///
    /// # Errors
    ///
    /// The file cannot be read, a line is not `user:password` (or has
    /// blanks at its ends, which a client would not send), or it has no
    /// credential at all.
    pub fn from_file(path: &Path) -> Result<Self, ProxyCredentialsError> {
        let (credentials, problem) = Self::read(path);
        match problem {
            Some(problem) => Err(problem),
            None => Ok(credentials),
        }
    }

    /// Reads `path` again (SIGHUP), failing closed: what it returns admits
    /// only lines the file holds now. A file that cannot be read or holds
    /// no credential admits no one, and a line that is not `user:password`
    /// is left out; the problem comes back to be logged. (Keeping the
    /// running credentials instead would keep one the operator meant to
    /// remove, as any edit with a slip in it would.)
    pub fn reload(path: &Path) -> (Self, Option<ProxyCredentialsError>) {
        Self::read(path)
    }

    /// The file's credentials, and its first problem.
    fn read(path: &Path) -> (Self, Option<ProxyCredentialsError>) {
        crate::common::key_file::warn_if_others_can_read(path, "--proxy-auth-file");
        let mut credentials = Self {
            path: path.to_owned(),
            digests: Vec::new(),
            users: Vec::new(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                return (
                    credentials,
                    Some(ProxyCredentialsError::Read(path.to_owned(), error)),
                )
            }
        };
        let mut problem = None;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            let line = if number == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match credential_line(line) {
                Ok(user) => {
                    credentials
                        .digests
                        .push(Credential(sha256(line.as_bytes())));
                    credentials.users.push(user.to_owned());
                }
                Err(why) => {
                    problem.get_or_insert(ProxyCredentialsError::Line(
                        path.to_owned(),
                        number + 1,
                        why,
                    ));
                }
            }
        }
        if credentials.digests.is_empty() {
            problem.get_or_insert(ProxyCredentialsError::Empty(path.to_owned()));
        }
        (credentials, problem)
    }

    /// The file the credentials came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many credentials the file holds.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether the file held none: never from
    /// [`ProxyCredentials::from_file`], which refuses such a file; from
    /// [`ProxyCredentials::reload`], a file that admits no one.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `headers` hold one `Proxy-Authorization: Basic` credential
    /// that is a line of the file: the one it is. Every line is compared,
    /// so the time taken does not say which one matched.
    ///
    /// # Errors
    ///
    /// Why not, for the log line and the answer.
    pub fn check(&self, headers: &HeaderMap) -> Result<Credential, Refusal> {
        let mut values = headers.get_all(http::header::PROXY_AUTHORIZATION).iter();
        let value = values.next().ok_or(Refusal::Missing)?;
        if values.next().is_some() {
            return Err(Refusal::Malformed);
        }
        let credential = basic_credential(value.as_bytes()).ok_or(Refusal::Malformed)?;
        let given = Credential(sha256(&credential));
        if self.holds(given) {
            return Ok(given);
        }
        let user = credential
            .split(|byte| *byte == b':')
            .next()
            .unwrap_or_default();
        let known = self.users.iter().find(|known| known.as_bytes() == user);
        Err(known.map_or(Refusal::UnknownUser(user.len()), |user| {
            Refusal::WrongPassword(user.clone())
        }))
    }

    /// The file's credentials.
    pub fn iter(&self) -> impl Iterator<Item = Credential> + '_ {
        self.digests.iter().copied()
    }

    /// Whether `credential` is still one of the file's (after a reload).
    pub fn holds(&self, credential: Credential) -> bool {
        self.digests.iter().fold(false, |matched, digest| {
            verify_slices_are_equal(&digest.0, &credential.0).is_ok() | matched
        })
    }
}

/// The user name of a `user:password` line, or what is wrong with it.
fn credential_line(line: &str) -> Result<&str, &'static str> {
    let Some((user, password)) = line.split_once(':') else {
        return Err("expected user:password (a user name without ':', then ':' and the password)");
    };
    if user.is_empty() {
        return Err("the user name is empty: expected user:password");
    }
    if password.is_empty() {
        return Err("the password is empty: expected user:password");
    }
    if line.trim() != line {
        return Err("the line begins or ends with blanks, which would be part of the user name or the password: remove them");
    }
    Ok(user)
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
        let file = credentials("\u{feff}# bots\n\ncrawler:s3cret:with:colons\r\nother:pw\n")
            .expect("file");
        assert_eq!(file.len(), 2);
        let taken = file
            .check(&with(&[&basic("crawler:s3cret:with:colons")]))
            .expect("taken");
        assert!(file.holds(taken));
        assert!(file.check(&with(&[&basic("other:pw")])).is_ok());
        let lower = basic("other:pw").replacen("Basic", "bAsIc", 1);
        assert!(file.check(&with(&[&lower])).is_ok());
        let reloaded = credentials("other:pw\n").expect("file");
        assert!(!reloaded.holds(taken), "a removed line no longer holds");
    }

    #[test]
    fn anything_else_is_refused_with_a_reason_that_keeps_secrets() {
        let file = credentials("crawler:s3cret\n").expect("file");
        assert_eq!(file.check(&HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(
            file.check(&with(&[&basic("crawler:wrong")])),
            Err(Refusal::WrongPassword("crawler".to_owned()))
        );
        assert_eq!(
            file.check(&with(&[&basic("crawler:s3cret ")])),
            Err(Refusal::WrongPassword("crawler".to_owned()))
        );
        // A token given as the user name is not logged.
        assert_eq!(
            file.check(&with(&[&basic("0123456789abcdef:")])),
            Err(Refusal::UnknownUser(16))
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

    /// A reload admits only what the file holds now: its good lines when
    /// another is bad, and no one when it holds none or is gone.
    #[test]
    fn a_reload_fails_closed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth");
        std::fs::write(&path, "crawler:s3cret\nother:pw\n").expect("write");
        let first = ProxyCredentials::from_file(&path).expect("file");
        let other = first.check(&with(&[&basic("other:pw")])).expect("taken");
        let crawler = first
            .check(&with(&[&basic("crawler:s3cret")]))
            .expect("taken");

        std::fs::write(&path, "crawler:s3cret\nnew-line-without-colon\n").expect("write");
        let (reloaded, problem) = ProxyCredentials::reload(&path);
        assert!(matches!(
            problem,
            Some(ProxyCredentialsError::Line(_, 2, _))
        ));
        assert!(reloaded.holds(crawler) && !reloaded.holds(other));

        for text in ["# all removed\n", ""] {
            std::fs::write(&path, text).expect("write");
            let (reloaded, problem) = ProxyCredentials::reload(&path);
            assert!(matches!(problem, Some(ProxyCredentialsError::Empty(_))));
            assert!(reloaded.is_empty() && !reloaded.holds(crawler));
        }
        std::fs::remove_file(&path).expect("remove");
        let (reloaded, problem) = ProxyCredentials::reload(&path);
        assert!(matches!(problem, Some(ProxyCredentialsError::Read(..))));
        assert!(reloaded.is_empty());
        assert_eq!(
            reloaded.check(&with(&[&basic("crawler:s3cret")])),
            Err(Refusal::UnknownUser(7))
        );
    }

    #[test]
    fn a_file_that_would_never_match_is_refused_with_its_line() {
        assert!(matches!(
            credentials("# only a comment\n\n"),
            Err(ProxyCredentialsError::Empty(_))
        ));
        for (text, line, why) in [
            ("ok:pw\njust-a-password\n", 2, "expected user:password"),
            (":no-user\n", 1, "user name is empty"),
            ("user:\n", 1, "password is empty"),
            ("user:pw \n", 1, "blanks"),
            (" user:pw\n", 1, "blanks"),
        ] {
            match credentials(text) {
                Err(ProxyCredentialsError::Line(_, number, message)) => {
                    assert_eq!(number, line, "{text:?}");
                    assert!(message.contains(why), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
