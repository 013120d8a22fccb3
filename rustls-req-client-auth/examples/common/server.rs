//! The flag-enabled HTTPS server: one port for people and bots.
//!
//! Its own accept loop, as hyper-util expects: TCP accept → TLS handshake
//! (with a timeout) → the peer's identity, read once per connection from the
//! rustls connection, inserted into every request as an `Extension` → hyper-util's
//! `auto::Builder` (HTTP/1.1 or HTTP/2 by ALPN), with graceful shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig, ServerConnection};
use rustls_req_client_auth::server::{self as flags, AuthPath, RequestReason};
use rustls_req_client_auth::ServerFlags;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server's TLS config: its identity, no client authentication for
/// anyone (browsers never see a certificate picker), and a CertificateRequest
/// for clients that set `request_client_auth`, verified against `bot_roots`
/// only (RCA-2, RCA-10). ALPN: h2, then http/1.1.
pub(crate) fn config(
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    bot_roots: RootCertStore,
) -> anyhow::Result<Arc<ServerConfig>> {
    let bots = WebPkiClientVerifier::builder_with_provider(Arc::new(bot_roots), provider.clone())
        .build()
        .context("cannot build the verifier for bot certificates")?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the crypto provider supports no TLS version")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the server certificate and key do not make a usable identity")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    ServerFlags::request_client_auth(bots).install(&mut config);
    Ok(Arc::new(config))
}

/// Who the client is: what the handler finds in each request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct ClientIdentity {
    /// The trust path that authenticated it.
    pub(crate) path: AuthPath,
    /// The subject of its certificate, if it presented one.
    pub(crate) subject: Option<String>,
}

impl ClientIdentity {
    fn of(conn: &ServerConnection) -> Self {
        let peer = flags::peer(conn);
        Self {
            path: peer.path,
            subject: peer.chain.and_then(<[_]>::first).map(|leaf| subject(leaf)),
        }
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = self.subject.as_deref().unwrap_or("?");
        match self.path {
            AuthPath::None => f.write_str("anonymous client (no client certificate)"),
            AuthPath::Flag => write!(f, "bot authenticated on the flag path: {subject}"),
            AuthPath::Normal => write!(f, "client authenticated on the normal path: {subject}"),
        }
    }
}

/// The subject name of a certificate, `CN=...`.
fn subject(certificate: &CertificateDer<'_>) -> String {
    x509_parser::parse_x509_certificate(certificate).map_or_else(
        |_| "(unparsable certificate)".to_owned(),
        |(_, parsed)| parsed.subject().to_string(),
    )
}

/// What the server saw in a completed handshake.
#[derive(Clone, Debug)]
pub(crate) struct Handshake {
    /// The negotiated TLS version.
    pub(crate) version: Option<ProtocolVersion>,
    /// The negotiated ALPN protocol.
    pub(crate) alpn: Option<String>,
    /// Whether the ClientHello carried `request_client_auth`.
    pub(crate) flag_received: bool,
    /// Why a CertificateRequest was sent, if one was.
    pub(crate) certificate_request: Option<RequestReason>,
    /// Who the client is.
    pub(crate) identity: ClientIdentity,
}

impl Handshake {
    fn of(conn: &ServerConnection) -> Self {
        let state = flags::server_state(conn);
        Self {
            version: conn.protocol_version(),
            alpn: conn
                .alpn_protocol()
                .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
            flag_received: state.is_some_and(flags::ServerFlagsState::client_requested_auth),
            certificate_request: state.and_then(flags::ServerFlagsState::certificate_request),
            identity: ClientIdentity::of(conn),
        }
    }
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = if self.flag_received {
            "request_client_auth set"
        } else {
            "no flag"
        };
        let request = match self.certificate_request {
            None => "no CertificateRequest",
            Some(RequestReason::Flag) => "CertificateRequest acknowledging the flag",
            Some(RequestReason::ServerPolicy) => "CertificateRequest (server policy)",
        };
        let version = self
            .version
            .map_or_else(|| "?".to_owned(), |version| format!("{version:?}"));
        let alpn = self.alpn.as_deref().unwrap_or("none");
        write!(
            f,
            "{flag}, {request}; {version}, ALPN {alpn}; {}",
            self.identity
        )
    }
}

/// What happened to a connection, for the server's log (and the demo).
#[derive(Debug)]
pub(crate) enum Event {
    /// The handshake completed.
    Connected {
        /// The client's address.
        remote: SocketAddr,
        /// What the server saw.
        handshake: Handshake,
    },
    /// The handshake failed: the client was refused, or went away.
    Refused {
        /// The client's address.
        remote: SocketAddr,
        /// What tokio-rustls returned (a `rustls::Error` inside, usually).
        error: io::Error,
    },
    /// The client did not complete the handshake in [`HANDSHAKE_TIMEOUT`].
    HandshakeTimedOut {
        /// The client's address.
        remote: SocketAddr,
    },
    /// HTTP on an established connection failed.
    ConnectionFailed {
        /// The client's address.
        remote: SocketAddr,
        /// What hyper returned.
        error: String,
    },
    /// `accept` itself failed (for example: out of file descriptors).
    AcceptFailed(io::Error),
}

impl Event {
    /// The client the event is about.
    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        match self {
            Self::Connected { remote, .. }
            | Self::Refused { remote, .. }
            | Self::HandshakeTimedOut { remote }
            | Self::ConnectionFailed { remote, .. } => Some(*remote),
            Self::AcceptFailed(_) => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected { remote, handshake } => write!(f, "{remote}: {handshake}"),
            Self::Refused { remote, error } => {
                write!(
                    f,
                    "{remote}: handshake failed: {}",
                    describe_io_error(error)
                )
            }
            Self::HandshakeTimedOut { remote } => write!(
                f,
                "{remote}: no complete handshake in {HANDSHAKE_TIMEOUT:?}, dropped"
            ),
            Self::ConnectionFailed { remote, error } => write!(f, "{remote}: {error}"),
            Self::AcceptFailed(error) => write!(f, "accept failed: {error}"),
        }
    }
}

/// The TLS error inside an `io::Error` from tokio-rustls, described; or the
/// I/O error itself.
pub(crate) fn describe_io_error(error: &io::Error) -> String {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map_or_else(|| error.to_string(), super::describe_tls_error)
}

/// Accepts connections on `listener` until `shutdown` completes, then lets
/// open connections finish (up to a few seconds). Reports every connection
/// on `events`.
pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    events: mpsc::UnboundedSender<Event>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    let _ = events.send(Event::AcceptFailed(error));
                    // Do not spin while the cause (say, no free descriptor) lasts.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            acceptor.clone(),
            tcp,
            remote,
            graceful.watcher(),
            events.clone(),
        ));
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// One connection: the handshake, then HTTP.
async fn connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    watcher: Watcher,
    events: mpsc::UnboundedSender<Event>,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let _ = events.send(Event::Refused { remote, error });
            return;
        }
        Err(_elapsed) => {
            let _ = events.send(Event::HandshakeTimedOut { remote });
            return;
        }
    };
    // The identity is read once, from the rustls connection, and handed to
    // every request of this connection as an extension.
    let handshake = Handshake::of(stream.get_ref().1);
    let identity = handshake.identity.clone();
    let _ = events.send(Event::Connected { remote, handshake });

    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(identity.clone());
        std::future::ready(Ok::<_, Infallible>(handle(&request)))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let http = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(http.into_owned()).await {
        let _ = events.send(Event::ConnectionFailed {
            remote,
            error: error.to_string(),
        });
    }
}

/// The application: tells the client who it is, from the request's extension.
fn handle(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let who = request
        .extensions()
        .get::<ClientIdentity>()
        .map_or_else(|| "unknown client".to_owned(), ToString::to_string);
    let body = format!(
        "hello, {who} [{:?} {} {}]\n",
        request.version(),
        request.method(),
        request.uri().path()
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
