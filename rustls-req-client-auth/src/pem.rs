//! Reading certificates, keys and trust anchors from PEM files (through
//! rustls-pki-types), with errors that name the file and what is wrong.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, InconsistentKeys, RootCertStore};

/// Every certificate in the PEM file at `path`, in order (for an identity:
/// end entity first, then intermediates).
///
/// # Errors
///
/// The file cannot be read, is not PEM, or holds no `CERTIFICATE`.
pub fn load_certificates(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let path = path.as_ref();
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| {
            PemError::new(path, PemProblem::Pem(error)).with_hint(Wanted::Certificate)
        })?;
    if certificates.is_empty() {
        return Err(PemError::new(path, PemProblem::NoCertificate).with_hint(Wanted::Certificate));
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
///
/// # Errors
///
/// The file cannot be read, is not PEM, or holds no private key.
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, PemError> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|error| {
        PemError::new(
            path,
            match error {
                pem::Error::NoItemsFound => PemProblem::NoPrivateKey,
                other => PemProblem::Pem(other),
            },
        )
        .with_hint(Wanted::PrivateKey)
    })
}

/// A root store holding every certificate in the PEM file at `path`.
///
/// # Errors
///
/// As [`load_certificates`], or a certificate is not a usable trust anchor.
pub fn load_roots(path: impl AsRef<Path>) -> Result<RootCertStore, PemError> {
    let path = path.as_ref();
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(path)? {
        roots
            .add(certificate)
            .map_err(|error| PemError::new(path, PemProblem::TrustAnchor(error)))?;
    }
    Ok(roots)
}

/// A PEM file that could not be used: which file, and why.
#[derive(Debug)]
pub struct PemError {
    path: PathBuf,
    problem: PemProblem,
    /// What the file holds instead, and what to do, where that is clear.
    hint: Option<&'static str>,
}

/// What a file was read for.
#[derive(Clone, Copy)]
enum Wanted {
    Certificate,
    PrivateKey,
}

#[derive(Debug)]
enum PemProblem {
    Pem(pem::Error),
    NoCertificate,
    NoPrivateKey,
    TrustAnchor(rustls::Error),
    Identity(rustls::Error),
}

impl PemError {
    fn new(path: &Path, problem: PemProblem) -> Self {
        Self {
            path: path.to_owned(),
            problem,
            hint: None,
        }
    }

    /// Looks at what the file holds instead of what was `wanted` (unless
    /// it could not be read at all): the usual slips are a certificate and
    /// key given the other way round, DER instead of PEM, and an encrypted
    /// key.
    fn with_hint(mut self, wanted: Wanted) -> Self {
        if matches!(self.problem, PemProblem::Pem(pem::Error::Io(_))) {
            return self;
        }
        // The start of the file tells: no need to read a large one whole.
        let mut start = Vec::new();
        let read = std::fs::File::open(&self.path)
            .and_then(|file| file.take(64 * 1024).read_to_end(&mut start));
        if read.is_ok() {
            self.hint = hint(&start, wanted);
        }
        self
    }

    fn fmt_problem(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            PemProblem::Pem(pem::Error::Io(error)) => write!(f, "cannot read {path}: {error}"),
            // pki-types gives the marker and the line as bytes: said as text.
            PemProblem::Pem(pem::Error::MissingSectionEnd { end_marker }) => write!(
                f,
                "{path} is not valid PEM: a block has no `-----END {}-----` line (is the file \
                 cut short?)",
                String::from_utf8_lossy(end_marker)
            ),
            PemProblem::Pem(pem::Error::IllegalSectionStart { line }) => write!(
                f,
                "{path} is not valid PEM: the line {:?} does not start a block the way \
                 `-----BEGIN LABEL-----` does",
                String::from_utf8_lossy(line)
            ),
            PemProblem::Pem(error) => write!(f, "{path} is not valid PEM: {error}"),
            PemProblem::NoCertificate => {
                write!(f, "{path} holds no PEM CERTIFICATE block")
            }
            PemProblem::NoPrivateKey => write!(
                f,
                "{path} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
            ),
            PemProblem::TrustAnchor(error) => {
                write!(
                    f,
                    "{path} holds a certificate that is not a usable trust anchor: {error}"
                )
            }
            PemProblem::Identity(error) => write!(
                f,
                "{path} and its key do not make a usable identity ({}): {error}",
                identity_hint(error)
            ),
        }
    }

    /// A certificate chain (read from `path`) and key that do not make an
    /// identity.
    pub(crate) fn identity(path: &Path, error: rustls::Error) -> Self {
        Self::new(path, PemProblem::Identity(error))
    }

    /// `error`, met reading PEM from `path` (a kind of file this module
    /// does not load, a CRL say), said as this module says its own: a
    /// block cut short is named as such, with its label as text.
    #[must_use]
    pub fn in_file(path: &Path, error: pem::Error) -> Self {
        Self::new(path, PemProblem::Pem(error))
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What `bytes`, read for a `wanted` thing and found without one, hold
/// instead, and what to do.
fn hint(bytes: &[u8], wanted: Wanted) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    let has = |label: &str| text.contains(&format!("-----BEGIN {label}-----"));
    let encrypted = has("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED");
    if encrypted && matches!(wanted, Wanted::PrivateKey) {
        return Some(
            "it holds an encrypted private key, which is not supported: write it out \
             decrypted with `openssl pkey -in KEY -out KEY.plain` and keep that file \
             readable by its owner only",
        );
    }
    // DER: an ASN.1 SEQUENCE (0x30), and no PEM block.
    if bytes.first() == Some(&0x30) && !text.contains("-----BEGIN ") {
        return Some(match wanted {
            Wanted::Certificate => {
                "it looks like DER (binary), not PEM: convert it with \
                 `openssl x509 -inform DER -in FILE -out FILE.pem`"
            }
            Wanted::PrivateKey => {
                "it looks like DER (binary), not PEM: convert it with \
                 `openssl pkey -inform DER -in FILE -out FILE.pem`"
            }
        });
    }
    let holds_key = [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ]
    .iter()
    .any(|label| has(label));
    match wanted {
        Wanted::Certificate if holds_key => Some(
            "it holds a private key: are the certificate and the key files given the \
             other way round?",
        ),
        Wanted::PrivateKey if has("CERTIFICATE") => Some(
            "it holds a certificate: are the certificate and the key files given the \
             other way round?",
        ),
        _ => None,
    }
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_problem(f)?;
        match self.hint {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

/// What to fix, for the usual ways a chain and key fail to make an identity.
fn identity_hint(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the key does not belong to the first certificate, which must be the end \
             entity's own, followed by its intermediates"
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::UnsupportedCertVersion)
            ) =>
        {
            "the first certificate is not X.509 version 3: `openssl x509 -req` makes \
             version 1 unless it is given extensions, for example with -extfile"
        }
        _ => "does the key belong to the first certificate?",
    }
}

/// The identity that `chain` (read from `path`, end entity first) and
/// `key` make for `provider`, as [`CertifiedKey::from_der`] checks it.
///
/// # Errors
///
/// They do not make one: the message names `path` and, for the usual
/// causes (a key of another certificate, a chain in the wrong order, an
/// X.509 version 1 certificate), what to fix.
pub fn certified_key(
    path: impl AsRef<Path>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, PemError> {
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|error| PemError::identity(path.as_ref(), error))
}

/// The cause is part of the message (one line names the file and what is
/// wrong), so it is not repeated as a `source`.
impl std::error::Error for PemError {}
