//! How long a client's HTTP/2 connection may go without a request. hyper
//! bounds the wait between HTTP/1.1 requests by the header-read timeout,
//! but HTTP/2 has no request head to time: without this, a tunnel with no
//! stream open would keep its slot (`--max-connections`) until the client
//! closed it. A stream counts as open from its request until its response
//! body ends, so a long download never makes its connection idle.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

use crate::connect::relay::RelayBody;

/// The streams of one connection.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: AtomicUsize,
    /// Counts streams ever opened, so an idle period runs from the last one.
    opened: AtomicUsize,
    all_closed: Notify,
}

/// One open stream, until dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<Streams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

impl Streams {
    /// Marks a stream open until the returned guard is dropped.
    pub(crate) fn open(streams: &Arc<Self>) -> OpenStream {
        streams.opened.fetch_add(1, Ordering::SeqCst);
        streams.open.fetch_add(1, Ordering::SeqCst);
        OpenStream(Arc::clone(streams))
    }

    /// Completes once no stream has been open for `timeout`.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
        loop {
            loop {
                // Registered before the check, so a close in between wakes it.
                let all_closed = self.all_closed.notified();
                if self.open.load(Ordering::SeqCst) == 0 {
                    break;
                }
                all_closed.await;
            }
            let opened = self.opened.load(Ordering::SeqCst);
            tokio::time::sleep(timeout).await;
            if self.open.load(Ordering::SeqCst) == 0 && self.opened.load(Ordering::SeqCst) == opened
            {
                return;
            }
        }
    }
}

/// A response body that keeps its stream open until it ends (or is
/// dropped, when the client resets the stream).
#[derive(Debug)]
pub(crate) struct WhileOpen {
    body: RelayBody,
    _open: OpenStream,
}

impl WhileOpen {
    pub(crate) fn new(body: RelayBody, open: OpenStream) -> Self {
        Self { body, _open: open }
    }
}

impl Body for WhileOpen {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_after_the_last_stream_closed_for_the_whole_timeout() {
        let streams = Arc::new(Streams::default());
        let timeout = Duration::from_secs(10);
        let open = Streams::open(&streams);
        let idle = tokio::spawn({
            let streams = Arc::clone(&streams);
            async move { streams.idle_for(timeout).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "idle while a stream was open");
        drop(open);
        tokio::time::sleep(Duration::from_secs(6)).await;
        // A stream opened and closed within the timeout starts it again.
        drop(Streams::open(&streams));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!idle.is_finished(), "idle 6 s after a stream");
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert!(idle.is_finished(), "not idle 21 s after the last stream");
    }
}
