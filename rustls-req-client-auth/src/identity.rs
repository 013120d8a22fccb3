//! The client of a completed handshake as an owned value: what an application
//! (or an OAuth server binding tokens to certificates) needs, taken from the
//! connection once, cheap to clone into every request.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ProtocolVersion, ServerConnection};
use rustls_tls_flags::FlagSet;
use x509_parser::extensions::GeneralName;

use crate::server::{self, AuthPath, CertificateRequestCause};
pub use crate::thumbprint::thumbprint_sha256;

/// Who the client of a server connection is, once its handshake is done.
///
/// Built once per connection with [`PeerIdentity::of`]; `Clone` is a reference
/// count, so it can go into every request's extensions. On a resumed
/// connection it describes the session being resumed: the path is restored
/// from the ticket (RCA-11) and the chain is the one of the full handshake.
///
/// ```
/// # use std::sync::Arc;
/// # use integration_tests::{config, memory, Provider, TestPki};
/// # let pki = TestPki::shared();
/// # let mut server = config::server(&pki, Provider::AwsLcRs);
/// # rustls_req_client_auth::ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, Provider::AwsLcRs, true)).install(&mut server).expect("TLS Flags registers its extension type");
/// # let mut bot = config::client(&pki, Provider::AwsLcRs);
/// # rustls_req_client_auth::ClientFlags::request_client_auth(config::certified_key(&pki.bot, Provider::AwsLcRs)).install(&mut bot).expect("TLS Flags registers its extension type");
/// # let (mut client, mut conn) = config::connect(&Arc::new(bot), &Arc::new(server));
/// # memory::handshake(&mut client, &mut conn).assert_ok();
/// use rustls_req_client_auth::{AuthPath, PeerIdentity};
///
/// let peer = PeerIdentity::of(&conn);
/// if peer.path() == AuthPath::Flag {
///     let leaf = peer.leaf().expect("a flag-path client has a certificate");
///     // Bind a token to this certificate (RFC 8705 `cnf.x5t#S256`).
///     println!("bot {}: {}", leaf.subject(), leaf.thumbprint_sha256());
///     # assert_eq!(leaf.dns_names(), ["crawler.bot.test"]);
/// }
/// ```
#[derive(Clone)]
pub struct PeerIdentity(Arc<Inner>);

struct Inner {
    path: AuthPath,
    chain: Vec<CertificateDer<'static>>,
    leaf: Option<LeafCertificate>,
    restored_from_ticket: bool,
    resumed: bool,
    client_flags: FlagSet,
    acknowledged: FlagSet,
    certificate_request: Option<CertificateRequestCause>,
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    server_name: Option<Box<str>>,
}

impl PeerIdentity {
    /// The identity of the client of `conn`, whose handshake has completed.
    pub fn of(conn: &ServerConnection) -> Self {
        let peer = server::peer(conn);
        let state = server::server_state(conn);
        let chain = peer.chain.map(<[_]>::to_vec).unwrap_or_default();
        Self(Arc::new(Inner {
            path: peer.path,
            leaf: chain.first().map(LeafCertificate::parse),
            chain,
            restored_from_ticket: state.is_some_and(server::ServerFlagsState::restored_from_ticket),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            client_flags: state
                .map(|state| state.client_flags().clone())
                .unwrap_or_default(),
            acknowledged: state
                .map(|state| state.acknowledged().clone())
                .unwrap_or_default(),
            certificate_request: state.and_then(server::ServerFlagsState::certificate_request),
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: conn.server_name().map(Box::from),
        }))
    }

    /// The trust path that authenticated the client.
    pub fn path(&self) -> AuthPath {
        self.0.path
    }

    /// Whether the client is a bot authenticated on the flag path.
    pub fn is_flag_path(&self) -> bool {
        self.0.path == AuthPath::Flag
    }

    /// The client's certificate chain, end entity first; empty when anonymous.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.0.chain
    }

    /// The end-entity certificate's fields, if the client presented one.
    pub fn leaf(&self) -> Option<&LeafCertificate> {
        self.0.leaf.as_ref()
    }

    /// Whether the path was restored from a session ticket (RCA-11).
    pub fn restored_from_ticket(&self) -> bool {
        self.0.restored_from_ticket
    }

    /// Whether the connection resumed a session, in TLS 1.3 or TLS 1.2
    /// (where no path is restored: the config's own verifier's record
    /// stands, [`PeerIdentity::restored_from_ticket`] is false).
    pub fn resumed(&self) -> bool {
        self.0.resumed
    }

    /// The flags the client proposed in its ClientHello (TLS 1.3 only).
    pub fn client_flags(&self) -> &FlagSet {
        &self.0.client_flags
    }

    /// The flags this server acknowledged.
    pub fn acknowledged(&self) -> &FlagSet {
        &self.0.acknowledged
    }

    /// Why this server sent a CertificateRequest, if it did (`None` also on a
    /// resumed connection, which is never asked, RCA-11).
    pub fn certificate_request(&self) -> Option<CertificateRequestCause> {
        self.0.certificate_request
    }

    /// The negotiated TLS version.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.0.version
    }

    /// The negotiated ALPN protocol, such as `h2`.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.0.alpn.as_deref()
    }

    /// The server name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.0.server_name.as_deref()
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The chain is summarised by the leaf: whole certificates stay out of logs.
        f.debug_struct("PeerIdentity")
            .field("path", &self.0.path)
            .field("leaf", &self.0.leaf)
            .field("chain_len", &self.0.chain.len())
            .field("restored_from_ticket", &self.0.restored_from_ticket)
            .field("resumed", &self.0.resumed)
            .field("client_flags", &self.0.client_flags)
            .field("acknowledged", &self.0.acknowledged)
            .field("certificate_request", &self.0.certificate_request)
            .field("version", &self.0.version)
            .field("alpn", &self.alpn().map(String::from_utf8_lossy))
            .finish()
    }
}

impl fmt::Display for PeerIdentity {
    /// One line for logs: the path, the leaf's subject and thumbprint, and
    /// the connection's version and ALPN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.path, &self.0.leaf) {
            (AuthPath::None, _) | (_, None) => f.write_str("anonymous")?,
            (path, Some(leaf)) => {
                let path = if path == AuthPath::Flag {
                    "bot (flag path)"
                } else {
                    "client (normal path)"
                };
                write!(
                    f,
                    "{path} {}, x5t#S256={}",
                    leaf.subject(),
                    leaf.thumbprint_sha256()
                )?;
            }
        }
        if self.0.restored_from_ticket {
            f.write_str(", resumed")?;
        }
        if let Some(version) = self.0.version {
            write!(f, "; {version:?}")?;
        }
        if let Some(alpn) = self.alpn() {
            write!(f, " {}", String::from_utf8_lossy(alpn))?;
        }
        Ok(())
    }
}

/// The fields of a client's end-entity certificate that applications use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LeafCertificate {
    subject: String,
    common_name: Option<String>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    uris: Vec<String>,
    emails: Vec<String>,
    #[cfg_attr(feature = "serde", serde(rename = "x5t#S256"))]
    thumbprint_sha256: String,
    /// `notAfter`, seconds since the epoch.
    #[cfg_attr(feature = "serde", serde(skip))]
    not_after: Option<i64>,
}

impl LeafCertificate {
    /// Reads the fields of `certificate`. A certificate x509-parser cannot read
    /// (a custom verifier accepted it) has an empty subject and no names, but
    /// still its thumbprint.
    pub fn parse(certificate: &CertificateDer<'_>) -> Self {
        let mut leaf = Self {
            subject: String::new(),
            common_name: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            uris: Vec::new(),
            emails: Vec::new(),
            thumbprint_sha256: thumbprint_sha256(certificate),
            not_after: None,
        };
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
            return leaf;
        };
        leaf.subject = crate::distinguished_name::distinguished_name(parsed.subject());
        leaf.not_after = Some(parsed.validity().not_after.timestamp());
        leaf.common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        if let Ok(Some(names)) = parsed.subject_alternative_name() {
            for name in &names.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => leaf.dns_names.push((*dns).to_owned()),
                    GeneralName::RFC822Name(email) => leaf.emails.push((*email).to_owned()),
                    GeneralName::URI(uri) => leaf.uris.push((*uri).to_owned()),
                    GeneralName::IPAddress(octets) => {
                        if let Some(ip) = ip_address(octets) {
                            leaf.ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        leaf
    }

    /// The subject's distinguished name, as `CN=crawler.bot.test, O=...`:
    /// the certificate's order, `, ` between RDNs and ` + ` within one, each
    /// value escaped as RFC 4514 section 2.4 says (`CN=a\, O=b` is one
    /// common name), so no value can pass for more of the name.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's first common name.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The DNS names among the subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The IP addresses among the subject alternative names.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }

    /// The URIs among the subject alternative names (SPIFFE IDs, for example).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The email addresses (`rfc822Name`) among the subject alternative names.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// The SHA-256 thumbprint of the certificate's DER encoding, base64url
    /// without padding: the `x5t#S256` confirmation value of RFC 8705,
    /// section 3.1, for certificate-bound access tokens.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint_sha256
    }

    /// When the certificate stops being valid (its `notAfter`); `None` for
    /// one x509-parser cannot read.
    pub fn not_after(&self) -> Option<std::time::SystemTime> {
        let seconds = u64::try_from(self.not_after?).ok()?;
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(seconds))
    }
}

fn ip_address(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for PeerIdentity {
    /// The identity without the chain (use [`PeerIdentity::chain`] for that):
    /// path, leaf fields, resumption, flags as numbers, version and ALPN.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        let flags = |set: &FlagSet| {
            set.iter()
                .map(rustls_tls_flags::Flag::get)
                .collect::<Vec<_>>()
        };
        let mut out = serializer.serialize_struct("PeerIdentity", 8)?;
        out.serialize_field("path", self.0.path.as_str())?;
        out.serialize_field("leaf", &self.0.leaf)?;
        out.serialize_field("restored_from_ticket", &self.0.restored_from_ticket)?;
        out.serialize_field("resumed", &self.0.resumed)?;
        out.serialize_field("client_flags", &flags(&self.0.client_flags))?;
        out.serialize_field("acknowledged", &flags(&self.0.acknowledged))?;
        out.serialize_field("version", &self.0.version.map(|v| format!("{v:?}")))?;
        out.serialize_field(
            "alpn",
            &self
                .alpn()
                .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
        )?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_base64url_sha256_without_padding() {
        // SHA-256 of the empty input, RFC 4648 section 5 alphabet, no '='.
        assert_eq!(
            thumbprint_sha256(&CertificateDer::from(Vec::new())),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn unparsable_certificate_keeps_its_thumbprint() {
        let leaf = LeafCertificate::parse(&CertificateDer::from(vec![0x30, 0x00]));
        assert_eq!(leaf.subject(), "");
        assert!(leaf.dns_names().is_empty());
        assert_eq!(leaf.thumbprint_sha256().len(), 43);
    }
}
