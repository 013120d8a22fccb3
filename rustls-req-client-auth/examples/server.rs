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

use clap::Parser;
use rustls_req_client_auth::{serve, shutdown_signal, OnePortConfig};

/// The one-port HTTPS server: a certificate is requested only from clients
/// that set `request_client_auth`.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    files: common::server_files::ServerFiles,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::init();
    let files = Args::parse().files;
    // glue: start (counted in the README)
    let config = OnePortConfig::from_pem_files(&files.cert, &files.key, &files.bot_ca)?.build()?;
    let listener = tokio::net::TcpListener::bind(files.listen).await?;
    println!("listening on https://{}; Ctrl-C to stop", files.listen);
    serve(listener, config, common::app::app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // glue: end
    Ok(())
}
