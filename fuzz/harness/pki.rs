//! The committed test PKI of the handshake targets (`fuzz/pki/`): a server CA
//! and a `localhost` server certificate, a bot CA and a bot client
//! certificate, all Ed25519 (deterministic signatures).
//!
//! Committed rather than generated per run because the recorded seeds carry
//! the server's and the bot's certificates and signatures: a seed only replays
//! against the PKI it was recorded with. `cargo xtask fuzz-seeds --new-pki`
//! makes a new one on request.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

/// The name the server certificate is issued for and the client connects to.
pub const SERVER_NAME: &str = "localhost";

/// The files of a [`Pki`] under `fuzz/pki/`, in [`Pki::files`] order.
pub const FILES: [&str; 6] = [
    "server-ca.der",
    "server.der",
    "server.key.der",
    "bot-ca.der",
    "bot.der",
    "bot.key.der",
];

/// Certificates and keys, all DER (keys PKCS#8).
#[derive(Clone, Debug)]
pub struct Pki {
    /// The trust anchor of clients.
    pub server_ca: Vec<u8>,
    /// The server's end-entity certificate for [`SERVER_NAME`].
    pub server: Vec<u8>,
    /// Its key.
    pub server_key: Vec<u8>,
    /// The trust anchor of the server's flag path.
    pub bot_ca: Vec<u8>,
    /// The bot's client certificate, issued by `bot_ca`.
    pub bot: Vec<u8>,
    /// Its key.
    pub bot_key: Vec<u8>,
}

impl Pki {
    /// The PKI compiled into the targets.
    pub fn embedded() -> Self {
        Self {
            server_ca: include_bytes!("../pki/server-ca.der").to_vec(),
            server: include_bytes!("../pki/server.der").to_vec(),
            server_key: include_bytes!("../pki/server.key.der").to_vec(),
            bot_ca: include_bytes!("../pki/bot-ca.der").to_vec(),
            bot: include_bytes!("../pki/bot.der").to_vec(),
            bot_key: include_bytes!("../pki/bot.key.der").to_vec(),
        }
    }

    /// The contents of [`FILES`], in order.
    pub fn files(&self) -> [&[u8]; 6] {
        [
            &self.server_ca,
            &self.server,
            &self.server_key,
            &self.bot_ca,
            &self.bot,
            &self.bot_key,
        ]
    }

    /// The server's chain: end entity, then its CA.
    pub fn server_chain(&self) -> Vec<CertificateDer<'static>> {
        chain(&self.server, &self.server_ca)
    }

    /// The bot's chain: end entity, then its CA.
    pub fn bot_chain(&self) -> Vec<CertificateDer<'static>> {
        chain(&self.bot, &self.bot_ca)
    }

    /// The server's private key.
    pub fn server_private_key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.server_key.clone()).into()
    }

    /// The bot's private key.
    pub fn bot_private_key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.bot_key.clone()).into()
    }

    /// Roots trusting the server CA only.
    pub fn server_roots(&self) -> RootCertStore {
        roots(&self.server_ca)
    }

    /// Roots trusting the bot CA only.
    pub fn bot_roots(&self) -> RootCertStore {
        roots(&self.bot_ca)
    }
}

fn chain(leaf: &[u8], ca: &[u8]) -> Vec<CertificateDer<'static>> {
    vec![
        CertificateDer::from(leaf.to_vec()),
        CertificateDer::from(ca.to_vec()),
    ]
}

fn roots(ca: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.to_vec()))
        .expect("the committed CA certificate parses");
    roots
}
