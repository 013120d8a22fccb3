//! The misbehaving-peer matrix: peers built on the fork's hooks (and, for
//! duplicate extensions, on wire tampering) put `tls_flags` where the rules
//! forbid it. For every cell the honest side must abort with the alert of
//! SPECIFICATION.md, its error must say what happened, and no application data
//! may flow.
//!
//! The matrix is generated from the table in [`cases`]; each cell runs as its
//! own named test with each crypto provider (libtest-mimic harness). The same
//! table renders the matrix in `tests/README.md`, and the `matrix_is_documented`
//! test keeps the two in step.

use std::fmt::Write as _;
use std::sync::Arc;

use integration_tests::config::{self, connect};
use integration_tests::memory::{exchange_data, handshake_tampered};
use integration_tests::scripted::{ext, ClientScript, ServerScript};
use integration_tests::tamper::{duplicate_extension, Hello};
use integration_tests::{Provider, Side, TestPki};
use libtest_mimic::{Arguments, Failed, Trial};
use rustls::hooks::HandshakeMessage as Msg;
use rustls::{AlertDescription, ClientConfig, Error, InvalidMessage, ServerConfig};
use rustls_req_client_auth::{ClientFlags, Flag, FlagSet, FlagsError, ServerFlags};
use rustls_tls_flags::MessageKind;

const TLS_FLAGS: u16 = 62;

/// Where the misbehaving peer puts the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    ClientHello,
    ServerHello,
    HelloRetryRequest,
    EncryptedExtensions,
    CertificateRequest,
    ServerCertificate,
    ClientCertificate,
    NewSessionTicket,
    Tls12ServerHello,
}

impl Place {
    /// The side that sends the message (the misbehaving one).
    fn sender(self) -> Side {
        match self {
            Self::ClientHello | Self::ClientCertificate => Side::Client,
            _ => Side::Server,
        }
    }

    /// The codec's kind of the message.
    fn kind(self) -> MessageKind {
        match self {
            Self::ClientHello => MessageKind::ClientHello,
            Self::ServerHello | Self::Tls12ServerHello => MessageKind::ServerHello,
            Self::HelloRetryRequest => MessageKind::HelloRetryRequest,
            Self::EncryptedExtensions => MessageKind::EncryptedExtensions,
            Self::CertificateRequest => MessageKind::CertificateRequest,
            Self::ServerCertificate | Self::ClientCertificate => MessageKind::Certificate,
            Self::NewSessionTicket => MessageKind::NewSessionTicket,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::ServerCertificate => "server CT",
            Self::ClientCertificate => "client CT",
            Self::Tls12ServerHello => "TLS 1.2 SH",
            _ => self.kind().abbreviation(),
        }
    }

    /// The message name the honest side's error must mention.
    fn message_name(self) -> &'static str {
        self.kind().name()
    }

    fn slug(self) -> String {
        slug(self.label())
    }
}

/// What the misbehaving peer sends.
#[derive(Clone, Debug)]
enum Value {
    /// A well-formed `tls_flags` extension with these flags.
    Flags(&'static [u16]),
    /// `tls_flags` with this raw `extension_data`.
    Raw(Vec<u8>),
    /// Two `tls_flags` extensions with these flags.
    Duplicate(&'static [u16]),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Self::Flags(flags) => format!("flags {flags:?}"),
            Self::Raw(bytes) if bytes.len() > 8 => {
                format!("{} bytes, L = {}", bytes.len(), bytes[0])
            }
            Self::Raw(bytes) => format!("`{}`", hex(bytes)),
            Self::Duplicate(flags) => format!("two tls_flags {flags:?}"),
        }
    }

    /// The extension body the hook sends.
    fn body(&self) -> Vec<u8> {
        match self {
            Self::Flags(flags) | Self::Duplicate(flags) => flags
                .iter()
                .map(|n| Flag::new(*n).expect("flag number"))
                .collect::<FlagSet>()
                .to_extension_data()
                .expect("non-empty"),
            Self::Raw(bytes) => bytes.clone(),
        }
    }
}

/// `text` as a test-name fragment: lowercase words joined by `_`.
fn slug(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty)".into();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One cell of the matrix.
#[derive(Clone, Debug)]
struct Case {
    rule: &'static str,
    what: &'static str,
    place: Place,
    value: Value,
    /// Whether the honest client proposes `request_client_auth`.
    client_flags: bool,
    alert: AlertDescription,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{}_{}_in_{}",
            self.rule.to_lowercase().replace('-', ""),
            slug(self.what),
            self.place.slug()
        )
    }

    fn honest(&self) -> Side {
        match self.place.sender() {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// The malformed `extension_data` forms of the codec (TF-1, TF-3), from the
/// shared table.
fn malformed_forms() -> Vec<(&'static str, &'static str, Vec<u8>, AlertDescription)> {
    integration_tests::malformed::forms()
        .into_iter()
        .map(|form| (form.rule, form.what, form.bytes, form.alert))
        .collect()
}

/// The whole matrix.
fn cases() -> Vec<Case> {
    use AlertDescription::IllegalParameter;
    use Place::{
        CertificateRequest, ClientCertificate, ClientHello, EncryptedExtensions, HelloRetryRequest,
        NewSessionTicket, ServerCertificate, ServerHello, Tls12ServerHello,
    };

    let mut cases = Vec::new();
    for (rule, what, bytes, alert) in malformed_forms() {
        for place in [
            ClientHello,
            ServerHello,
            HelloRetryRequest,
            EncryptedExtensions,
            CertificateRequest,
            ServerCertificate,
            ClientCertificate,
            NewSessionTicket,
        ] {
            cases.push(Case {
                rule,
                what,
                place,
                value: Value::Raw(bytes.clone()),
                client_flags: true,
                alert,
            });
        }
    }
    let flag = |rule, what, place, value, client_flags| Case {
        rule,
        what,
        place,
        value,
        client_flags,
        alert: IllegalParameter,
    };
    // TF-6: a response may only carry proposed flags (the client proposed 80;
    // the server's CertificateRequest proposed 80 to the client).
    for place in [
        ServerHello,
        HelloRetryRequest,
        EncryptedExtensions,
        ServerCertificate,
        ClientCertificate,
    ] {
        cases.push(flag(
            "TF-6",
            "unsolicited flag 3",
            place,
            Value::Flags(&[3]),
            true,
        ));
    }
    // RCA-7: request_client_auth in any server message but the CertificateRequest.
    for place in [
        ServerHello,
        HelloRetryRequest,
        EncryptedExtensions,
        ServerCertificate,
        NewSessionTicket,
    ] {
        cases.push(flag(
            "RCA-7",
            "request_client_auth",
            place,
            Value::Flags(&[80]),
            true,
        ));
    }
    cases.push(flag(
        "RCA-8",
        "request_client_auth",
        ClientCertificate,
        Value::Flags(&[80]),
        true,
    ));
    cases.push(flag(
        "RCA-6",
        "unrequested acknowledgement",
        CertificateRequest,
        Value::Flags(&[80]),
        false,
    ));
    cases.push(flag(
        "TF-5",
        "request_client_auth",
        Tls12ServerHello,
        Value::Flags(&[80]),
        true,
    ));
    for place in [ClientHello, ServerHello] {
        cases.push(flag(
            "TF-12",
            "duplicate tls_flags",
            place,
            Value::Duplicate(&[80]),
            true,
        ));
    }
    cases
}

fn hook_message(place: Place) -> Msg {
    match place {
        Place::ClientHello => Msg::ClientHello,
        Place::ServerHello | Place::Tls12ServerHello => Msg::ServerHello,
        Place::HelloRetryRequest => Msg::HelloRetryRequest,
        Place::EncryptedExtensions => Msg::EncryptedExtensions,
        Place::CertificateRequest => Msg::CertificateRequest,
        Place::ServerCertificate | Place::ClientCertificate => Msg::Certificate { index: 0 },
        Place::NewSessionTicket => Msg::NewSessionTicket,
    }
}

/// The two configurations of a cell: one honest side, one misbehaving.
fn configs(case: &Case, pki: &TestPki, provider: Provider) -> (ClientConfig, ServerConfig) {
    let injected = ext(TLS_FLAGS, &case.value.body());
    match case.place.sender() {
        Side::Server => {
            let mut client = if case.place == Place::Tls12ServerHello {
                config::client_with(pki, provider.crypto(), &[&rustls::version::TLS12])
            } else {
                config::client(pki, provider)
            };
            let policy = if case.client_flags {
                ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
            } else {
                ClientFlags::without_identity()
            };
            policy
                .install(&mut client)
                .expect("TLS Flags registers its extension type");
            let mut server = match case.place {
                Place::HelloRetryRequest => config::server_with(
                    pki,
                    provider.crypto_with_only_group(provider.group_without_key_share()),
                    rustls::DEFAULT_VERSIONS,
                ),
                Place::CertificateRequest => config::server_requesting(
                    pki,
                    provider,
                    config::verifier(&pki.normal_ca, provider, false),
                ),
                _ => config::server(pki, provider),
            };
            ServerScript::default()
                .with(hook_message(case.place), injected)
                .install(&mut server)
                .expect("TLS Flags registers its extension type");
            (client, server)
        }
        Side::Client => {
            let mut client = config::client(pki, provider);
            client.client_auth_cert_resolver = config::resolver(&pki.bot, provider);
            let request = ext(TLS_FLAGS, &Value::Flags(&[80]).body());
            let (client_hello, certificate) = match case.place {
                Place::ClientHello => (injected, vec![]),
                _ => (request, vec![(0, injected)]),
            };
            ClientScript {
                client_hello: vec![client_hello],
                certificate,
                ..ClientScript::default()
            }
            .install(&mut client)
            .expect("TLS Flags registers its extension type");
            let mut server = config::server(pki, provider);
            ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, false))
                .install(&mut server)
                .expect("TLS Flags registers its extension type");
            (client, server)
        }
    }
}

fn run(case: &Case, provider: Provider) -> Result<(), Failed> {
    let pki = TestPki::shared();
    let (client, server) = configs(case, pki, provider);
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    let mut tamper = |sender: Side, flight: &mut Vec<u8>| {
        if let Value::Duplicate(_) = case.value {
            if sender == case.place.sender() {
                let hello = match sender {
                    Side::Client => Hello::Client,
                    Side::Server => Hello::Server,
                };
                duplicate_extension(flight, hello, TLS_FLAGS);
            }
        }
    };
    let outcome = handshake_tampered(&mut c, &mut s, &mut tamper);

    let honest = case.honest();
    let Some(raised) = outcome.error(honest) else {
        return Err(format!("{honest:?} did not abort: {outcome:?}").into());
    };
    if outcome.alert_received_by(honest.peer()) != Some(case.alert) {
        return Err(format!(
            "expected {:?} to receive {:?}: {outcome:?}",
            honest.peer(),
            case.alert
        )
        .into());
    }
    // The honest side's error says what happened.
    let described = raised.to_string();
    if let Value::Duplicate(_) = &case.value {
        if raised != &Error::InvalidMessage(InvalidMessage::DuplicateExtension(TLS_FLAGS)) {
            return Err(format!("expected a duplicate-extension error, got {raised:?}").into());
        }
    } else {
        let Some(flags) = FlagsError::from_rustls(raised) else {
            return Err(format!("not a FlagsError: {raised:?}").into());
        };
        if flags.rule() != case.rule || flags.alert() != case.alert {
            return Err(format!(
                "{flags:?} is {} / {:?}, expected {} / {:?}",
                flags.rule(),
                flags.alert(),
                case.rule,
                case.alert
            )
            .into());
        }
        if !described.contains(case.place.message_name()) {
            return Err(format!(
                "error does not name the {}: {described}",
                case.place.message_name()
            )
            .into());
        }
    }
    // No application data after the failure.
    if exchange_data(&mut c, &mut s, b"must not arrive").is_ok() {
        return Err("application data flowed after a fatal alert".into());
    }
    Ok(())
}

/// The matrix as the Markdown table in `tests/README.md`.
fn render_matrix() -> String {
    let mut table = String::from(
        "| test | misbehaving peer sends | in | honest side | alert it sends | rule |\n|---|---|---|---|---|---|\n",
    );
    for case in cases() {
        let alert = format!("{:?}", case.alert);
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} | `{}` | {} |",
            case.name(),
            case.value.describe(),
            case.place.label(),
            match case.honest() {
                Side::Client => "client",
                Side::Server => "server",
            },
            snake(&alert),
            case.rule,
        );
    }
    table
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.replace("c_a", "ca")
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for case in cases() {
        for provider in Provider::ALL {
            let case = case.clone();
            let name = format!(
                "{}::{}",
                match provider {
                    Provider::Ring => "ring",
                    Provider::AwsLcRs => "aws_lc_rs",
                },
                case.name()
            );
            trials.push(Trial::test(name, move || run(&case, provider)));
        }
    }
    trials.push(Trial::test("matrix_is_documented", || {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/README.md"))
                .map_err(|err| format!("tests/README.md: {err}"))?;
        let table = render_matrix();
        if readme.contains(&table) {
            Ok(())
        } else {
            Err(
                format!("tests/README.md lacks the current matrix; replace it with:\n\n{table}")
                    .into(),
            )
        }
    }));
    libtest_mimic::run(&args, trials).exit();
}
