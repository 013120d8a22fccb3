//! rustls's names for the messages that carry extensions, in the codec's terms.

use rustls::hooks::HandshakeMessage;
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
