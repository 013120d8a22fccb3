//! `rca-probe`: does a server honour `request_client_auth`? For each code
//! point, three connections: without the flag (does everyone get a
//! CertificateRequest, and so a browser a certificate picker?), with the flag
//! (a CertificateRequest? acknowledged, as the draft says, or not, as
//! Cloudflare's 2023 servers did? which CAs and signature schemes does it ask
//! for? was the identity accepted?), and a second flagged one (resumed? a
//! CertificateRequest under a PSK?). What the server does wrong is reported
//! with the rule it breaks.

pub mod cli;
mod verdict;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::common::printable::printable;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause, SentIdentity};
use rustls_req_client_auth::{
    describe_tls_error, find_tls_error, ClientFlags, CodePoints, FlagsError,
};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What to probe, and how: made by [`Target::new`], then its fields set
/// (more may come, so it is not built as a literal).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Target {
    /// The host name (for SNI and certificate checks) or IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The path of the HTTP request sent after each handshake.
    pub path: String,
    /// How to verify the server.
    pub trust: Trust,
    /// The bot identity to present, if any.
    pub identity: Option<Arc<CertifiedKey>>,
    /// The code points to try.
    pub code_points: Vec<CodePoints>,
    /// How long each connection may take, from TCP connect to the first
    /// answer (`--timeout-secs`).
    pub timeout: Duration,
}

impl Target {
    /// `host:port`, verified by `trust`, as `rca-probe` probes it by
    /// default: `/`, no bot identity, both code points, 10 s per
    /// connection.
    pub fn new(host: impl Into<String>, port: u16, trust: Trust) -> Self {
        Self {
            host: host.into(),
            port,
            path: "/".to_owned(),
            trust,
            identity: None,
            code_points: vec![CodePoints::DEFAULT, CodePoints::experimental()],
            timeout: Duration::from_secs(10),
        }
    }
}

/// How the server's certificate is checked.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Against these roots.
    Roots(RootCertStore),
    /// Not at all (`--insecure-skip-server-verification`): for diagnostics only.
    SkipVerification,
}

/// The verdict for the whole probe, and the process's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A CertificateRequest on the flag on some code point, nothing wrong seen.
    Honours,
    /// The server asked because of the flag, but refused the identity the
    /// probe sent (`--cert`/`--key`): the bot would not get in.
    IdentityRefused,
    /// No CertificateRequest because of the flag on any code point.
    NotSupported,
    /// The server broke a rule.
    Misbehaves,
    /// No TLS connection could be made.
    CouldNotConnect,
}

impl Verdict {
    /// The exit code: 0 honours, 1 not supported, 3 misbehaves, 4 could not
    /// connect, 5 the identity was refused (2 is for usage errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Honours => 0,
            Self::IdentityRefused => 5,
            Self::NotSupported => 1,
            Self::Misbehaves => 3,
            Self::CouldNotConnect => 4,
        }
    }
}

/// One connection's account.
#[derive(Clone, Debug, Default, Serialize)]
#[allow(clippy::struct_excessive_bools)] // a report: each is one observation
pub struct Connection {
    /// Whether the ClientHello set `request_client_auth`.
    pub flag_sent: bool,
    /// `None` if no TLS connection came about (then `error` says why).
    pub version: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// Whether the session was resumed.
    pub resumed: bool,
    /// Whether a CertificateRequest came.
    pub certificate_request: bool,
    /// Whether it acknowledged `request_client_auth`.
    pub acknowledged: bool,
    /// The CA names it asked for (as distinguished names).
    pub ca_names: Vec<String>,
    /// The signature schemes it asked for.
    pub signature_schemes: Vec<String>,
    /// What the probe answered with.
    pub sent: Option<String>,
    /// The HTTP status of the request after the handshake, if one came.
    pub http_status: Option<String>,
    /// Whether the server refused the certificate the probe sent: it
    /// answered the first request with an alert, or closed the connection
    /// without an answer.
    pub identity_refused: bool,
    /// Whether the server accepted the flag identity the probe sent: it
    /// answered the request after the handshake.
    pub identity_accepted: bool,
    /// Whether the server refused the empty Certificate the probe answered
    /// a request without the flag's acknowledgement with: it demands a
    /// certificate of every client (ordinary mutual TLS).
    pub certificate_required: bool,
    /// Why the connection failed, if it did.
    pub error: Option<String>,
    /// The rule the server broke, if the failure was one.
    pub rule_broken: Option<String>,
    /// No TCP connection, or no answer at all in time: the other
    /// connections are not tried (they would fail the same way, slowly).
    #[serde(skip)]
    unreachable: bool,
    /// The server ended the handshake on the ClientHello: an alert, a reset
    /// or a close, with no CertificateRequest and no rule broken. Not a
    /// timeout, a refused TCP connection or the probe's own refusal of the
    /// server's certificate.
    #[serde(skip)]
    pub(crate) hello_rejected: bool,
}

/// One code point's account.
#[derive(Clone, Debug, Serialize)]
pub struct CodePointReport {
    /// The `tls_flags` extension type.
    pub extension_type: u16,
    /// Without the flag.
    pub without_flag: Connection,
    /// With the flag.
    pub with_flag: Connection,
    /// With the flag again, resuming if the server allows.
    pub second: Connection,
    /// What this means.
    pub findings: Vec<String>,
    /// The verdict for this code point.
    pub verdict: Verdict,
}

/// The whole probe.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `host:port`.
    pub server: String,
    /// Each code point.
    pub code_points: Vec<CodePointReport>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Runs the probe.
pub async fn probe(target: &Target) -> Report {
    let mut code_points: Vec<CodePointReport> = Vec::new();
    for points in &target.code_points {
        let report = match code_points.last() {
            // Unreachable on one code point is unreachable on all.
            Some(last) if last.without_flag.unreachable => CodePointReport {
                extension_type: points.extension_type,
                ..last.clone()
            },
            _ => probe_code_point(target, *points).await,
        };
        code_points.push(report);
    }
    let verdicts: Vec<_> = code_points.iter().map(|report| report.verdict).collect();
    let verdict = if verdicts.contains(&Verdict::Misbehaves) {
        Verdict::Misbehaves
    } else if verdicts.contains(&Verdict::IdentityRefused) {
        Verdict::IdentityRefused
    } else if verdicts.contains(&Verdict::Honours) {
        Verdict::Honours
    } else if verdicts
        .iter()
        .all(|verdict| *verdict == Verdict::CouldNotConnect)
    {
        Verdict::CouldNotConnect
    } else {
        Verdict::NotSupported
    };
    Report {
        server: server_text(target),
        code_points,
        verdict,
    }
}

async fn probe_code_point(target: &Target, points: CodePoints) -> CodePointReport {
    let (without_flag, with_flag, second) = match (
        client_config(target, points, false),
        client_config(target, points, true),
    ) {
        (Ok(plain), Ok(flagged)) => {
            let without_flag = connect(target, &plain, false).await;
            if without_flag.unreachable {
                let failed = Connection {
                    flag_sent: true,
                    ..without_flag.clone()
                };
                (without_flag, failed.clone(), failed)
            } else {
                (
                    without_flag,
                    connect(target, &flagged, true).await,
                    connect(target, &flagged, true).await,
                )
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            let failed = Connection {
                error: Some(error),
                ..Connection::default()
            };
            (failed.clone(), failed.clone(), failed)
        }
    };
    let (mut findings, verdict) = verdict::judge(&without_flag, &with_flag, &second);
    findings.extend(verdict::identity_withheld(
        &with_flag,
        target.identity.is_some(),
    ));
    CodePointReport {
        extension_type: points.extension_type,
        without_flag,
        with_flag,
        second,
        findings,
        verdict,
    }
}

/// What the resolvers were asked on the current connection, recorded for
/// the report.
#[derive(Debug, Default)]
struct Asked {
    /// A CertificateRequest came (seen here in TLS 1.2 too, where the flags
    /// hook is not told of it).
    requested: bool,
    ca_names: Vec<Vec<u8>>,
    schemes: Vec<SignatureScheme>,
}

/// Answers with the bot identity (or nothing), and records what was asked.
#[derive(Debug)]
struct RecordingIdentity {
    identity: Option<Arc<CertifiedKey>>,
    asked: Arc<Mutex<Asked>>,
}

impl ResolvesClientCert for RecordingIdentity {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        asked.requested = true;
        asked.ca_names = root_hint_subjects
            .iter()
            .map(|name| name.to_vec())
            .collect();
        asked.schemes = sigschemes.to_vec();
        self.identity.clone()
    }

    /// Always: the probe sends the flag even without an identity, to see
    /// what the server does (it answers an acknowledged request with an
    /// empty Certificate, RCA-5).
    fn has_certs(&self) -> bool {
        true
    }
}

struct Probing {
    config: Arc<ClientConfig>,
    asked: Arc<Mutex<Asked>>,
}

fn client_config(target: &Target, points: CodePoints, flag: bool) -> Result<Probing, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let builder = match &target.trust {
        Trust::Roots(roots) => builder.with_root_certificates(roots.clone()),
        Trust::SkipVerification => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider))),
    };
    let asked = Arc::new(Mutex::new(Asked::default()));
    // The identity answers only a CertificateRequest that acknowledges the
    // flag, as `rca-connect` answers: any other request (without the flag,
    // in TLS 1.2, or one that ignores it) gets an empty Certificate, so the
    // bot's identity goes nowhere the flag did not take it.
    let anonymous = Arc::new(RecordingIdentity {
        identity: None,
        asked: Arc::clone(&asked),
    });
    let mut config = builder.with_client_cert_resolver(anonymous);
    config.alpn_protocols = rustls_req_client_auth::http_alpn();
    let flags = if flag {
        ClientFlags::request_client_auth_with(Arc::new(RecordingIdentity {
            identity: target.identity.clone(),
            asked: Arc::clone(&asked),
        }))
    } else {
        ClientFlags::without_identity()
    };
    flags
        .code_points(points)
        .install(&mut config)
        .map_err(|error| error.to_string())?;
    Ok(Probing {
        config: Arc::new(config),
        asked,
    })
}

async fn connect(target: &Target, probing: &Probing, flag_sent: bool) -> Connection {
    let mut report = Connection {
        flag_sent,
        ..Connection::default()
    };
    let result = tokio::time::timeout(target.timeout, exchange(target, probing, &mut report)).await;
    let error = match result {
        Ok(Ok(())) => return report,
        Ok(Err(error)) => error,
        Err(_) => {
            report.unreachable = report.version.is_none();
            format!("no answer within {:?}", target.timeout)
        }
    };
    report.error = Some(error);
    report
}

async fn exchange(
    target: &Target,
    probing: &Probing,
    report: &mut Connection,
) -> Result<(), String> {
    *probing.asked.lock().unwrap_or_else(PoisonError::into_inner) = Asked::default();
    let server_name = ServerName::try_from(target.host.clone())
        .map_err(|error| format!("{} is not a server name: {error}", target.host))?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|error| {
            report.unreachable = true;
            format!("cannot connect to {}: {error}", server_text(target))
        })?;
    let connector = TlsConnector::from(Arc::clone(&probing.config));
    let handshake = connector.connect(server_name, tcp).await;
    let mut stream = match handshake {
        Ok(stream) => stream,
        Err(error) => {
            if let Some(flags) = find_tls_error(&error).and_then(FlagsError::from_rustls) {
                report.rule_broken = Some(flags.rule().to_owned());
            }
            // A server that demands a certificate of everyone refuses the
            // empty one in the handshake (TLS 1.2): its request counts. Only
            // then: in TLS 1.3 the request comes before the server's own
            // certificate, which the probe may refuse itself, having sent
            // nothing.
            let requested = probing
                .asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .requested;
            if requested && demands_a_certificate(find_tls_error(&error)) {
                report.certificate_request = true;
                report.sent = Some(SentIdentity::Empty.to_string());
                report.certificate_required = true;
            }
            report.hello_rejected =
                !requested && report.rule_broken.is_none() && ended_by_the_server(&error);
            return Err(
                find_tls_error(&error).map_or_else(|| error.to_string(), describe_tls_error)
            );
        }
    };
    record(stream.get_ref().1, probing, report);
    // One request: a server that refuses the certificate says so now.
    let answer = first_answer(target, &mut stream).await;
    record(stream.get_ref().1, probing, report);
    let identity_sent = matches!(
        client_state(stream.get_ref().1)
            .map(rustls_req_client_auth::client::ClientFlagsState::sent_identity),
        Some(SentIdentity::FlagIdentity | SentIdentity::ConfigIdentity)
    );
    match answer {
        Ok(status) => {
            // TLS 1.3: a refusal comes after the client's Finished, as an
            // alert or as a close before any answer.
            report.identity_refused = identity_sent && status.is_none();
            report.identity_accepted = identity_sent && status.is_some();
            report.http_status = status;
            Ok(())
        }
        Err(error) => {
            let alert = matches!(
                find_tls_error(&error),
                Some(rustls::Error::AlertReceived(_))
            );
            report.identity_refused =
                identity_sent && (alert || error.kind() == std::io::ErrorKind::UnexpectedEof);
            // A request that acknowledged the flag and refuses an empty
            // answer is the flag path's own policy (RCA-14), not mutual TLS
            // for everyone.
            report.certificate_required = !identity_sent
                && report.certificate_request
                && !report.acknowledged
                && demands_a_certificate(find_tls_error(&error));
            Err(find_tls_error(&error).map_or_else(|| error.to_string(), describe_tls_error))
        }
    }
}

/// `host:port` as a URL writes it (an IPv6 address in brackets).
fn server_text(target: &Target) -> String {
    if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    }
}

/// Sends one HTTP/1.1 request (or, over HTTP/2, the connection preface)
/// and reads the answer's first line (or whether SETTINGS came); `None` for
/// a close before any answer.
async fn first_answer(
    target: &Target,
    stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
) -> std::io::Result<Option<String>> {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let host = if target.port == 443 {
        host
    } else {
        format!("{host}:{}", target.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: rca-probe\r\n\r\n",
        target.path
    );
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let mut head = vec![0; 256];
    if h2 {
        // The HTTP/2 preface and an empty SETTINGS frame; a server that
        // accepted the client answers with its SETTINGS, one that refused
        // its certificate with an alert.
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await?;
        let read = stream.read(&mut head).await?;
        if read == 0 {
            return Ok(None);
        }
        let settings = head.get(3) == Some(&4) && read >= 9;
        return Ok(Some(
            if settings {
                "HTTP/2 SETTINGS received"
            } else {
                "HTTP/2: no SETTINGS frame"
            }
            .to_owned(),
        ));
    }
    stream.write_all(request.as_bytes()).await?;
    let read = stream.read(&mut head).await?;
    if read == 0 {
        return Ok(None);
    }
    let head = head.get(..read).unwrap_or_default();
    Ok(Some(
        String::from_utf8_lossy(head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// Whether `error` is a server's refusal of an empty Certificate: TLS 1.3's
/// `certificate_required`, or the `handshake_failure` TLS 1.2 servers send.
/// Whether the server ended a handshake: an alert it sent, or a reset or
/// close; not an error of the probe's own (a certificate it refused).
fn ended_by_the_server(error: &std::io::Error) -> bool {
    match find_tls_error(error) {
        Some(rustls::Error::AlertReceived(_)) => true,
        Some(_) => false,
        None => matches!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

fn demands_a_certificate(error: Option<&rustls::Error>) -> bool {
    matches!(
        error,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::HandshakeFailure
        ))
    )
}

fn record(conn: &rustls::ClientConnection, probing: &Probing, report: &mut Connection) {
    report.version = conn
        .protocol_version()
        .map(|version| format!("{version:?}"));
    report.alpn = conn
        .alpn_protocol()
        .map(|alpn| String::from_utf8_lossy(alpn).into_owned());
    report.resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let asked = probing.asked.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(state) = client_state(conn) {
        report.certificate_request = state.certificate_request().is_some();
        report.acknowledged = state.certificate_request() == Some(CertificateRequestCause::Flag);
        report.sent = match state.sent_identity() {
            // TLS 1.2: the hook is not told; the resolver, if asked, answered
            // with nothing (see `client_config`, and below).
            SentIdentity::NotRequested | SentIdentity::NotObserved => None,
            sent => Some(sent.to_string()),
        };
    }
    if asked.requested && !report.certificate_request {
        // TLS 1.2, where flags do nothing (RCA-12): the request is the
        // server's own policy.
        report.certificate_request = true;
        report.sent = Some(SentIdentity::Empty.to_string());
    }
    if report.certificate_request {
        report.ca_names = asked
            .ca_names
            .iter()
            .map(|name| distinguished_name(name))
            .collect();
        report.signature_schemes = asked
            .schemes
            .iter()
            .map(|scheme| format!("{scheme:?}"))
            .collect();
    }
}

/// A CertificateRequest's CA name (the DER of an X.501 `Name`) as text.
fn distinguished_name(name: &[u8]) -> String {
    use x509_parser::prelude::FromDer as _;
    x509_parser::x509::X509Name::from_der(name).map_or_else(
        |_| "(unparsable name)".into(),
        |(_, parsed)| parsed.to_string(),
    )
}

/// `--insecure-skip-server-verification`: accepts any server certificate
/// (signatures are still checked, so the handshake itself is sound).
#[derive(Debug)]
struct NoServerVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rca-probe {}", self.server)?;
        for report in &self.code_points {
            writeln!(
                f,
                "\ncode point {} ({:#06x}):",
                report.extension_type, report.extension_type
            )?;
            for (label, connection) in [
                ("without the flag", &report.without_flag),
                ("with the flag", &report.with_flag),
                ("second, flagged", &report.second),
            ] {
                // What the server sent is in it (its status line, its CA
                // names): it could otherwise rewrite the terminal's lines.
                let connection = connection.to_string();
                writeln!(f, "  {label:<18} {}", printable(&connection))?;
            }
            for finding in &report.findings {
                writeln!(f, "  - {}", printable(finding))?;
            }
            // Not "verdict": a server that honours one code point is fine,
            // and the other's "does not support" here would read as a fault.
            writeln!(f, "  on this code point: {}", report.verdict)?;
        }
        write!(f, "\nverdict: {}", self.verdict)
    }
}

impl Report {
    /// Whether no connection came about because the server's chain leads
    /// to no trusted CA, which `--ca` may mend (a CA's own certificate
    /// served as the server's it may not: that description says what to
    /// do).
    pub fn could_not_connect_for_an_unknown_issuer(&self) -> bool {
        self.verdict == Verdict::CouldNotConnect
            && self
                .code_points
                .iter()
                .flat_map(|report| [&report.without_flag, &report.with_flag, &report.second])
                .filter_map(|connection| connection.error.as_deref())
                .any(|error| error.contains("UnknownIssuer"))
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(version) = &self.version else {
            if self.certificate_request {
                f.write_str("CertificateRequest without the flag's acknowledgement; sent an empty Certificate; ")?;
            }
            return write!(f, "failed: {}", self.error.as_deref().unwrap_or("?"));
        };
        write!(
            f,
            "{version}, ALPN {}",
            self.alpn.as_deref().unwrap_or("none")
        )?;
        if self.resumed {
            f.write_str(", resumed")?;
        }
        f.write_str(match (self.certificate_request, self.acknowledged) {
            (false, _) => "; no CertificateRequest",
            (true, true) => "; CertificateRequest acknowledging the flag",
            (true, false) => "; CertificateRequest without the flag's acknowledgement",
        })?;
        if !self.ca_names.is_empty() {
            write!(f, " (CAs: {})", self.ca_names.join("; "))?;
        }
        if !self.signature_schemes.is_empty() {
            write!(f, " (schemes: {})", self.signature_schemes.join(", "))?;
        }
        if let Some(sent) = &self.sent {
            write!(f, "; {sent}")?;
        }
        match (&self.http_status, &self.error) {
            (_, Some(error)) => write!(f, "; then refused: {error}"),
            (Some(status), None) if self.identity_accepted => {
                write!(f, "; identity accepted ({status})")
            }
            (Some(status), None) => write!(f, "; {status}"),
            (None, None) if self.identity_refused => {
                f.write_str("; then closed without an answer: identity refused")
            }
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Honours => "honours request_client_auth",
            Self::IdentityRefused => "honours request_client_auth, but refused the identity sent",
            Self::NotSupported => "does not support request_client_auth",
            Self::Misbehaves => "misbehaves",
            Self::CouldNotConnect => "could not connect",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Connection;
    use crate::common::printable::printable;

    /// What a server sends reaches the text report with nothing a terminal
    /// would act on: an escape sequence that sets the title and moves the
    /// cursor, a bell, a carriage return, a right-to-left override.
    #[test]
    fn server_text_is_printed_escaped() {
        let connection = Connection {
            version: Some("TLSv1_3".into()),
            http_status: Some("HTTP/1.1 200 \u{1b}]0;owned\u{7}\u{1b}[1A\rverdict: honours".into()),
            ca_names: vec!["CN=\u{202e}AC dab".into()],
            ..Connection::default()
        };
        let shown = connection.to_string();
        let printed = printable(&shown);
        assert!(!printed.chars().any(char::is_control), "{printed}");
        assert!(printed.contains("\\u{1b}]0;owned\\u{7}"), "{printed}");
        assert!(printed.contains("\\u{202e}AC dab"), "{printed}");
        assert_eq!(printable("HTTP/1.1 200 OK"), "HTTP/1.1 200 OK");
    }
}
