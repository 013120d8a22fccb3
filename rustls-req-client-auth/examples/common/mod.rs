//! Code shared by the examples: the PKI generator and the application that
//! the `server` example and the demo serve, so the demo shows exactly what
//! the server example does.

// Each example uses a part of this module.
#![allow(dead_code)]

#[cfg(feature = "axum")]
pub(crate) mod app;
pub(crate) mod pki;
pub(crate) mod server_files;
