//! Edits handshake messages on the wire, for misbehaviours the hooks cannot
//! produce: a duplicate extension in the plaintext ClientHello or ServerHello.
//!
//! Only the first TLS record of a flight is edited, and only if it holds the
//! whole message; every enclosing length is fixed up.

const HANDSHAKE: u8 = 22;
const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;

/// The handshake message types this module can edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hello {
    /// `client_hello` (1).
    Client,
    /// `server_hello` (2), including a HelloRetryRequest.
    Server,
}

fn be16(bytes: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *bytes.get(at)?,
        *bytes.get(at + 1)?,
    ])))
}

fn put16(bytes: &mut [u8], at: usize, value: usize) {
    let value = u16::try_from(value).expect("length fits 16 bits");
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Offset of the extensions length field inside a hello body.
fn extensions_offset(hello: Hello, body: &[u8]) -> Option<usize> {
    // legacy_version(2) random(32) session_id<0..32>
    let mut at = 2 + 32;
    at += 1 + usize::from(*body.get(at)?);
    match hello {
        Hello::Client => {
            at += 2 + be16(body, at)?; // cipher_suites
            at += 1 + usize::from(*body.get(at)?); // compression_methods
        }
        Hello::Server => at += 2 + 1, // cipher_suite, compression_method
    }
    Some(at)
}

/// Duplicates the extension `typ` of the hello at the start of `flight`
/// (inserting the copy right after the original). Returns whether it did.
pub fn duplicate_extension(flight: &mut Vec<u8>, hello: Hello, typ: u16) -> bool {
    let kind = match hello {
        Hello::Client => 1,
        Hello::Server => 2,
    };
    let (Some(&HANDSHAKE), Some(record_len)) = (flight.first(), be16(flight, 3)) else {
        return false;
    };
    if flight.get(RECORD_HEADER) != Some(&kind) {
        return false;
    }
    let body_start = RECORD_HEADER + HANDSHAKE_HEADER;
    let Some(body) = flight.get(body_start..RECORD_HEADER + record_len) else {
        return false;
    };
    let Some(exts_at) = extensions_offset(hello, body) else {
        return false;
    };
    let Some(exts_len) = be16(body, exts_at) else {
        return false;
    };
    // find the extension
    let mut at = exts_at + 2;
    let end = at + exts_len;
    let mut found = None;
    while at + 4 <= end {
        let (Some(t), Some(len)) = (be16(body, at), be16(body, at + 2)) else {
            return false;
        };
        if t == usize::from(typ) {
            found = Some(body[at..at + 4 + len].to_vec());
            at += 4 + len;
            break;
        }
        at += 4 + len;
    }
    let Some(copy) = found else {
        return false;
    };
    let insert_at = body_start + at;
    flight.splice(insert_at..insert_at, copy.iter().copied());
    let grow = copy.len();
    put16(flight, 3, record_len + grow);
    let handshake_len = record_len - HANDSHAKE_HEADER + grow;
    let len24 = u32::try_from(handshake_len).expect("fits").to_be_bytes();
    flight[RECORD_HEADER + 1..RECORD_HEADER + 4].copy_from_slice(&len24[1..]);
    put16(flight, body_start + exts_at, exts_len + grow);
    true
}
