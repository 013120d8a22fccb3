//! The one-port server as it runs in production: logs on (`RUST_LOG`,
//! default `info`: who was not authenticated and why), and SIGHUP reads the
//! certificate, key and bot CA files again and swaps them in (new handshakes
//! get them; established connections keep theirs; nothing changes if a file
//! is unusable, and the log says why). SIGTERM or Ctrl-C stops it gracefully.
//!
//! ```sh
//! cargo run -p rustls-req-client-auth --example pki -- target/demo-pki
//! cargo run -p rustls-req-client-auth --features axum --example production_server -- \
//!     --cert target/demo-pki/server.pem --key target/demo-pki/server.key \
//!     --bot-ca target/demo-pki/bot-ca.pem &
//! # renew the files, then:
//! kill -HUP %1
//! ```

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use rustls_req_client_auth::{serve, shutdown_signal, LiveConfig, OnePortConfig};

/// The one-port HTTPS server, reloading its files on SIGHUP.
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let load = || OnePortConfig::from_pem_files(&args.cert, &args.key, &args.bot_ca);
    let (config, live) = load()?.build_live()?;
    tokio::spawn(reload_on_sighup(live, {
        let (cert, key, bot_ca) = (args.cert.clone(), args.key.clone(), args.bot_ca.clone());
        move || OnePortConfig::from_pem_files(&cert, &key, &bot_ca)
    }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    log::info!("listening on https://{}", args.listen);
    serve(listener, config, common::app::app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Swaps in what `load` reads, on every SIGHUP.
async fn reload_on_sighup(
    live: LiveConfig,
    load: impl Fn() -> Result<OnePortConfig, rustls_req_client_auth::pem::PemError>,
) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    while hangups.recv().await.is_some() {
        match load()
            .map_err(anyhow::Error::from)
            .and_then(|files| live.replace(&files).map_err(anyhow::Error::from))
        {
            Ok(()) => log::info!("SIGHUP: certificate, key and bot CA reloaded"),
            Err(error) => log::warn!("SIGHUP: nothing reloaded: {error}"),
        }
    }
    Ok(())
}
