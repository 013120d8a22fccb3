//! Which certificate the flag path (or the application's own verifier)
//! refused, so the line an operator reads names the client (subject, issuer,
//! `x5t#S256`, the server name it asked for, the path that refused it)
//! rather than only the address and `UnknownIssuer`.
//!
//! The verifier runs inside a poll of the handshake, on the task that
//! drives it; [`Acceptor::accept`](crate::Acceptor::accept) gives that task
//! a slot (a tokio task-local), the flag path's verifier fills it when it
//! refuses, and the accept error carries it out. Without the `tokio`
//! feature, or outside an `Acceptor`, nothing is recorded.

use std::fmt;

use rustls::pki_types::CertificateDer;

use crate::auth_path::AuthPath;
use crate::distinguished_name::distinguished_name;

/// A certificate the flag path (or an application's own verifier) refused,
/// as the refusal line names it; never the whole certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedCertificate {
    subject: String,
    issuer: String,
    thumbprint: String,
    server_name: Option<String>,
    path: AuthPath,
}

impl RefusedCertificate {
    /// The end entity `certificate`, sent on a connection to `server_name`
    /// and refused by the flag path's verifier.
    pub(crate) fn of(certificate: &CertificateDer<'_>, server_name: Option<&str>) -> Self {
        let (subject, issuer) = match x509_parser::parse_x509_certificate(certificate) {
            Ok((_, parsed)) => (
                shortened(distinguished_name(parsed.subject())),
                shortened(distinguished_name(parsed.issuer())),
            ),
            Err(_) => ("(not X.509)".to_owned(), "(not X.509)".to_owned()),
        };
        Self {
            subject,
            issuer,
            thumbprint: crate::thumbprint::thumbprint_sha256(certificate),
            server_name: server_name.map(str::to_owned),
            path: AuthPath::Flag,
        }
    }

    /// `certificate` (an end entity, sent on a connection to `server_name`
    /// on `path`) named as a refusal line names it: for an application that
    /// refuses a client after its handshake (a revocation since, say), so
    /// one search of the log finds both kinds of line.
    #[must_use]
    pub fn named(
        certificate: &CertificateDer<'_>,
        server_name: Option<&str>,
        path: AuthPath,
    ) -> Self {
        Self {
            path,
            ..Self::of(certificate, server_name)
        }
    }

    /// Notes `certificate` as refused, from a client-certificate verifier
    /// of the application's own (the normal path's, say) while it refuses
    /// it: the error of the handshake, if an [`Acceptor`](crate::Acceptor)
    /// drives it, then names the certificate as it names the flag path's
    /// refusals, on the normal path, with the server name the client asked
    /// for (where [`ServerFlags`](crate::ServerFlags) is installed, which
    /// tells it).
    pub fn note(certificate: &CertificateDer<'_>) {
        #[cfg(feature = "tokio")]
        let _outside_an_acceptor = REFUSED.try_with(|slot| {
            let mut slot = slot.borrow_mut();
            let refused = Self {
                path: AuthPath::Normal,
                ..Self::of(certificate, slot.server_name.as_deref())
            };
            slot.refused = Some(refused);
        });
        #[cfg(not(feature = "tokio"))]
        let _ = certificate;
    }

    /// The certificate's subject, as RFC 4514 writes it.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The certificate's issuer, as RFC 4514 writes it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The certificate's `x5t#S256` thumbprint (RFC 8705).
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint
    }

    /// The server name (SNI) the client asked for, if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The path whose verifier refused it: [`AuthPath::Flag`] for a client
    /// that set `request_client_auth`, [`AuthPath::Normal`] for one refused
    /// by the application's own verifier (noted with
    /// [`RefusedCertificate::note`]).
    pub fn path(&self) -> AuthPath {
        self.path
    }
}

impl fmt::Display for RefusedCertificate {
    /// The names are quoted with Rust's escapes: they come from the peer,
    /// and a control character in them must not start a log line of its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject {:?}, issuer {:?}, x5t#S256 {}, {}, SNI {:?}",
            self.subject,
            self.issuer,
            self.thumbprint,
            match self.path {
                AuthPath::Flag => "on the flag path (it set request_client_auth)",
                _ => "on the normal path (no request_client_auth flag: the server's own CAs)",
            },
            self.server_name.as_deref().unwrap_or("(none)"),
        )
    }
}

/// The longest name written, in characters: the certificate was refused,
/// so its names are whatever the client chose, and a line stays a line.
const MAX_NAME: usize = 256;

fn shortened(name: String) -> String {
    match name.char_indices().nth(MAX_NAME) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name,
    }
}

/// What the handshake an [`Acceptor`](crate::Acceptor) drives has told
/// about a refusal so far.
#[cfg(feature = "tokio")]
#[derive(Default)]
struct Slot {
    /// The server name the client asked for, told by the TLS Flags hook
    /// (a verifier of the application's own is not told it).
    server_name: Option<std::sync::Arc<str>>,
    refused: Option<RefusedCertificate>,
}

#[cfg(feature = "tokio")]
tokio::task_local! {
    static REFUSED: std::cell::RefCell<Slot>;
}

/// Keeps the certificate `refused` makes for the handshake being driven, if
/// it is driven by an [`Acceptor`](crate::Acceptor).
pub(crate) fn record(refused: impl FnOnce() -> RefusedCertificate) {
    #[cfg(feature = "tokio")]
    let _outside_an_acceptor = REFUSED.try_with(|slot| slot.borrow_mut().refused = Some(refused()));
    #[cfg(not(feature = "tokio"))]
    let _ = refused;
}

/// Keeps the server name of the handshake being driven, for a refusal of
/// the normal path's verifier ([`RefusedCertificate::note`]).
pub(crate) fn remember_server_name(server_name: &std::sync::Arc<str>) {
    #[cfg(feature = "tokio")]
    let _outside_an_acceptor = REFUSED.try_with(|slot| {
        slot.borrow_mut().server_name = Some(std::sync::Arc::clone(server_name));
    });
    #[cfg(not(feature = "tokio"))]
    let _ = server_name;
}

/// Drives `handshake` with a slot for a refused certificate; its output and
/// what the slot holds at the end.
#[cfg(feature = "tokio")]
pub(crate) async fn collecting<F: std::future::Future>(
    handshake: F,
) -> (F::Output, Option<RefusedCertificate>) {
    REFUSED
        .scope(std::cell::RefCell::new(Slot::default()), async {
            let output = handshake.await;
            let refused = REFUSED.with(|slot| slot.borrow_mut().refused.take());
            (output, refused)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_garbage_is_said() {
        let refused = RefusedCertificate::of(&CertificateDer::from(vec![0x30, 0x00]), None);
        assert_eq!(refused.subject(), "(not X.509)");
        let line = RefusedCertificate {
            subject: "CN=a\nfake line".to_owned(),
            ..refused
        }
        .to_string();
        assert!(line.contains("subject \"CN=a\\nfake line\""), "{line}");
        assert!(line.ends_with("SNI \"(none)\""), "{line}");
        assert!(line.contains(", on the flag path ("), "{line}");
    }
}
