//! A throw-away PKI made with rcgen: a CA for the server, a CA for bots (the
//! flag path) and a CA for "normal" clients, which the server does not trust
//! for bots (RCA-10), with one leaf each. ECDSA P-256 throughout.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the server certificate is issued for.
pub(crate) const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A certificate authority.
pub(crate) struct Authority {
    /// The self-signed CA certificate.
    pub(crate) cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    /// The leaf certificate alone (the trust anchor is the peer's business).
    pub(crate) cert: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

impl Leaf {
    /// The chain to present: the leaf alone.
    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone()]
    }

    /// The private key, PKCS#8.
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

impl Authority {
    fn new(common_name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> anyhow::Result<Leaf> {
        let key = KeyPair::generate()?;
        let names = names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert: cert.der().clone(),
            pem: cert.pem(),
            key,
        })
    }
}

/// The whole PKI.
pub(crate) struct Pki {
    /// Issues the server certificate; clients trust it.
    pub(crate) server_ca: Authority,
    /// The server's certificate for [`SERVER_NAMES`].
    pub(crate) server: Leaf,
    /// The flag path's trust anchor: the server verifies bots against it.
    pub(crate) bot_ca: Authority,
    /// A bot certificate from `bot_ca`.
    pub(crate) bot: Leaf,
    /// Another client CA, which the server does not use for bots.
    pub(crate) normal_ca: Authority,
    /// A client certificate from `normal_ca`: the "wrong" certificate for a bot.
    pub(crate) normal: Leaf,
}

impl Pki {
    /// Generates fresh keys and certificates.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let server_ca = Authority::new("example server CA")?;
        let server = server_ca.issue(
            SERVER_NAMES[0],
            &SERVER_NAMES,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let bot_ca = Authority::new("example bot CA (flag path)")?;
        let bot = bot_ca.issue(
            "crawler.bot.example",
            &["crawler.bot.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let normal_ca = Authority::new("example client CA (normal path)")?;
        let normal = normal_ca.issue(
            "partner.client.example",
            &["partner.client.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            server_ca,
            server,
            bot_ca,
            bot,
            normal_ca,
            normal,
        })
    }

    /// Writes every certificate and key as PEM into `dir` (created if
    /// missing); returns the paths written.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let files = [
            ("server-ca.pem", self.server_ca.pem.clone(), false),
            ("server.pem", self.server.pem.clone(), false),
            ("server.key", self.server.key.serialize_pem(), true),
            ("bot-ca.pem", self.bot_ca.pem.clone(), false),
            ("bot.pem", self.bot.pem.clone(), false),
            ("bot.key", self.bot.key.serialize_pem(), true),
            ("normal-ca.pem", self.normal_ca.pem.clone(), false),
            ("normal.pem", self.normal.pem.clone(), false),
            ("normal.key", self.normal.key.serialize_pem(), true),
        ];
        files
            .into_iter()
            .map(|(name, contents, private)| {
                let path = dir.join(name);
                write_file(&path, &contents, private)
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
