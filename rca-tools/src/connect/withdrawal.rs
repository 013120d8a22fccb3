//! A proxy credential taken away mid-use (`--proxy-auth-file`, read again
//! on SIGHUP). A tunnel's next request is refused where it is admitted;
//! what is already under way when the credential goes (a response or
//! upload still streaming, server-sent events, a WebSocket) carries no
//! further request that could be refused, so it is watched here and cut
//! off when the credential goes: otherwise it would speak as the bot for
//! as long as its client liked.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use crate::connect::proxy_auth::{Credential, ProxyCredentials};
use crate::connect::relay::RelayBody;

/// Resolves, with the file's path, once a reload removes a credential.
pub(crate) type Withdrawal = Pin<Box<dyn Future<Output = PathBuf> + Send + Sync>>;

/// Resolves, with the file's path, once the credentials `reloads` carries
/// no longer hold `credential`; never when there is none (no
/// `--proxy-auth-file`, or a route's request).
pub(crate) fn withdrawal(
    mut reloads: watch::Receiver<Option<Arc<ProxyCredentials>>>,
    credential: Option<Credential>,
) -> Withdrawal {
    Box::pin(async move {
        if let Some(credential) = credential {
            loop {
                let withdrawn = reloads
                    .borrow_and_update()
                    .as_ref()
                    .filter(|credentials| !credentials.holds(credential))
                    .map(|credentials| credentials.path().to_owned());
                if let Some(path) = withdrawn {
                    return path;
                }
                if reloads.changed().await.is_err() {
                    break;
                }
            }
        }
        std::future::pending().await
    })
}

/// A response body that ends in an error once its credential is withdrawn:
/// hyper then resets the HTTP/2 stream, or closes the HTTP/1.1 connection,
/// and the request to the server is dropped with it.
pub(crate) struct UntilWithdrawn {
    body: RelayBody,
    /// `None` once it resolved: the body is over.
    withdrawn: Option<Withdrawal>,
    /// Told the file's path when the body is cut off (a log line).
    on_cut: fn(&Path),
}

impl UntilWithdrawn {
    pub(crate) fn new(body: RelayBody, withdrawn: Withdrawal, on_cut: fn(&Path)) -> Self {
        Self {
            body,
            withdrawn: Some(withdrawn),
            on_cut,
        }
    }
}

impl Body for UntilWithdrawn {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let Some(withdrawn) = self.withdrawn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(path) = withdrawn.as_mut().poll(context) {
            self.withdrawn = None;
            (self.on_cut)(&path);
            return Poll::Ready(Some(Err(std::io::Error::other(
                "the proxy credentials this request was admitted with were removed",
            ))));
        }
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.withdrawn.is_none() || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl std::fmt::Debug for UntilWithdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntilWithdrawn").finish_non_exhaustive()
    }
}
