//! Session-ticket keys shared by a fleet of proxies, so a session one proxy
//! issued resumes on any other (with the same authentication path, RCA-11: the
//! path travels inside the ticket).
//!
//! The key file holds one key per line, base64 of 32 random bytes
//! (`openssl rand -base64 32`); the first line encrypts new tickets, the others
//! only decrypt, for rotation: add a new first line on every proxy, reload,
//! and drop the last line once tickets under it have expired. Blank lines and
//! lines starting with `#` are ignored.
//!
//! A ticket is `key id (8) || key info (16) || AES-256-GCM(ticket)`, with the
//! key id and the SHA-256 of the partner CA file as additional data; the key
//! id is the start of the SHA-256 of the key. The partner CA file is bound in
//! because a TLS 1.2 session carries no record of the CA set that verified it
//! (see [`crate::proxy::tls::sessions`]): when the file changes, every ticket gives a
//! full handshake, and proxies of one fleet resume each other's sessions only
//! while their partner CA files are the same.
//!
//! Every ticket has a key of its own, HKDF-SHA256-Expand of the file's key
//! with a label and 16 random bytes as info (so the all-zero nonce is never
//! used twice with one key): a key file can seal any number of tickets, where
//! random 96-bit GCM nonces under one key would call for rotation well before
//! 2^32 tickets across the fleet.

use std::path::Path;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Prk, HKDF_SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use rustls::server::ProducesTickets;

use crate::proxy::tls::sessions::TrustEpoch;

const KEY_LEN: usize = 32;
const ID_LEN: usize = 8;
const SALT_LEN: usize = 16;

/// Labels the HKDF output: a key of the file derives nothing else.
const LABEL: &[u8] = b"rca-proxy session ticket v3";

/// One key of the file.
struct TicketKey {
    id: [u8; ID_LEN],
    /// The file's 32 random bytes, used directly as HKDF's pseudorandom key.
    prk: Prk,
}

impl TicketKey {
    fn new(secret: &[u8]) -> Option<Self> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        let mut id = [0; ID_LEN];
        id.copy_from_slice(digest.as_ref().get(..ID_LEN)?);
        Some(Self {
            id,
            prk: Prk::new_less_safe(HKDF_SHA256, secret),
        })
    }

    /// The AES-256-GCM key of the ticket with `salt`.
    fn ticket_key(&self, salt: &[u8; SALT_LEN]) -> Option<LessSafeKey> {
        let info = [LABEL, salt];
        let okm = self.prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

/// Each ticket key seals one ticket: a constant nonce is unique for it.
fn nonce() -> Nonce {
    Nonce::assume_unique_for_key([0; NONCE_LEN])
}

/// The keys of a key file, parsed.
pub struct TicketKeys {
    keys: Vec<TicketKey>,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("TicketKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TicketKeys {
    /// Reads the key file at `path`; the error names the file and the line.
    ///
    /// # Errors
    ///
    /// The file cannot be read, a line is not base64 of 32 bytes, or there is
    /// no key.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                format!(
                    "{} line {}: not a ticket key (base64 of {KEY_LEN} random bytes, as `openssl rand -base64 32` writes)",
                    path.display(),
                    index + 1
                )
            };
            let secret = base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|_| bad())?;
            if secret.len() != KEY_LEN {
                return Err(bad());
            }
            keys.push(TicketKey::new(&secret).ok_or_else(bad)?);
        }
        if keys.is_empty() {
            return Err(format!("{} holds no ticket key", path.display()));
        }
        Ok(Self { keys })
    }
}

/// The ticketer of a proxy with a key file: replaceable on reload.
#[derive(Debug)]
pub struct FleetTicketer {
    keys: RwLock<TicketKeys>,
    /// The partner CA set tickets are bound to.
    trust: RwLock<TrustEpoch>,
    lifetime: u32,
    random: SystemRandom,
}

impl FleetTicketer {
    /// A ticketer over `keys` for sessions verified under `trust` (the
    /// partner CA file's bytes; empty without partners), announcing
    /// `lifetime` seconds to clients.
    pub fn new(keys: TicketKeys, trust: &[u8], lifetime: u32) -> Self {
        Self {
            keys: RwLock::new(keys),
            trust: RwLock::new(TrustEpoch::new(trust)),
            lifetime,
            random: SystemRandom::new(),
        }
    }

    /// From now on sessions are verified under `trust`: tickets sealed under
    /// another give a full handshake, and after a change none is sealed for
    /// `handshake_timeout` (see `TrustEpoch`).
    pub fn bind_to_trust(&self, trust: &[u8], handshake_timeout: Duration) {
        self.trust
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .bind(trust, handshake_timeout);
    }

    fn trust(&self) -> TrustEpoch {
        *self.trust.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The additional data of a ticket under the key `id` and `trust`.
    fn additional_data(id: [u8; ID_LEN], trust: &TrustEpoch) -> [u8; ID_LEN + 32] {
        let mut aad = [0; ID_LEN + 32];
        aad[..ID_LEN].copy_from_slice(&id);
        aad[ID_LEN..].copy_from_slice(&trust.digest);
        aad
    }

    /// Uses `keys` from now on (tickets under a key no longer there give a
    /// full handshake).
    pub fn replace(&self, keys: TicketKeys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }
}

impl ProducesTickets for FleetTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let trust = self.trust();
        if !trust.may_issue() {
            return None;
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let current = keys.keys.first()?;
        let mut salt = [0; SALT_LEN];
        self.random.fill(&mut salt).ok()?;
        let mut sealed = plain.to_vec();
        current
            .ticket_key(&salt)?
            .seal_in_place_append_tag(
                nonce(),
                Aad::from(Self::additional_data(current.id, &trust)),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(ID_LEN + SALT_LEN + sealed.len());
        ticket.extend_from_slice(&current.id);
        ticket.extend_from_slice(&salt);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        // Attacker-controlled: every slice is checked, nothing panics.
        let id = cipher.get(..ID_LEN)?;
        let salt = <[u8; SALT_LEN]>::try_from(cipher.get(ID_LEN..ID_LEN + SALT_LEN)?).ok()?;
        let sealed = cipher.get(ID_LEN + SALT_LEN..)?;
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let key = keys.keys.iter().find(|key| key.id == id)?;
        let mut opened = sealed.to_vec();
        let plain = key
            .ticket_key(&salt)?
            .open_in_place(
                nonce(),
                Aad::from(Self::additional_data(key.id, &self.trust())),
                &mut opened,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secrets: &[[u8; KEY_LEN]]) -> TicketKeys {
        TicketKeys {
            keys: secrets
                .iter()
                .map(|secret| TicketKey::new(secret).expect("key"))
                .collect(),
        }
    }

    #[test]
    fn round_trip_and_rotation() {
        let old = FleetTicketer::new(keys(&[[1; KEY_LEN]]), b"", 3600);
        let ticket = old.encrypt(b"session").expect("ticket");
        // A fleet member that rotated: a new first key, the old one second.
        let rotated = FleetTicketer::new(keys(&[[2; KEY_LEN], [1; KEY_LEN]]), b"", 3600);
        assert_eq!(rotated.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        // Once the old key is gone, the ticket is not accepted.
        rotated.replace(keys(&[[2; KEY_LEN]]));
        assert_eq!(rotated.decrypt(&ticket), None);
    }

    #[test]
    fn every_ticket_has_a_key_of_its_own() {
        let ticketer = FleetTicketer::new(keys(&[[4; KEY_LEN]]), b"", 3600);
        let [first, second] = [(); 2].map(|()| ticketer.encrypt(b"session").expect("ticket"));
        // Same key id, different salts, so different keys and ciphertexts.
        assert_eq!(first[..ID_LEN], second[..ID_LEN]);
        assert_ne!(
            first[ID_LEN..ID_LEN + SALT_LEN],
            second[ID_LEN..ID_LEN + SALT_LEN]
        );
        assert_ne!(first[ID_LEN + SALT_LEN..], second[ID_LEN + SALT_LEN..]);
        // The salt is bound in: another ticket's salt does not open it.
        let mut swapped = first.clone();
        swapped[ID_LEN..ID_LEN + SALT_LEN].copy_from_slice(&second[ID_LEN..ID_LEN + SALT_LEN]);
        assert_eq!(ticketer.decrypt(&swapped), None);
        assert_eq!(ticketer.decrypt(&first).as_deref(), Some(&b"session"[..]));
    }

    #[test]
    fn tickets_open_only_under_the_trust_they_were_sealed_under() {
        let ticketer = FleetTicketer::new(keys(&[[5; KEY_LEN]]), b"partners v1", 3600);
        let ticket = ticketer.encrypt(b"session").expect("ticket");
        ticketer.bind_to_trust(b"partners v1", Duration::from_secs(60));
        assert_eq!(ticketer.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        ticketer.bind_to_trust(b"partners v2", Duration::from_secs(60));
        assert_eq!(ticketer.decrypt(&ticket), None);
        // For a handshake timeout after the change no ticket is sealed.
        assert_eq!(ticketer.encrypt(b"session"), None);
        // A fleet member with the old file still opens it.
        let other = FleetTicketer::new(keys(&[[5; KEY_LEN]]), b"partners v1", 3600);
        assert_eq!(other.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
    }

    #[test]
    fn damaged_tickets_are_refused_without_panicking() {
        let ticketer = FleetTicketer::new(keys(&[[3; KEY_LEN]]), b"", 3600);
        let ticket = ticketer.encrypt(b"session").expect("ticket");
        for cut in 0..ticket.len() {
            assert_eq!(ticketer.decrypt(&ticket[..cut]), None);
        }
        let mut flipped = ticket.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert_eq!(ticketer.decrypt(&flipped), None);
    }
}
