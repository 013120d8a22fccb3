//! TLS accept over tokio-rustls with a handshake timeout, yielding the stream
//! together with the client's [`PeerIdentity`] (feature `tokio`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::FlagsError;
use crate::identity::PeerIdentity;
use crate::refusal::RefusedCertificate;

/// Accepts TLS connections for a `ServerConfig` with [`crate::ServerFlags`]
/// installed: each handshake gets at most [`Acceptor::handshake_timeout`],
/// and a completed one yields the stream and the client's identity.
///
/// ```no_run
/// # async fn demo(config: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
/// use rustls_req_client_auth::Acceptor;
///
/// let acceptor = Acceptor::new(config);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// loop {
///     let (tcp, remote) = listener.accept().await?;
///     let acceptor = acceptor.clone();
///     tokio::spawn(async move {
///         match acceptor.accept(tcp).await {
///             Ok((stream, peer)) => println!("{remote}: {peer}"),
///             Err(error) => eprintln!("{remote}: {error}"),
///         }
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Acceptor {
    tls: TlsAcceptor,
    handshake_timeout: Duration,
}

impl Acceptor {
    /// How long a client gets to complete its handshake unless
    /// [`Acceptor::handshake_timeout`] says otherwise.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// An acceptor for `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            tls: TlsAcceptor::from(config),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a client may take to complete the handshake.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long a client may take to complete the handshake.
    #[cfg(feature = "axum")]
    pub(crate) fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The config handshakes use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        self.tls.config()
    }

    /// Runs the TLS handshake on `io`; on success, the stream and who the
    /// client is.
    ///
    /// A failed handshake's connection is closed so that the client reads
    /// the alert: the server stops writing and reads on (and discards) until
    /// the client closes, for at most a second, before the error is returned.
    ///
    /// # Errors
    ///
    /// [`AcceptError`]: the handshake failed (the client was refused, or it
    /// went away) or did not complete in time.
    pub async fn accept<IO>(&self, io: IO) -> Result<(TlsStream<IO>, PeerIdentity), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_until(io, self.deadline(), |_| {}).await
    }

    /// When a handshake that starts now must be done.
    pub(crate) fn deadline(&self) -> Instant {
        // A timeout too large to add is no timeout, as `tokio::time::timeout`
        // takes it: a year is as good as forever for a handshake.
        Instant::now()
            + self
                .handshake_timeout
                .min(Duration::from_secs(365 * 24 * 3600))
    }

    /// As [`Acceptor::accept`], with the handshake to be done by `deadline`:
    /// a server that read a PROXY protocol header first gives the handshake
    /// what is left of one timeout, not a second one. `failed` is told of a
    /// failure as soon as it is known, before the connection lingers for
    /// the client to read the alert, so that a log line it writes carries
    /// the refusal's time, not a second later.
    pub(crate) async fn accept_until<IO>(
        &self,
        io: IO,
        deadline: Instant,
        failed: impl FnOnce(&AcceptError),
    ) -> Result<(TlsStream<IO>, PeerIdentity), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake = tokio::time::timeout_at(deadline, self.tls.accept(io).into_fallible());
        let (accepted, refused) = crate::refusal::collecting(handshake).await;
        let stream = match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err((error, io))) => {
                let error = match refused {
                    Some(certificate) => AcceptError::Refused(error, Box::new(certificate)),
                    None => AcceptError::Handshake(error),
                };
                debug!("tls_flags: handshake failed: {error}");
                failed(&error);
                close_after_alert(io, deadline).await;
                return Err(error);
            }
            Err(_elapsed) => {
                debug!(
                    "tls_flags: handshake did not complete in {:?}",
                    self.handshake_timeout
                );
                let error = AcceptError::TimedOut(self.handshake_timeout);
                failed(&error);
                return Err(error);
            }
        };
        let identity = PeerIdentity::of(stream.get_ref().1);
        debug!("tls_flags: handshake done: {identity}");
        Ok((stream, identity))
    }
}

/// How long a connection whose handshake failed is read on after the alert,
/// at most, and how much of what the client still sends is thrown away.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Closes a connection whose handshake failed so that the client gets the
/// alert: in TLS 1.3 a client sends its request as soon as its side of the
/// handshake is done, and a socket closed with that request unread is reset
/// by the kernel, so the client's write failed with a broken pipe, or the
/// reset discarded the alert, before it could read why it was refused (half
/// of refused bots saw no alert through reqwest). So the server says it is
/// done writing and reads on until the client closes, for at most
/// [`LINGER`] and [`LINGER_BYTES`], and not past the handshake's `deadline`
/// (the configured timeout stays the longest a connection can take).
async fn close_after_alert<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, deadline: Instant) {
    let drain = async {
        if io.shutdown().await.is_err() {
            return;
        }
        // On the heap, and only here: a buffer in the future would enlarge
        // every handshake's state.
        let mut buffer = vec![0; 4096];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match io.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => discarded += read,
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline.min(Instant::now() + LINGER), drain).await;
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a connection was closed before it was served: the handshake's
/// failures ([`Acceptor::accept`]), and what `Serve` closes before a
/// handshake (the PROXY protocol header, the per-client limit).
#[derive(Debug)]
#[non_exhaustive]
pub enum AcceptError {
    /// The handshake failed: a TLS error (see [`AcceptError::tls_error`]) or
    /// an I/O error.
    Handshake(io::Error),
    /// The handshake failed after the flag path's verifier refused this
    /// certificate (see [`AcceptError::refused_certificate`]).
    Refused(io::Error, Box<RefusedCertificate>),
    /// The client did not complete the handshake in this time.
    TimedOut(Duration),
    /// The connection was closed before its handshake, for its PROXY
    /// protocol header (`Serve::proxy_protocol`): `reason` is `untrusted`
    /// (not from an allowed network), `malformed`, `timeout` or `io`;
    /// `detail` says what was wrong.
    ProxyProtocol {
        /// Why, in one word (for a metric's label).
        reason: &'static str,
        /// What was wrong (for the log).
        detail: String,
    },
    /// The connection was closed before its handshake because its client
    /// address already had this many open (`Serve::max_connections_per_client`).
    ClientLimit(usize),
}

impl AcceptError {
    /// The TLS error that ended the handshake, if it was one.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match self {
            Self::Handshake(error) | Self::Refused(error, _) => crate::find_tls_error(error),
            Self::TimedOut(_) | Self::ProxyProtocol { .. } | Self::ClientLimit(_) => None,
        }
    }

    /// The certificate the flag path refused, if that ended the handshake:
    /// its subject, issuer, thumbprint and the server name asked for.
    pub fn refused_certificate(&self) -> Option<&RefusedCertificate> {
        match self {
            Self::Refused(_, certificate) => Some(certificate),
            Self::Handshake(_)
            | Self::TimedOut(_)
            | Self::ProxyProtocol { .. }
            | Self::ClientLimit(_) => None,
        }
    }

    /// The TLS Flags rule the client broke, if that ended the handshake.
    pub fn flags_error(&self) -> Option<&FlagsError> {
        self.tls_error().and_then(FlagsError::from_rustls)
    }

    /// Whether the client's certificate was refused: the verifier rejected
    /// the one it presented (its own fault, or a CRL of its chain that could
    /// not be used: every certificate under that CA is refused until an
    /// operator mends it), or it presented none where one was required.
    pub fn is_certificate_refused(&self) -> bool {
        matches!(
            self.tls_error(),
            Some(
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::InvalidCertRevocationList(_)
                    | rustls::Error::NoCertificatesPresented
            )
        )
    }
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(timeout) => {
                write!(f, "TLS handshake did not complete in {timeout:?}")
            }
            Self::ProxyProtocol { detail, .. } => f.write_str(detail),
            Self::ClientLimit(max) => write!(
                f,
                "closed before its TLS handshake: this client (its address; for IPv6, its /64) \
                 has {max} connections open already, the most one client may have (if the \
                 address is a load balancer's, have it pass its clients' addresses with the \
                 PROXY protocol)"
            ),
            Self::Handshake(error) | Self::Refused(error, _) => {
                match self.tls_error() {
                    Some(tls) => write!(
                        f,
                        "TLS handshake failed: {}",
                        crate::describe_tls_error(tls)
                    )?,
                    None => write!(f, "TLS handshake failed: {error}")?,
                }
                match self.refused_certificate() {
                    Some(certificate) => write!(f, " (certificate: {certificate})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for AcceptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake(error) | Self::Refused(error, _) => Some(error),
            Self::TimedOut(_) | Self::ProxyProtocol { .. } | Self::ClientLimit(_) => None,
        }
    }
}
