//! The identity headers' values of one client certificate: its subject, SANs,
//! thumbprint and PEM. They depend on the certificate alone, so they are made
//! once per certificate and reused for every request of every connection that
//! presents it: formatting them took about 4,000 instructions of each bot
//! request (callgrind), more than parsing the request line and its headers.
//!
//! Values are percent-encoded where they hold `%`, control or non-ASCII
//! characters (and, in the SAN list, `,`), so a certificate field cannot
//! forge another entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use rustls::pki_types::CertificateDer;
use rustls_req_client_auth::{LeafCertificate, PeerIdentity};

/// For SAN values: `,` separates entries, `%` starts an escape.
const SAN_VALUE: &AsciiSet = &CONTROLS.add(b'%').add(b',');
/// For the subject: `%` starts an escape.
const SUBJECT_VALUE: &AsciiSet = &CONTROLS.add(b'%');

/// The values of one certificate (made once per certificate, so a value whose
/// header is not configured costs nothing per request; the PEM, the one large
/// value, only if asked for); `None` where a value is not a valid header
/// value.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafValues {
    pub(crate) subject: Option<HeaderValue>,
    pub(crate) sans: Option<HeaderValue>,
    pub(crate) thumbprint: Option<HeaderValue>,
    pub(crate) cert_pem: Option<HeaderValue>,
}

impl LeafValues {
    /// Formats the values of `leaf`, whose DER is `der`, the PEM if `with_pem`.
    pub(crate) fn new(leaf: &LeafCertificate, der: &CertificateDer<'_>, with_pem: bool) -> Self {
        let value = |text: String| HeaderValue::try_from(text).ok();
        Self {
            subject: value(utf8_percent_encode(leaf.subject(), SUBJECT_VALUE).to_string()),
            sans: value(sans(leaf)),
            thumbprint: value(leaf.thumbprint_sha256().to_owned()),
            cert_pem: with_pem
                .then(|| value(utf8_percent_encode(&pem_of(der), NON_ALPHANUMERIC).to_string()))
                .flatten(),
        }
    }
}

/// Made values by the certificate's SHA-256 thumbprint. Bounded: when it holds
/// [`LeafValuesCache::CAPACITY`] certificates it is emptied, so a stream of
/// distinct (valid) certificates costs the formatting again, never memory.
pub(crate) struct LeafValuesCache {
    with_pem: bool,
    kept: Mutex<HashMap<String, Arc<LeafValues>>>,
}

impl LeafValuesCache {
    /// How many certificates' values are kept.
    pub(crate) const CAPACITY: usize = 1024;

    /// An empty cache; its values hold the PEM if `with_pem`.
    pub(crate) fn new(with_pem: bool) -> Self {
        Self {
            with_pem,
            kept: Mutex::default(),
        }
    }

    /// The values of `peer`'s leaf certificate, made now if not kept; `None`
    /// if it presented none.
    pub(crate) fn get(&self, peer: &PeerIdentity) -> Option<Arc<LeafValues>> {
        let (Some(leaf), Some(der)) = (peer.leaf(), peer.chain().first()) else {
            return None;
        };
        Some(self.get_for(leaf, der))
    }

    /// The values of `leaf`, whose DER is `der` (the two of one certificate).
    fn get_for(&self, leaf: &LeafCertificate, der: &CertificateDer<'_>) -> Arc<LeafValues> {
        let key = leaf.thumbprint_sha256();
        if let Some(values) = self.lock().get(key) {
            return Arc::clone(values);
        }
        // Made outside the lock: two connections of a new bot may both make
        // them, which costs a formatting, not a wait.
        let values = Arc::new(LeafValues::new(leaf, der, self.with_pem));
        let mut kept = self.lock();
        if kept.len() >= Self::CAPACITY {
            kept.clear();
        }
        kept.insert(key.to_owned(), Arc::clone(&values));
        values
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LeafValues>>> {
        // The map is valid whatever a panicking holder did: entries are
        // inserted whole.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Not the values: they name certificates, which are not logged whole.
impl std::fmt::Debug for LeafValuesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafValuesCache")
            .field("with_pem", &self.with_pem)
            .field("certificates", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// `DNS:a, IP:b, URI:c, email:d`, each value percent-encoded (see the module).
fn sans(leaf: &LeafCertificate) -> String {
    let value = |value: &str| utf8_percent_encode(value, SAN_VALUE).to_string();
    let dns = leaf
        .dns_names()
        .iter()
        .map(|name| format!("DNS:{}", value(name)));
    let ips = leaf.ip_addresses().iter().map(|ip| format!("IP:{ip}"));
    let uris = leaf.uris().iter().map(|uri| format!("URI:{}", value(uri)));
    let emails = leaf
        .emails()
        .iter()
        .map(|email| format!("email:{}", value(email)));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;
    use rustls_req_client_auth::LeafCertificate;

    use super::{pem_of, LeafValues, LeafValuesCache};

    fn certificate(name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned(), format!("b,%{name}")])
            .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("bot\u{e9} {name}"));
        params
            .self_signed(&key)
            .expect("a certificate")
            .der()
            .clone()
    }

    #[test]
    fn values_are_made_once_per_certificate() {
        let cache = LeafValuesCache::new(true);
        let (one, two) = (certificate("one.example"), certificate("two.example"));
        let (leaf_one, leaf_two) = (LeafCertificate::parse(&one), LeafCertificate::parse(&two));
        let first = cache.get_for(&leaf_one, &one);
        assert!(Arc::ptr_eq(&first, &cache.get_for(&leaf_one, &one)));
        assert_eq!(*first, LeafValues::new(&leaf_one, &one, true));
        let other = cache.get_for(&leaf_two, &two);
        assert_ne!(first.thumbprint, other.thumbprint);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn values_are_percent_encoded() {
        let der = certificate("one.example");
        let leaf = LeafCertificate::parse(&der);
        let values = LeafValues::new(&leaf, &der, true);
        let text = |value: &Option<http::HeaderValue>| {
            value
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            text(&values.sans).as_deref(),
            Some("DNS:one.example, DNS:b%2C%25one.example")
        );
        let subject = text(&values.subject).unwrap_or_default();
        assert!(subject.contains("CN=bot%C3%A9 one.example"), "{subject}");
        assert_eq!(
            text(&values.thumbprint).as_deref(),
            Some(leaf.thumbprint_sha256())
        );
        let pem = text(&values.cert_pem).unwrap_or_default();
        let pem = percent_encoding::percent_decode_str(&pem).decode_utf8_lossy();
        assert_eq!(pem, pem_of(der.as_ref()));
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        let without_pem = LeafValues::new(&leaf, &der, false);
        assert!(without_pem.cert_pem.is_none());
        assert_eq!(without_pem.thumbprint, values.thumbprint);
    }

    #[test]
    fn a_full_cache_is_emptied_not_grown() {
        let cache = LeafValuesCache::new(false);
        let der = certificate("one.example");
        let leaf = LeafCertificate::parse(&der);
        {
            let mut kept = cache.lock();
            for i in 0..LeafValuesCache::CAPACITY {
                kept.insert(format!("thumbprint {i}"), Arc::new(LeafValues::default()));
            }
        }
        cache.get_for(&leaf, &der);
        assert_eq!(cache.len(), 1);
    }
}
