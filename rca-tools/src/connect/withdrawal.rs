//! A proxy credential taken away mid-use (`--proxy-auth-file`, read again
//! on SIGHUP). A tunnel's next request is refused where it is admitted;
//! what is already under way when the credential goes (a response or
//! upload still streaming, server-sent events, a WebSocket) carries no
//! further request that could be refused, so it is watched here and cut
//! off when the credential goes: otherwise it would speak as the bot for
//! as long as its client liked.
//!
//! A removal counts even if a later reload puts the same line back before
//! anything under way looked (a stalled upload is looked at only when it
//! moves again): each reload has a generation, and what was admitted
//! remembers the one it was admitted under ([`Admitted`]), so it ends if
//! any reload since removed its credential ([`Admissions`]).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use crate::connect::proxy_auth::{Credential, ProxyCredentials};

/// The credentials a client of the proxy port must give, as the last
/// reload left them, and what reloads have removed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Admissions {
    credentials: Option<Arc<ProxyCredentials>>,
    /// How many times the credentials were set, the start included.
    generation: u64,
    /// Each credential a reload removed, with the last generation that
    /// removed it: one entry per line ever removed, kept for the process's
    /// life (32 bytes and a number each; what was admitted before a removal
    /// may live as long as a WebSocket does).
    removed: Arc<HashMap<Credential, u64>>,
}

/// A credential a request or tunnel was admitted with, and under which
/// generation of [`Admissions`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admitted {
    pub(crate) credential: Credential,
    generation: u64,
}

impl Admissions {
    /// The credentials required now (`None`: none).
    pub(crate) fn credentials(&self) -> Option<&Arc<ProxyCredentials>> {
        self.credentials.as_ref()
    }

    /// `credential`, checked against these admissions, as admitted now.
    pub(crate) fn admit(&self, credential: Credential) -> Admitted {
        Admitted {
            credential,
            generation: self.generation,
        }
    }

    /// The next generation: `credentials` required, and every credential
    /// of the last that they lack recorded as removed.
    pub(crate) fn replace(&mut self, credentials: Option<Arc<ProxyCredentials>>) {
        self.generation += 1;
        if let Some(before) = &self.credentials {
            let gone: Vec<Credential> = before
                .iter()
                .filter(|credential| {
                    !credentials
                        .as_ref()
                        .is_some_and(|now| now.holds(*credential))
                })
                .collect();
            if !gone.is_empty() {
                let removed = Arc::make_mut(&mut self.removed);
                for credential in gone {
                    removed.insert(credential, self.generation);
                }
            }
        }
        self.credentials = credentials;
    }

    /// The file that no longer admits `admitted`: one a reload since its
    /// admission removed it from (even if a later one put it back), or
    /// that lacks it now; `None` while it holds.
    pub(crate) fn withdraws(&self, admitted: Admitted) -> Option<&Path> {
        let credentials = self.credentials.as_ref()?;
        let removed_since = self
            .removed
            .get(&admitted.credential)
            .is_some_and(|&generation| generation > admitted.generation);
        (removed_since || !credentials.holds(admitted.credential)).then(|| credentials.path())
    }
}

/// Resolves, with the file's path, once `admissions` withdraws `admitted`
/// (see [`Admissions::withdraws`]); never when there is nothing admitted
/// (no `--proxy-auth-file`, or a route's request).
pub(crate) type Withdrawal = Pin<Box<dyn Future<Output = PathBuf> + Send + Sync>>;

/// See [`Withdrawal`].
pub(crate) fn withdrawal(
    mut admissions: watch::Receiver<Admissions>,
    admitted: Option<Admitted>,
) -> Withdrawal {
    Box::pin(async move {
        if let Some(admitted) = admitted {
            loop {
                let withdrawn = admissions
                    .borrow_and_update()
                    .withdraws(admitted)
                    .map(Path::to_owned);
                if let Some(path) = withdrawn {
                    return path;
                }
                if admissions.changed().await.is_err() {
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
