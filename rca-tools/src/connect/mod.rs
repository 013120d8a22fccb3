//! `rca-connect`: see the crate README.
