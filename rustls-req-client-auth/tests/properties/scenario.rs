//! The generated description: configurations and misbehaviour.

use super::*;

/// A client certificate, by the CA that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cert {
    /// From the bot CA: the flag path's trust anchor.
    Bot,
    /// From the normal client CA: the config's own verifier's trust anchor.
    Normal,
}

/// What the client has for the flag path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagIdentity {
    /// Nothing (`ClientFlags::without_identity`): no flag (RCA-1).
    None,
    /// A bot-CA certificate.
    Bot,
    /// A normal-CA certificate (the wrong CA for the flag path).
    Normal,
    /// Has certificates, but none suitable: an empty Certificate (RCA-5).
    NoneSuitable,
    /// A resolver with no certificate at hand (`has_certs()` false): no flag
    /// (RCA-1), and nothing to answer with.
    NothingAtHand,
}

impl FlagIdentity {
    /// RCA-1: the flag is sent only with a certificate at hand.
    pub(crate) fn has_certs(self) -> bool {
        matches!(self, Self::Bot | Self::Normal | Self::NoneSuitable)
    }

    /// Whether a flag-path resolver is configured at all.
    pub(crate) fn configured(self) -> bool {
        self != Self::None
    }

    /// What it answers a CertificateRequest with (`None`: empty Certificate).
    pub(crate) fn answer(self) -> Option<Cert> {
        match self {
            Self::Bot => Some(Cert::Bot),
            Self::Normal => Some(Cert::Normal),
            Self::None | Self::NoneSuitable | Self::NothingAtHand => None,
        }
    }
}

/// The client's TLS Flags hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientHook {
    /// `ClientFlags` installed.
    Flags,
    /// No hook at all: a plain rustls client (a browser).
    Plain,
}

#[derive(Clone, Debug)]
pub(crate) struct ClientSpec {
    pub(crate) provider: Provider,
    pub(crate) hook: ClientHook,
    pub(crate) identity: FlagIdentity,
    /// Also proposes flag 3 (`ClientFlags::propose`), which no server here
    /// knows (TF-8) and a misbehaving server may acknowledge (TF-6, TF-9).
    pub(crate) propose_3: bool,
    pub(crate) other_requests: OtherRequests,
    pub(crate) tls12_only: bool,
    /// The config's own `client_auth_cert_resolver`.
    pub(crate) config_cert: Option<Cert>,
}

/// The server config's own client verifier (normal CA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OwnVerifier {
    None,
    NormalOptional,
    NormalMandatory,
}

impl OwnVerifier {
    pub(crate) fn mandatory(self) -> bool {
        self == Self::NormalMandatory
    }
}

/// `ServerFlags` as installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlagsPolicy {
    pub(crate) require_certificate: bool,
    /// Whether the bot-CA verifier given to `ServerFlags` is itself mandatory
    /// (the model says: irrelevant, only `require_certificate` decides, RCA-14).
    pub(crate) inner_mandatory: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ServerSpec {
    pub(crate) provider: Provider,
    pub(crate) flags: Option<FlagsPolicy>,
    pub(crate) own: OwnVerifier,
    /// Server limited to a group the client sends no key share for (see
    /// `Provider::group_without_key_share`): a client without a key-exchange hint
    /// gets a HelloRetryRequest.
    pub(crate) hrr: bool,
}

/// A `tls_flags` `extension_data` a misbehaving peer sends.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// Well-formed, with these flags.
    Flags(&'static [u16]),
    /// Malformed (TF-1, TF-3): a name and the bytes.
    Raw(&'static str, Vec<u8>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flags(flags) => write!(f, "Flags({flags:?})"),
            Self::Raw(name, _) => write!(f, "Raw({name})"),
        }
    }
}

impl Value {
    /// The bytes on the wire. Encoded here from TF-1/TF-2, not by the codec.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Flags(flags) => {
                let highest = flags.iter().copied().max().expect("non-empty");
                let mut octets = vec![0u8; usize::from(highest / 8) + 1];
                for &flag in *flags {
                    octets[usize::from(flag / 8)] |= 1 << (flag % 8);
                }
                let mut body = vec![u8::try_from(octets.len()).expect("short")];
                body.extend(octets);
                body
            }
            Self::Raw(_, bytes) => bytes.clone(),
        }
    }

    pub(crate) fn extension(&self) -> RawExtension {
        ext(TLS_FLAGS, &self.bytes())
    }
}

/// Where a misbehaving server puts its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerPlace {
    Sh,
    Hrr,
    Ee,
    Cr,
    Ct,
    Nst,
}

/// Where a misbehaving client puts its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientPlace {
    /// Instead of the flags its policy would send.
    Ch,
    /// In entry 0 of its Certificate (only sent when non-empty).
    Ct,
}

/// One side misbehaves: a scripted hook replaces that side's TLS Flags hook
/// (`ServerScript` for `ServerFlags`/no hook, `ClientScript` for
/// `ClientFlags`/no hook) and puts `Value` into the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Misbehaviour {
    Server(ServerPlace, Value),
    Client(ClientPlace, Value),
}

#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) client: ClientSpec,
    pub(crate) server: ServerSpec,
    pub(crate) misbehaviour: Option<Misbehaviour>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Connect (resuming if the client holds a ticket or session).
    Connect,
    /// Replace the client by a fresh one with the same config (no tickets,
    /// no key-exchange hint).
    FreshClient,
}
