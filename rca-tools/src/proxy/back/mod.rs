//! The upstream's side of a request: the rewrite for it, the pooled
//! connections, and its HTTP/1.1 wire format.

pub mod forward;
pub mod pool;
pub mod slots;
pub mod tunnel;
pub mod wire;
