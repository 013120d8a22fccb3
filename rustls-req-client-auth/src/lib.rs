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
//! # let pki = TestPki::new();
//! use rustls::server::WebPkiClientVerifier;
//! use rustls_req_client_auth::{server, ServerFlags};
//!
//! // People (and partners) are served as before ...
//! let mut config = rustls::ServerConfig::builder()
//!     .with_no_client_auth()
//!     .with_single_cert(pki.server.chain.clone(), pki.server.key())?;
//! // ... and bots that set the flag are asked for a certificate from the bot CA.
//! let bots = WebPkiClientVerifier::builder(Arc::new(pki.bot_ca.roots())).build()?;
//! ServerFlags::request_client_auth(bots).install(&mut config);
//! # let mut bot = config::client(&pki, Provider::AwsLcRs);
//! # rustls_req_client_auth::ClientFlags::request_client_auth(config::certified_key(&pki.bot, Provider::AwsLcRs)).install(&mut bot);
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
//! # let pki = TestPki::new();
//! # let bot_identity = config::certified_key(&pki.bot, Provider::AwsLcRs);
//! use rustls_req_client_auth::{client, ClientFlags};
//!
//! let mut config = rustls::ClientConfig::builder()
//!     .with_root_certificates(pki.server_ca.roots())
//!     .with_no_client_auth();
//! // The flag is sent because an identity is at hand (RCA-1); a CertificateRequest
//! // that acknowledges it is answered with that identity.
//! ClientFlags::request_client_auth(bot_identity).install(&mut config);
//! # let mut server = config::server(&pki, Provider::AwsLcRs);
//! # rustls_req_client_auth::ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, Provider::AwsLcRs, true)).install(&mut server);
//! # let (mut conn, mut s) = config::connect(&Arc::new(config), &Arc::new(server));
//! # memory::handshake(&mut conn, &mut s).assert_ok();
//!
//! // After the handshake:
//! let state = client::client_state(&conn).expect("ClientFlags is installed");
//! assert!(state.requested_client_auth());
//! assert_eq!(state.certificate_request(), Some(client::CertificateRequestCause::Flag));
//! ```
//!
//! # Errors
//!
//! A peer that breaks a rule gets the alert REQUIREMENTS.md names, and the
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
#![doc = include_str!("../CONFORMANCE.md")]

pub mod client;
mod code_points;
mod error;
mod message;
mod rules;
pub mod server;
mod ticket;
mod verifier;

pub use client::{ClientFlags, OtherRequests};
pub use code_points::CodePoints;
pub use error::FlagsError;
pub use rustls_tls_flags::{Flag, FlagSet};
pub use server::ServerFlags;
