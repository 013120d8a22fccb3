//! TLS framing, just enough to check what a connection writes (records) and to
//! derive malformed seeds from recorded ones (a hello's extensions, with every
//! enclosing length fixed up).

/// `ContentType` values (RFC 8446, 5.1).
pub const CHANGE_CIPHER_SPEC: u8 = 20;
/// An alert record.
pub const ALERT: u8 = 21;
/// A handshake record.
pub const HANDSHAKE: u8 = 22;
/// An application data record (in TLS 1.3 also every encrypted record).
pub const APPLICATION_DATA: u8 = 23;

/// `HandshakeType` values.
pub const CLIENT_HELLO: u8 = 1;
/// `server_hello`, also the type of a HelloRetryRequest.
pub const SERVER_HELLO: u8 = 2;

/// The length of a TLS 1.3 record holding one encrypted alert: the alert (2),
/// the inner content type (1) and a 16-byte AEAD tag; rustls adds no padding.
pub const TLS13_ENCRYPTED_ALERT_LEN: usize = 2 + 1 + 16;

const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
/// The largest record payload a TLS 1.2 peer may send (2^14 + 2048).
const MAX_RECORD_PAYLOAD: usize = 16384 + 2048;

/// The HelloRetryRequest's special `random` (RFC 8446, 4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// One record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `ContentType`.
    pub typ: u8,
    /// `legacy_record_version`.
    pub version: u16,
    /// The fragment, possibly encrypted.
    pub payload: &'a [u8],
}

/// Splits `bytes` into whole records; `None` if anything is left over.
pub fn records(mut bytes: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (record, rest) = split_record(bytes)?;
        out.push(record);
        bytes = rest;
    }
    Some(out)
}

fn split_record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let header = bytes.get(..RECORD_HEADER)?;
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER + length)?;
    let record = Record {
        typ: header[0],
        version: u16::from_be_bytes([header[1], header[2]]),
        payload,
    };
    Some((record, &bytes[RECORD_HEADER + length..]))
}

impl Record<'_> {
    /// Whether the header is one rustls may write: a known content type,
    /// version 1.0 (a first ClientHello) or 1.2, a payload within limits.
    pub fn well_formed(&self) -> bool {
        (CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&self.typ)
            && (self.version == 0x0301 || self.version == 0x0303)
            && self.payload.len() <= MAX_RECORD_PAYLOAD
    }

    /// The handshake type of the first message, for a plaintext handshake record.
    pub fn handshake_type(&self) -> Option<u8> {
        (self.typ == HANDSHAKE).then(|| self.payload.first().copied())?
    }

    /// The record's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.typ);
        out.extend_from_slice(&self.version.to_be_bytes());
        put_u16_len(out, self.payload.len());
        out.extend_from_slice(self.payload);
    }
}

/// A ClientHello or ServerHello (or HelloRetryRequest) taken apart at its
/// extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// `HandshakeType`: [`CLIENT_HELLO`] or [`SERVER_HELLO`].
    pub msg_type: u8,
    /// The body up to the extensions block.
    pub head: Vec<u8>,
    /// The extensions in order: (type, `extension_data`).
    pub extensions: Vec<(u16, Vec<u8>)>,
}

impl Hello {
    /// Parses one handshake message (header included).
    pub fn parse(message: &[u8]) -> Option<Self> {
        let msg_type = *message.first()?;
        let length = usize::from(*message.get(1)?) << 16
            | usize::from(u16::from_be_bytes([*message.get(2)?, *message.get(3)?]));
        let body = message.get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + length)?;
        if message.len() != HANDSHAKE_HEADER + length {
            return None;
        }
        // legacy_version(2) random(32) legacy_session_id<0..32>
        let mut at = 2 + 32;
        at += 1 + usize::from(*body.get(at)?);
        match msg_type {
            CLIENT_HELLO => {
                at += 2 + be16(body, at)?; // cipher_suites
                at += 1 + usize::from(*body.get(at)?); // legacy_compression_methods
            }
            SERVER_HELLO => at += 2 + 1, // cipher_suite, legacy_compression_method
            _ => return None,
        }
        let head = body.get(..at)?.to_vec();
        let block_len = be16(body, at)?;
        let mut block = body.get(at + 2..)?;
        if block.len() != block_len {
            return None;
        }
        let mut extensions = Vec::new();
        while !block.is_empty() {
            let typ = u16::try_from(be16(block, 0)?).ok()?;
            let len = be16(block, 2)?;
            extensions.push((typ, block.get(4..4 + len)?.to_vec()));
            block = &block[4 + len..];
        }
        Some(Self {
            msg_type,
            head,
            extensions,
        })
    }

    /// Encodes the message (header included), every length recomputed.
    pub fn encode(&self) -> Vec<u8> {
        let mut block = Vec::new();
        for (typ, data) in &self.extensions {
            block.extend_from_slice(&typ.to_be_bytes());
            put_u16_len(&mut block, data.len());
            block.extend_from_slice(data);
        }
        let mut body = self.head.clone();
        put_u16_len(&mut body, block.len());
        body.extend_from_slice(&block);
        let length = u32::try_from(body.len()).expect("a hello under 16 MiB");
        let mut message = vec![self.msg_type];
        message.extend_from_slice(&length.to_be_bytes()[1..]);
        message.extend_from_slice(&body);
        message
    }

    /// Whether this ServerHello is a HelloRetryRequest.
    pub fn is_hello_retry_request(&self) -> bool {
        self.msg_type == SERVER_HELLO && self.head.get(2..34) == Some(&HRR_RANDOM[..])
    }

    /// The position of the first extension of type `typ`.
    pub fn position(&self, typ: u16) -> Option<usize> {
        self.extensions.iter().position(|(t, _)| *t == typ)
    }

    /// Adds an extension: in a ClientHello before `pre_shared_key`, which
    /// must stay last; elsewhere at the end.
    pub fn add(&mut self, typ: u16, data: Vec<u8>) {
        const PRE_SHARED_KEY: u16 = 41;
        let at = match self.msg_type {
            CLIENT_HELLO => self
                .position(PRE_SHARED_KEY)
                .unwrap_or(self.extensions.len()),
            _ => self.extensions.len(),
        };
        self.extensions.insert(at, (typ, data));
    }
}

/// Applies `edit` to the hello that starts the first record of `flight`
/// (which must hold it whole) and fixes up the record length; the rest of the
/// flight is kept byte for byte. `None` if the flight does not start so.
pub fn edit_first_hello(flight: &[u8], edit: impl FnOnce(&mut Hello)) -> Option<Vec<u8>> {
    let (record, rest) = split_record(flight)?;
    if record.typ != HANDSHAKE {
        return None;
    }
    let length = usize::from(*record.payload.get(1)?) << 16 | be16(record.payload, 2)?;
    let message = record.payload.get(..HANDSHAKE_HEADER + length)?;
    let mut hello = Hello::parse(message)?;
    edit(&mut hello);
    let mut payload = hello.encode();
    payload.extend_from_slice(&record.payload[message.len()..]);
    let mut out = Vec::with_capacity(flight.len() + 64);
    Record {
        payload: &payload,
        ..record
    }
    .encode(&mut out);
    out.extend_from_slice(rest);
    Some(out)
}

/// The hello that starts the first record of `flight`.
pub fn first_hello(flight: &[u8]) -> Option<Hello> {
    let mut found = None;
    edit_first_hello(flight, |hello| found = Some(hello.clone()))?;
    found
}

fn be16(bytes: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *bytes.get(at)?,
        *bytes.get(at + 1)?,
    ])))
}

fn put_u16_len(out: &mut Vec<u8>, len: usize) {
    let len = u16::try_from(len).expect("length fits 16 bits");
    out.extend_from_slice(&len.to_be_bytes());
}
