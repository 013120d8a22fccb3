//! `rca-probe`'s command line, here rather than in the binary so the man
//! page and the shell completions are made from the same definitions.

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Parser;
use rustls_req_client_auth::CodePoints;

use crate::common::roots::RootSource;

/// Connects to a server with and without the request_client_auth TLS flag, on
/// each code point, and reports what it does: CertificateRequests (and so
/// certificate pickers for browsers), acknowledgements, the CAs and signature
/// schemes it asks for, whether an identity is accepted, resumption, and any
/// rule it breaks. Exit codes: 0 honours the flag, 1 does not support it,
/// 3 misbehaves, 4 could not connect, 5 refused the identity given with
/// --cert/--key, 2 usage error.
#[derive(Parser, Debug)]
#[command(name = "rca-probe", version)]
pub struct Args {
    /// The server: https://host, with an optional :port and /path.
    pub url: String,
    /// A bot certificate chain (PEM) to present when asked.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The bot's private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Which roots verify the server: mozilla (compiled in), system, or none
    /// (only --ca). Default: mozilla, or none when --ca is given, so --ca
    /// alone pins the server (the bot identity goes to no other).
    #[arg(long, value_enum)]
    pub roots: Option<RootSource>,
    /// CA certificates to verify the server with, PEM (a private CA).
    /// Repeatable.
    #[arg(long = "ca", conflicts_with = "insecure_skip_server_verification")]
    pub cas: Vec<PathBuf>,
    /// Accept any server certificate. For diagnostics only: the answers then
    /// come from whoever is on the path.
    #[arg(long)]
    pub insecure_skip_server_verification: bool,
    /// Only this tls_flags code point: 62, or 65025 / 0xfe01.
    #[arg(long, value_parser = parse_code_point)]
    pub code_point: Option<u16>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds each connection may take, from TCP connect to the first
    /// answer. A server that takes connections and never answers costs one
    /// such wait; one that never answers flagged ClientHellos, one per
    /// flagged connection.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=300))]
    pub timeout_secs: u64,
}

/// `--code-point`'s value: 62, or 65025 written in decimal or hex.
///
/// # Errors
///
/// Not a number, or not a TLS Flags code point.
pub fn parse_code_point(text: &str) -> Result<u16, String> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|_| format!("{text:?} is not a number"))?;
    let known = [
        CodePoints::DEFAULT.extension_type,
        CodePoints::experimental().extension_type,
    ];
    if known.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not a TLS Flags code point (62 or 0xfe01)"
        ))
    }
}
