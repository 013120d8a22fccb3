//! `rca-proxy`. A request travels through the folders in this order:
//!
//! 1. [`tls`]: the handshake, which asks a client that set the flag for a
//!    certificate and verifies it against the bot CA set;
//! 2. [`front`]: the client's HTTP (its own HTTP/1.1 path, or hyper's), the
//!    request target made canonical, the body read with its limits;
//! 3. [`judge`]: the path policy and the identity headers, decided on exactly
//!    what will be forwarded;
//! 4. [`back`]: the request rewritten for the upstream and sent on a pooled
//!    connection; the response streamed back.
//!
//! [`service`] runs a request through 2–4; [`config`], [`access_log`] and
//! [`metrics`] serve all of them.

pub mod access_log;
pub mod back;
pub mod cli;
pub mod config;
pub mod demo;
pub mod front;
pub mod judge;
pub mod metrics;
pub mod service;
pub mod tls;
