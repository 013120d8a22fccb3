//! Handshake harness shared by the `handshake` criterion bench and the
//! `handshake-count` driver (instruction counts under callgrind).
//!
//! The same code is compiled twice by `harness!`: once against the patched
//! rustls of the workspace ([`fork`], no extension hook installed) and once
//! against the pristine pinned rustls ([`vanilla`]). Both get identical
//! certificates, keys, features and configuration, so the only difference
//! between the two is the fork's patch series.
//!
//! A handshake is a full TLS 1.3 handshake in memory (no sockets): the two
//! connections exchange flights through `Vec<u8>` buffers with
//! `write_tls` / `read_tls` / `process_new_packets` (the `memory_pump` the
//! tests and the fuzz harness use too) until neither is
//! handshaking. The CPU time of each side is measured separately, around that
//! side's own calls only (construction of the connection included, drop
//! excluded), as rustls's own benchmark does.

pub mod process_cpu;

use std::fmt;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The DNS name in the server certificate and in the client's SNI.
pub const SERVER_NAME: &str = "localhost";

/// A ClientHello recorded from Chromium 156 on loopback (the TLS records as
/// sent; see `fixtures/README.md`): a browser's hello, with the extensions
/// rustls does not implement (GREASE, ALPS, trust anchors, SCT) that a
/// rustls client never sends.
pub const CHROMIUM_CLIENT_HELLO: &[u8] = include_bytes!("../fixtures/chromium-client-hello.bin");

/// The crypto provider both sides use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `rustls::crypto::ring`.
    Ring,
    /// `rustls::crypto::aws_lc_rs`.
    AwsLcRs,
}

impl Provider {
    /// Every provider, in report order.
    pub const ALL: [Self; 2] = [Self::Ring, Self::AwsLcRs];

    /// The label used in benchmark ids and on the command line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::AwsLcRs => "aws-lc-rs",
        }
    }
}

/// Who authenticates whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The server presents a certificate; no CertificateRequest.
    ServerAuth,
    /// Mutual TLS: the server requires a client certificate
    /// (`WebPkiClientVerifier` over the client CA).
    Mtls,
}

impl Auth {
    /// Every mode, in report order.
    pub const ALL: [Self; 2] = [Self::ServerAuth, Self::Mtls];

    /// The label used in benchmark ids and on the command line.
    pub fn label(self) -> &'static str {
        match self {
            Self::ServerAuth => "server-auth",
            Self::Mtls => "mtls",
        }
    }
}

/// The side whose CPU time is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `ServerConnection`.
    Server,
    /// The `ClientConnection`.
    Client,
}

impl Side {
    /// Both sides, in report order.
    pub const ALL: [Self; 2] = [Self::Server, Self::Client];

    /// The label used in benchmark ids.
    pub fn label(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

macro_rules! impl_display_label {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    )*};
}
impl_display_label!(Provider, Auth, Side);

/// Time spent in each side's calls during one handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideTimes {
    /// `ClientConnection::new` and the client's `read_tls` /
    /// `process_new_packets` / `write_tls` calls.
    pub client: Duration,
    /// `ServerConnection::new` and the server's `read_tls` /
    /// `process_new_packets` / `write_tls` calls.
    pub server: Duration,
}

impl SideTimes {
    /// The time of one side.
    pub fn get(self, side: Side) -> Duration {
        match side {
            Side::Server => self.server,
            Side::Client => self.client,
        }
    }
}

/// Certificates and keys, generated once and given to both crates as the same
/// DER (`rustls_vanilla` re-exports the same `rustls-pki-types`).
#[derive(Debug)]
pub struct Certs {
    /// Trust anchor for the server certificate (ECDSA P-256, self-signed).
    pub server_ca: CertificateDer<'static>,
    /// The server's chain: the leaf for [`SERVER_NAME`] (ECDSA P-256).
    pub server_chain: Vec<CertificateDer<'static>>,
    /// The server leaf's PKCS#8 key.
    pub server_key: PrivateKeyDer<'static>,
    /// Trust anchor for client certificates (ECDSA P-256, self-signed).
    pub client_ca: CertificateDer<'static>,
    /// The client's chain: one leaf with the `clientAuth` EKU (ECDSA P-256).
    pub client_chain: Vec<CertificateDer<'static>>,
    /// The client leaf's PKCS#8 key.
    pub client_key: PrivateKeyDer<'static>,
}

impl Certs {
    /// The server CA and leaf for [`SERVER_NAME`], and a client CA and leaf,
    /// all ECDSA P-256 with SHA-256: the tests' PKI
    /// ([`integration_tests::TestPki::shared`]), each chain the leaf alone.
    pub fn generate() -> Self {
        let pki = integration_tests::TestPki::shared();
        Self {
            server_ca: pki.server_ca.cert.clone(),
            server_chain: pki.server.chain[..1].to_vec(),
            server_key: pki.server.key(),
            client_ca: pki.bot_ca.cert.clone(),
            client_chain: pki.bot.chain[..1].to_vec(),
            client_key: pki.bot.key(),
        }
    }
}

/// Upper bound on client→server→client rounds; a full TLS 1.3 handshake
/// takes two.
const MAX_ROUNDS: usize = 4;

/// Generates one harness module per rustls crate. The item names containing
/// `client_work_` / `server_work_` are what the callgrind driver toggles
/// collection on, so they must stay `#[inline(never)]` and contain exactly
/// one side's calls.
macro_rules! harness {
    ($(#[$meta:meta])* $module:ident, $krate:ident) => {
        $(#[$meta])*
        pub mod $module {
            use std::sync::Arc;
            use std::time::Instant;

            use $krate::client::Resumption;
            use $krate::crypto::CryptoProvider;
            use $krate::pki_types::ServerName;
            use $krate::server::{NoServerSessionStorage, WebPkiClientVerifier};
            use $krate::version::TLS13;
            use $krate::{
                ClientConfig, ClientConnection, ConnectionCommon, HandshakeKind,
                ProtocolVersion, RootCertStore, ServerConfig, ServerConnection,
            };

            use crate::{Auth, Certs, Provider, SideTimes, MAX_ROUNDS, SERVER_NAME};

            /// The provider's defaults, with the key exchange pinned to X25519
            /// so that feature unification (`prefer-post-quantum`) cannot make
            /// the two crates negotiate different groups.
            fn provider(provider: Provider) -> Arc<CryptoProvider> {
                Arc::new(match provider {
                    // Deprecated in rustls 0.23.48 (no post-quantum key
                    // exchange); still how ring's provider is built.
                    #[allow(deprecated)]
                    Provider::Ring => CryptoProvider {
                        kx_groups: vec![$krate::crypto::ring::kx_group::X25519],
                        ..$krate::crypto::ring::default_provider()
                    },
                    Provider::AwsLcRs => CryptoProvider {
                        kx_groups: vec![$krate::crypto::aws_lc_rs::kx_group::X25519],
                        ..$krate::crypto::aws_lc_rs::default_provider()
                    },
                })
            }

            fn roots(ca: &$krate::pki_types::CertificateDer<'static>) -> Arc<RootCertStore> {
                let mut roots = RootCertStore::empty();
                roots.add(ca.clone()).expect("CA certificate parses");
                Arc::new(roots)
            }

            /// The client and server configuration of one variant.
            #[derive(Debug, Clone)]
            pub struct Configs {
                auth: Auth,
                server_name: ServerName<'static>,
                client: Arc<ClientConfig>,
                server: Arc<ServerConfig>,
            }

            impl Configs {
                /// TLS 1.3 only, no resumption and no tickets (every handshake
                /// is full), no certificate compression (the `zlib`/`brotli`
                /// features another workspace member may enable would
                /// otherwise turn it on for one crate only).
                ///
                /// # Panics
                ///
                /// If rustls rejects the configuration.
                pub fn new(certs: &Certs, provider_kind: Provider, auth: Auth) -> Self {
                    let provider = provider(provider_kind);

                    let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
                        .with_protocol_versions(&[&TLS13])
                        .expect("provider supports TLS 1.3")
                        .with_root_certificates(roots(&certs.server_ca));
                    let mut client = match auth {
                        Auth::ServerAuth => client.with_no_client_auth(),
                        Auth::Mtls => client
                            .with_client_auth_cert(
                                certs.client_chain.clone(),
                                certs.client_key.clone_key(),
                            )
                            .expect("client key matches"),
                    };
                    client.resumption = Resumption::disabled();
                    client.cert_compressors = Vec::new();
                    client.cert_decompressors = Vec::new();

                    let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
                        .with_protocol_versions(&[&TLS13])
                        .expect("provider supports TLS 1.3");
                    let server = match auth {
                        Auth::ServerAuth => server.with_no_client_auth(),
                        Auth::Mtls => server.with_client_cert_verifier(
                            WebPkiClientVerifier::builder_with_provider(
                                roots(&certs.client_ca),
                                Arc::clone(&provider),
                            )
                            .build()
                            .expect("client verifier"),
                        ),
                    };
                    let mut server = server
                        .with_single_cert(certs.server_chain.clone(), certs.server_key.clone_key())
                        .expect("server key matches");
                    server.send_tls13_tickets = 0;
                    server.session_storage = Arc::new(NoServerSessionStorage {});
                    server.cert_compressors = Vec::new();
                    server.cert_decompressors = Vec::new();

                    Self {
                        auth,
                        server_name: ServerName::try_from(SERVER_NAME).expect("valid DNS name"),
                        client: Arc::new(client),
                        server: Arc::new(server),
                    }
                }

                /// Configurations built elsewhere (the flag path), checked as
                /// `auth` after each handshake.
                pub fn from_parts(auth: Auth, client: ClientConfig, server: ServerConfig) -> Self {
                    Self {
                        auth,
                        server_name: ServerName::try_from(SERVER_NAME).expect("valid DNS name"),
                        client: Arc::new(client),
                        server: Arc::new(server),
                    }
                }

                /// The client configuration.
                pub fn client_config(&self) -> &Arc<ClientConfig> {
                    &self.client
                }

                /// The server configuration.
                pub fn server_config(&self) -> &Arc<ServerConfig> {
                    &self.server
                }

                /// One full handshake; returns the time spent in each side's
                /// calls.
                ///
                /// # Panics
                ///
                /// If the handshake fails or is not the expected full TLS 1.3
                /// handshake (with a client certificate under mTLS).
                pub fn handshake(&self) -> SideTimes {
                    let mut times = SideTimes::default();
                    let mut to_server = Vec::with_capacity(16 * 1024);
                    let mut to_client = Vec::with_capacity(16 * 1024);
                    let server_name = self.server_name.clone();

                    let start = Instant::now();
                    let mut client = client_work_new(&self.client, server_name);
                    times.client += start.elapsed();
                    let start = Instant::now();
                    let mut server = server_work_new(&self.server);
                    times.server += start.elapsed();

                    let mut rounds = 0;
                    while client.is_handshaking() || server.is_handshaking() {
                        rounds += 1;
                        assert!(rounds <= MAX_ROUNDS, "handshake does not complete");

                        let start = Instant::now();
                        client_work_io(&mut client, &to_client, &mut to_server);
                        times.client += start.elapsed();
                        to_client.clear();

                        let start = Instant::now();
                        server_work_io(&mut server, &to_server, &mut to_client);
                        times.server += start.elapsed();
                        to_server.clear();
                    }

                    self.check(&client, &server, &to_client);
                    times
                }

                /// The server's side of a handshake with a recorded client:
                /// a new connection reads `client_hello` and writes its
                /// first flight. Returns the time it took.
                ///
                /// # Panics
                ///
                /// If the server does not answer with a TLS 1.3 first flight.
                pub fn server_first_flight(&self, client_hello: &[u8]) -> std::time::Duration {
                    let mut flight = Vec::with_capacity(16 * 1024);
                    let start = Instant::now();
                    let mut server = server_work_new(&self.server);
                    server_work_io(&mut server, client_hello, &mut flight);
                    let elapsed = start.elapsed();
                    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
                    assert!(server.is_handshaking() && !flight.is_empty());
                    elapsed
                }

                fn check(&self, client: &ClientConnection, server: &ServerConnection, left: &[u8]) {
                    assert!(left.is_empty(), "server sent more after its Finished (tickets?)");
                    assert!(!client.wants_write() && !server.wants_write());
                    for version in [client.protocol_version(), server.protocol_version()] {
                        assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
                    }
                    for kind in [client.handshake_kind(), server.handshake_kind()] {
                        assert_eq!(kind, Some(HandshakeKind::Full));
                    }
                    let client_certs = server.peer_certificates().map(<[_]>::len);
                    match self.auth {
                        Auth::ServerAuth => assert_eq!(client_certs, None),
                        Auth::Mtls => assert_eq!(client_certs, Some(1)),
                    }
                }
            }

            #[inline(never)]
            fn client_work_new(
                config: &Arc<ClientConfig>,
                server_name: ServerName<'static>,
            ) -> ClientConnection {
                ClientConnection::new(Arc::clone(config), server_name)
                    .expect("client connection")
            }

            #[inline(never)]
            fn server_work_new(config: &Arc<ServerConfig>) -> ServerConnection {
                ServerConnection::new(Arc::clone(config)).expect("server connection")
            }

            #[inline(never)]
            fn client_work_io(conn: &mut ClientConnection, incoming: &[u8], outgoing: &mut Vec<u8>) {
                exchange(conn, incoming, outgoing);
            }

            #[inline(never)]
            fn server_work_io(conn: &mut ServerConnection, incoming: &[u8], outgoing: &mut Vec<u8>) {
                exchange(conn, incoming, outgoing);
            }

            /// Reads and processes everything in `incoming`, then writes
            /// everything pending to `outgoing`: one turn of the shared
            /// in-memory pump.
            fn exchange<Data>(
                conn: &mut ConnectionCommon<Data>,
                incoming: &[u8],
                outgoing: &mut Vec<u8>,
            ) {
                if let Err(stopped) = memory_pump::deliver(conn, incoming) {
                    panic!("handshake failed: {stopped}");
                }
                memory_pump::flush_into(conn, outgoing);
            }
        }
    };
}

harness!(
    /// The harness over the workspace's rustls: the fork (`fork/rustls`), with
    /// no extension hook installed.
    fork,
    rustls
);

harness!(
    /// The harness over `rustls_vanilla`: pristine rustls, the pinned release.
    vanilla,
    rustls_vanilla
);

/// The `request_client_auth` flag path through the fork: the server's own
/// config asks nobody for a certificate, `ServerFlags` asks the flagged client
/// and verifies it against the client CA (mandatory); the client sets the flag
/// with `ClientFlags`. Otherwise configured exactly like [`Auth::Mtls`], whose
/// vanilla handshake is its baseline: the flag path should cost what plain mTLS
/// costs (the budget in benches/README.md: at most 2% more).
///
/// # Panics
///
/// If rustls rejects the configuration.
pub fn flag_path(certs: &Certs, provider: Provider) -> fork::Configs {
    use std::sync::Arc;

    use rustls::server::WebPkiClientVerifier;
    use rustls_req_client_auth::{ClientFlags, ServerFlags};

    let server_auth = fork::Configs::new(certs, provider, Auth::ServerAuth);
    let mut client = rustls::ClientConfig::clone(server_auth.client_config());
    let mut server = rustls::ServerConfig::clone(server_auth.server_config());
    let crypto = client.crypto_provider().clone();
    let key = crypto
        .key_provider
        .load_private_key(certs.client_key.clone_key())
        .expect("client key");
    let identity = Arc::new(rustls::sign::CertifiedKey::new(
        certs.client_chain.clone(),
        key,
    ));
    ClientFlags::request_client_auth(identity)
        .install(&mut client)
        .expect("TLS Flags registers its extension type");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certs.client_ca.clone())
        .expect("client CA parses");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto)
        .build()
        .expect("client verifier");
    ServerFlags::request_client_auth(verifier)
        .require_certificate()
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    fork::Configs::from_parts(Auth::Mtls, client, server)
}

/// The crate of a measured row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crate {
    /// `rustls_vanilla`.
    Vanilla,
    /// The patched rustls.
    Fork,
}

impl Crate {
    /// Both crates, in the order they are measured.
    pub const ALL: [Self; 2] = [Self::Vanilla, Self::Fork];

    /// The criterion function name and command-line label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Vanilla => "vanilla",
            Self::Fork => "fork",
        }
    }
}

impl_display_label!(Crate);

/// One variant's configurations for either crate, behind one type.
#[derive(Debug, Clone)]
pub enum Variant {
    /// Through `rustls_vanilla`.
    Vanilla(vanilla::Configs),
    /// Through the fork.
    Fork(fork::Configs),
}

impl Variant {
    /// Builds the configurations of one variant for one crate.
    ///
    /// # Panics
    ///
    /// If rustls rejects the configuration, or if the fork's configuration
    /// has an extension hook installed (the defaults have none).
    pub fn new(certs: &Certs, krate: Crate, provider: Provider, auth: Auth) -> Self {
        match krate {
            Crate::Vanilla => Self::Vanilla(vanilla::Configs::new(certs, provider, auth)),
            Crate::Fork => {
                let configs = fork::Configs::new(certs, provider, auth);
                assert!(configs.client_config().extension_hooks.is_empty());
                assert!(configs.server_config().extension_hooks.is_empty());
                Self::Fork(configs)
            }
        }
    }

    /// The flag path through the fork; see [`flag_path`].
    pub fn fork_flag_path(certs: &Certs, provider: Provider) -> Self {
        Self::Fork(flag_path(certs, provider))
    }

    /// One full handshake; see [`fork::Configs::handshake`].
    pub fn handshake(&self) -> SideTimes {
        match self {
            Self::Vanilla(configs) => configs.handshake(),
            Self::Fork(configs) => configs.handshake(),
        }
    }

    /// The server's answer to a recorded ClientHello; see
    /// [`fork::Configs::server_first_flight`].
    pub fn server_first_flight(&self, client_hello: &[u8]) -> Duration {
        match self {
            Self::Vanilla(configs) => configs.server_first_flight(client_hello),
            Self::Fork(configs) => configs.server_first_flight(client_hello),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Auth, Certs, Crate, Provider, Variant};

    /// Every benchmarked variant completes the expected handshake (the checks
    /// are in `Configs::handshake`), so `cargo test` catches a broken bench.
    #[test]
    fn every_variant_completes_a_full_tls13_handshake() {
        let certs = Certs::generate();
        for krate in Crate::ALL {
            for provider in Provider::ALL {
                for auth in Auth::ALL {
                    let variant = Variant::new(&certs, krate, provider, auth);
                    variant.handshake();
                    variant.handshake();
                }
            }
        }
        for provider in Provider::ALL {
            let flag = Variant::fork_flag_path(&certs, provider);
            flag.handshake();
            flag.handshake();
        }
    }

    /// Both crates answer the recorded Chromium ClientHello with a first flight.
    #[test]
    fn both_crates_answer_a_recorded_browser_client_hello() {
        let certs = Certs::generate();
        for krate in Crate::ALL {
            for provider in Provider::ALL {
                let variant = Variant::new(&certs, krate, provider, Auth::ServerAuth);
                variant.server_first_flight(super::CHROMIUM_CLIENT_HELLO);
            }
        }
    }
}
