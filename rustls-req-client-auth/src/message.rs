//! rustls's names for the messages that carry extensions, in the codec's
//! terms, and the one lookup of an extension in a received message.

use rustls::hooks::{HandshakeMessage, Received};
use rustls_tls_flags::MessageKind;

/// The TLS Flags message kind of `message`; `None` for a message this crate
/// does not know (the fork's enum is non-exhaustive), which it leaves alone.
pub(crate) fn kind_of(message: HandshakeMessage) -> Option<MessageKind> {
    Some(match message {
        HandshakeMessage::ClientHello => MessageKind::ClientHello,
        HandshakeMessage::ServerHello => MessageKind::ServerHello,
        HandshakeMessage::HelloRetryRequest => MessageKind::HelloRetryRequest,
        HandshakeMessage::EncryptedExtensions => MessageKind::EncryptedExtensions,
        HandshakeMessage::CertificateRequest => MessageKind::CertificateRequest,
        HandshakeMessage::Certificate { .. } => MessageKind::Certificate,
        HandshakeMessage::NewSessionTicket => MessageKind::NewSessionTicket,
        _ => return None,
    })
}

/// The body of the extension of type `extension_type` in `received`, if any
/// (a duplicate was already refused by the fork's parser, TF-12).
pub(crate) fn extension_body<'a>(
    received: &'a Received<'_>,
    extension_type: u16,
) -> Option<&'a [u8]> {
    received
        .extensions
        .iter()
        .find(|ext| ext.typ() == extension_type)
        .map(rustls::hooks::RawExtension::body)
}
