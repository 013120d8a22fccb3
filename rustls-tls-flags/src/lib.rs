//! A codec for the TLS Flags extension (`tls_flags`,
//! draft-ietf-tls-tlsflags-15): `#![no_std]`, no dependencies, no `unsafe`,
//! no allocation on decode.
//!
//! # What the extension is for
//!
//! Many TLS extensions carry nothing but "yes, I support X" — a whole
//! extension (type, length, body) for one bit. TLS Flags gathers such
//! features into one extension holding a bit string: up to 2040 one-bit
//! flags, each assigned by IANA. A peer *proposes* a flag in a request
//! message (ClientHello, CertificateRequest, NewSessionTicket) and the other
//! side *acknowledges* it by setting the same flag in its response
//! (ServerHello, HelloRetryRequest, EncryptedExtensions, Certificate).
//!
//! This crate knows the wire format and the rules a receiver checks on its
//! own; it knows nothing of rustls. The `rustls-req-client-auth` crate wires
//! it into handshakes through the project's rustls fork.
//!
//! # Wire format
//!
//! `extension_data` is `opaque flags<1..255>`: a length octet `L` followed by
//! `L` octets. Octet `k` holds flags `8k..8k+7`, flag `8k + j` being the bit
//! `1 << j` (least significant bit first), and the last octet is never zero.
//! The draft's examples, with the length octet:
//!
//! | flags        | `extension_data` |
//! |--------------|------------------|
//! | {0}          | `01 01`          |
//! | {1, 5}       | `01 22`          |
//! | {3, 5, 23}   | `03 28 00 80`    |
//!
//! The extension's type is [`extension_type::TLS_FLAGS`] (62), or
//! [`extension_type::TLS_FLAGS_EXPERIMENTAL`] (0xFE01) for Cloudflare's
//! deployments; the type is the caller's choice, the body is the same.
//!
//! # Sending
//!
//! Build a [`FlagSet`] and encode it. The encoding is minimal by construction
//! (TF-3) and an empty set encodes to nothing, meaning "send no extension"
//! (TF-4):
//!
//! ```
//! use rustls_tls_flags::{extension_type, Flag, FlagSet};
//!
//! let mut offer = FlagSet::new();
//! offer.insert(Flag::REQUEST_CLIENT_AUTH);
//!
//! let mut buf = [0u8; 256]; // always enough
//! let n = offer.encode_into(&mut buf)?;
//! assert_eq!(&buf[..n], &[11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
//! // ...add extension `extension_type::TLS_FLAGS` with body `&buf[..n]`
//! # let _ = extension_type::TLS_FLAGS;
//!
//! // Nothing to say: no extension at all (TF-4).
//! assert_eq!(FlagSet::new().encode_into(&mut buf)?, 0);
//! # Ok::<(), rustls_tls_flags::BufferTooSmall>(())
//! ```
//!
//! # Receiving
//!
//! [`decode`] validates the framing and minimality (TF-1, TF-3) and returns
//! a zero-copy [`FlagsView`]; [`check_received`] then applies the
//! request/response rule (TF-6, TF-8) for the message it came in. Both
//! errors name the alert to send:
//!
//! ```
//! use rustls_tls_flags::{check_received, decode, Alert, Flag, FlagSet, MessageKind};
//!
//! // The client proposed request_client_auth in its ClientHello...
//! let proposed = FlagSet::from([Flag::REQUEST_CLIENT_AUTH]);
//!
//! // ...and the server acknowledges it in its CertificateRequest. A CR is a
//! // request message, so any flag is allowed; the application then looks for
//! // the one it cares about.
//! let cr = decode(&[11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]).map_err(Alert::from)?;
//! check_received(MessageKind::CertificateRequest, &cr, Some(&proposed)).map_err(Alert::from)?;
//! assert!(cr.contains(Flag::REQUEST_CLIENT_AUTH));
//!
//! // An EncryptedExtensions that sets flags 3 and 5, which nobody proposed:
//! let ee = decode(&[0x01, 0x28]).map_err(Alert::from)?;
//! let violation = check_received(MessageKind::EncryptedExtensions, &ee, Some(&proposed))
//!     .unwrap_err();
//! assert_eq!(violation.alert(), Alert::IllegalParameter);
//! assert_eq!(violation.flag(), Flag::new(3).unwrap());
//!
//! // A malformed body: truncated, so decode_error.
//! let err = decode(&[0x03, 0x28, 0x00]).unwrap_err();
//! assert_eq!(err.alert(), Alert::DecodeError);
//! assert_eq!(
//!     err.to_string(),
//!     "tls_flags extension_data declares 3 flag octets but carries 2 (TF-1, decode_error)",
//! );
//! # Ok::<(), Alert>(())
//! ```
//!
//! # Choices this crate makes
//!
//! - A length octet of 0 is a framing error, `decode_error` (TF-3,
//!   **ours**, as BoringSSL), not `illegal_parameter`.
//! - An empty set is never encoded: it means no extension (TF-4, **ours**
//!   for every sender, not only the client).
//! - Unknown flags are carried, never dropped: [`FlagsView`] and [`FlagSet`]
//!   report every flag set on the wire.
//!
//! # Conformance
//!
//! The rules are numbered as in `SPECIFICATION.md` of the
//! `rustls-req-client-auth` crate. Tests are named after the rule they check and live in this crate's `tests/`.
//!
//! | rule | enforced by | checked by |
//! |------|-------------|------------|
//! | TF-1 framing, `decode_error` | [`decode`]: [`DecodeErrorKind::Empty`], [`ZeroLength`](DecodeErrorKind::ZeroLength), [`LengthMismatch`](DecodeErrorKind::LengthMismatch); [`FlagSet::encode_into`] writes `L` then `L` octets | `tests/decode.rs` `tf1_*`; `tests/proptests.rs` `tf1_tf3_decode_accepts_exactly_minimal_encodings`; fuzz target `codec_decode` and `tests/fuzz_corpus.rs` |
//! | TF-2 numbering 0..=2039, LSB first | [`Flag`] (range), the octet/bit mapping shared by [`FlagSet`] and [`FlagsView`] | `tests/decode.rs` `tf2_*` (the draft's vectors both ways, flag 2039 → 255 octets) |
//! | TF-3 minimal, `illegal_parameter` | [`decode`]: [`AllZero`](DecodeErrorKind::AllZero), [`TrailingZeroOctet`](DecodeErrorKind::TrailingZeroOctet); [`FlagSet`] keeps its length minimal | `tests/decode.rs` `tf3_*`; `tests/encode.rs` `tf3_*`; `tests/proptests.rs` `tf1_tf2_tf3_encode_decode_round_trip` |
//! | TF-4 empty set ⇒ no extension | [`FlagSet::encode_into`] writes 0 bytes, `FlagSet::to_extension_data` returns `None`; *omitting* the extension in the handshake: `rustls-req-client-auth` | `tests/encode.rs` `tf4_*` |
//! | TF-5 messages that may carry it | [`MessageKind`] lists exactly CH, SH, HRR, EE, CR, CT, NST; rejecting `tls_flags` in any other message: `rustls-req-client-auth` (the fork's hooks expose each message's unknown extensions) | `tests/check_received.rs` `tf5_*` |
//! | TF-6 unsolicited flags in SH/HRR/EE/CT | [`check_received`] → [`Violation`], `illegal_parameter`; passing the right `proposed` set (CH's or CR's): `rustls-req-client-auth` | `tests/check_received.rs` `tf6_*` |
//! | TF-7 acknowledge by setting the same flag | by construction: a flag is one bit with no content; *sending* acknowledgements: `rustls-req-client-auth` | — (hook crate) |
//! | TF-8 unknown flags in CH/CR/NST ignored | [`check_received`] accepts any flag in a request; [`decode`] keeps unknown flags | `tests/check_received.rs` `tf8_*` |
//! | TF-9 several flags in one extension | [`FlagSet`], [`FlagsView`] hold any subset of 0..=2039 | `tests/set_algebra.rs` `tf9_*`; `tests/proptests.rs` |
//! | TF-10 0-RTT carries it as a full handshake | `rustls-req-client-auth` | hook crate tests |
//! | TF-11 SH/HRR acknowledgements are visible | `rustls-req-client-auth` (acknowledges in EE, CR or CT) | hook crate tests |
//! | TF-12 duplicate `tls_flags` rejected | the rustls fork's extension parser (rustls refuses duplicate extensions) | hook crate tests |
//!
//! # Features
//!
//! - `alloc` (default): `FlagSet::to_extension_data`, returning a `Vec`.
//!   Everything else works without a heap.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod bits;
mod error;
mod flag;
mod message;
mod set;
mod view;

pub use bits::Iter;
pub use error::{Alert, BufferTooSmall, DecodeError, DecodeErrorKind, Violation};
pub use flag::Flag;
pub use message::{check_received, MessageKind};
pub use set::FlagSet;
pub use view::{decode, FlagsView};

/// Extension type code points for `tls_flags` (the `ExtensionType` that
/// precedes the `extension_data` this crate encodes and decodes).
///
/// The codec never looks at the type; the caller picks the one its peers
/// use, and the hook crate makes it configurable.
pub mod extension_type {
    /// 62 (0x003E): the IANA-assigned `tls_flags` code point, as BoringSSL
    /// uses it.
    pub const TLS_FLAGS: u16 = 62;

    /// 0xFE01: the experimental code point Cloudflare's deployments (and
    /// their Go fork) use for `tls_flags` together with
    /// [`Flag::REQUEST_CLIENT_AUTH`](crate::Flag::REQUEST_CLIENT_AUTH).
    pub const TLS_FLAGS_EXPERIMENTAL: u16 = 0xFE01;
}
