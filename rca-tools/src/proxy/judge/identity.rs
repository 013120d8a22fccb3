//! The identity headers: the names the upstream reads, removed from every
//! incoming request (any letter case, any number of times, HTTP/1.1 and
//! HTTP/2 alike, since `HeaderMap` names are case-insensitive; also under the
//! same name spelled with `_`, `.` or any other symbol for `-`, which
//! CGI-style servers read as the same name) and then
//! set from the verified connection only. Nothing a client sends can claim an
//! identity. The certificate's values are made in `judge::leaf_values`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rustls_req_client_auth::PeerIdentity;
use serde::Deserialize;

use crate::common::fields::{
    canonical, canonical_starts_with, canonically_equal, is_http_own_name,
};
use crate::proxy::judge::leaf_values::LeafValuesCache;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// `[headers]`: the names of the identity headers. An empty name leaves that
/// header out. Whatever the names, a client's own headers of these names are
/// removed before forwarding.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Headers {
    /// The authentication path: `flag`, `normal` or `none`.
    pub path: String,
    /// The leaf certificate's subject.
    pub subject: String,
    /// The leaf's subject alternative names, comma-separated, as `DNS:...`,
    /// `IP:...`, `URI:...`, `email:...`.
    pub sans: String,
    /// The leaf's SHA-256 thumbprint, RFC 8705 `x5t#S256` form.
    pub thumbprint: String,
    /// `true` when the session was restored from a ticket.
    pub resumed: String,
    /// The URL-encoded leaf certificate in PEM; off unless named.
    pub cert_pem: String,
}

impl Default for Headers {
    fn default() -> Self {
        Self {
            path: "x-client-auth-path".into(),
            subject: "x-client-cert-subject".into(),
            sans: "x-client-cert-sans".into(),
            thumbprint: "x-client-cert-x5t-s256".into(),
            resumed: "x-client-session-resumed".into(),
            cert_pem: String::new(),
        }
    }
}

/// The identity headers' default names, claimed whatever the configuration
/// names, as every `x-client-cert*` is (see [`CLAIMED_PREFIXES`]): an
/// upstream written against the defaults never reads a client's value there.
pub const DEFAULT_NAMES: [&str; 2] = ["x-client-auth-path", "x-client-session-resumed"];

/// Headers about the client or the original request that only an edge may
/// set; the proxy is the edge, so a client's are dropped (every `x-forwarded-*`
/// too, `x-forwarded-prefix` among them). It sets `forwarded` and
/// `x-forwarded-{for,proto,host}` itself.
///
/// Beyond the client's address and certificate, these are the names that
/// re-route a request or change who it is for once it is upstream: the CGI
/// variables that servers and WSGI gateways take from a request header of
/// the same name (gunicorn replaces the path's prefix with a `SCRIPT_NAME`
/// header from 127.0.0.1), the prefixes and original URLs that framework
/// middlewares and IIS-style rewriters route by, method overrides, scheme
/// hints, and `Proxy` (httpoxy: CGI makes it `HTTP_PROXY`).
pub const EDGE_ONLY: [&str; 44] = [
    // The client's address and certificate.
    "forwarded",
    "x-forwarded",
    "forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-ssl-client-cert",
    "ssl-client-cert",
    // CGI variables, as request headers.
    "script-name",
    "path-info",
    "path-translated",
    "request-uri",
    "request-method",
    "query-string",
    "remote-user",
    "remote-addr",
    "remote-host",
    "remote-ident",
    "auth-type",
    "server-name",
    "server-port",
    "server-protocol",
    "gateway-interface",
    "document-root",
    "https",
    // Prefixes and original targets that routers and middlewares obey.
    "x-script-name",
    "x-original-url",
    "x-original-uri",
    "x-original-path",
    "x-original-host",
    "x-rewrite-url",
    "x-envoy-original-path",
    "x-remote-user",
    // Method overrides.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Scheme hints.
    "x-scheme",
    "x-url-scheme",
    "front-end-https",
    // httpoxy.
    "proxy",
];

/// The user another edge authenticated, by names of their own (see
/// [`CLAIMED_PREFIXES`] for the prefixed ones): Authelia's, the auth proxy
/// header of Grafana and others, Kong's. A client's are dropped (found by
/// an outside attack: they went through), but unlike [`EDGE_ONLY`] an
/// operator may give an identity header one of these names, for an
/// application that reads its user there.
pub const AUTHENTICATED_USER_NAMES: [&str; 5] = [
    "remote-groups",
    "remote-name",
    "remote-email",
    "x-webauth-user",
    "x-authenticated-userid",
];

/// Other edges' names for the client certificate and its verification, which
/// an application moved from behind them may still read: RFC 9440's
/// `Client-Cert` and `Client-Cert-Chain`, IIS ARR's `X-ARR-ClientCert`, and
/// the names nginx and HAProxy setups commonly forward `$ssl_client_*` under.
/// A client's are dropped, but unlike [`EDGE_ONLY`] an operator may give an
/// identity header one of these names (the proxy's values keep their own
/// formats: `Client-Cert` then holds the proxy's subject or PEM, not RFC
/// 9440's byte sequence).
pub const CERTIFICATE_CONVENTIONS: [&str; 6] = [
    "client-cert",
    "client-cert-chain",
    "x-arr-clientcert",
    "x-client-dn",
    "x-client-verify",
    "x-client-cert",
];

/// Prefixes of the same kind: `X-Client-Cert*` (this proxy's own defaults
/// among them), `SSL_CLIENT_*` (`mod_ssl`'s variables, forwarded as headers),
/// `X-SSL-*` (HAProxy's examples: `X-SSL-Client-DN`, `X-SSL-Client-Verify`),
/// AWS load balancers' `X-Amzn-Mtls-Clientcert*`, and every `X-Forwarded-*`.
/// Then the user that identity-aware edges authenticated, which an
/// application moved from behind one may still read (found by an outside
/// attack: a client's own went through): Cloudflare Access's
/// `Cf-Access-*`, Google IAP's `X-Goog-Authenticated-User-*` and
/// `X-Goog-Iap-*`, Azure App Service's `X-MS-Client-Principal*` and
/// `X-MS-Token-*`, the `X-Auth-Request-*` of oauth2-proxy and nginx's
/// `auth_request` setups, Pomerium's `X-Pomerium-*`, authentik's
/// `X-Authentik-*`, and Kong's `X-Consumer-*`.
pub const CLAIMED_PREFIXES: [&str; 14] = [
    "x-client-cert",
    "ssl-client-",
    "x-ssl-",
    "x-amzn-mtls-clientcert",
    "x-forwarded-",
    "cf-access-",
    "x-goog-authenticated-user-",
    "x-goog-iap-",
    "x-ms-client-principal",
    "x-ms-token-",
    "x-auth-request-",
    "x-pomerium-",
    "x-authentik-",
    "x-consumer-",
];

/// The configured header names, parsed once, and the values made for each
/// client certificate seen (see `judge::leaf_values`).
#[derive(Clone, Debug)]
pub struct IdentityHeaders {
    path: Option<HeaderName>,
    subject: Option<HeaderName>,
    sans: Option<HeaderName>,
    thumbprint: Option<HeaderName>,
    resumed: Option<HeaderName>,
    cert_pem: Option<HeaderName>,
    /// The names above, canonical: what a client's header may not read as.
    managed: Vec<String>,
    /// The certificate values, by certificate (shared by clones).
    leaf_values: Arc<LeafValuesCache>,
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
            managed: Vec::new(),
            leaf_values: Arc::new(LeafValuesCache::new(!names.cert_pem.is_empty())),
        };
        let mut seen: Vec<String> = Vec::new();
        for (field, name) in headers.named() {
            let canonical = canonical(name.as_str());
            if seen.contains(&canonical)
                || EDGE_ONLY.contains(&canonical.as_str())
                || canonical.starts_with("x-forwarded-")
            {
                return Err((field, format!("{name} is used for another header")));
            }
            if is_http_own_name(&canonical) {
                return Err((field, format!("{name} is an HTTP header of its own")));
            }
            seen.push(canonical);
        }
        Ok(Self {
            managed: seen,
            ..headers
        })
    }

    /// Whether a client's header `name` is one only the proxy may set: an
    /// identity header, an identity header's default name, an edge-only one,
    /// another edge's certificate header or one of the [`CLAIMED_PREFIXES`],
    /// in any spelling a server could read as one of them.
    ///
    /// The default names stay claimed when the operator turns a header off
    /// (`sans = ""`) or renames it: an upstream written against the
    /// defaults would otherwise read a client's own value there.
    pub(crate) fn is_claimed(&self, name: &str) -> bool {
        self.managed
            .iter()
            .map(String::as_str)
            .chain(DEFAULT_NAMES)
            .chain(EDGE_ONLY)
            .chain(CERTIFICATE_CONVENTIONS)
            .chain(AUTHENTICATED_USER_NAMES)
            .any(|canonical| canonically_equal(name, canonical))
            || CLAIMED_PREFIXES
                .iter()
                .any(|prefix| canonical_starts_with(name, prefix))
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
        client_ip: IpAddr,
        host: Option<&str>,
    ) {
        // Empty, so not allocated, unless a client sent such a header.
        let claimed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| self.is_claimed(name.as_str()))
            .cloned()
            .collect();
        for name in claimed {
            headers.remove(name);
        }
        // Room for what follows at once: grown insert by insert, the map
        // was rehashed up to twice per request.
        headers.reserve(IDENTITY_AND_FORWARDING);
        self.set(headers, peer, client_ip, host);
    }

    /// Writes the identity and forwarding headers of `peer` and the
    /// connection as HTTP/1.1 field lines. The caller leaves out every field
    /// of the client's that [`IdentityHeaders::is_claimed`].
    pub(crate) fn write_http1(
        &self,
        out: &mut Vec<u8>,
        peer: &PeerIdentity,
        client_ip: IpAddr,
        host: Option<&str>,
    ) {
        self.set(&mut FieldLines(out), peer, client_ip, host);
    }

    /// Sets the identity and forwarding headers in `sink`; `host` is the
    /// authority the client addressed, valid as one.
    fn set(
        &self,
        sink: &mut impl Sink,
        peer: &PeerIdentity,
        client_ip: IpAddr,
        host: Option<&str>,
    ) {
        if let Some(name) = &self.path {
            sink.put(name, Value::Static(peer.path().as_str()));
        }
        if let Some(values) = self.leaf_values.get(peer) {
            for (name, value) in [
                (&self.subject, &values.subject),
                (&self.sans, &values.sans),
                (&self.thumbprint, &values.thumbprint),
                (&self.cert_pem, &values.cert_pem),
            ] {
                if let (Some(name), Some(value)) = (name, value) {
                    sink.put(name, Value::Shared(value));
                }
            }
        }
        if let Some(name) = &self.resumed {
            let resumed = if peer.resumed() { "true" } else { "false" };
            sink.put(name, Value::Static(resumed));
        }
        let ip = ip_text(client_ip);
        let mut forwarded = String::with_capacity(64);
        forwarded.push_str("for=");
        if client_ip.is_ipv6() {
            forwarded.push_str("\"[");
            forwarded.push_str(&ip);
            forwarded.push_str("]\"");
        } else {
            forwarded.push_str(&ip);
        }
        forwarded.push_str(";proto=https");
        if let Some(host) = host.filter(|host| !host.contains(['"', ';', ','])) {
            forwarded.push_str(";host=\"");
            forwarded.push_str(host);
            forwarded.push('"');
        }
        sink.put(&header::FORWARDED, Value::Owned(forwarded));
        sink.put(&X_FORWARDED_FOR, Value::Owned(ip));
        sink.put(&X_FORWARDED_PROTO, Value::Static("https"));
        if let Some(host) = host {
            sink.put(&X_FORWARDED_HOST, Value::Text(host));
        }
    }
}

/// A header value being set, in the form it comes in (so a map can take it
/// without copying).
enum Value<'a> {
    Static(&'static str),
    Shared(&'a HeaderValue),
    Owned(String),
    Text(&'a str),
}

/// Where [`IdentityHeaders::set`] puts the headers: a map (the hyper path),
/// or a request head being written.
trait Sink {
    fn put(&mut self, name: &HeaderName, value: Value<'_>);
}

impl Sink for HeaderMap {
    fn put(&mut self, name: &HeaderName, value: Value<'_>) {
        let value = match value {
            Value::Static(value) => HeaderValue::from_static(value),
            Value::Shared(value) => value.clone(),
            // From a `String`, a value takes the bytes without copying them.
            Value::Owned(value) => match HeaderValue::try_from(value) {
                Ok(value) => value,
                Err(_) => return,
            },
            Value::Text(value) => match HeaderValue::from_str(value) {
                Ok(value) => value,
                Err(_) => return,
            },
        };
        self.insert(name.clone(), value);
    }
}

/// HTTP/1.1 field lines appended to a head.
struct FieldLines<'a>(&'a mut Vec<u8>);

impl Sink for FieldLines<'_> {
    fn put(&mut self, name: &HeaderName, value: Value<'_>) {
        let value = match &value {
            Value::Static(value) | Value::Text(value) => value.as_bytes(),
            Value::Shared(value) => value.as_bytes(),
            Value::Owned(value) => value.as_bytes(),
        };
        // Every value here is made from a checked one (a `HeaderValue`, an
        // address, an authority); this keeps it so.
        if value.iter().any(|&byte| matches!(byte, b'\r' | b'\n' | 0)) {
            return;
        }
        self.0.extend_from_slice(name.as_str().as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
    }
}

/// The most headers [`IdentityHeaders::apply`] adds: six identity headers
/// (path, subject, SANs, thumbprint, PEM, resumed) and four forwarding ones.
const IDENTITY_AND_FORWARDING: usize = 10;

/// `ip` as text, as its `Display` writes it. An IPv4 address is written
/// digit by digit: through `core::fmt` it took about 1,300 instructions, and
/// this runs for every request (the forwarding headers, the access log).
pub(crate) fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let mut text = String::with_capacity(21);
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                push_decimal(&mut text, octet.into());
            }
            text
        }
        IpAddr::V6(ip) => ip.to_string(),
    }
}

/// `address` as text, as its `Display` writes it (`ip:port`, `[ip]:port`).
pub(crate) fn socket_addr_text(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => {
            let mut text = ip_text(IpAddr::V4(*v4.ip()));
            text.push(':');
            push_decimal(&mut text, v4.port());
            text
        }
        SocketAddr::V6(v6) => v6.to_string(),
    }
}

/// Appends `number` in decimal.
fn push_decimal(text: &mut String, number: u16) {
    let mut digits = [0_u8; 5];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start -= 1;
        digits[start] = b"0123456789"[usize::from(rest % 10)];
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    text.extend(digits[start..].iter().copied().map(char::from));
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use super::{ip_text, socket_addr_text};
    use crate::common::fields::{canonical, canonical_starts_with, canonically_equal};

    /// The hand-written IPv4 text is what `Display` writes.
    #[test]
    fn addresses_read_as_display_writes_them() {
        for address in [
            "0.0.0.0:0",
            "127.0.0.1:443",
            "10.20.30.40:8080",
            "255.255.255.255:65535",
            "1.0.100.9:10",
            "[::1]:443",
            "[2001:db8::1:2]:65535",
            "[fe80::1%2]:80",
        ] {
            let address: SocketAddr = address.parse().expect("a socket address");
            assert_eq!(socket_addr_text(address), address.to_string());
            let ip: IpAddr = address.ip();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    /// Every spelling a CGI-style server reads as a claimed name is claimed
    /// (lighttpd makes every symbol `_`, PHP `.`), as are other edges'
    /// certificate headers; names that merely resemble them are not.
    #[test]
    fn names_are_claimed_in_every_spelling_a_cgi_server_reads() {
        let headers =
            super::IdentityHeaders::new(&super::Headers::default()).expect("default names");
        for name in [
            "x.client.cert.subject",
            "x~client~cert~x5t~s256",
            "x!client!auth!path",
            "x|client|session|resumed",
            "x.real.ip",
            "x+original+url",
            "x'forwarded'for",
            "client-cert",
            "client_cert_chain",
            "x-client-cert",
            "x-arr-clientcert",
            "x-amzn-mtls-clientcert-subject",
            "ssl_client_verify",
            "ssl_client_s_dn",
            "x-ssl-client-dn",
            "x-client-dn",
            "x-client-verify",
        ] {
            assert!(headers.is_claimed(name), "{name}");
        }
        for name in [
            "x-client-auth",
            "x-clientcert",
            "client-certs-wanted",
            "x-real-ipv6",
            "accept",
            "user-agent",
        ] {
            assert!(!headers.is_claimed(name), "{name}");
        }
    }

    /// The allocation-free comparisons read names exactly as `canonical` does.
    #[test]
    fn canonical_comparisons_agree_with_canonical() {
        let names = [
            "x-client-auth-path",
            "x_client_auth_path",
            "X-Client_Auth-PATH",
            "x-client-auth-pat",
            "x-client-auth-paths",
            "x-forwarded-for",
            "x_forwarded_host",
            "X-FORWARDED-",
            "x-forwarded",
            "forwarded",
            "X.Client.Auth.Path",
            "x~client!auth|path",
            "x-client-auth-path.",
            "x-forwarded.for",
            "",
        ];
        let targets = ["x-client-auth-path", "x-forwarded-", "forwarded", ""];
        for name in names {
            for target in targets {
                let read = canonical(name);
                assert_eq!(
                    canonically_equal(name, target),
                    read == target,
                    "{name} = {target}"
                );
                assert_eq!(
                    canonical_starts_with(name, target),
                    read.starts_with(target),
                    "{name} starts with {target}"
                );
            }
        }
    }
}
