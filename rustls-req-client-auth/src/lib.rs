//! TLS Flags and the `request_client_auth` flag for rustls.
//!
//! An automated client (a crawler, a bot, an API client) sets
//! `request_client_auth` in its ClientHello; a server that accepts it sends a
//! CertificateRequest that acknowledges the flag, verifies the certificate
//! against trust anchors of its own, and tells the application that this
//! client came through the flag path. Browsers never set the flag, never get a
//! CertificateRequest and never see a certificate picker.
//!
//! This crate runs on the project's rustls fork (`rustls::hooks`, see
//! `fork/README.md`): install [`ClientFlags`] in a `ClientConfig` or
//! [`ServerFlags`] in a `ServerConfig`, and everything built on rustls
//! (tokio-rustls, hyper, axum, reqwest) keeps working unchanged.
//!
//! # Server
//!
//! ```
//! # use std::sync::Arc;
//! # use integration_tests::{config, memory, Provider, TestPki};
//! # let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
//! # let pki = TestPki::shared();
//! use rustls::server::WebPkiClientVerifier;
//! use rustls_req_client_auth::{server, ServerFlags};
//!
//! // People (and partners) are served as before ...
//! let mut config = rustls::ServerConfig::builder()
//!     .with_no_client_auth()
//!     .with_single_cert(pki.server.chain.clone(), pki.server.key())?;
//! // ... and bots that set the flag are asked for a certificate from the bot CA.
//! let bots = WebPkiClientVerifier::builder(Arc::new(pki.bot_ca.roots())).build()?;
//! ServerFlags::request_client_auth(bots).install(&mut config)?;
//! # let mut bot = config::client(&pki, Provider::AwsLcRs);
//! # rustls_req_client_auth::ClientFlags::request_client_auth(config::certified_key(&pki.bot, Provider::AwsLcRs)).install(&mut bot)?;
//! # let (mut client, mut conn) = config::connect(&Arc::new(bot), &Arc::new(config));
//! # memory::handshake(&mut client, &mut conn).assert_ok();
//!
//! // After the handshake (tokio-rustls: `stream.get_ref().1`), who is it?
//! match server::peer(&conn).path {
//!     server::AuthPath::Flag => { /* an authenticated bot */ }
//!     server::AuthPath::Normal => { /* a client of the config's own verifier */ }
//!     server::AuthPath::None => { /* anonymous: a person, or a bot without a certificate */ }
//! }
//! # assert_eq!(server::peer(&conn).path, server::AuthPath::Flag);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Client
//!
//! ```
//! # use std::sync::Arc;
//! # use integration_tests::{config, memory, Provider, TestPki};
//! # let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
//! # let pki = TestPki::shared();
//! # let bot_identity = config::certified_key(&pki.bot, Provider::AwsLcRs);
//! use rustls_req_client_auth::{client, ClientFlags};
//!
//! let mut config = rustls::ClientConfig::builder()
//!     .with_root_certificates(pki.server_ca.roots())
//!     .with_no_client_auth();
//! // The flag is sent because an identity is at hand (RCA-1); a CertificateRequest
//! // that acknowledges it is answered with that identity.
//! ClientFlags::request_client_auth(bot_identity).install(&mut config)?;
//! # let mut server = config::server(&pki, Provider::AwsLcRs);
//! # rustls_req_client_auth::ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, Provider::AwsLcRs, true)).install(&mut server)?;
//! # let (mut conn, mut s) = config::connect(&Arc::new(config), &Arc::new(server));
//! # memory::handshake(&mut conn, &mut s).assert_ok();
//!
//! // After the handshake:
//! let state = client::client_state(&conn).expect("ClientFlags is installed");
//! assert!(state.requested_client_auth());
//! assert_eq!(state.certificate_request(), Some(client::CertificateRequestCause::Flag));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Integration
//!
//! On top of the two policies, ready-made parts for the usual stacks (the
//! crate README shows each in full):
//!
//! - [`PeerIdentity`]: the client of a completed handshake as an owned value
//!   (path, chain, leaf names, RFC 8705 `x5t#S256` thumbprint, resumption,
//!   flags, version, ALPN); `serde` behind the feature of that name.
//! - [`OnePortConfig`]: a `ServerConfig` for people and bots from PEM files;
//!   [`FlagVerifier`] replaces the bot CA set at run time, and
//!   [`NormalPathTrust`] names the config's own CA set (partners) so tickets
//!   issued under a replaced set are not resumed.
//! - `Acceptor` (feature `tokio`): TLS accept with a handshake timeout,
//!   yielding the stream and the identity.
//! - `serve`, `shutdown_signal`, and the `PeerIdentity` / `Bot` extractors
//!   (feature `axum`): one port, HTTP/1.1 and HTTP/2 by ALPN, the identity in
//!   every request, limits and graceful shutdown.
//! - [`BotClient`]: a bot's identity and CAs from PEM files, a `ClientConfig`
//!   with the flag and ALPN set, a reqwest client (feature `reqwest`) or a
//!   hyper-rustls connector (feature `hyper-rustls`), and [`ClientOutcomes`]:
//!   per server name, whether the flag was acknowledged and which identity was
//!   sent, without access to the connection.
//! - [`find_tls_error`] and [`describe_tls_error`]: the TLS error inside any
//!   stack's error, in one line.
//!
//! Built against the rustls from crates.io instead of the fork, the build
//! stops in this crate's build script with a message naming the fix
//! (`[patch.crates-io]` and `cargo xtask fork export`).
//!
//! # Errors
//!
//! A peer that breaks a rule gets the alert the [`specification`] names, and the
//! connection fails with a [`rustls::Error::Other`] holding a [`FlagsError`]
//! that says what happened and which rule it broke:
//!
//! ```
//! # use rustls_req_client_auth::FlagsError;
//! # fn report(error: &rustls::Error) {
//! if let Some(flags) = FlagsError::from_rustls(error) {
//!     eprintln!("{flags} [{}, alert {:?}]", flags.rule(), flags.alert());
//! }
//! # }
//! ```
//!
//! # Choices this crate makes
//!
//! Where the drafts leave a choice open (marked **ours** in the [`specification`]):
//!
//! - **Code points** are configuration ([`CodePoints`]): extension 62 and flag
//!   80 by default, extension 0xFE01 for experimental deployments. A client and
//!   a server on different code points simply do not see each other's flags.
//! - **No empty extension** (TF-4): a side with no flag to send sends no
//!   `tls_flags` extension at all.
//! - **Resumption** (RCA-11): no CertificateRequest under a PSK (the fork asks
//!   for a verifier in full TLS 1.3 handshakes only). Tickets record which path
//!   authenticated the client, and a resumed connection reports that path; a
//!   ticket without that record (issued without this crate) is not used, so
//!   the handshake becomes a full one. Nor is a session, TLS 1.3 or 1.2,
//!   whose client certificate has expired (by the `ServerConfig`'s time
//!   provider): the full handshake verifies the certificate the client holds
//!   now, so a bot that renewed its certificate gets in at once. (A config
//!   whose own verifier accepts expired certificates on purpose loses
//!   resumption for those clients, not their access.)
//! - **TLS 1.2** (RCA-12): the flag has no effect; the client sends it (it
//!   cannot know the version in advance), the server ignores it, and a TLS 1.2
//!   ServerHello carrying `tls_flags` is refused (TF-5).
//! - **HelloRetryRequest and ECH** (RCA-13): the second ClientHello carries the
//!   same flags (a server refuses one that does not); under ECH the flags go in
//!   the inner ClientHello only unless [`ClientFlags::visible_outside_ech`].
//! - **Anonymous bots** (RCA-14): a flagged client that answers with an empty
//!   Certificate is served as anonymous, unless [`ServerFlags::require_certificate`]
//!   is set or the `ServerConfig`'s own verifier requires every client to
//!   authenticate: setting the flag never gets a client past that.
//! - **The bot identity** answers only a CertificateRequest that acknowledges
//!   the flag. Servers that ask without acknowledging (RCA-3) get the
//!   `ClientConfig`'s own resolver's answer, unless
//!   [`OtherRequests::FlagIdentityOn`] names the code points in use (a
//!   compatibility switch for 0xFE01 deployments that do not echo the flag).
//!   [`client::ClientFlagsState::sent_identity`] tells which identity went out.
//! - **A TLS 1.2 CertificateRequest** is answered by the `ClientConfig`'s own
//!   resolver ([`OtherRequests`] applies to TLS 1.3, where the fork has the
//!   hook), and `client_state` records no cause for it.
//! - **What a server acknowledges**: only `request_client_auth`, and only in the
//!   CertificateRequest, which is encrypted (TF-11). Other proposed flags are
//!   recorded ([`server::ServerFlagsState::client_flags`]) and ignored (TF-8).
//!
#![doc = include_str!("../CONFORMANCE.md")]

#[cfg(feature = "tokio")]
mod acceptor;
#[cfg(feature = "axum")]
mod activity;
mod auth_path;
mod bot;
#[cfg(feature = "axum")]
mod cancelled_requests;
pub mod client;
mod client_slots;
mod code_points;
mod config_error;
mod diagnostics;
mod distinguished_name;
mod error;
mod events;
#[cfg(feature = "axum")]
mod extract;
mod identity;
#[cfg(feature = "axum")]
mod log_budget;
mod message;
mod one_port;
pub mod pem;
#[cfg(feature = "axum")]
mod proxy_protocol;
mod refusal;
#[cfg(feature = "axum")]
mod refused_request;
mod request_cause;
mod rules;
#[cfg(feature = "axum")]
mod send_timeout;
#[cfg(feature = "axum")]
mod serve;
pub mod server;
#[cfg(feature = "axum")]
mod stalled_streams;
#[doc = include_str!("../SPECIFICATION.md")]
pub mod specification {}
mod thumbprint;
mod ticket;
mod verifier;

#[cfg(feature = "tokio")]
pub use acceptor::{AcceptError, Acceptor};
#[cfg(feature = "axum")]
pub use activity::{ConnectionActivity, InFlight, WhileOpen};
pub use bot::BotClient;
pub use client::{ClientFlags, ClientOutcomes, OtherRequests};
pub use client_slots::{ClientSlot, ClientSlots};
pub use code_points::CodePoints;
pub use config_error::ConfigError;
pub use diagnostics::{describe_tls_error, find_tls_error, variant_name};
pub use error::FlagsError;
pub use events::FlagsEvent;
#[cfg(feature = "axum")]
pub use extract::{Bot, MissingIdentity, NotABot};
pub use identity::{thumbprint_sha256, LeafCertificate, PeerIdentity};
#[cfg(feature = "axum")]
pub use log_budget::{AcceptFailures, LogBudget, Verdict as LogVerdict};
pub use one_port::{LiveConfig, OnePortConfig};
pub use refusal::RefusedCertificate;
#[cfg(feature = "axum")]
pub use refused_request::{RefusedRequest, RefusedRequestObserver};
pub use rustls_tls_flags::{Flag, FlagSet};
#[cfg(feature = "axum")]
pub use send_timeout::SendTimeout;
#[cfg(feature = "axum")]
pub use serve::{
    serve, shutdown_signal, ClientStream, HandshakeObserver, Http1Connection, Http1Front,
    Http1Outcome, Serve, Stopping, Upgraded,
};
pub use server::{AuthPath, FlagVerifier, NormalPathTrust, ServerFlags};
#[cfg(feature = "axum")]
pub use stalled_streams::{StalledStreams, Watched};

/// The ALPN protocols of HTTPS: HTTP/2, then HTTP/1.1. [`BotClient`],
/// [`OnePortConfig`] and `serve` (for a config without any) set these.
pub const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// [`HTTP_ALPN`] as a config's `alpn_protocols` wants it.
pub fn http_alpn() -> Vec<Vec<u8>> {
    HTTP_ALPN.iter().map(|protocol| protocol.to_vec()).collect()
}
