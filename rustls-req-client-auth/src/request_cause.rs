//! Why a CertificateRequest was sent: one name for the concept on both sides.

/// Why the server sent a CertificateRequest: on the server, whose verifier
/// asked; on the client, whether the request acknowledged the flag (RCA-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateRequestCause {
    /// The client set `request_client_auth`, and the request acknowledged it
    /// (RCA-2).
    Flag,
    /// The server asks for its own reasons: the config's own verifier (RCA-3).
    ServerPolicy,
}
