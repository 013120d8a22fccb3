//! Which trust path authenticated a client: the server's answer, also kept in
//! tickets (`ticket.rs`), so it lives apart from both.

/// Which trust path authenticated the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthPath {
    /// None: the client is anonymous.
    None,
    /// The flag path: the client set `request_client_auth` and its certificate
    /// was verified by the [`ServerFlags`](crate::ServerFlags) verifier.
    Flag,
    /// The normal path: the `ServerConfig`'s own verifier requested and
    /// verified the certificate (RCA-3).
    Normal,
}

impl AuthPath {
    /// `"none"`, `"flag"` or `"normal"`: the name used in logs and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Flag => "flag",
            Self::Normal => "normal",
        }
    }
}

impl std::fmt::Display for AuthPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
