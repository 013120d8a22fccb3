//! The session store of the upstream connections.

use rustls::client::{ClientSessionMemoryCache, ClientSessionStore};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;
use rustls_req_client_auth::client::{ClientOutcomes, SentIdentity};

/// Keeps no ticket of a session in which a CertificateRequest was answered
/// with an empty Certificate. A server that asked because of the flag
/// without acknowledging it (Cloudflare's Go fork on 0xFE01) was seen to
/// wait for a client certificate again when such a session is resumed, and
/// to abort with `unexpected_message`: every second connection failed. A
/// full handshake costs a little; a failed request costs the request.
///
/// The empty Certificate itself is the library's answer to a request that
/// does not acknowledge the flag (RCA-9: the client tells the two kinds of
/// request apart); a server that resumes must keep the session's trust path
/// without a new CertificateRequest (RCA-11), which that server does not.
#[derive(Debug)]
pub(crate) struct NoResumeAfterEmptyCertificate {
    pub(crate) sessions: ClientSessionMemoryCache,
    pub(crate) outcomes: ClientOutcomes,
}

impl ClientSessionStore for NoResumeAfterEmptyCertificate {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.sessions.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.sessions.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.sessions.set_tls12_session(server_name, value);
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.sessions.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.sessions.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        let answered_empty = self
            .outcomes
            .get(&server_name.to_str())
            .is_some_and(|state| {
                state.certificate_request().is_some()
                    && state.sent_identity() == SentIdentity::Empty
            });
        if answered_empty {
            log::debug!(
                "not keeping a session ticket of {server_name:?}: a CertificateRequest there was answered with an empty Certificate"
            );
            return;
        }
        self.sessions.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.sessions.take_tls13_ticket(server_name)
    }
}
