//! The demo: one flag-enabled HTTPS server, four clients.
//!
//! ```sh
//! cargo xtask demo
//! # or, once `cargo xtask fork` has run:
//! cargo run -p rustls-req-client-auth --example demo
//! ```
//!
//! It generates a fresh PKI, starts the server of the `server` example (same
//! accept loop, same handler) on 127.0.0.1, and connects:
//!
//! 1. a browser-like client (plain rustls, ALPN h2/http1.1, no flag): no
//!    CertificateRequest, no certificate picker, served anonymously;
//! 2. a bot with a certificate from the bot CA: the flag is acknowledged in
//!    the CertificateRequest (RCA-2) and the bot is authenticated on the flag
//!    path;
//! 3. a bot with a certificate from another CA: refused with an alert, as the
//!    flag path trusts only the bot CA (RCA-10);
//! 4. a bot that sets the flag but has no certificate to give when asked: it
//!    answers with an empty Certificate (RCA-5) and is served anonymously
//!    (RCA-14).
//!
//! For each it prints what happened on the wire and what the application saw.
//! It exits with 1 if any client was not treated as described above.

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::{StatusCode, Uri};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use rustls_req_client_auth::client::CertificateRequestCause;
use rustls_req_client_auth::server::{AuthPath, RequestReason};
use rustls_req_client_auth::{ClientFlags, CodePoints};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use common::client::Exchange;
use common::pki::{Leaf, Pki};
use common::server::Event;

/// How a client must be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// Served, with the given trust path.
    Served(AuthPath),
    /// Refused during the handshake.
    Refused,
}

struct Case {
    label: &'static str,
    flags: Option<ClientFlags>,
    /// Whether the client sets `request_client_auth`.
    flag: bool,
    expected: Expected,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let provider = common::crypto_provider();
    let pki = Pki::generate().context("cannot generate the PKI")?;
    let server_config = common::server::config(
        provider.clone(),
        pki.server.chain(),
        pki.server.key(),
        common::roots(vec![pki.bot_ca.cert.clone()])?,
    )?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot listen on 127.0.0.1")?;
    let address = listener.local_addr()?;
    let (events, mut server_log) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(common::server::serve(
        listener,
        server_config,
        events,
        async {
            let _ = stopped.await;
        },
    ));

    let points = CodePoints::DEFAULT;
    println!(
        "TLS Flags demo: request_client_auth = flag {} in extension {}; server https://localhost:{} ({}, {})",
        points.request_client_auth.get(),
        points.extension_type,
        address.port(),
        address.ip(),
        common::PROVIDER_NAME,
    );
    println!(
        "The server requests a client certificate only when the flag is set, and trusts only the bot CA for it.\n"
    );

    let cases = cases(&pki, &provider)?;
    let total = cases.len();
    let uri: Uri = format!("https://localhost:{}/", address.port()).parse()?;
    let mut server_events = ServerEvents::default();
    let mut failures = Vec::new();
    for (number, case) in cases.into_iter().enumerate() {
        let config = common::client::config(
            provider.clone(),
            common::roots(vec![pki.server_ca.cert.clone()])?,
            case.flags,
        )?;
        let server_name = ServerName::try_from("localhost")?;
        let exchange = common::client::get(config, address, server_name, &uri)
            .await
            .with_context(|| format!("{}: no TLS connection", case.label))?;
        let event = server_events.take(&mut server_log, exchange.local).await;
        let report = Report {
            exchange: &exchange,
            event: event.as_ref(),
        };
        println!("{}. {:<28} wire: {}", number + 1, case.label, report.wire());
        println!("   {:<28} app:  {}", "", report.app());
        if let Err(problem) = report.check(case.flag, case.expected) {
            println!("   UNEXPECTED: {problem}");
            failures.push(format!("{}: {problem}", case.label));
        }
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .context("the server did not shut down")?
        .context("the server task failed")?;
    if !failures.is_empty() {
        bail!(
            "{} of {total} clients were not treated as expected:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    println!("\nall {total} clients were treated as expected");
    Ok(())
}

fn cases(pki: &Pki, provider: &Arc<CryptoProvider>) -> anyhow::Result<Vec<Case>> {
    let identity = |leaf: &Leaf| -> anyhow::Result<Arc<CertifiedKey>> {
        Ok(Arc::new(CertifiedKey::from_der(
            leaf.chain(),
            leaf.key(),
            provider,
        )?))
    };
    Ok(vec![
        Case {
            label: "browser, no flag",
            flags: None,
            flag: false,
            expected: Expected::Served(AuthPath::None),
        },
        Case {
            label: "bot, bot-CA certificate",
            flags: Some(ClientFlags::request_client_auth(identity(&pki.bot)?)),
            flag: true,
            expected: Expected::Served(AuthPath::Flag),
        },
        Case {
            label: "bot, other-CA certificate",
            flags: Some(ClientFlags::request_client_auth(identity(&pki.normal)?)),
            flag: true,
            expected: Expected::Refused,
        },
        Case {
            label: "bot, no certificate to give",
            flags: Some(ClientFlags::request_client_auth_with(Arc::new(
                NothingToGive,
            ))),
            flag: true,
            expected: Expected::Served(AuthPath::None),
        },
    ])
}

/// A bot's certificate store that has an identity configured (so the flag is
/// sent, RCA-1) but nothing to give when the server asks: say the certificate
/// expired and was removed. The bot answers with an empty Certificate (RCA-5).
#[derive(Debug)]
struct NothingToGive;

impl ResolvesClientCert for NothingToGive {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The server's events, matched to clients by the client's address.
#[derive(Default)]
struct ServerEvents {
    pending: HashMap<SocketAddr, Event>,
}

impl ServerEvents {
    /// The handshake event for the client at `client`; waits a little for it,
    /// since a refusal is reported just after the alert has been sent.
    async fn take(
        &mut self,
        log: &mut mpsc::UnboundedReceiver<Event>,
        client: SocketAddr,
    ) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(event) = self.pending.remove(&client) {
                return Some(event);
            }
            let event = tokio::time::timeout_at(deadline, log.recv()).await.ok()??;
            match event {
                Event::Connected { .. }
                | Event::Refused { .. }
                | Event::HandshakeTimedOut { .. } => {
                    if let Some(remote) = event.remote() {
                        self.pending.insert(remote, event);
                    }
                }
                // Errors after the handshake are not part of the report.
                Event::ConnectionFailed { .. } | Event::AcceptFailed(_) => {}
            }
        }
    }
}

/// One client's exchange with the server's view of it.
struct Report<'a> {
    exchange: &'a Exchange,
    event: Option<&'a Event>,
}

impl Report<'_> {
    /// What happened on the wire, from both ends.
    fn wire(&self) -> String {
        let tls = &self.exchange.tls;
        let flag = if tls.flag_sent() {
            "flag set"
        } else {
            "no flag"
        };
        match self.event {
            Some(Event::Connected { handshake, .. }) => {
                let request = match handshake.certificate_request {
                    None => "no CertificateRequest",
                    Some(RequestReason::Flag) => match handshake.identity.path {
                        AuthPath::None => {
                            "CertificateRequest acknowledging it -> empty Certificate"
                        }
                        _ => "CertificateRequest acknowledging it -> certificate verified",
                    },
                    Some(RequestReason::ServerPolicy) => "CertificateRequest (server policy)",
                };
                format!(
                    "{flag} -> {request}; {}, {}; server: {}",
                    version(tls.version),
                    tls.alpn.as_deref().unwrap_or("none"),
                    handshake.identity
                )
            }
            Some(Event::Refused { error, .. }) => {
                let request = match tls.certificate_request() {
                    None => "no CertificateRequest",
                    Some(CertificateRequestCause::Flag) => "CertificateRequest acknowledging it",
                    Some(CertificateRequestCause::ServerPolicy) => {
                        "CertificateRequest without the flag"
                    }
                };
                let alert = self
                    .received_alert()
                    .map_or_else(String::new, |alert| format!("; alert {alert:?}"));
                format!(
                    "{flag} -> {request} -> certificate refused: {}{alert}",
                    common::server::describe_io_error(error)
                )
            }
            Some(other) => format!("{flag}; server: {other}"),
            None => format!("{flag}; the server reported nothing"),
        }
    }

    /// What the application saw: the HTTP response, or the TLS error.
    fn app(&self) -> String {
        match &self.exchange.answer {
            Ok(answer) => answer.to_string(),
            Err(error) => match common::tls_error(error) {
                Some(tls) => format!(
                    "no response; TLS error: {}",
                    common::describe_tls_error(tls)
                ),
                None => format!("no response: {error:#}"),
            },
        }
    }

    /// The alert the client received, if that is how its request failed.
    fn received_alert(&self) -> Option<rustls::AlertDescription> {
        let error = self.exchange.answer.as_ref().err()?;
        match common::tls_error(error)? {
            rustls::Error::AlertReceived(alert) => Some(*alert),
            _ => None,
        }
    }

    /// Whether the client was treated as it must be.
    fn check(&self, flag: bool, expected: Expected) -> Result<(), String> {
        let tls = &self.exchange.tls;
        if tls.flag_sent() != flag {
            return Err(format!("flag sent: {}, expected {flag}", tls.flag_sent()));
        }
        let wanted_request = flag.then_some(CertificateRequestCause::Flag);
        if tls.flags.is_some() && tls.certificate_request() != wanted_request {
            return Err(format!(
                "CertificateRequest {:?}, expected {wanted_request:?}",
                tls.certificate_request()
            ));
        }
        match (expected, self.event, &self.exchange.answer) {
            (Expected::Served(path), Some(Event::Connected { handshake, .. }), Ok(answer)) => {
                let wanted = flag.then_some(RequestReason::Flag);
                if handshake.certificate_request != wanted {
                    return Err(format!(
                        "server sent CertificateRequest {:?}, expected {wanted:?}",
                        handshake.certificate_request
                    ));
                }
                if handshake.identity.path != path {
                    return Err(format!(
                        "served on path {:?}, expected {path:?}",
                        handshake.identity.path
                    ));
                }
                if answer.status != StatusCode::OK {
                    return Err(format!("HTTP status {}", answer.status));
                }
                Ok(())
            }
            (Expected::Refused, Some(Event::Refused { .. }), Err(_)) => {
                match self.received_alert() {
                    Some(_) => Ok(()),
                    None => Err("refused, but the client received no alert".to_owned()),
                }
            }
            (Expected::Refused, _, Ok(answer)) => Err(format!(
                "the server ACCEPTED a certificate from a CA it does not trust for bots and answered {answer}"
            )),
            (_, event, answer) => Err(format!(
                "server: {}; client: {}",
                event.map_or_else(|| "nothing".to_owned(), ToString::to_string),
                match answer {
                    Ok(answer) => answer.to_string(),
                    Err(error) => format!("{error:#}"),
                }
            )),
        }
    }
}

fn version(version: Option<rustls::ProtocolVersion>) -> String {
    version.map_or_else(|| "?".to_owned(), |version| format!("{version:?}"))
}
