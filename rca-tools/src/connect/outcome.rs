//! What happened on one upstream connection: what the server did with the
//! flag and which identity was sent, told to the client in a header and
//! logged as one JSON line per connection.

use std::sync::Arc;

use rustls::HandshakeKind;
use rustls_req_client_auth::client::{
    client_state, CertificateRequestCause, ClientFlagsState, SentIdentity,
};
use serde::Serialize;

use crate::common::json_lines;
use crate::connect::metrics::ConnectMetrics;

/// What happened on one upstream connection, as far as the client can tell
/// when it is made; in the extensions of every response made on it.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionOutcome {
    /// The host, as the client asked for it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `None` on a plain `http://` connection.
    pub tls: Option<TlsOutcome>,
}

impl ConnectionOutcome {
    /// The outcome header of rca-connect's own 502 when no connection came
    /// about (unreachable, the server's certificate not verified, the
    /// handshake failed, as a TLS 1.2 server requiring a certificate fails
    /// it): no certificate and no request were sent.
    pub const NO_CONNECTION: http::HeaderValue =
        http::HeaderValue::from_static("flag=no-connection; identity=none; tls=none");

    /// The outcome header's value: `flag=` what the server did with the flag
    /// (`acknowledged`, `not-acknowledged`: a CertificateRequest without it,
    /// `no-certificate-request`, `resumed`, `tls12`, `not-sent`), `identity=` the
    /// `x5t#S256` sent (resumed: the resumed session's) or `none`, the TLS
    /// version and ALPN, and `refused` when
    /// the server refused the connection after the handshake.
    pub fn header_value(&self, refused: bool) -> http::HeaderValue {
        let mut value = match &self.tls {
            None => format!("flag={}; identity=none; tls=none", self.flag()),
            Some(tls) => format!(
                "flag={}; identity={}; tls={}; alpn={}",
                self.flag(),
                tls.identity.as_deref().unwrap_or("none"),
                TlsOutcome::version(tls.protocol),
                tls.alpn.as_deref().unwrap_or("none")
            ),
        };
        if refused {
            value.push_str("; refused");
        }
        // Every part is a token, base64url or a fixed word.
        http::HeaderValue::try_from(value)
            .unwrap_or_else(|_| http::HeaderValue::from_static("unknown"))
    }

    /// What the server did with the flag, in a word: `acknowledged`,
    /// `not-acknowledged` (a CertificateRequest without it),
    /// `no-certificate-request`, `resumed` (the session's path holds),
    /// `tls12` (the flag is TLS 1.3's, and whether a TLS 1.2 server asked
    /// for a certificate is not observed, RCA-12; none was sent), or
    /// `not-sent` (plain HTTP, or a host outside the identity allowlist).
    pub fn flag(&self) -> &'static str {
        match &self.tls {
            None => "not-sent",
            Some(tls) => match (tls.flag_sent, tls.resumed, tls.certificate_request) {
                (false, _, _) => "not-sent",
                (true, _, _) if tls.protocol == Some(rustls::ProtocolVersion::TLSv1_2) => "tls12",
                (true, true, _) => "resumed",
                (true, false, Some("flag")) => "acknowledged",
                (true, false, Some(_)) => "not-acknowledged",
                (true, false, None) => "no-certificate-request",
            },
        }
    }
}

/// In the extensions of every response made on a connection: its outcome,
/// and the outcome header's value, made once per connection.
#[derive(Clone, Debug)]
pub struct AnsweredOn {
    /// What happened on the connection.
    pub outcome: Arc<ConnectionOutcome>,
    /// [`ConnectionOutcome::header_value`] of it.
    pub header: http::HeaderValue,
}

/// The TLS part of a [`ConnectionOutcome`].
#[derive(Clone, Debug, Serialize)]
pub struct TlsOutcome {
    /// The version (TLS 1.2: the flag does not exist there, and a
    /// CertificateRequest is not observed, RCA-12); `TLSv1_3` or `TLSv1_2`
    /// in the log and the header.
    #[serde(rename = "version", serialize_with = "version_text")]
    pub protocol: Option<rustls::ProtocolVersion>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// Whether the session was resumed (then no CertificateRequest comes:
    /// the server keeps the path of the session it resumes, RCA-11).
    pub resumed: bool,
    /// Whether the ClientHello set `request_client_auth` (not for hosts
    /// outside the identity allowlist).
    pub flag_sent: bool,
    /// `flag` (acknowledged), `server_policy` (not acknowledged) or `None`.
    pub certificate_request: Option<&'static str>,
    /// Which certificate answered it.
    pub identity_sent: String,
    /// Whether a certificate was sent at all (the flag identity, or the
    /// config's own, which rca-connect does not have).
    #[serde(skip)]
    pub certificate_sent: bool,
    /// The `x5t#S256` of the bot certificate, if that was sent; on a
    /// resumed session, if the session resumed was authenticated with it.
    pub identity: Option<String>,
}

impl TlsOutcome {
    /// `protocol` as the log and the header write it (`TLSv1_3`).
    fn version(protocol: Option<rustls::ProtocolVersion>) -> String {
        protocol.map_or_else(String::new, |version| format!("{version:?}"))
    }

    /// Whether the server acknowledged the flag.
    pub fn acknowledged(&self) -> bool {
        self.certificate_request == Some("flag")
    }

    /// Whether a CertificateRequest was answered with no certificate (one
    /// without the flag's acknowledgement, RCA-2; TLS 1.3, where requests
    /// are observed).
    pub fn answered_empty(&self) -> bool {
        self.certificate_request.is_some() && !self.certificate_sent
    }
}

/// What the handshake of `conn` did with the flag; `resumed_identity`: the
/// identity of the session it offered to resume (see
/// [`crate::connect::sessions::offered_identity`]), which the server holds
/// if it resumed it.
pub(crate) fn tls_outcome(
    conn: &rustls::ClientConnection,
    flag_sent: bool,
    thumbprint: &str,
    resumed_identity: Option<String>,
) -> TlsOutcome {
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let state = client_state(conn);
    let sent = state.map_or(SentIdentity::NotRequested, ClientFlagsState::sent_identity);
    TlsOutcome {
        protocol: conn.protocol_version(),
        alpn: conn
            .alpn_protocol()
            .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
        resumed,
        flag_sent,
        certificate_request: state
            .and_then(ClientFlagsState::certificate_request)
            .map(|cause| match cause {
                CertificateRequestCause::Flag => "flag",
                CertificateRequestCause::ServerPolicy => "server_policy",
            }),
        identity_sent: sent.to_string(),
        certificate_sent: matches!(
            sent,
            SentIdentity::FlagIdentity
                | SentIdentity::ConfigIdentity
                | SentIdentity::OtherHookIdentity
        ),
        identity: if resumed {
            resumed_identity
        } else {
            (sent == SentIdentity::FlagIdentity).then(|| thumbprint.to_owned())
        },
    }
}

/// [`TlsOutcome::protocol`] as the JSON log line writes it.
// serde's `serialize_with` hands the field over by reference.
#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn version_text<S: serde::Serializer>(
    protocol: &Option<rustls::ProtocolVersion>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&TlsOutcome::version(*protocol))
}

/// One JSON line per upstream connection, on standard output.
#[derive(Serialize)]
struct ConnectionLine<'a> {
    time: String,
    event: &'static str,
    #[serde(flatten)]
    outcome: &'a ConnectionOutcome,
    acknowledged: bool,
    /// Why the server refused the bot certificate.
    refused: Option<&'a str>,
    /// Why the connection failed otherwise.
    error: Option<&'a str>,
}

/// Logs and counts one upstream connection, once its outcome is known.
pub(crate) fn report(metrics: &ConnectMetrics, outcome: &ConnectionOutcome, failure: Option<&str>) {
    log_connection(outcome, failure);
    let connected = outcome.tls.is_some() || failure.is_none();
    metrics.connection(
        connected.then(|| outcome.flag()),
        failure.is_some(),
        failure.is_some_and(is_refusal),
    );
}

fn log_connection(outcome: &ConnectionOutcome, failure: Option<&str>) {
    let refused = failure.filter(|failure| is_refusal(failure));
    json_lines::push_json(&ConnectionLine {
        time: crate::common::timestamp::rfc3339_millis(std::time::SystemTime::now()),
        event: "upstream_connection",
        outcome,
        acknowledged: outcome.tls.as_ref().is_some_and(TlsOutcome::acknowledged),
        refused,
        error: failure.filter(|_| refused.is_none()),
    });
}

/// Whether a failure is the server refusing the bot certificate.
fn is_refusal(failure: &str) -> bool {
    failure.contains(REFUSED)
}

/// The words every refusal's text has.
const REFUSED: &str = "refused the bot certificate";
