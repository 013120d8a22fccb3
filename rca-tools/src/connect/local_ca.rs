//! The local CA: `rca-connect` ends the client's TLS inside a `CONNECT`
//! tunnel with a certificate for the host the client asked for, issued by a
//! CA the client was told to trust. The CA is made on first start in the
//! state directory (its key written with mode 0600, readable by its owner
//! only), or given as files. Issued certificates are kept per host, each
//! with a `ServerConfig` that offers `h2` and `http/1.1`.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The CA's files in the state directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's key in the state directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

/// Hosts whose `ServerConfig` is kept; past this the cache starts over (a
/// crawler visiting many hosts pays one issuance per host again).
const MAX_HOSTS: usize = 4096;

/// Days an issued certificate is valid.
const LEAF_DAYS: i64 = 365;

/// How long an issued certificate is used before its host gets a new one:
/// well within [`LEAF_DAYS`], so an `rca-connect` running for longer than
/// that never presents an expired certificate (kept for ever, one did after
/// a year).
const REISSUE_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why the local CA cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The files do not hold a usable CA.
    #[error("{path}: not a usable CA certificate and key: {error}")]
    Invalid {
        /// The certificate file.
        path: PathBuf,
        /// What rcgen said.
        error: rcgen::Error,
    },
    /// The key is not the CA certificate's (a rotation half done).
    #[error("{key} is not the key of the CA certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate is not a CA's: clients would refuse every
    /// certificate it signed, and blame the tunnel.
    #[error("{0}: not a CA certificate (its basicConstraints say CA:FALSE): clients would refuse every certificate it signs; give a CA's certificate and key, or leave --local-ca-cert out to have one made")]
    NotCa(PathBuf),
    /// A certificate could not be issued.
    #[error("cannot issue a certificate for {host}: {error}")]
    Issue {
        /// The host.
        host: String,
        /// What went wrong.
        error: String,
    },
}

/// The CA and the configurations made with it.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    cert_path: PathBuf,
    cert_der: CertificateDer<'static>,
    /// One key for every issued certificate: the tunnel's TLS is between
    /// two local processes, and one key saves a key generation per host.
    leaf_key: KeyPair,
    provider: Arc<rustls::crypto::CryptoProvider>,
    configs: Mutex<HashMap<String, Issued>>,
}

/// A host's configuration, and when its certificate was issued.
struct Issued {
    at: Instant,
    config: Arc<ServerConfig>,
}

impl Issued {
    fn fresh_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) < REISSUE_AFTER
    }
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// How long before the local CA expires its loading warns.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What to say about a local CA certificate `der` that has expired or
/// expires within 30 days: the clients that trust it then
/// refuse every site rca-connect answers for, and nothing renews it, since
/// a new CA must be trusted by the clients anew.
pub fn expiry_warning(der: &CertificateDer<'_>) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = certificate.validity().not_after;
    let left = not_after.timestamp() - x509_parser::time::ASN1Time::now().timestamp();
    let soon = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
    let when = if left < 0 {
        "expired"
    } else if left < soon {
        "expires"
    } else {
        return None;
    };
    Some(format!(
        "it {when} on {not_after}, and clients that trust it refuse rca-connect's sites from then: \
         move ca.pem and ca.key out of the state directory, start rca-connect to make a new CA, \
         and have the clients trust the new ca.pem"
    ))
}

impl LocalCa {
    /// The CA in `state_dir`, made there first if it is not yet (the
    /// directory with mode 0700, the key with 0600).
    ///
    /// # Errors
    ///
    /// The directory or files cannot be made or read, or do not hold a CA.
    pub fn in_state_dir(state_dir: &Path) -> Result<Self, LocalCaError> {
        let cert_path = state_dir.join(CA_CERT_FILE);
        let key_path = state_dir.join(CA_KEY_FILE);
        if !cert_path.exists() && !key_path.exists() {
            create(state_dir, &cert_path, &key_path)?;
        }
        warn_if_others_can_write(state_dir);
        Self::from_files(&cert_path, &key_path)
    }

    /// The CA in these PEM files.
    ///
    /// # Errors
    ///
    /// They cannot be read or do not hold a CA certificate and its key.
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, LocalCaError> {
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|error| LocalCaError::File {
                path: path.to_owned(),
                error,
            })
        };
        let invalid = |path: &Path| {
            let path = path.to_owned();
            move |error| LocalCaError::Invalid { path, error }
        };
        let key = KeyPair::from_pem(&read(key_path)?).map_err(invalid(key_path))?;
        crate::common::key_file::warn_if_others_can_read(
            key_path,
            "the local CA's private key (whoever holds it can pose as any site to the clients that trust the CA)",
        );
        let cert_pem = read(cert_path)?;
        // Certificates signed by another key than the one the CA
        // certificate names verify nowhere: refused here, not at every
        // client's handshake.
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok();
        let parsed = cert_der
            .as_ref()
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok());
        let names_key = parsed
            .as_ref()
            .map(|(_, cert)| cert.public_key().subject_public_key.data == key.public_key_raw());
        // Only an explicit CA:FALSE (a leaf, such as a bot certificate): an
        // old self-signed CA without basicConstraints is still a root to
        // OpenSSL and webpki.
        let not_ca = parsed.as_ref().is_some_and(|(_, cert)| {
            matches!(cert.basic_constraints(), Ok(Some(constraints)) if !constraints.value.ca)
        });
        if not_ca {
            return Err(LocalCaError::NotCa(cert_path.to_owned()));
        }
        if names_key == Some(false) {
            return Err(LocalCaError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        if let Some(warning) = cert_der.as_ref().and_then(expiry_warning) {
            log::warn!(
                "the local CA certificate {}: {warning}",
                cert_path.display()
            );
        }
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(invalid(cert_path))?;
        // rcgen read a certificate from the PEM, so this finds one.
        let cert_der = cert_der.ok_or_else(|| LocalCaError::Invalid {
            path: cert_path.to_owned(),
            error: rcgen::Error::CouldNotParseCertificate,
        })?;
        let leaf_key = KeyPair::generate().map_err(invalid(cert_path))?;
        Ok(Self {
            issuer,
            cert_path: cert_path.to_owned(),
            cert_der,
            leaf_key,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, which must never be a root for servers (see
    /// [`crate::common::roots::remove_ca`]).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate's file, for the client to trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The server configuration for tunnels to `host`: a certificate for it
    /// (a DNS name or an IP address), issued on first use.
    ///
    /// # Errors
    ///
    /// The certificate cannot be issued.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, LocalCaError> {
        self.server_config_at(host, Instant::now())
    }

    /// [`LocalCa::server_config`] at `now`: a certificate issued up to
    /// [`REISSUE_AFTER`] before is used again.
    fn server_config_at(
        &self,
        host: &str,
        now: Instant,
    ) -> Result<Arc<ServerConfig>, LocalCaError> {
        // Host names are case-insensitive: one certificate for all spellings.
        let host = host.to_ascii_lowercase();
        if let Some(issued) = self
            .configs()
            .get(&host)
            .filter(|issued| issued.fresh_at(now))
        {
            return Ok(Arc::clone(&issued.config));
        }
        // Issued without the lock, so tunnels to hosts already issued for do
        // not wait for a signature. Two tunnels to one host may both issue;
        // the first kept is used by both.
        let config = Arc::new(self.issue(&host)?);
        let mut configs = self.configs();
        if configs.len() >= MAX_HOSTS && !configs.contains_key(&host) {
            configs.clear();
        }
        let kept = configs.entry(host).or_insert_with(|| Issued {
            at: now,
            config: Arc::clone(&config),
        });
        if !kept.fresh_at(now) {
            *kept = Issued { at: now, config };
        }
        Ok(Arc::clone(&kept.config))
    }

    fn configs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.configs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn issue(&self, host: &str) -> Result<ServerConfig, LocalCaError> {
        let failed = |error: String| LocalCaError::Issue {
            host: host.to_owned(),
            error,
        };
        let san = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.to_owned()
                    .try_into()
                    .map_err(|error: rcgen::Error| failed(error.to_string()))?,
            ),
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = time_days_ago(1);
        params.not_after = time_days_ago(-LEAF_DAYS);
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|error| failed(error.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| failed(error.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
            .map_err(|error| failed(error.to_string()))?;
        config.alpn_protocols = rustls_req_client_auth::http_alpn();
        Ok(config)
    }
}

/// A state directory others may write to (every user, or its group; one
/// made before, by hand) lets them put a CA of their own in the local CA's
/// place; said at once.
fn warn_if_others_can_write(state_dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = fs::metadata(state_dir) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o7777;
    let who = if mode & 0o002 != 0 {
        "every user on this machine"
    } else if mode & 0o020 != 0 {
        "its group"
    } else {
        return;
    };
    log::warn!(
        "the local CA's directory {} can be written by {who} (mode {mode:04o}), \
         who can then put a CA of their own in its place: chmod go-w {0}",
        state_dir.display()
    );
}

/// Makes the CA: directory 0700, key 0600 (written before the certificate,
/// and never readable by anyone else, not even for a moment).
fn create(state_dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), LocalCaError> {
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |error| LocalCaError::File { path, error }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(file_error(state_dir))?;
    let key = KeyPair::generate().map_err(|error| LocalCaError::Invalid {
        path: key_path.to_owned(),
        error,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("rca-connect local CA ({})", host_name()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time_days_ago(1);
    params.not_after = time_days_ago(-3650);
    let cert = params
        .self_signed(&key)
        .map_err(|error| LocalCaError::Invalid {
            path: cert_path.to_owned(),
            error,
        })?;
    let mut key_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_path)
        .map_err(file_error(key_path))?;
    key_file
        .write_all(key.serialize_pem().as_bytes())
        .map_err(file_error(key_path))?;
    fs::write(cert_path, cert.pem()).map_err(file_error(cert_path))?;
    Ok(())
}

fn host_name() -> String {
    fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "this machine".to_owned())
}

/// `days` before now (after, if negative), for a validity period.
fn time_days_ago(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::days(days)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{expiry_warning, LocalCa, LEAF_DAYS, REISSUE_AFTER};

    /// A CA that has expired or expires within 30 days is warned of; one
    /// with longer left is not.
    #[test]
    fn an_expiring_local_ca_is_warned_of() {
        let certificate = |days_left: i64| {
            let mut params = rcgen::CertificateParams::default();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(400);
            params.not_after = now + time::Duration::days(days_left);
            let key = rcgen::KeyPair::generate().expect("key");
            params.self_signed(&key).expect("certificate").der().clone()
        };
        assert!(expiry_warning(&certificate(365)).is_none());
        let soon = expiry_warning(&certificate(10)).expect("expires soon");
        assert!(soon.starts_with("it expires on "), "{soon}");
        let past = expiry_warning(&certificate(-1)).expect("expired");
        assert!(past.starts_with("it expired on "), "{past}");
    }

    #[test]
    fn one_certificate_serves_every_spelling_of_a_host() {
        let dir = std::env::temp_dir().join(format!("rca-local-ca-{}", std::process::id()));
        let ca = LocalCa::in_state_dir(&dir).expect("a CA");
        let lower = ca.server_config("example.com").expect("issued");
        let upper = ca.server_config("Example.COM").expect("issued");
        assert!(Arc::ptr_eq(&lower, &upper));
        let other = ca.server_config("example.org").expect("issued");
        assert!(!Arc::ptr_eq(&lower, &other));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A key that is not the CA certificate's (a rotation half done) is
    /// refused: every certificate it signed would fail every handshake.
    #[test]
    fn a_key_of_another_ca_is_refused() {
        let dir = tempfile::tempdir().expect("directory");
        LocalCa::in_state_dir(dir.path()).expect("a CA");
        let other = rcgen::KeyPair::generate().expect("key");
        let key_path = dir.path().join(super::CA_KEY_FILE);
        std::fs::write(&key_path, other.serialize_pem()).expect("write");
        let refused = LocalCa::from_files(&dir.path().join(super::CA_CERT_FILE), &key_path);
        assert!(
            matches!(refused, Err(super::LocalCaError::KeyMismatch { .. })),
            "{refused:?}"
        );
    }

    /// A host's certificate is used again for [`REISSUE_AFTER`], then a new
    /// one is issued: kept for ever, it expired after a year.
    #[test]
    fn a_certificate_is_issued_again_well_before_it_expires() {
        let dir = tempfile::tempdir().expect("directory");
        let ca = LocalCa::in_state_dir(dir.path()).expect("a CA");
        let now = Instant::now();
        let first = ca.server_config_at("example.com", now).expect("issued");
        let day = Duration::from_secs(24 * 60 * 60);
        let later = ca
            .server_config_at("example.com", now + 29 * day)
            .expect("kept");
        assert!(Arc::ptr_eq(&first, &later));
        let renewed = ca
            .server_config_at("example.com", now + 31 * day)
            .expect("issued");
        assert!(!Arc::ptr_eq(&first, &renewed));
        // And the new one is kept from then on.
        let again = ca
            .server_config_at("example.com", now + 32 * day)
            .expect("kept");
        assert!(Arc::ptr_eq(&renewed, &again));
        assert!(
            REISSUE_AFTER
                < Duration::from_secs(u64::try_from(LEAF_DAYS).expect("days") * 86_400) / 2
        );
    }
}
