//! The identity headers: the names the upstream reads, removed from every
//! incoming request (any letter case, any number of times, HTTP/1.1 and
//! HTTP/2 alike, since `HeaderMap` names are case-insensitive) and then set
//! from the verified connection only. Nothing a client sends can claim an
//! identity.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rustls_req_client_auth::PeerIdentity;

use crate::config::Headers;

/// The standard forwarding headers; the proxy is the edge, so it sets them and
/// drops whatever a client sent.
const FORWARDING: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// The configured header names, parsed once.
#[derive(Clone, Debug)]
pub struct IdentityHeaders {
    path: Option<HeaderName>,
    subject: Option<HeaderName>,
    sans: Option<HeaderName>,
    thumbprint: Option<HeaderName>,
    resumed: Option<HeaderName>,
    cert_pem: Option<HeaderName>,
}

impl IdentityHeaders {
    /// Parses the names; `Err((field, why))` for an invalid or repeated one.
    ///
    /// # Errors
    ///
    /// A name that is not a valid header name, or is used twice.
    pub fn new(names: &Headers) -> Result<Self, (&'static str, String)> {
        let parse = |field: &'static str,
                     name: &str|
         -> Result<Option<HeaderName>, (&'static str, String)> {
            if name.is_empty() {
                return Ok(None);
            }
            HeaderName::from_bytes(name.as_bytes())
                .map(Some)
                .map_err(|_| (field, format!("{name:?} is not a valid HTTP header name")))
        };
        let headers = Self {
            path: parse("path", &names.path)?,
            subject: parse("subject", &names.subject)?,
            sans: parse("sans", &names.sans)?,
            thumbprint: parse("thumbprint", &names.thumbprint)?,
            resumed: parse("resumed", &names.resumed)?,
            cert_pem: parse("cert_pem", &names.cert_pem)?,
        };
        let mut seen: Vec<&HeaderName> = Vec::new();
        for (field, name) in headers.named() {
            if seen.contains(&name) || FORWARDING.contains(&name.as_str()) {
                return Err((field, format!("{name} is used for another header")));
            }
            seen.push(name);
        }
        Ok(headers)
    }

    fn named(&self) -> impl Iterator<Item = (&'static str, &HeaderName)> {
        [
            ("path", &self.path),
            ("subject", &self.subject),
            ("sans", &self.sans),
            ("thumbprint", &self.thumbprint),
            ("resumed", &self.resumed),
            ("cert_pem", &self.cert_pem),
        ]
        .into_iter()
        .filter_map(|(field, name)| name.as_ref().map(|name| (field, name)))
    }

    /// Removes every identity and forwarding header a client sent, then sets
    /// them from `peer` and the connection.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        peer: &PeerIdentity,
        client_ip: std::net::IpAddr,
        host: Option<&str>,
    ) {
        for (_, name) in self.named() {
            headers.remove(name);
        }
        for name in FORWARDING {
            headers.remove(name);
        }
        let mut set = |name: &Option<HeaderName>, value: &str| {
            if let (Some(name), Ok(value)) = (name, HeaderValue::from_str(value)) {
                headers.insert(name.clone(), value);
            }
        };
        set(&self.path, peer.path().as_str());
        if let Some(leaf) = peer.leaf() {
            set(&self.subject, leaf.subject());
            set(&self.sans, &sans(leaf));
            set(&self.thumbprint, leaf.thumbprint_sha256());
        }
        set(
            &self.resumed,
            if peer.restored_from_ticket() {
                "true"
            } else {
                "false"
            },
        );
        if let (Some(name), Some(leaf)) = (&self.cert_pem, peer.chain().first()) {
            let pem = pem_of(leaf.as_ref());
            if let Ok(value) =
                HeaderValue::from_str(&utf8_percent_encode(&pem, NON_ALPHANUMERIC).to_string())
            {
                headers.insert(name.clone(), value);
            }
        }
        let ip = client_ip.to_string();
        let forwarded_for = if client_ip.is_ipv6() {
            format!("\"[{ip}]\"")
        } else {
            ip.clone()
        };
        let mut forwarded = format!("for={forwarded_for};proto=https");
        if let Some(host) = host.filter(|host| !host.contains(['"', ';', ','])) {
            forwarded.push_str(";host=\"");
            forwarded.push_str(host);
            forwarded.push('"');
        }
        for (name, value) in [
            ("forwarded", forwarded.as_str()),
            ("x-forwarded-for", ip.as_str()),
            ("x-forwarded-proto", "https"),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        if let Some(Ok(value)) = host.map(HeaderValue::from_str) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), value);
        }
    }
}

/// `DNS:a, IP:b, URI:c, email:d`.
fn sans(leaf: &rustls_req_client_auth::LeafCertificate) -> String {
    let dns = leaf.dns_names().iter().map(|name| format!("DNS:{name}"));
    let ips = leaf.ip_addresses().iter().map(|ip| format!("IP:{ip}"));
    let uris = leaf.uris().iter().map(|uri| format!("URI:{uri}"));
    let emails = leaf.emails().iter().map(|email| format!("email:{email}"));
    dns.chain(ips)
        .chain(uris)
        .chain(emails)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A certificate as PEM (RFC 7468: base64 in lines of 64 characters).
fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
