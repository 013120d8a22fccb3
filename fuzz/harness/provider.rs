//! A deterministic crypto provider and a fixed clock: the same configuration
//! writes the same bytes on every run, so a recorded peer flight keeps
//! answering the target's handshake.
//!
//! **Test only, and insecure by construction**: every "random" value and every
//! ephemeral key is a constant of the side. Everything else (cipher suites,
//! signatures, certificate verification) is aws-lc-rs's default provider.
//!
//! Three things make a rustls handshake differ from run to run, and each is
//! replaced here:
//!
//! - `CryptoProvider::secure_random`: the ClientHello and ServerHello
//!   randoms, the session id, the order of the ClientHello extensions, ticket
//!   nonces. Replaced by [`FixedRandom`], a xorshift whose output depends only
//!   on the side and the length asked for, so no state carries over from one
//!   connection (or one fuzz input) to the next.
//! - the key-exchange groups, which take their ephemeral keys from the
//!   system RNG inside aws-lc-rs, not from `secure_random`. Replaced by
//!   [`FixedKx`]: real X25519 and P-256 (aws-lc-rs) with a constant private
//!   key per side and group.
//! - the clock (certificate validity, ticket ages): [`FixedTime`].
//!
//! Signatures are deterministic because the test PKI uses Ed25519 keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::agreement;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use rustls::{Error, NamedGroup, PeerMisbehaved};

/// Which end of the handshake a provider is for: the two ends draw different
/// constants, as two real peers would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// aws-lc-rs's default provider with [`FixedRandom`] and the [`FixedKx`]
/// groups X25519 (preferred, so the first ClientHello carries its key share)
/// and secp256r1 (for HelloRetryRequest).
pub fn provider(end: End) -> Arc<CryptoProvider> {
    let (random, groups): (
        &'static FixedRandom,
        &'static [&'static dyn SupportedKxGroup],
    ) = match end {
        End::Client => (&CLIENT_RANDOM, &CLIENT_GROUPS),
        End::Server => (&SERVER_RANDOM, &SERVER_GROUPS),
    };
    Arc::new(CryptoProvider {
        secure_random: random,
        kx_groups: groups.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    })
}

/// Like [`provider`], with only the groups named `group` (a server that
/// sends a HelloRetryRequest to a client whose first key share is another).
pub fn provider_with_only(end: End, group: NamedGroup) -> Arc<CryptoProvider> {
    let mut provider = Arc::unwrap_or_clone(provider(end));
    provider.kx_groups.retain(|kx| kx.name() == group);
    assert!(!provider.kx_groups.is_empty(), "no fixed group {group:?}");
    Arc::new(provider)
}

/// 2026-01-01T00:00:00Z, inside the validity of the committed test PKI.
#[derive(Debug)]
pub struct FixedTime;

impl FixedTime {
    /// The clock as rustls's config builders take it.
    pub fn arc() -> Arc<dyn TimeProvider> {
        Arc::new(Self)
    }
}

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            1_767_225_600,
        )))
    }
}

static CLIENT_RANDOM: FixedRandom = FixedRandom(0x6d2b_79f5_0c1a_e3d1);
static SERVER_RANDOM: FixedRandom = FixedRandom(0x3c6e_f372_fe94_f82b);

/// Fills every request with xorshift64 output seeded by the side's constant
/// and the requested length: stateless, so each connection starts alike.
#[derive(Debug)]
pub struct FixedRandom(u64);

impl SecureRandom for FixedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let length = u64::try_from(buf.len()).map_err(|_| GetRandomFailed)?;
        // Never zero: xorshift would stay at zero.
        let mut state = (self.0 ^ length.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

static CLIENT_GROUPS: [&dyn SupportedKxGroup; 2] = [
    &FixedKx {
        name: NamedGroup::X25519,
        algorithm: &agreement::X25519,
        private_key: [0x11; 32],
        valid_share: x25519_share,
    },
    &FixedKx {
        name: NamedGroup::secp256r1,
        algorithm: &agreement::ECDH_P256,
        private_key: [0x33; 32],
        valid_share: uncompressed_point,
    },
];

static SERVER_GROUPS: [&dyn SupportedKxGroup; 2] = [
    &FixedKx {
        name: NamedGroup::X25519,
        algorithm: &agreement::X25519,
        private_key: [0x22; 32],
        valid_share: x25519_share,
    },
    &FixedKx {
        name: NamedGroup::secp256r1,
        algorithm: &agreement::ECDH_P256,
        private_key: [0x44; 32],
        valid_share: uncompressed_point,
    },
];

/// The shape checks rustls's own groups make before agreeing (see
/// `rustls::crypto::ring::kx`).
fn x25519_share(share: &[u8]) -> bool {
    share.len() == 32
}

fn uncompressed_point(share: &[u8]) -> bool {
    share.first() == Some(&0x04)
}

/// A real key-exchange group whose ephemeral private key is a constant (32
/// bytes: an X25519 scalar, or a big-endian P-256 scalar below the order).
pub struct FixedKx {
    name: NamedGroup,
    algorithm: &'static agreement::Algorithm,
    private_key: [u8; 32],
    valid_share: fn(&[u8]) -> bool,
}

impl fmt::Debug for FixedKx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FixedKx({:?})", self.name)
    }
}

impl SupportedKxGroup for FixedKx {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let private_key =
            agreement::PrivateKey::from_private_key(self.algorithm, &self.private_key)
                .map_err(|_| Error::General("fixed key share rejected".into()))?;
        let public_key = private_key
            .compute_public_key()
            .map_err(|_| Error::General("fixed key share has no public key".into()))?
            .as_ref()
            .to_vec();
        Ok(Box::new(FixedKeyExchange {
            name: self.name,
            algorithm: self.algorithm,
            private_key,
            public_key,
            valid_share: self.valid_share,
        }))
    }

    fn name(&self) -> NamedGroup {
        self.name
    }
}

struct FixedKeyExchange {
    name: NamedGroup,
    algorithm: &'static agreement::Algorithm,
    private_key: agreement::PrivateKey,
    public_key: Vec<u8>,
    valid_share: fn(&[u8]) -> bool,
}

impl ActiveKeyExchange for FixedKeyExchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if !(self.valid_share)(peer) {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        agreement::agree(
            &self.private_key,
            agreement::UnparsedPublicKey::new(self.algorithm, peer),
            Error::from(PeerMisbehaved::InvalidKeyShare),
            |secret| Ok(SharedSecret::from(secret)),
        )
    }

    fn pub_key(&self) -> &[u8] {
        &self.public_key
    }

    fn group(&self) -> NamedGroup {
        self.name
    }
}
