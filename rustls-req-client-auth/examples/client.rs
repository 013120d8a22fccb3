//! A bot: sets the `request_client_auth` TLS flag, answers the server's
//! acknowledging CertificateRequest with its certificate, sends one HTTPS
//! request (HTTP/2 or HTTP/1.1 by ALPN), and prints the response and what TLS
//! Flags did. Without `--cert`/`--key` it is a plain client that sets no flag,
//! like a browser.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --example server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem &
//! cargo run -p rustls-req-client-auth --example client -- \
//!     --ca target/demo-pki/server-ca.pem \
//!     --cert target/demo-pki/bot.pem --key target/demo-pki/bot.key https://localhost:8443/
//! ```
//!
//! With `--cert target/demo-pki/normal.pem --key target/demo-pki/normal.key`
//! (a certificate from a CA the server does not trust for bots) the server
//! refuses the connection with an alert (RCA-10).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::Parser;
use hyper::Uri;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls_req_client_auth::ClientFlags;

/// Sends one HTTPS request as a bot that sets `request_client_auth`.
#[derive(Parser)]
struct Args {
    /// The URL to GET, `https://host[:port]/path`.
    #[arg(default_value = "https://localhost:8443/")]
    url: Uri,
    /// The CA certificate(s) the server's certificate must chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The bot's certificate chain (PEM, end entity first). Without it, no flag.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The bot's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
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
    if args.url.scheme_str() != Some("https") {
        return Err(anyhow!("{} is not an https:// URL", args.url));
    }
    let host = args
        .url
        .host()
        .with_context(|| format!("{} has no host", args.url))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = args.url.port_u16().unwrap_or(443);
    let server_name = ServerName::try_from(host.clone())
        .with_context(|| format!("{host} is not a valid server name"))?;

    let provider = common::crypto_provider();
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let identity = CertifiedKey::from_der(
                common::load_certificates(cert)?,
                common::load_private_key(key)?,
                &provider,
            )
            .with_context(|| {
                format!(
                    "{} and {} do not make a usable identity",
                    cert.display(),
                    key.display()
                )
            })?;
            Some(ClientFlags::request_client_auth(Arc::new(identity)))
        }
        _ => None,
    };
    let config = common::client::config(provider, common::load_roots(&args.ca)?, identity)?;

    let exchange = common::client::get(config, (host.as_str(), port), server_name, &args.url)
        .await
        .with_context(|| format!("cannot reach {}", args.url))?;
    println!("TLS: {}", exchange.tls);
    match exchange.answer {
        Ok(answer) => {
            println!("{:?} {}", answer.version, answer.status);
            print!("{}", answer.body);
            Ok(())
        }
        Err(error) => match common::tls_error(&error) {
            Some(tls) => Err(anyhow!(
                "the server ended the connection: {}",
                common::describe_tls_error(tls)
            )),
            None => Err(error),
        },
    }
}
