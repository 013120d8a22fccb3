//! Moves TLS records between rustls connections through memory buffers.
//!
//! Every in-memory handshake of this repository goes through these few
//! functions: the test support's two-sided driver (`integration_tests::memory`),
//! the fuzz harness's one-sided driver and the benchmarks' timed exchange.
//! They are the loop an application runs around a socket, with a `Vec<u8>` in
//! place of the socket: [`flush_into`] is the write half (`write_tls` until
//! nothing is pending), [`deliver`] the read half (`read_tls`, then
//! `process_new_packets`, until the bytes are used up or the connection
//! fails).
//!
//! The benchmarks compare the fork with pristine rustls in one binary, so the
//! functions are generic over [`Endpoint`], which both crates' connections
//! implement (the pristine one with the `vanilla` feature). Generic code is
//! monomorphised per caller: the benchmarks measure the same instructions as
//! a hand-written loop.

#![forbid(unsafe_code)]

use std::{fmt, io};

/// The four calls of a rustls connection the pump makes.
///
/// Implemented for `rustls::ConnectionCommon` (the workspace's rustls, the
/// fork) and, with the `vanilla` feature, for `rustls_vanilla::ConnectionCommon`
/// (pristine rustls, the pinned release).
pub trait Endpoint {
    /// What `process_new_packets` fails with.
    type Error: fmt::Debug + fmt::Display;

    /// Whether the connection has records to write.
    fn wants_write(&self) -> bool;

    /// Writes pending records to `out`.
    ///
    /// # Errors
    ///
    /// What `out` fails with.
    fn write_tls(&mut self, out: &mut dyn io::Write) -> io::Result<usize>;

    /// Reads bytes from `input` into the connection's buffer.
    ///
    /// # Errors
    ///
    /// When the connection takes no more bytes: its buffer is full (an
    /// unfinished message too large) or it has failed.
    fn read_tls(&mut self, input: &mut dyn io::Read) -> io::Result<usize>;

    /// Processes the bytes read so far.
    ///
    /// # Errors
    ///
    /// The connection's error: the handshake failed, an alert was queued.
    fn process_new_packets(&mut self) -> Result<(), Self::Error>;
}

macro_rules! endpoint_for {
    ($krate:ident) => {
        impl<Data> Endpoint for $krate::ConnectionCommon<Data> {
            type Error = $krate::Error;

            fn wants_write(&self) -> bool {
                $krate::CommonState::wants_write(self)
            }

            fn write_tls(&mut self, out: &mut dyn io::Write) -> io::Result<usize> {
                $krate::ConnectionCommon::write_tls(self, out)
            }

            fn read_tls(&mut self, input: &mut dyn io::Read) -> io::Result<usize> {
                $krate::ConnectionCommon::read_tls(self, input)
            }

            fn process_new_packets(&mut self) -> Result<(), Self::Error> {
                $krate::ConnectionCommon::process_new_packets(self).map(|_| ())
            }
        }

        endpoint_for!($krate, ClientConnection);
        endpoint_for!($krate, ServerConnection);
    };
    // The connection types deref to `ConnectionCommon`, but a generic
    // parameter gets no deref coercion: without these a caller would have to
    // write `&mut *conn`.
    ($krate:ident, $connection:ident) => {
        impl Endpoint for $krate::$connection {
            type Error = $krate::Error;

            fn wants_write(&self) -> bool {
                Endpoint::wants_write(&**self)
            }

            fn write_tls(&mut self, out: &mut dyn io::Write) -> io::Result<usize> {
                Endpoint::write_tls(&mut **self, out)
            }

            fn read_tls(&mut self, input: &mut dyn io::Read) -> io::Result<usize> {
                Endpoint::read_tls(&mut **self, input)
            }

            fn process_new_packets(&mut self) -> Result<(), Self::Error> {
                Endpoint::process_new_packets(&mut **self)
            }
        }
    };
}

endpoint_for!(rustls);
#[cfg(feature = "vanilla")]
endpoint_for!(rustls_vanilla);

/// Appends everything `conn` has to send to `out`; returns how many bytes.
///
/// # Panics
///
/// If `write_tls` fails, which it cannot into a `Vec`.
pub fn flush_into<E: Endpoint + ?Sized>(conn: &mut E, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    while conn.wants_write() {
        // rustls only reports the writer's errors here, and a `Vec` has none.
        if let Err(error) = conn.write_tls(out) {
            panic!("write_tls into a Vec failed: {error}");
        }
    }
    out.len() - before
}

/// Everything `conn` has to send.
///
/// # Panics
///
/// As [`flush_into`].
pub fn flush<E: Endpoint + ?Sized>(conn: &mut E) -> Vec<u8> {
    let mut out = Vec::new();
    flush_into(conn, &mut out);
    out
}

/// Why [`deliver`] stopped before using up its bytes.
#[derive(Debug)]
pub enum Stopped<E> {
    /// `read_tls` took no more bytes: the connection's buffer is full or it
    /// has failed or closed. Holds `read_tls`'s error, if it returned one.
    Refused(Option<io::Error>),
    /// `process_new_packets` failed; the connection has queued its alert.
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for Stopped<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(Some(error)) => write!(f, "read_tls refused the bytes: {error}"),
            Self::Refused(None) => f.write_str("read_tls took no more bytes"),
            Self::Failed(error) => write!(f, "processing failed: {error}"),
        }
    }
}

/// Hands `bytes` to `conn`, processing after every `read_tls` as an
/// application's read loop does.
///
/// # Errors
///
/// At the first failure, with the bytes not yet read left unread.
pub fn deliver<E: Endpoint + ?Sized>(
    conn: &mut E,
    mut bytes: &[u8],
) -> Result<(), Stopped<E::Error>> {
    while !bytes.is_empty() {
        match conn.read_tls(&mut bytes) {
            Ok(0) => return Err(Stopped::Refused(None)),
            Ok(_) => {}
            Err(error) => return Err(Stopped::Refused(Some(error))),
        }
        conn.process_new_packets().map_err(Stopped::Failed)?;
    }
    Ok(())
}

/// Hands `bytes` to `conn` without processing them (the caller processes
/// later, as after a whole flight); stops where `conn` takes no more. Returns
/// how many bytes it took.
pub fn buffer<E: Endpoint + ?Sized>(conn: &mut E, bytes: &[u8]) -> usize {
    let mut rest = bytes;
    while !rest.is_empty() {
        match conn.read_tls(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    bytes.len() - rest.len()
}
