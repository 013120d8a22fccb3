//! The two handshake targets: a flag-enabled server fed arbitrary bytes as
//! the client's side of the connection, and a flag-enabled client fed
//! arbitrary bytes as the server's side.
//!
//! # Input
//!
//! `[variant, chunk, peer bytes ...]`:
//!
//! - `variant` selects the configuration (its two low bits, see [`variant`]);
//!   the other bits are ignored.
//! - `chunk`: the peer bytes reach `read_tls` in pieces of this many bytes,
//!   each followed by `process_new_packets` (0: all at once), as from a
//!   socket that splits records anywhere.
//!
//! A missing header byte counts as 0.
//!
//! # Assertions (besides "no panic")
//!
//! - Everything the connection writes is whole, well-formed TLS records, and
//!   none is application data unless TLS 1.3 (whose encrypted records all say
//!   `application_data`) was negotiated: the targets never write any data.
//! - When `process_new_packets` fails, the connection has queued something
//!   (`wants_write()`), and the last record it writes is an alert: a
//!   plaintext fatal alert (content type 21), a TLS 1.2 encrypted alert (type
//!   21), or a TLS 1.3 encrypted record of exactly an alert's length. The
//!   exceptions, errors rustls by design raises without an alert, are listed
//!   in [`alert_optional`].
//! - No plaintext reaches the application while the handshake is running
//!   (no early data is configured on either side).
//! - Server: a CertificateRequest is only ever sent because of the flag (the
//!   config has no verifier of its own), a client only counts as a flag
//!   client with a certificate chain, and under `require_certificate` a
//!   completed TLS 1.3 handshake with a flagged client is on the flag path.
//! - Client: a completed handshake always has the server's certificates
//!   (the server proved them: the client cannot be talked past them), and a
//!   CertificateRequest only counts as acknowledging the flag if the flag was
//!   offered.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, ConnectionCommon, Error, InvalidMessage,
    PeerMisbehaved, ProtocolVersion, ServerConfig, ServerConnection, SupportedProtocolVersion,
};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause};
use rustls_req_client_auth::server::{peer, server_state, AuthPath, ServerFlagsState};
use rustls_req_client_auth::{ClientFlags, CodePoints, OtherRequests, ServerFlags};

use crate::pki::{Pki, SERVER_NAME};
use crate::provider::{provider, End, FixedTime};
use crate::wire::{self, Record};

/// The bits of the first input byte.
pub mod variant {
    /// Both sides: the experimental code points (extension 0xFE01) instead
    /// of the default ones (62).
    pub const EXPERIMENTAL: u8 = 1;
    /// Server: `ServerFlags::require_certificate`.
    pub const REQUIRE_CERTIFICATE: u8 = 2;
    /// Client: `OtherRequests::FlagIdentityOn` its code points (answer any
    /// CertificateRequest with the bot identity).
    pub const FLAG_IDENTITY_FOR_ALL: u8 = 2;
    /// How many configurations there are per side.
    pub const COUNT: usize = 4;
}

/// A fuzz input taken apart.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The configuration, `0..variant::COUNT`.
    pub variant: u8,
    /// Bytes per `read_tls`; 0 for everything at once.
    pub chunk: usize,
    /// What the peer sends.
    pub peer: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits off the header.
    pub fn parse(data: &'a [u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        Self {
            variant: byte(0) & 3,
            chunk: usize::from(byte(1)),
            peer: data.get(2..).unwrap_or_default(),
        }
    }

    /// The input for `peer` bytes sent in one piece to `variant`.
    pub fn encode(variant: u8, peer: &[u8]) -> Vec<u8> {
        let mut data = vec![variant, 0];
        data.extend_from_slice(peer);
        data
    }
}

/// An alert the connection wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentAlert {
    /// A plaintext fatal alert with this description.
    Plain(AlertDescription),
    /// An encrypted alert (the harness does not hold the keys to read it).
    Encrypted,
}

/// What happened to one connection.
#[derive(Debug)]
pub struct Drive {
    /// Everything the connection wrote.
    pub written: Vec<u8>,
    /// The error of `process_new_packets`, if one failed (processing stops there).
    pub error: Option<Error>,
    /// The alert that error queued.
    pub alert: Option<SentAlert>,
}

impl Drive {
    /// Whether the connection wrote a plaintext handshake record starting
    /// with a message of `msg_type`.
    pub fn wrote_handshake(&self, msg_type: u8) -> bool {
        wire::records(&self.written)
            .unwrap_or_default()
            .iter()
            .any(|record| record.handshake_type() == Some(msg_type))
    }
}

/// The server target's result.
#[derive(Debug)]
pub struct ServerRun {
    /// The connection after the input.
    pub conn: ServerConnection,
    /// What happened.
    pub drive: Drive,
}

/// The client target's result.
#[derive(Debug)]
pub struct ClientRun {
    /// The connection after the input.
    pub conn: ClientConnection,
    /// What happened.
    pub drive: Drive,
}

/// The `handshake_server` target: a fresh server connection reads the input.
pub fn server(data: &[u8]) -> ServerRun {
    let input = Input::parse(data);
    let config = &fuzz_configs().servers[usize::from(input.variant)];
    let mut conn = ServerConnection::new(Arc::clone(config)).expect("server connection");
    let drive = drive(&mut *conn, &input);
    check_server(&conn, &drive, input.variant);
    ServerRun { conn, drive }
}

/// The `handshake_client` target: a fresh client connection (its
/// ClientHello is the same on every run) reads the input.
pub fn client(data: &[u8]) -> ClientRun {
    let input = Input::parse(data);
    let config = &fuzz_configs().clients[usize::from(input.variant)];
    let mut conn = ClientConnection::new(
        Arc::clone(config),
        SERVER_NAME.try_into().expect("a DNS name"),
    )
    .expect("client connection");
    let drive = drive(&mut *conn, &input);
    check_client(&conn, &drive);
    ClientRun { conn, drive }
}

struct FuzzConfigs {
    servers: Vec<Arc<ServerConfig>>,
    clients: Vec<Arc<ClientConfig>>,
}

/// Built once per process: configurations keep no state from one
/// connection to the next (no session storage, no resumption).
fn fuzz_configs() -> &'static FuzzConfigs {
    static CONFIGS: OnceLock<FuzzConfigs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let pki = Pki::embedded();
        let variants = 0..u8::try_from(variant::COUNT).expect("a few variants");
        FuzzConfigs {
            servers: variants
                .clone()
                .map(|v| Arc::new(server_config(&pki, v)))
                .collect(),
            clients: variants.map(|v| Arc::new(client_config(&pki, v))).collect(),
        }
    })
}

/// The server of the `handshake_server` target for `variant`: the server
/// certificate, no client authentication of its own, `ServerFlags` with a
/// `WebPkiClientVerifier` for the bot CA.
pub fn server_config(pki: &Pki, variant: u8) -> ServerConfig {
    let crypto = provider(End::Server);
    let mut config = server_base(pki, crypto.clone(), rustls::DEFAULT_VERSIONS, None);
    let bots = WebPkiClientVerifier::builder_with_provider(Arc::new(pki.bot_roots()), crypto)
        .build()
        .expect("bot CA verifier");
    let mut flags = ServerFlags::request_client_auth(bots);
    if variant & variant::EXPERIMENTAL != 0 {
        flags = flags.code_points(CodePoints::experimental());
    }
    if variant & variant::REQUIRE_CERTIFICATE != 0 {
        flags = flags.require_certificate();
    }
    flags
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

/// A server with the test certificate, the fixed clock, `crypto`, and
/// `verifier` (if any) as its own client authentication; no hooks, no
/// session storage.
pub fn server_base(
    pki: &Pki,
    crypto: Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> ServerConfig {
    let builder = ServerConfig::builder_with_details(crypto, FixedTime::arc())
        .with_protocol_versions(versions)
        .expect("versions the provider supports");
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(pki.server_chain(), pki.server_private_key())
        .expect("server identity");
    config.session_storage = Arc::new(NoServerSessionStorage {});
    without_certificate_compression(&mut config.cert_compressors, &mut config.cert_decompressors);
    config
}

/// rustls's certificate compression algorithms are cargo features (`zlib`,
/// `brotli`), which feature unification turns on differently in the fuzz
/// workspace and the main one; with them the ClientHello (its
/// `compress_certificate` extension) and so every recorded seed would
/// depend on the build. Off on both sides.
fn without_certificate_compression<C, D>(compressors: &mut Vec<C>, decompressors: &mut Vec<D>) {
    compressors.clear();
    decompressors.clear();
}

/// The client of the `handshake_client` target for `variant`: trusts the
/// server CA, `ClientFlags` with the bot identity.
pub fn client_config(pki: &Pki, variant: u8) -> ClientConfig {
    let code_points = if variant & variant::EXPERIMENTAL != 0 {
        CodePoints::experimental()
    } else {
        CodePoints::DEFAULT
    };
    let mut flags = ClientFlags::request_client_auth(bot_identity(pki)).code_points(code_points);
    if variant & variant::FLAG_IDENTITY_FOR_ALL != 0 {
        flags = flags.other_requests(OtherRequests::FlagIdentityOn(code_points));
    }
    client_base(pki, rustls::DEFAULT_VERSIONS, Some(flags))
}

/// A deterministic client trusting the server CA, with `flags` (if any)
/// installed and resumption off (its ClientHello never depends on an earlier
/// connection).
pub fn client_base(
    pki: &Pki,
    versions: &[&'static SupportedProtocolVersion],
    flags: Option<ClientFlags>,
) -> ClientConfig {
    let mut config = ClientConfig::builder_with_details(provider(End::Client), FixedTime::arc())
        .with_protocol_versions(versions)
        .expect("versions the provider supports")
        .with_root_certificates(pki.server_roots())
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    without_certificate_compression(&mut config.cert_compressors, &mut config.cert_decompressors);
    if let Some(flags) = flags {
        flags
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
    }
    config
}

/// The bot's certificate and key.
pub fn bot_identity(pki: &Pki) -> Arc<CertifiedKey> {
    let key = provider(End::Client)
        .key_provider
        .load_private_key(pki.bot_private_key())
        .expect("bot key");
    Arc::new(CertifiedKey::new(pki.bot_chain(), key))
}

/// Feeds `input.peer` to `conn` and checks what it writes back.
///
/// The writes go through the shared `memory_pump`; the reads are this
/// target's own (in `chunk`-sized pieces, with the checks above after every
/// `process_new_packets`), which the pump's `deliver` does not offer.
fn drive<D>(conn: &mut ConnectionCommon<D>, input: &Input<'_>) -> Drive {
    let mut drive = Drive {
        written: Vec::new(),
        error: None,
        alert: None,
    };
    // A client's ClientHello.
    memory_pump::flush_into(conn, &mut drive.written);
    let chunk = match input.chunk {
        0 => input.peer.len().max(1),
        n => n,
    };
    'input: for piece in input.peer.chunks(chunk) {
        let mut piece = piece;
        while !piece.is_empty() {
            // An error here is the deframer's buffer limit (64 KiB of an
            // unfinished handshake message): an application stops reading.
            match conn.read_tls(&mut piece) {
                Ok(0) | Err(_) => break 'input,
                Ok(_) => {}
            }
            match conn.process_new_packets() {
                Ok(state) => {
                    assert!(
                        state.plaintext_bytes_to_read() == 0 || !conn.is_handshaking(),
                        "plaintext before the handshake completed"
                    );
                    discard_plaintext(conn);
                    memory_pump::flush_into(conn, &mut drive.written);
                }
                Err(error) => {
                    let queued = conn.wants_write();
                    let from = drive.written.len();
                    memory_pump::flush_into(conn, &mut drive.written);
                    let tls13 = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
                    drive.alert = check_failure(&error, queued, &drive.written[from..], tls13);
                    drive.error = Some(error);
                    break 'input;
                }
            }
        }
    }
    check_records(&drive.written, conn.protocol_version());
    drive
}

fn discard_plaintext<D>(conn: &mut ConnectionCommon<D>) {
    let mut buf = [0; 4096];
    while matches!(conn.reader().read(&mut buf), Ok(n) if n > 0) {}
}

/// The alert a failing `process_new_packets` queued, checked as the module
/// docs say. `written` is what the connection wrote after the failure.
fn check_failure(error: &Error, queued: bool, written: &[u8], tls13: bool) -> Option<SentAlert> {
    let records = wire::records(written).expect("whole records");
    let last = records.last();
    let alert = last.and_then(|record| match (record.typ, record.payload) {
        (wire::ALERT, &[level, description]) => {
            assert!(
                level == 2 || alert_optional(error),
                "{error:?}: the alert is not fatal ({description})"
            );
            Some(SentAlert::Plain(AlertDescription::from(description)))
        }
        (wire::ALERT, _) => Some(SentAlert::Encrypted),
        (wire::APPLICATION_DATA, payload)
            if tls13 && payload.len() == wire::TLS13_ENCRYPTED_ALERT_LEN =>
        {
            Some(SentAlert::Encrypted)
        }
        _ => None,
    });
    if !alert_optional(error) {
        if (!queued || alert.is_none()) && !ours(error) && !strict_alerts() {
            // rustls's own behaviour on a path neither TLS Flags nor the fork's
            // hooks touch: reported, not failed (see `strict_alerts`).
            report_upstream(error);
            return alert;
        }
        assert!(queued, "{error:?}: failed without queueing an alert");
        assert!(
            alert.is_some(),
            "{error:?}: the last record written is not an alert: {last:?}"
        );
    }
    alert
}

/// Errors raised by TLS Flags (a `FlagsError`) or by the refusals the fork's
/// patches added: these must always come with an alert.
fn ours(error: &Error) -> bool {
    rustls_req_client_auth::FlagsError::from_rustls(error).is_some()
        || matches!(
            error,
            Error::InvalidMessage(
                InvalidMessage::UnknownCertificateExtension
                    | InvalidMessage::UnknownHelloRetryRequestExtension
                    | InvalidMessage::DuplicateExtension(_)
            )
        )
}

/// Whether every error outside [`alert_optional`] must send an alert
/// (`FUZZ_STRICT_ALERTS` unset or not `0`, the default, for the long runs
/// that look for rustls's own gaps), or only [`ours`] (`FUZZ_STRICT_ALERTS=0`,
/// CI's smoke run: rustls 0.23.46 has error paths without an alert in code
/// the fork does not change, three found so far, see fuzz/README.md, and a
/// smoke run that stumbles on another must not fail the change under test).
fn strict_alerts() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var("FUZZ_STRICT_ALERTS").map_or(true, |v| v != "0"))
}

/// Prints the first alert-less upstream error of a run.
fn report_upstream(error: &Error) {
    static REPORTED: OnceLock<()> = OnceLock::new();
    REPORTED.get_or_init(|| {
        eprintln!(
            "note: rustls failed with {error:?} without sending an alert, on a path \
             outside TLS Flags and the fork's hooks (rustls's own behaviour; \
             FUZZ_STRICT_ALERTS=1 makes this fatal)"
        );
    });
}

/// Errors after which rustls by design queues no alert (or not always), so
/// the targets do not require one:
///
/// - `AlertReceived`: the peer's fatal alert closed the connection; nothing
///   is answered to it (RFC 8446, 6.2). A TLS 1.3 warning alert also ends
///   here, and that one does get a `decode_error`.
/// - The record layer's limits on what a peer may send, checked before any
///   message reaches the handshake state: too many empty records, warning
///   alerts, `change_cipher_spec` records, `key_update` or renegotiation requests;
///   a record of another type inside a fragmented handshake message; a
///   handshake message over 64 KiB. rustls returns these errors without
///   calling `send_fatal_alert` (a malformed `change_cipher_spec` does get
///   `unexpected_message`, the same error from the counter does not).
///
/// And one gap of rustls 0.23.46 itself (not of the fork), found by
/// `handshake_server`: a TLS 1.2 server whose key can sign with none of the
/// client's `signature_algorithms` fails in `emit_server_kx` with
/// `General("incompatible signing key")` and no alert, where TLS 1.3 sends
/// `handshake_failure` (`NoSignatureSchemesInCommon`). The seed
/// `silent-tls12-no-signature-scheme-for-server-key.bin` keeps it visible.
pub fn alert_optional(error: &Error) -> bool {
    if matches!(error, Error::General(message) if message == "incompatible signing key") {
        return true;
    }
    matches!(
        error,
        Error::AlertReceived(_)
            | Error::PeerMisbehaved(
                PeerMisbehaved::TooManyEmptyFragments
                    | PeerMisbehaved::TooManyWarningAlertsReceived
                    | PeerMisbehaved::IllegalMiddleboxChangeCipherSpec
                    | PeerMisbehaved::TooManyKeyUpdateRequests
                    | PeerMisbehaved::TooManyRenegotiationRequests
                    | PeerMisbehaved::MessageInterleavedWithHandshakeMessage
                    | PeerMisbehaved::RejectedEarlyDataInterleavedWithHandshakeMessage
                    // rustls 0.23.46 (server/hs.rs, unchanged by the fork) returns
                    // this for a second ClientHello with another SNI without
                    // sending an alert; found by the fuzzer, pinned by the seed
                    // silent-server-name-differs-on-retry.bin.
                    | PeerMisbehaved::ServerNameDifferedOnRetry
            )
            | Error::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge)
    )
}

/// Whole, well-formed records only; no application data outside TLS 1.3.
fn check_records(written: &[u8], version: Option<ProtocolVersion>) {
    let records = wire::records(written).expect("the connection writes whole records");
    for record in &records {
        assert!(record.well_formed(), "malformed record written: {record:?}");
    }
    if version != Some(ProtocolVersion::TLSv1_3) {
        assert!(
            !records
                .iter()
                .any(|r: &Record<'_>| r.typ == wire::APPLICATION_DATA),
            "application data written ({version:?})"
        );
    }
}

fn check_server(conn: &ServerConnection, drive: &Drive, variant: u8) {
    if let Some(state) = server_state(conn) {
        match state.certificate_request() {
            Some(CertificateRequestCause::Flag) => assert!(
                state.requested_client_auth(),
                "flag CertificateRequest without the flag"
            ),
            Some(CertificateRequestCause::ServerPolicy) => {
                panic!("CertificateRequest for a policy this server does not have")
            }
            None => {}
        }
    }
    let peer = peer(conn);
    assert_ne!(peer.path, AuthPath::Normal, "no normal path configured");
    if peer.path == AuthPath::Flag {
        assert!(peer.chain.is_some(), "flag path without a certificate");
    }
    let complete = drive.error.is_none() && !conn.is_handshaking();
    if complete
        && variant & variant::REQUIRE_CERTIFICATE != 0
        && server_state(conn).is_some_and(ServerFlagsState::requested_client_auth)
    {
        assert_eq!(peer.path, AuthPath::Flag, "require_certificate let one in");
    }
}

fn check_client(conn: &ClientConnection, drive: &Drive) {
    if drive.error.is_none() && !conn.is_handshaking() {
        assert!(
            conn.peer_certificates().is_some(),
            "handshake complete without the server's certificates"
        );
    }
    if let Some(state) = client_state(conn) {
        if state.certificate_request() == Some(CertificateRequestCause::Flag) {
            assert!(state.requested_client_auth(), "acknowledged an unsent flag");
        }
    }
}
