//! The command line both server examples take: the PEM files and the address.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the server's identity and the bot CA are, and where it listens.
#[derive(clap::Args, Clone)]
pub(crate) struct ServerFiles {
    /// The server's certificate chain (PEM, end entity first).
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// The server's private key (PEM).
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// The CA certificate(s) that bots' certificates must chain to (PEM).
    #[arg(long)]
    pub(crate) bot_ca: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub(crate) listen: SocketAddr,
}

impl ServerFiles {
    /// The one-port config of these files, read now (again on a reload).
    pub(crate) fn load(
        &self,
    ) -> Result<rustls_req_client_auth::OnePortConfig, rustls_req_client_auth::pem::PemError> {
        rustls_req_client_auth::OnePortConfig::from_pem_files(&self.cert, &self.key, &self.bot_ca)
    }
}
