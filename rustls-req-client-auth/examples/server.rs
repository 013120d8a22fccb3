//! A flag-enabled HTTPS server: people and bots on one port.
//!
//! Clients that set `request_client_auth` get a CertificateRequest that
//! acknowledges the flag and are verified against `--bot-ca`; everyone else
//! (browsers) gets no CertificateRequest at all. Each response says who the
//! client is. HTTP/2 and HTTP/1.1, by ALPN. Ctrl-C stops it gracefully.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --example server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem
//! ```
//!
//! then, in another terminal, a bot (see the `client` example) or a plain client:
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example client -- \
//!     --ca target/demo-pki/server-ca.pem \
//!     --cert target/demo-pki/bot.pem --key target/demo-pki/bot.key https://localhost:8443/
//! curl --cacert target/demo-pki/server-ca.pem https://localhost:8443/
//! ```

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A flag-enabled HTTPS server: requests a certificate only from clients that
/// set `request_client_auth`, and answers each request with who the client is.
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
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = common::server::config(
        common::crypto_provider(),
        common::load_certificates(&args.cert)?,
        common::load_private_key(&args.key)?,
        common::load_roots(&args.bot_ca)?,
    )?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "listening on https://{} ({}); Ctrl-C to stop",
        listener.local_addr()?,
        common::PROVIDER_NAME
    );

    let (events, mut log) = mpsc::unbounded_channel();
    let logger = tokio::spawn(async move {
        while let Some(event) = log.recv().await {
            println!("{event}");
        }
    });
    let shutdown = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("cannot wait for Ctrl-C ({error}); stopping");
        }
        println!("shutting down");
    };
    common::server::serve(listener, config, events, shutdown).await;
    // Print what is left to print; connections still in their handshake are
    // cut off when the runtime stops.
    let _ = tokio::time::timeout(Duration::from_secs(1), logger).await;
    Ok(())
}
