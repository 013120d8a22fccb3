//! The one-port HTTPS server: people and bots on the same port.
//!
//! Clients that set `request_client_auth` get a CertificateRequest that
//! acknowledges the flag and are verified against `--bot-ca`; everyone else
//! (browsers, CORS preflights) gets no CertificateRequest at all. HTTP/2 and
//! HTTP/1.1 by ALPN; Ctrl-C or SIGTERM stops it gracefully. `RUST_LOG=debug` logs every
//! flag decision, including why a bot was not authenticated.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --features axum --example server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem
//! ```
//!
//! then, in another terminal, a bot (the `client` example) or a browser-like
//! client:
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --features reqwest --example client -- \
//!     --ca target/demo-pki/server-ca.pem \
//!     --cert target/demo-pki/bot.pem --key target/demo-pki/bot.key https://localhost:8443/api/crawl
//! curl --cacert target/demo-pki/server-ca.pem https://localhost:8443/
//! ```

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use rustls_req_client_auth::{serve, shutdown_signal, OnePortConfig};

/// The one-port HTTPS server: a certificate is requested only from clients
/// that set `request_client_auth`.
#[derive(Parser)]
struct Args {
    /// The server's certificate chain (PEM, end entity first).
    #[arg(long)]
    cert: PathBuf,
    /// The server's private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The CA certificate(s) that bots' certificates must chain to (PEM).
    #[arg(long)]
    bot_ca: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::init();
    let args = Args::parse();
    // glue: start (counted in the README)
    let config = OnePortConfig::from_pem_files(&args.cert, &args.key, &args.bot_ca)?.build()?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on https://{}; Ctrl-C to stop", args.listen);
    serve(listener, config, common::app::app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // glue: end
    Ok(())
}
