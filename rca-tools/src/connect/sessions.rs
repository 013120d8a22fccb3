//! The session store of the upstream connections.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;
use rustls_req_client_auth::client::{ClientOutcomes, SentIdentity};

/// TLS 1.3 tickets kept per server, as rustls's memory cache keeps them.
const TICKETS_PER_SERVER: usize = 8;

/// Servers whose tickets are kept; the one whose tickets came first goes.
const SERVERS: usize = 64;

/// The upstream connections' sessions: rustls's memory cache for all but
/// TLS 1.3 tickets, which are kept here with the identity the session was
/// authenticated with, so that a connection that resumes one can say so
/// (see [`offered_identity`]).
///
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
pub(crate) struct UpstreamSessions {
    sessions: ClientSessionMemoryCache,
    outcomes: ClientOutcomes,
    /// The bot certificate's `x5t#S256`.
    thumbprint: String,
    tickets: Mutex<Tickets>,
}

/// TLS 1.3 tickets by server, oldest first, each with the `x5t#S256` of the
/// bot certificate its session was authenticated with, if any.
#[derive(Debug, Default)]
struct Tickets {
    by_server: HashMap<ServerName<'static>, VecDeque<(Tls13ClientSessionValue, Option<String>)>>,
    /// The servers in `by_server`, in the order they came.
    servers: VecDeque<ServerName<'static>>,
}

thread_local! {
    /// The identity of the session whose ticket was taken last on this
    /// thread. rustls takes the ticket a ClientHello offers while it makes
    /// the connection (`ClientConnection::new`, which tokio-rustls's
    /// `connect` calls at once), so the connector reads it right after,
    /// with no await between.
    static OFFERED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What the tickets a connection receives are kept with: the identity its
/// session was authenticated with (for a resumed one, the resumed
/// session's, which the server keeps, RCA-11), and whether it answered a CertificateRequest with an empty
/// Certificate (then they are not kept).
#[derive(Debug)]
pub(crate) struct TicketTag {
    pub(crate) identity: Option<String>,
    pub(crate) answered_empty: bool,
}

thread_local! {
    /// The tag of the connection whose bytes this thread is reading: rustls
    /// stores the tickets they bring within that read.
    static RECEIVING: RefCell<Option<Arc<TicketTag>>> = const { RefCell::new(None) };
}

/// Runs `read`, a read from the connection that `tag` describes, keeping
/// the tickets it brings with `tag`.
pub(crate) fn receiving<R>(tag: &Arc<TicketTag>, read: impl FnOnce() -> R) -> R {
    /// Puts back what was there before, also if `read` panics.
    struct Restore(Option<Arc<TicketTag>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            RECEIVING.with(|receiving| *receiving.borrow_mut() = previous);
        }
    }
    let _restore = Restore(RECEIVING.with(|receiving| receiving.replace(Some(Arc::clone(tag)))));
    read()
}

/// Forgets what an earlier connection made on this thread offered; call it
/// before making a connection.
pub(crate) fn forget_offered() {
    OFFERED.with(|offered| offered.borrow_mut().take());
}

/// The `x5t#S256` of the bot certificate the session offered by the
/// connection just made on this thread was authenticated with: if the
/// server resumes that session, it holds that identity (RCA-11). `None`
/// when no ticket was offered or its session had no bot certificate.
pub(crate) fn offered_identity() -> Option<String> {
    OFFERED.with(|offered| offered.borrow_mut().take())
}

impl UpstreamSessions {
    /// A store for connections of the policy whose record is `outcomes`,
    /// answering with the bot certificate of `thumbprint`.
    pub(crate) fn new(outcomes: ClientOutcomes, thumbprint: &str) -> Self {
        Self {
            sessions: ClientSessionMemoryCache::new(256),
            outcomes,
            thumbprint: thumbprint.to_owned(),
            tickets: Mutex::default(),
        }
    }
}

impl ClientSessionStore for UpstreamSessions {
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
        let tag = RECEIVING.with(|receiving| receiving.borrow().clone());
        // The connection being read brought this ticket. Without one (a
        // server that sends tickets with its handshake flight, read before
        // the connection is an `UpstreamIo`), the latest handshake with
        // this server.
        let (answered_empty, identity) = if let Some(tag) = tag {
            (tag.answered_empty, tag.identity.clone())
        } else {
            let state = self.outcomes.get(&server_name.to_str());
            let answered_empty = state.as_ref().is_some_and(|state| {
                state.certificate_request().is_some()
                    && state.sent_identity() == SentIdentity::Empty
            });
            let identity = state
                .is_some_and(|state| state.sent_identity() == SentIdentity::FlagIdentity)
                .then(|| self.thumbprint.clone());
            (answered_empty, identity)
        };
        if answered_empty {
            log::debug!(
                "not keeping a session ticket of {server_name:?}: a CertificateRequest there was answered with an empty Certificate"
            );
            return;
        }
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        let Tickets { by_server, servers } = &mut *tickets;
        if !by_server.contains_key(&server_name) {
            if servers.len() == SERVERS {
                if let Some(oldest) = servers.pop_front() {
                    by_server.remove(&oldest);
                }
            }
            servers.push_back(server_name.clone());
        }
        let kept = by_server.entry(server_name).or_default();
        if kept.len() == TICKETS_PER_SERVER {
            kept.pop_front();
        }
        kept.push_back((value, identity));
    }

    /// The newest ticket, as rustls's cache gives it; its identity is kept
    /// for [`offered_identity`].
    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        let (value, identity) = tickets.by_server.get_mut(server_name)?.pop_back()?;
        OFFERED.with(|offered| *offered.borrow_mut() = identity);
        Some(value)
    }
}
