//! Runs a client and a server connection against each other in memory.
//!
//! The driver moves TLS records between the two until both finish or one
//! fails; a failing side's alert is delivered to its peer, so a test can check
//! both the error one side raised and the alert the other side received.
//! The records themselves move through `memory_pump`, the pump the fuzz
//! harness and the benchmarks use too.

use std::io::{Read, Write};
use std::sync::Arc;

pub use memory_pump::flush;
use memory_pump::Stopped;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, ConnectionCommon, Error, ServerConfig,
    ServerConnection, SideData,
};

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The TLS client.
    Client,
    /// The TLS server.
    Server,
}

impl Side {
    /// The other end.
    #[must_use]
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// How a handshake ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What the client's `process_new_packets` returned, if it failed.
    pub client_error: Option<Error>,
    /// What the server's `process_new_packets` returned, if it failed.
    pub server_error: Option<Error>,
}

impl Outcome {
    /// Both sides completed without error.
    pub fn is_ok(&self) -> bool {
        self.client_error.is_none() && self.server_error.is_none()
    }

    /// The error `side` raised.
    pub fn error(&self, side: Side) -> Option<&Error> {
        match side {
            Side::Client => self.client_error.as_ref(),
            Side::Server => self.server_error.as_ref(),
        }
    }

    /// The alert `side` received from its peer, if its error was a received alert.
    pub fn alert_received_by(&self, side: Side) -> Option<AlertDescription> {
        match self.error(side) {
            Some(Error::AlertReceived(alert)) => Some(*alert),
            _ => None,
        }
    }

    /// Asserts that the handshake succeeded.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "handshake failed: {self:?}");
    }

    /// Asserts that `failing` aborted the handshake and its peer received
    /// `alert`; returns the error `failing` raised.
    #[track_caller]
    pub fn assert_alert(&self, failing: Side, alert: AlertDescription) -> &Error {
        let raised = self
            .error(failing)
            .unwrap_or_else(|| panic!("{failing:?} did not fail: {self:?}"));
        assert_eq!(
            self.alert_received_by(failing.peer()),
            Some(alert),
            "{:?} should have received {alert:?}: {self:?}",
            failing.peer()
        );
        raised
    }
}

/// Edits the bytes of a flight in transit: `(sender, bytes)`.
pub type Tamper<'a> = &'a mut dyn FnMut(Side, &mut Vec<u8>);

/// Moves everything `from` wants to send into `to`; returns the byte count.
fn transfer<A: SideData, B: SideData>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> usize {
    transfer_tampered(from, to, None)
}

fn transfer_tampered<A: SideData, B: SideData>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    tamper: Option<(Side, Tamper<'_>)>,
) -> usize {
    let mut wire = flush(from);
    if let Some((sender, tamper)) = tamper {
        if !wire.is_empty() {
            tamper(sender, &mut wire);
        }
    }
    // The receiver stops reading once it has failed; the rest is dropped.
    memory_pump::buffer(to, &wire);
    wire.len()
}

/// Runs the handshake (and the delivery of anything sent right after it, such
/// as TLS 1.3 session tickets) until it completes or a side fails.
pub fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Outcome {
    handshake_tampered(client, server, &mut |_, _| {})
}

/// [`handshake`], with every handshake flight passed through `tamper` on its way.
pub fn handshake_tampered(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    tamper: Tamper<'_>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for _round in 0..32 {
        let to_server = transfer_tampered(client, server, Some((Side::Client, &mut *tamper)));
        if let Err(err) = server.process_new_packets() {
            outcome.server_error = Some(err);
            transfer(server, client);
            outcome.client_error = client.process_new_packets().err();
            return outcome;
        }
        let to_client = transfer_tampered(server, client, Some((Side::Server, &mut *tamper)));
        if let Err(err) = client.process_new_packets() {
            outcome.client_error = Some(err);
            transfer(client, server);
            outcome.server_error = server.process_new_packets().err();
            return outcome;
        }
        if to_server == 0 && to_client == 0 && !client.is_handshaking() && !server.is_handshaking()
        {
            return outcome;
        }
    }
    panic!("handshake made no progress in 32 rounds");
}

/// Sends `message` from client to server and back; returns what each side read.
/// Used to show that application data does (or does not) flow.
///
/// # Errors
///
/// The first error either side's `process_new_packets` (or reader) returns.
pub fn exchange_data(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    message: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let io_error = |err: std::io::Error| Error::General(err.to_string());
    client.writer().write_all(message).map_err(io_error)?;
    transfer(client, server);
    server.process_new_packets()?;
    let mut at_server = vec![0; message.len()];
    server
        .reader()
        .read_exact(&mut at_server)
        .map_err(io_error)?;
    server.writer().write_all(message).map_err(io_error)?;
    transfer(server, client);
    client.process_new_packets()?;
    let mut at_client = vec![0; message.len()];
    client
        .reader()
        .read_exact(&mut at_client)
        .map_err(io_error)?;
    Ok((at_server, at_client))
}

/// What each side wrote, turn by turn, in [`record_flights`].
#[derive(Clone, Debug, Default)]
pub struct Flights {
    /// The client's flights, one per turn (empty when it had nothing to say).
    pub client: Vec<Vec<u8>>,
    /// The server's flights, one per turn.
    pub server: Vec<Vec<u8>>,
}

impl Flights {
    /// Everything the client wrote.
    pub fn client_bytes(&self) -> Vec<u8> {
        self.client.concat()
    }

    /// Everything the server wrote.
    pub fn server_bytes(&self) -> Vec<u8> {
        self.server.concat()
    }
}

/// A new connection pair of `client` and `server`, run in lockstep (client
/// turn, server turn) until neither writes anything, recording every turn's
/// bytes. Unlike [`handshake`] it does not stop at an error: the failing
/// side's alert is recorded and delivered like any flight, which is what a
/// recorded transcript (the fuzz seeds) needs.
pub fn record_flights(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> Flights {
    let name = crate::pki::SERVER_NAME.try_into().expect("valid DNS name");
    let mut c = ClientConnection::new(Arc::clone(client), name).expect("client connection");
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server connection");
    let mut flights = Flights::default();
    loop {
        let from_client = flush(&mut c);
        deliver(&mut s, &from_client);
        let from_server = flush(&mut s);
        deliver(&mut c, &from_server);
        if from_client.is_empty() && from_server.is_empty() {
            return flights;
        }
        flights.client.push(from_client);
        flights.server.push(from_server);
    }
}

/// Reads and processes `bytes`, stopping quietly at the first error.
///
/// # Panics
///
/// If `read_tls` fails (its buffer is full).
pub fn deliver<D: SideData>(conn: &mut ConnectionCommon<D>, bytes: &[u8]) {
    if let Err(Stopped::Refused(Some(error))) = memory_pump::deliver(conn, bytes) {
        panic!("read_tls: {error}");
    }
}
