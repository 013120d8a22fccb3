//! `rca-proxy`'s command line, here rather than in the binary so the man
//! page and the shell completions are made from the same definitions.

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A TLS-terminating reverse proxy: clients that set the request_client_auth
/// TLS flag are asked for a certificate and verified against the bot CA set;
/// everyone else gets no CertificateRequest. The verified identity goes to
/// the upstream in headers clients cannot forge. SIGHUP reloads the
/// certificate, key, bot CA, bot CRLs and deny list, partner CA and ticket
/// keys (and reopens the access log file); SIGUSR1 reopens the access log
/// file (for logrotate); SIGTERM or Ctrl-C stops it gracefully.
#[derive(Parser, Debug, Clone)]
#[command(name = "rca-proxy", version)]
pub struct Args {
    /// `demo`, or nothing to run the proxy.
    #[command(subcommand)]
    pub command: Option<Subcommand>,
    /// The configuration file (TOML). Flags given too override its values.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Validate the configuration (and the files it names), then exit.
    #[arg(long)]
    pub check_config: bool,
    /// Where to listen for HTTPS (config: listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The server's certificate chain, PEM (config: tls.cert).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The server's private key, PEM (config: tls.key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The CA certificates bots must chain to, PEM (config: tls.bot_ca).
    #[arg(long)]
    pub bot_ca: Option<PathBuf>,
    /// The upstream, http://host:port (config: upstream.url).
    #[arg(long)]
    pub upstream: Option<String>,
    /// A path prefix only verified bots may reach; repeatable (config: policy.bots_only).
    #[arg(long = "bots-only")]
    pub bots_only: Vec<String>,
}

/// What else `rca-proxy` does.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Subcommand {
    /// Run the proxy with a fresh PKI in a temporary directory and a built-in
    /// upstream, and show what a browser, a header-forging browser and three
    /// kinds of bots get. Exits with 1 if any is treated otherwise.
    Demo,
}
