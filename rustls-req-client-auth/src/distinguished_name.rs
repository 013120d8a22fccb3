//! A certificate's subject or issuer as one line of text in which no
//! attribute value can pass for more of the name.
//!
//! x509-parser's `Display` joins attributes as `CN=a, O=b` (and `+` within
//! one RDN) but writes each value as it is, so a single common name
//! `a, O=Trusted, CN=admin` prints exactly as a three-attribute name; an
//! upstream reading the subject header could not tell them apart. The
//! layout here is x509-parser's (the certificate's order, `, ` between RDNs,
//! ` + ` within one, the same attribute abbreviations), and each value is
//! escaped as RFC 4514 section 2.4 says: `"`, `+`, `,`, `;`, `<`, `>` and
//! `\` after a `\`, a leading `#` or space and a trailing space too, NUL as
//! `\00`. A value that is not a string is `#` and the hex of its whole
//! encoding, which an escaped string never starts with.

use std::fmt::Write as _;

use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer as _};
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// `name` as `CN=crawler.bot.test, O=Example` with every value escaped.
pub(crate) fn distinguished_name(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for (index, rdn) in name.iter_rdn().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        for (index, attribute) in rdn.iter().enumerate() {
            if index > 0 {
                out.push_str(" + ");
            }
            push_attribute(&mut out, attribute);
        }
    }
    out
}

fn push_attribute(out: &mut String, attribute: &AttributeTypeAndValue<'_>) {
    match oid2abbrev(attribute.attr_type(), oid_registry()) {
        Ok(abbreviation) => out.push_str(abbreviation),
        Err(_) => out.push_str(&attribute.attr_type().to_id_string()),
    }
    out.push('=');
    if let Some(value) = string_value(attribute.attr_value()) {
        push_escaped(out, &value);
    } else {
        // RFC 4514 section 2.4: the value's whole BER encoding, in hex.
        out.push('#');
        let value = attribute.attr_value();
        let encoded = value.to_der_vec().unwrap_or_else(|_| value.data.to_vec());
        for byte in encoded {
            let _ = write!(out, "{byte:02X}");
        }
    }
}

/// The value as text, for the string types x509-parser's `Display` reads
/// as text; `None` for any other type (or bytes that are not text).
fn string_value(value: &Any<'_>) -> Option<String> {
    match value.tag() {
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::ObjectDescriptor
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => std::str::from_utf8(value.data).ok().map(str::to_owned),
        Tag::BmpString => {
            let units = value.data.chunks_exact(2);
            if !units.remainder().is_empty() {
                return None;
            }
            let units = units.map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// RFC 4514 section 2.4.
fn push_escaped(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (index, character) in value.chars().enumerate() {
        match character {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(character);
            }
            '#' if index == 0 => out.push_str("\\#"),
            ' ' if index == 0 || index == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            character => out.push(character),
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    use super::distinguished_name;

    /// The subject of a certificate with `names`, as read here and as
    /// x509-parser's `Display` writes it.
    fn both_readings(names: &[(DnType, DnValue)]) -> (String, String) {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        for (kind, value) in names {
            name.push(kind.clone(), value.clone());
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().expect("key");
        let certificate = params.self_signed(&key).expect("certificate");
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.der()).expect("parse");
        (
            distinguished_name(parsed.subject()),
            parsed.subject().to_string(),
        )
    }

    fn subject_of(names: &[(DnType, DnValue)]) -> String {
        both_readings(names).0
    }

    /// A plain name reads as x509-parser's `Display` writes it.
    #[test]
    fn plain_names_read_as_before() {
        let names = [
            (
                DnType::CommonName,
                DnValue::Utf8String("crawler.bot.test".into()),
            ),
            (
                DnType::OrganizationName,
                DnValue::PrintableString("Example".try_into().expect("printable")),
            ),
        ];
        let (ours, display) = both_readings(&names);
        assert_eq!(ours, display);
        assert_eq!(ours, "CN=crawler.bot.test, O=Example");
    }

    /// One common name cannot pass for more attributes, nor for a value
    /// that starts with `#` (a hex value) or a space.
    #[test]
    fn values_cannot_pass_for_more_of_the_name() {
        let cn = |value: &str| [(DnType::CommonName, DnValue::Utf8String(value.into()))];
        assert_eq!(
            subject_of(&cn("crawler.example, O=Trusted Partner, CN=admin")),
            "CN=crawler.example\\, O=Trusted Partner\\, CN=admin"
        );
        assert_eq!(subject_of(&cn("a + O=b")), "CN=a \\+ O=b");
        assert_eq!(subject_of(&cn("x\\, O=y")), "CN=x\\\\\\, O=y");
        assert_eq!(subject_of(&cn("\"q\";<t>")), "CN=\\\"q\\\"\\;\\<t\\>");
        assert_eq!(subject_of(&cn("#41")), "CN=\\#41");
        assert_eq!(subject_of(&cn(" padded ")), "CN=\\ padded\\ ");
        assert_eq!(subject_of(&cn("a#b c")), "CN=a#b c");
        assert_eq!(subject_of(&cn("nul\0")), "CN=nul\\00");
    }

    /// `BMPString` values are text; a type that is not a string is `#` and
    /// hex.
    #[test]
    fn other_value_types() {
        assert_eq!(
            subject_of(&[(
                DnType::CommonName,
                DnValue::BmpString("bmp, x".try_into().expect("bmp"))
            )]),
            "CN=bmp\\, x"
        );
        assert_eq!(
            subject_of(&[(
                DnType::CommonName,
                DnValue::UniversalString("ab".try_into().expect("universal"))
            )]),
            // Tag 0x1C (UniversalString), length 8, UCS-4 "ab".
            "CN=#1C080000006100000062"
        );
    }
}
