//! A switched connection (a WebSocket) between the client and the
//! upstream: bytes copied both ways until either side closes, the client
//! may no longer use it, or the upstream has sent nothing for
//! `upstream.read_timeout_secs`.
//!
//! The last, as nginx's `proxy_read_timeout` does for its tunnels: an idle
//! tunnel holds an upstream connection and its client's share of them
//! ([`crate::proxy::back::slots`]) for nothing, and without it a few
//! addresses could hold every upstream connection for as long as they liked
//! with tunnels they never used (found by an outside attack). WebSocket
//! servers that ping (most do, every 20 to 30 s) keep theirs open.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::common::tunnel_copy::{copy_both_ways, Copied};

/// What ends a tunnel before either side closes it, put in the upgrade
/// request's extensions: it makes, when the tunnel opens, a future that
/// resolves once the client may no longer use it (its certificate revoked,
/// denied or expired since, see [`crate::proxy::judge::revoked`]). A tunnel
/// carries no requests to be refused, so this is its only check.
#[derive(Clone)]
pub struct TunnelEnds(Arc<dyn Fn() -> TunnelEnd + Send + Sync>);

/// The future a [`TunnelEnds`] makes.
pub type TunnelEnd = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl TunnelEnds {
    /// Ends tunnels when the future `watch` makes resolves.
    pub fn new(watch: impl Fn() -> TunnelEnd + Send + Sync + 'static) -> Self {
        Self(Arc::new(watch))
    }

    /// The future for a tunnel that opens now.
    pub(crate) fn watch(&self) -> TunnelEnd {
        (self.0)()
    }
}

impl std::fmt::Debug for TunnelEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelEnds")
    }
}

/// Copies bytes both ways between the client's upgraded connection and the
/// upstream's switched one (after what the upstream sent with its 101)
/// until either side closes, `ends` says the client may no longer use it,
/// or the upstream sends nothing for `read_timeout`; then both connections
/// are closed.
pub(crate) async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    (upstream, early): (TcpStream, Bytes),
    ends: Option<TunnelEnds>,
    read_timeout: Duration,
) {
    let mut client = match client.await {
        Ok(client) => TokioIo::new(client),
        Err(error) => {
            log::debug!("upgrade failed: {error}");
            return;
        }
    };
    if let Err(error) = client.write_all(&early).await {
        log::debug!("upgraded connection ended: {error}");
        return;
    }
    let ended = async {
        match ends {
            Some(ends) => ends.watch().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        copied = copy_both_ways(&mut client, upstream, read_timeout) => match copied {
            Copied::Closed(Err(error)) => log::debug!("upgraded connection ended: {error}"),
            Copied::Closed(Ok(_)) => {}
            Copied::ServerSilent => {
                log::debug!("closed a tunnel: the upstream sent nothing for {read_timeout:?}");
            }
        },
        () = ended => {}
    }
}
