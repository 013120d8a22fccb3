//! The client's side of a request, after the handshake: reading it.

pub mod http1;
mod http1_wire;
pub(crate) mod target;
