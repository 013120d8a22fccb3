//! The tools around `rustls-req-client-auth`, one folder each:
//!
//! - [`proxy`]: `rca-proxy`, a TLS-terminating reverse proxy that serves
//!   people and bots on one port. Clients that set the `request_client_auth`
//!   TLS flag are asked for a certificate and verified against the bot CA
//!   set; everyone else gets no CertificateRequest. The verified identity
//!   goes to the upstream in request headers that no client can forge.
//! - [`connect`]: `rca-connect`, the bot's side: a local forward proxy that
//!   gives any HTTP client the flag, the certificate answer and server
//!   verification.
//! - [`probe`]: `rca-probe`, which checks whether a server honours the flag.
//! - [`common`]: what more than one of them uses.
//!
//! The binaries are in `src/bin/`; this library holds their parts so tests
//! can drive them.

pub mod common;
pub mod connect;
pub mod probe;
pub mod proxy;
