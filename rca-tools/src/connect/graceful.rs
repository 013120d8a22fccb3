//! Stopping gracefully: on SIGTERM the listeners stop accepting, every
//! client connection and tunnel is told to finish the requests in flight
//! (hyper's `graceful_shutdown`: HTTP/1.1 closes after the current answer,
//! HTTP/2 sends GOAWAY), and the stop waits for their tasks. An idle HTTP/2
//! connection is closed the same way.

use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Tells connections to stop and keeps track of their tasks.
#[derive(Clone, Debug)]
pub(crate) struct Watcher {
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) tasks: TaskTracker,
}

impl Watcher {
    /// Runs `connection` to its end, or, once the front stops, until its
    /// requests in flight are answered.
    pub(crate) async fn watch<C: Graceful>(&self, connection: C) -> Result<(), hyper::Error> {
        self.watch_until(connection, std::future::pending()).await
    }

    /// As [`Self::watch`], and the connection also finishes its requests
    /// and closes once `idle` completes.
    pub(crate) async fn watch_until<C: Graceful>(
        &self,
        connection: C,
        idle: impl std::future::Future<Output = ()>,
    ) -> Result<(), hyper::Error> {
        let mut stopped = self.stopped.clone();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return result,
            _ = stopped.wait_for(|stopped| *stopped) => {}
            () = idle => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }
}

/// hyper's server connections, which each have a `graceful_shutdown`.
pub(crate) trait Graceful: std::future::Future<Output = Result<(), hyper::Error>> {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

macro_rules! graceful {
    ($($connection:ty),*) => {$(
        impl<I, S, B> Graceful for $connection
        where
            I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
            S: hyper::service::HttpService<Incoming, ResBody = B>,
            S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
            S::Future: Send + 'static,
            B: hyper::body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
                Self::graceful_shutdown(self);
            }
        }
    )*};
}

graceful!(
    hyper::server::conn::http1::Connection<I, S>,
    hyper::server::conn::http1::UpgradeableConnection<I, S>,
    hyper::server::conn::http2::Connection<I, S, TokioExecutor>
);
