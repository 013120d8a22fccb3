//! What more than one tool uses.

pub mod admin;
pub mod fields;
pub mod json_lines;
pub mod process;
