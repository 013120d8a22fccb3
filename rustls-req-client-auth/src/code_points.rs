//! The numbers on the wire: the extension type and the flag.

use rustls_tls_flags::{extension_type, Flag};

/// Which extension type carries TLS Flags and which flag means
/// `request_client_auth`.
///
/// The defaults are the IANA extension type (62) and the experimental flag
/// number 80; [`CodePoints::experimental`] selects extension type 0xFE01 as used
/// by deployed experimental servers. Both ends must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePoints {
    /// The `tls_flags` extension type.
    pub extension_type: u16,
    /// The flag number of `request_client_auth`.
    pub request_client_auth: Flag,
}

impl CodePoints {
    /// Extension type 62, flag 80.
    pub const DEFAULT: Self = Self {
        extension_type: extension_type::TLS_FLAGS,
        request_client_auth: Flag::REQUEST_CLIENT_AUTH,
    };

    /// Extension type 0xFE01, flag 80: the values of experimental deployments.
    pub const fn experimental() -> Self {
        Self {
            extension_type: extension_type::TLS_FLAGS_EXPERIMENTAL,
            request_client_auth: Flag::REQUEST_CLIENT_AUTH,
        }
    }
}

impl Default for CodePoints {
    fn default() -> Self {
        Self::DEFAULT
    }
}
