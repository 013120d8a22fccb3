//! A bot: sets the `request_client_auth` TLS flag, answers the server's
//! acknowledging CertificateRequest with its certificate, sends one HTTPS
//! request (HTTP/2 or HTTP/1.1 by ALPN) with reqwest, and prints the response
//! and what the server did with the flag.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --features axum --example server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem &
//! cargo run -p rustls-req-client-auth --features reqwest --example client -- \
//!     --ca target/demo-pki/server-ca.pem \
//!     --cert target/demo-pki/bot.pem --key target/demo-pki/bot.key https://localhost:8443/api/crawl
//! ```
//!
//! With `--cert target/demo-pki/normal.pem --key target/demo-pki/normal.key`
//! (a certificate from a CA the server does not trust for bots) the server
//! refuses the connection; the outcome line says so.

use std::path::PathBuf;

use clap::Parser;
use rustls_req_client_auth::BotClient;

/// Sends one HTTPS request as a bot that sets `request_client_auth`.
#[derive(Parser)]
struct Args {
    /// The URL to GET.
    #[arg(default_value = "https://localhost:8443/")]
    url: reqwest::Url,
    /// The CA certificate(s) the server's certificate must chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The bot's certificate chain (PEM, end entity first).
    #[arg(long)]
    cert: PathBuf,
    /// The bot's private key (PEM).
    #[arg(long)]
    key: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // glue: start (counted in the README)
    let bot = BotClient::from_pem_files(&args.cert, &args.key)?.trust_pem_file(&args.ca)?;
    let host = args.url.host_str().unwrap_or_default().to_owned();
    let result = bot.reqwest_client()?.get(args.url).send().await;
    if let Some(outcome) = bot.outcomes().get(&host) {
        println!("TLS Flags: {outcome}");
    }
    let response = result.map_err(|e| anyhow::anyhow!(bot.describe_failure(&host, &e)))?;
    let (version, status) = (response.version(), response.status());
    println!("{version:?} {status}\n{}", response.text().await?);
    // glue: end
    Ok(())
}
