//! How long a client's HTTP/2 connection may go without a request. hyper
//! bounds the wait between HTTP/1.1 requests by the header-read timeout,
//! but HTTP/2 has no request head to time: without this, a tunnel with no
//! stream open would keep its slot (`--max-connections`) until the client
//! closed it. The library's [`ConnectionActivity`] counts the requests; here
//! a request stays in flight until its response body ends, so a long
//! download never makes its connection idle.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use rustls_req_client_auth::InFlight;

use crate::connect::relay::RelayBody;

#[cfg(doc)]
use rustls_req_client_auth::ConnectionActivity;

/// A response body that keeps its request in flight until it ends (or is
/// dropped, when the client resets the stream).
#[derive(Debug)]
pub(crate) struct WhileOpen {
    body: RelayBody,
    _in_flight: InFlight,
}

impl WhileOpen {
    pub(crate) fn new(body: RelayBody, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl Body for WhileOpen {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
