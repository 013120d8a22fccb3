//! The client side: a bot that sets `request_client_auth` (or, without an
//! identity, a browser-like client that does not), one HTTPS request with
//! hyper over tokio-rustls, and what TLS Flags did on the connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause, ClientFlagsState};
use rustls_req_client_auth::ClientFlags;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long one exchange (connect, handshake, request, response) may take.
pub(crate) const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client config trusting `server_roots`, with ALPN h2 then http/1.1. With
/// `flags` (a bot), the client sets `request_client_auth` if it has an
/// identity at hand (RCA-1) and answers the acknowledging CertificateRequest
/// with it; without, it is a plain rustls client, like a browser.
pub(crate) fn config(
    provider: Arc<CryptoProvider>,
    server_roots: RootCertStore,
    flags: Option<ClientFlags>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the crypto provider supports no TLS version")?
        .with_root_certificates(server_roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if let Some(flags) = flags {
        flags.install(&mut config);
    }
    Ok(Arc::new(config))
}

/// What the client saw of the TLS handshake.
#[derive(Clone, Debug)]
pub(crate) struct Tls {
    /// The negotiated version.
    pub(crate) version: Option<ProtocolVersion>,
    /// The negotiated ALPN protocol.
    pub(crate) alpn: Option<String>,
    /// TLS Flags on this connection (`None`: no `ClientFlags` installed).
    pub(crate) flags: Option<ClientFlagsState>,
}

impl Tls {
    /// Whether the ClientHello carried `request_client_auth`.
    pub(crate) fn flag_sent(&self) -> bool {
        self.flags
            .as_ref()
            .is_some_and(ClientFlagsState::requested_client_auth)
    }

    /// Why a CertificateRequest came, if one did (as far as the client knows).
    pub(crate) fn certificate_request(&self) -> Option<CertificateRequestCause> {
        self.flags
            .as_ref()
            .and_then(ClientFlagsState::certificate_request)
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self
            .version
            .map_or_else(|| "?".to_owned(), |version| format!("{version:?}"));
        let alpn = self.alpn.as_deref().unwrap_or("none");
        write!(f, "{version}, ALPN {alpn}; ")?;
        let Some(flags) = &self.flags else {
            return f.write_str("TLS Flags not in use");
        };
        let request = match flags.certificate_request() {
            None => "no CertificateRequest",
            Some(CertificateRequestCause::Flag) => "CertificateRequest acknowledging the flag",
            Some(CertificateRequestCause::ServerPolicy) => "CertificateRequest without the flag",
        };
        write!(
            f,
            "TLS Flags offered {}, acknowledged {}; {request}",
            flags.offered(),
            flags.acknowledged()
        )
    }
}

/// An HTTP response, read in full.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    /// HTTP/1.1 or HTTP/2.
    pub(crate) version: Version,
    /// The status.
    pub(crate) status: StatusCode,
    /// The body, as text.
    pub(crate) body: String,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} {:?}",
            self.version,
            self.status,
            self.body.trim_end()
        )
    }
}

/// One request on one connection.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The client's address (the server knows the connection by it).
    pub(crate) local: SocketAddr,
    /// The handshake, as the client saw it.
    pub(crate) tls: Tls,
    /// The response, or why there is none (often a TLS alert from the server,
    /// which in TLS 1.3 arrives after the client has finished its handshake).
    pub(crate) answer: anyhow::Result<Answer>,
}

/// Connects to `address`, does the TLS handshake for `server_name` and sends
/// `GET uri` over HTTP/2 or HTTP/1.1 (by ALPN). Fails only if no TLS
/// connection could be made; a failed request is in [`Exchange::answer`].
pub(crate) async fn get(
    config: Arc<ClientConfig>,
    address: impl ToSocketAddrs,
    server_name: ServerName<'static>,
    uri: &Uri,
) -> anyhow::Result<Exchange> {
    let exchange = async {
        let tcp = TcpStream::connect(address)
            .await
            .context("cannot connect")?;
        let local = tcp.local_addr()?;
        let stream = TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .context("TLS handshake failed")?;
        let conn = stream.get_ref().1;
        let tls = Tls {
            version: conn.protocol_version(),
            alpn: conn
                .alpn_protocol()
                .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
            flags: client_state(conn).cloned(),
        };
        let answer = request(stream, uri, tls.alpn.as_deref() == Some("h2")).await;
        Ok(Exchange { local, tls, answer })
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(anyhow!("no answer within {EXCHANGE_TIMEOUT:?}")))
}

async fn request(stream: TlsStream<TcpStream>, uri: &Uri, h2: bool) -> anyhow::Result<Answer> {
    let (stream, tls_error) = RecordTlsError::new(stream);
    let answer = send(TokioIo::new(stream), uri, h2).await;
    // h2 keeps only the text of an I/O error, so the TLS error (the alert the
    // server sent) is taken from the stream itself.
    answer.map_err(|error| match tls_error.get() {
        Some(tls) if super::tls_error(&error).is_none() => {
            anyhow::Error::new(tls.clone()).context(format!("{error:#}"))
        }
        _ => error,
    })
}

async fn send(
    io: TokioIo<RecordTlsError<TlsStream<TcpStream>>>,
    uri: &Uri,
    h2: bool,
) -> anyhow::Result<Answer> {
    let request = Request::get(uri.clone());
    if h2 {
        // HTTP/2 takes the authority from the URI (`:authority`).
        let request = request.body(Empty::<Bytes>::new())?;
        let (mut sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .context("HTTP/2 handshake failed")?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request).await;
        drop(sender);
        finish(response, driver).await
    } else {
        let authority = uri.authority().context("the URL has no host")?.as_str();
        let request = request
            .header(HOST, authority)
            .body(Empty::<Bytes>::new())?;
        let (mut sender, connection) = http1::handshake(io)
            .await
            .context("HTTP/1.1 handshake failed")?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request).await;
        drop(sender);
        finish(response, driver).await
    }
}

/// Reads the response; on failure, prefers the connection's own error, which
/// says why the connection broke (a TLS alert, say) where the request's error
/// often only says that it did.
async fn finish(
    response: hyper::Result<Response<Incoming>>,
    driver: JoinHandle<hyper::Result<()>>,
) -> anyhow::Result<Answer> {
    let answer = match response {
        Ok(response) => read(response).await,
        Err(error) => Err(anyhow::Error::new(error).context("request failed")),
    };
    let closed = driver.await;
    match (answer, closed) {
        (Ok(answer), _) => Ok(answer),
        (Err(_), Ok(Err(connection))) => {
            Err(anyhow::Error::new(connection).context("connection failed"))
        }
        (Err(error), _) => Err(error),
    }
}

async fn read(response: Response<Incoming>) -> anyhow::Result<Answer> {
    let version = response.version();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("cannot read the response body")?
        .to_bytes();
    Ok(Answer {
        version,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A stream that keeps the first `rustls::Error` its reads or writes return.
struct RecordTlsError<S> {
    inner: S,
    error: Arc<OnceLock<rustls::Error>>,
}

impl<S> RecordTlsError<S> {
    fn new(inner: S) -> (Self, Arc<OnceLock<rustls::Error>>) {
        let error = Arc::new(OnceLock::new());
        let stream = Self {
            inner,
            error: Arc::clone(&error),
        };
        (stream, error)
    }

    fn record<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(error)) = &result {
            if let Some(tls) = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                let _ = self.error.set(tls.clone());
            }
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RecordTlsError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.record(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RecordTlsError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.record(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.record(result)
    }
}
