//! Writes a throw-away PKI as PEM files, for trying the `server` and `client`
//! examples by hand.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --features axum --example server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem
//! cargo run -p rustls-req-client-auth --features reqwest --example client -- \
//!     --ca target/demo-pki/server-ca.pem \
//!     --cert target/demo-pki/bot.pem --key target/demo-pki/bot.key https://localhost:8443/
//! ```
//!
//! The directory gets `server-ca.pem` (clients trust it), `server.pem` and
//! `server.key` (for `localhost` and `127.0.0.1`), `bot-ca.pem` (the flag
//! path's trust anchor), `bot.pem` and `bot.key` (a bot certificate from it),
//! and `normal-ca.pem`, `normal.pem`, `normal.key`: a client certificate from
//! another CA, which the server refuses on the flag path (RCA-10). Existing
//! files of those names are overwritten.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes a CA for the server, one for bots, one for other clients, and a
/// certificate from each, as PEM files.
#[derive(Parser)]
struct Args {
    /// The directory to write into (created if missing).
    dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let written = common::pki::Pki::generate().write(&args.dir);
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
