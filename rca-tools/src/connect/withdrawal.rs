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

/// A body that ends in an error once its credential is withdrawn. A
/// response's: hyper then resets the client's HTTP/2 stream, or closes its
/// HTTP/1.1 connection, and the exchange with the server is dropped with
/// it. A request's: the upload to the server stops there, also when the
/// server answered before it ended, or the client stopped reading the
/// answer (hyper polls a response body only as it can write it).
pub(crate) struct UntilWithdrawn<B> {
    body: B,
    /// `None` once it resolved: the body is over.
    withdrawn: Option<Withdrawal>,
    /// Told the file's path when the body is cut off (a log line).
    on_cut: fn(&Path),
}

impl<B> UntilWithdrawn<B> {
    pub(crate) fn new(body: B, withdrawn: Withdrawal, on_cut: fn(&Path)) -> Self {
        Self {
            body,
            withdrawn: Some(withdrawn),
            on_cut,
        }
    }
}

impl<B> Body for UntilWithdrawn<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let Some(withdrawn) = self.withdrawn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(path) = withdrawn.as_mut().poll(context) {
            self.withdrawn = None;
            (self.on_cut)(&path);
            return Poll::Ready(Some(Err(
                "the proxy credentials this request was admitted with were removed".into(),
            )));
        }
        Pin::new(&mut self.body)
            .poll_frame(context)
            .map(|frame| frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.withdrawn.is_none() || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> std::fmt::Debug for UntilWithdrawn<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntilWithdrawn").finish_non_exhaustive()
    }
}
