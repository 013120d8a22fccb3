//! What more than one tool uses.

pub mod admin;
pub mod bounded_log;
pub mod client_body;
pub mod errors;
pub mod fields;
pub mod json_lines;
pub mod key_file;
pub mod own_address;
pub mod permits;
pub mod printable;
pub mod process;
pub mod read_timeout;
pub mod roots;
pub mod timestamp;
pub mod tunnel_copy;
pub mod websocket;
