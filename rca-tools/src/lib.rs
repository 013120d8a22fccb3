//! `rca-proxy`: a TLS-terminating reverse proxy that serves people and bots on
//! one port. Clients that set the `request_client_auth` TLS flag are asked for
//! a certificate and verified against the bot CA set; everyone else gets no
//! CertificateRequest. The verified identity goes to the upstream in request
//! headers that no client can forge.
//!
//! The binary is `src/bin/rca-proxy.rs`; this library holds its parts so
//! tests can drive them.

pub mod access_log;
pub mod client_body;
mod client_wire;
pub mod config;
pub mod demo;
pub mod forward;
pub mod headers;
pub mod http1_front;
mod leaf_values;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod probe;
pub mod proxy;
mod request_target;
pub mod sessions;
pub mod tickets;
pub mod tls;
pub mod upstream_wire;
