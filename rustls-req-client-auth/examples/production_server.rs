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

use clap::Parser;
use common::server_files::ServerFiles;
use rustls_req_client_auth::{serve, shutdown_signal, LiveConfig};

/// The one-port HTTPS server, reloading its files on SIGHUP.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    files: ServerFiles,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let files = Args::parse().files;
    let (config, live) = files.load()?.build_live()?;
    tokio::spawn(reload_on_sighup(live, files.clone()));
    let listener = tokio::net::TcpListener::bind(files.listen).await?;
    log::info!("listening on https://{}", files.listen);
    serve(listener, config, common::app::app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Swaps in what `files` hold, on every SIGHUP.
async fn reload_on_sighup(live: LiveConfig, files: ServerFiles) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    while hangups.recv().await.is_some() {
        match files
            .load()
            .map_err(anyhow::Error::from)
            .and_then(|config| live.replace(&config).map_err(anyhow::Error::from))
        {
            Ok(()) => log::info!("SIGHUP: certificate, key and bot CA reloaded"),
            Err(error) => log::warn!("SIGHUP: nothing reloaded: {error}"),
        }
    }
    Ok(())
}
