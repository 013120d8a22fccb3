//! One upstream connection as hyper-util's client sees it: the stream
//! (plain TCP or TLS), the outcome it carries to every response, and its
//! first read, which logs the connection and turns a refusal into an error
//! the relay can name.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls_req_client_auth::{describe_tls_error, find_tls_error};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::connect::failure::{ConnectFailure, Refusals, Refused, RefusedError};
use crate::connect::metrics::ConnectMetrics;
use crate::connect::outcome::{report, AnsweredOn, ConnectionOutcome, TlsOutcome};
use crate::connect::prepared::OpenConnection;
use crate::connect::sessions::{receiving, TicketTag};

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Where a connection reports: refusals for the relay, counters, and the
/// count of open connections to its server.
pub(crate) struct Accounting {
    pub(crate) refusals: Arc<Refusals>,
    pub(crate) metrics: Arc<ConnectMetrics>,
    pub(crate) open: Option<OpenConnection<UpstreamIo, ConnectFailure>>,
    /// Its place under `--max-upstream-connections`, while it lives.
    pub(crate) slot: tokio::sync::OwnedSemaphorePermit,
}

/// One upstream connection: its outcome, logged once its first read ends
/// (then a refusal is known), and reported as [`Refused`] if that read
/// fails.
pub struct UpstreamIo {
    io: TokioIo<Stream>,
    outcome: Option<Box<ConnectionOutcome>>,
    connected: AnsweredOn,
    h2: bool,
    refusals: Arc<Refusals>,
    metrics: Arc<ConnectMetrics>,
    /// Whether bytes went out since the handshake (a request).
    wrote: bool,
    /// A write that failed while the server's alert may still be on its way
    /// through the reactor, and how many times it was waited for.
    failed_write: Option<(io::Error, u8)>,
    /// What the tickets it receives are kept with (TLS only).
    ticket_tag: Option<Arc<TicketTag>>,
    /// Counts this connection as open to its server while it lives.
    _open: Option<OpenConnection<UpstreamIo, ConnectFailure>>,
    /// Its place under `--max-upstream-connections`, while it lives.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl UpstreamIo {
    pub(crate) fn new(
        stream: Stream,
        outcome: ConnectionOutcome,
        h2: bool,
        accounting: Accounting,
    ) -> Self {
        let ticket_tag = outcome.tls.as_ref().map(|tls| {
            Arc::new(TicketTag {
                identity: tls.identity.clone(),
                answered_empty: tls.answered_empty(),
            })
        });
        Self {
            ticket_tag,
            io: TokioIo::new(stream),
            outcome: Some(Box::new(outcome.clone())),
            connected: AnsweredOn {
                header: outcome.header_value(false),
                outcome: Arc::new(outcome),
            },
            h2,
            wrote: false,
            failed_write: None,
            refusals: accounting.refusals,
            metrics: accounting.metrics,
            _open: accounting.open,
            _slot: accounting.slot,
        }
    }

    /// What happened on this connection, as the outcome header tells it.
    pub(crate) fn answered_on(&self) -> &AnsweredOn {
        &self.connected
    }

    /// The first read has ended, or a write failed before it: log the
    /// connection. A failure after the client sent its certificate and a
    /// request is taken for a refusal of the certificate (in TLS 1.3 that
    /// is when a server refuses), and becomes a [`Refused`]; so does an
    /// alert (or, after a request, a close) after a CertificateRequest
    /// answered with no certificate: a server that requires one. Any other
    /// failure is logged and passed on as it is.
    fn first_event(&mut self, result: &mut io::Result<usize>) {
        let Some(outcome) = self.outcome.take() else {
            return;
        };
        let certificate_sent = outcome.tls.as_ref().is_some_and(|tls| tls.certificate_sent);
        // A CertificateRequest without the flag's acknowledgement, answered
        // with no certificate (RCA-2): a server that requires one ends the
        // connection at the first read, as it would refuse a certificate.
        let answered_empty = outcome.tls.as_ref().is_some_and(TlsOutcome::answered_empty);
        let flag_sent = outcome.tls.as_ref().is_some_and(|tls| tls.flag_sent);
        // Before a request went out, an end is the server closing an idle
        // connection (one begun ahead waits up to ten seconds), not a refusal.
        let after_request = certificate_sent && self.wrote;
        let without_certificate = |how: &str| {
            let why = if flag_sent {
                "without acknowledging the request_client_auth flag, so none was sent \
                 (rca-connect sends the bot certificate only where the flag is acknowledged)"
            } else {
                "and none was sent: the host is not among the --identity-host names, so \
                 neither the flag nor the bot certificate goes to it"
            };
            format!(
                "the server asked for a client certificate {why}, and it {how}: it requires a \
                 certificate from every client, which is ordinary mutual TLS rather than the flag"
            )
        };
        let (failure, refused) = match result {
            Ok(0) if answered_empty && self.wrote => (
                Some(without_certificate("closed the connection before answering")),
                true,
            ),
            Err(error)
                if answered_empty
                    && match find_tls_error(error) {
                        Some(tls) => matches!(tls, rustls::Error::AlertReceived(_)),
                        None => self.wrote,
                    } =>
            {
                let how = match find_tls_error(error) {
                    Some(rustls::Error::AlertReceived(alert)) => {
                        format!("ended the connection with the alert {alert:?}")
                    }
                    _ => format!("closed the connection ({error})"),
                };
                (Some(without_certificate(&how)), true)
            }
            Ok(0) if after_request => (
                Some(
                    "the server closed the connection before answering, after the client sent its certificate: it most likely refused the bot certificate"
                        .to_owned(),
                ),
                true,
            ),
            Ok(_) => (None, false),
            Err(error) => match find_tls_error(error) {
                Some(rustls::Error::AlertReceived(alert)) if certificate_sent => (
                    Some(format!(
                        "the server refused the bot certificate: alert {alert:?} after the handshake"
                    )),
                    true,
                ),
                Some(tls) => (Some(describe_tls_error(tls)), false),
                // A write that found the connection closed: the alert, if
                // any, was never read.
                None if after_request => (
                    Some(format!(
                        "the server closed the connection after the client sent its certificate ({error}): it most likely refused the bot certificate"
                    )),
                    true,
                ),
                None => (Some(error.to_string()), false),
            },
        };
        report(&self.metrics, &outcome, failure.as_deref());
        if let (Some(reason), true) = (failure, refused) {
            let kind = match result {
                Err(error) => error.kind(),
                Ok(_) => io::ErrorKind::UnexpectedEof,
            };
            let refused = Arc::new(Refused { outcome, reason });
            self.refusals.record(Arc::clone(&refused));
            *result = Err(io::Error::new(kind, RefusedError(refused)));
        }
    }

    /// A write's result, seen by [`UpstreamIo::first_event`] if it failed
    /// before the first read ended: with the server's alert in its place if
    /// one is waiting to be read.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(1..)) = written {
            self.wrote = true;
        }
        match written {
            Poll::Ready(Err(error)) if self.outcome.is_some() => {
                let error = match find_tls_error(&error) {
                    Some(_) => error,
                    None => match self.alert_behind(cx, 0) {
                        Poll::Ready(alert) => alert.unwrap_or(error),
                        Poll::Pending => {
                            self.failed_write = Some((error, 1));
                            return Poll::Pending;
                        }
                    },
                };
                let mut result = Err(error);
                self.first_event(&mut result);
                Poll::Ready(result)
            }
            other => other,
        }
    }

    /// A write that failed before and waits for the alert behind it: the
    /// alert, or the write's own error once the socket has said all it has
    /// (or after [`ALERT_WAITS`] wake-ups without it).
    fn failed_again(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        let (error, waits) = self.failed_write.take()?;
        let error = match self.alert_behind(cx, waits) {
            Poll::Ready(alert) => alert.unwrap_or(error),
            Poll::Pending => {
                self.failed_write = Some((error, waits + 1));
                return Some(Poll::Pending);
            }
        };
        let mut result = Err(error);
        self.first_event(&mut result);
        Some(Poll::Ready(result))
    }

    /// [`pending_alert`], in `receiving` as every read (a ticket in what it
    /// reads is kept with this connection's tag); ready with nothing after
    /// [`ALERT_WAITS`] waits.
    fn alert_behind(&mut self, cx: &mut Context<'_>, waits: u8) -> Poll<Option<io::Error>> {
        if waits >= ALERT_WAITS {
            return Poll::Ready(None);
        }
        match self.ticket_tag.clone() {
            Some(tag) => receiving(&tag, || pending_alert(Pin::new(self.io.inner_mut()), cx)),
            None => pending_alert(Pin::new(self.io.inner_mut()), cx),
        }
    }
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.connected.clone());
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // Tickets arrive in reads; they are kept with this connection's tag.
        match self.ticket_tag.clone() {
            Some(tag) => receiving(&tag, || self.read_tagged(cx, buf)),
            None => self.read_tagged(cx, buf),
        }
    }
}

impl UpstreamIo {
    fn read_tagged(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.outcome.is_none() || buf.remaining() == 0 {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        // The first read goes through a small buffer of its own, to see
        // how it ended; no larger than what hyper has room for.
        let mut first = [0u8; 4096];
        let room = buf.remaining().min(first.len());
        let (first, _) = first.split_at_mut(room);
        let mut first_buf = ReadBuf::new(first);
        let Poll::Ready(result) = Pin::new(self.io.inner_mut()).poll_read(cx, &mut first_buf)
        else {
            return Poll::Pending;
        };
        let mut result = result.map(|()| first_buf.filled().len());
        self.first_event(&mut result);
        result?;
        buf.put_slice(first_buf.filled());
        Poll::Ready(Ok(()))
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(failed) = self.failed_again(cx) {
            return failed;
        }
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(failed) = self.failed_again(cx) {
            return failed;
        }
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(cx, written)
    }
}

/// The alert a server sent before it closed or reset the connection, if it
/// waits unread: a write that fails (a broken pipe, a reset) says only that
/// the connection is gone, while the alert says why (in TLS 1.3 a server
/// refuses a client certificate after the client's side of the handshake is
/// done, and one that closes with the client's request unread makes the
/// kernel reset the connection; the alert queued before the reset can still
/// be read). What it reads is lost, but the connection is over. Pending
/// while the reactor has not yet seen what the socket holds (the write
/// failed inside the same poll): the read's waker brings the write back.
fn pending_alert(stream: Pin<&mut Stream>, cx: &mut Context<'_>) -> Poll<Option<io::Error>> {
    if matches!(*stream, Stream::Plain(_)) {
        return Poll::Ready(None);
    }
    let mut scratch = [0u8; 512];
    let mut buf = ReadBuf::new(&mut scratch);
    match stream.poll_read(cx, &mut buf) {
        Poll::Ready(Err(error)) if find_tls_error(&error).is_some() => Poll::Ready(Some(error)),
        Poll::Ready(_) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    }
}

/// How many wake-ups a failed write waits for the alert behind it.
const ALERT_WAITS: u8 = 3;

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use integration_tests::config;
    use integration_tests::pki::SERVER_NAME;
    use integration_tests::{Provider, TestPki};
    use rustls_req_client_auth::{ClientFlags, ServerFlags};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A server that refuses the bot's certificate and closes at once, with
    /// what the client sent after its handshake unread: the kernel resets
    /// the connection, and the client's next write fails with no word of
    /// the alert, which is still there to be read.
    #[tokio::test]
    async fn the_alert_behind_a_failed_write_is_read() {
        let pki = TestPki::shared();
        let provider = Provider::AwsLcRs;
        let mut server = config::server(pki, provider);
        ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
            .install(&mut server)
            .expect("TLS Flags registers its extension type");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            // tokio-rustls alone: the alert, then the socket dropped.
            let refused = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server))
                .accept(tcp)
                .await;
            assert!(refused.is_err());
        });
        let mut client = config::client(pki, provider);
        // A certificate of a CA the flag path does not trust.
        ClientFlags::request_client_auth(config::certified_key(&pki.normal_client, provider))
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
        let tcp = TcpStream::connect(address).await.expect("connect");
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
            .connect(SERVER_NAME.try_into().expect("name"), tcp)
            .await
            .expect("the client's side of the handshake");
        let mut stream = Stream::Tls(Box::new(tls));
        let request = vec![b'x'; 16 * 1024];
        stream.write_all(&request).await.expect("first write");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let failed = stream.write_all(&request).await;
        let error = failed.expect_err("the connection was reset");
        assert!(find_tls_error(&error).is_none(), "{error}");
        let alert = std::future::poll_fn(|cx| pending_alert(Pin::new(&mut stream), cx))
            .await
            .expect("an alert waits");
        assert_eq!(
            find_tls_error(&alert),
            Some(&rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            )),
            "{alert}"
        );
    }
}
