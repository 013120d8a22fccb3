//! Shared support for real-handshake tests: crypto providers, a PKI made with
//! rcgen, and an in-memory driver that runs a client and a server connection
//! against each other and reports what each side saw.
//!
//! Nothing here mocks TLS: every test drives the (patched) rustls state machines
//! through real handshakes.

// Test support: setup failures (a bad certificate, an unsupported provider) are
// bugs in the test and panic with a message, by design.
#![allow(clippy::missing_panics_doc)]

pub mod config;
pub mod local;
pub mod malformed;
pub mod memory;
pub mod pki;
pub mod provider;
pub mod scripted;
pub mod tamper;

pub use memory::{Outcome, Side};
pub use pki::TestPki;
pub use provider::{each_provider_async, Provider};
