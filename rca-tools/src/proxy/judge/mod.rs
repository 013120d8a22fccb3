//! What the proxy decides about a request: whether its path is open to the
//! client's authentication path, whether its bot was revoked since it
//! connected, and which identity headers the upstream gets in place of
//! anything the client sent.

pub mod identity;
mod leaf_values;
pub mod policy;
pub mod revoked;
