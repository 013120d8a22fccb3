//! WebSockets through `rca-connect`: a client's opening handshake (HTTP/1.1
//! `Upgrade: websocket`) goes to the server on a connection of its own,
//! made as every upstream connection is (the flag, the bot identity only for
//! an acknowledging CertificateRequest, the server verified) but offering
//! `http/1.1` only, since HTTP/2 has no `Upgrade`. If the server switches,
//! and its 101 proves it read this handshake, the client gets the 101 with
//! the outcome header and the bytes flow both ways until either side
//! closes; any other answer goes back as it is, and a 101 that proves
//! nothing becomes a 502.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;

use crate::common::errors::error_chain;
use crate::common::fields::remove_hop_by_hop;
use crate::common::tunnel_copy::{copy_both_ways, Copied};
use crate::common::websocket::{expected_accept, proves_websocket_switch, websocket_upgrade};
use crate::connect::metrics::RequestResult;
use crate::connect::relay::{target, Relay, RelayBody};
use crate::connect::upstream::default_port;

/// Whether `request` opens a WebSocket (HTTP/1.1; see
/// [`websocket_upgrade`]).
pub fn is_websocket(request: &Request<Incoming>) -> bool {
    request.version() == Version::HTTP_11
        && websocket_upgrade(request.method(), request.headers()).is_some()
}

/// The bytes of an open WebSocket copied both ways until either side
/// closes: the caller runs it, holding what the connection held.
pub type Tunnel = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Relay {
    /// Opens the WebSocket `request` asks for at `scheme://authority`: the
    /// answer for the client and, if the server switched, the tunnel to
    /// run. The handshake's connection runs in `tasks`.
    pub async fn websocket(
        &self,
        mut request: Request<Incoming>,
        scheme: Scheme,
        authority: Authority,
        tasks: &TaskTracker,
    ) -> (Response<RelayBody>, Option<Tunnel>) {
        let client_side = hyper::upgrade::on(&mut request);
        let (mut parts, _) = request.into_parts();
        let uri = match target(&parts.uri, &scheme, &authority) {
            Ok(uri) => uri,
            Err(error) => {
                let answer = self.failure(StatusCode::BAD_REQUEST, &error.to_string(), None);
                return (answer, None);
            }
        };
        let accept = expected_accept(&parts.headers);
        remove_hop_by_hop(&mut parts.headers);
        let headers = &mut parts.headers;
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Ok(host) = HeaderValue::from_str(&host_field(&scheme, &authority)) {
            headers.insert(header::HOST, host);
        }
        // Origin-form on a connection of its own, as a server expects it.
        parts.uri = uri
            .path_and_query()
            .map_or_else(|| "/".parse(), |path| path.as_str().parse())
            .unwrap_or_default();
        let io = match self.connector.connect_http1(uri).await {
            Ok(io) => io,
            Err(failure) => {
                self.metrics.request(RequestResult::Failed);
                // rca-connect's own cap, as for any request (found by an
                // outside attack: a WebSocket got 502).
                let status = if matches!(failure, crate::connect::failure::ConnectFailure::Busy(_))
                {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let answer = self.failure(status, &failure.to_string(), None);
                return (answer, None);
            }
        };
        let answered_on = io.answered_on().clone();
        let exchange = async {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            // Runs until the response is read, and after a switch hands the
            // connection to `hyper::upgrade::on`.
            tasks.spawn(async move {
                if let Err(error) = connection.with_upgrades().await {
                    log::debug!("WebSocket handshake connection: {error}");
                }
            });
            let empty = Empty::<Bytes>::new();
            sender.send_request(Request::from_parts(parts, empty)).await
        };
        let mut response = match tokio::time::timeout(self.response_timeout, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                self.metrics.request(RequestResult::Failed);
                return (self.failed((&scheme, &authority), &error, None), None);
            }
            Err(_) => {
                self.metrics.request(RequestResult::TimedOut);
                let why = format!(
                    "{authority} sent no response headers within {:?}",
                    self.response_timeout
                );
                return (self.failure(StatusCode::GATEWAY_TIMEOUT, &why, None), None);
            }
        };
        self.metrics.request(RequestResult::Answered);
        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switched && !proves_websocket_switch(response.headers(), accept.as_ref()) {
            let why = format!(
                "{authority} answered 101 without the Upgrade: websocket, Connection: upgrade and Sec-WebSocket-Accept of this handshake"
            );
            // The connection was not refused: the server's switch was wrong.
            let outcome = answered_on.outcome.header_value(false);
            let answer = self.failure(StatusCode::BAD_GATEWAY, &why, Some(outcome));
            return (answer, None);
        }
        let server_side = switched.then(|| hyper::upgrade::on(&mut response));
        let (mut parts, body) = response.into_parts();
        let connection_named = remove_hop_by_hop(&mut parts.headers);
        self.set_outcome(&mut parts.headers, Some(&answered_on));
        let Some(server_side) = server_side else {
            let body = self.response_body(body, &authority, connection_named);
            return (Response::from_parts(parts, body), None);
        };
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let tunnel = switched_tunnel(client_side, server_side, authority, self.read_timeout);
        let answer =
            Response::from_parts(parts, Empty::new().map_err(|never| match never {}).boxed());
        (answer, Some(tunnel))
    }
}

/// The tunnel of a WebSocket the server switched to: the bytes copied both
/// ways until either side closes, or the server sends nothing for
/// `read_timeout`.
fn switched_tunnel(
    client_side: hyper::upgrade::OnUpgrade,
    server_side: hyper::upgrade::OnUpgrade,
    authority: Authority,
    read_timeout: std::time::Duration,
) -> Tunnel {
    Box::pin(async move {
        match tokio::try_join!(client_side, server_side) {
            Ok((client, server)) => {
                let mut client = TokioIo::new(client);
                match copy_both_ways(&mut client, TokioIo::new(server), read_timeout).await {
                    Copied::Closed(Err(error)) => {
                        log::debug!("WebSocket to {authority} ended: {error}");
                    }
                    Copied::Closed(Ok(_)) => {}
                    Copied::ServerSilent => log::info!(
                        "closed a WebSocket to {authority}: it sent nothing for {read_timeout:?} \
                         (--read-timeout-secs)"
                    ),
                }
            }
            Err(error) => log::debug!("WebSocket to {authority}: {}", error_chain(&error)),
        }
    })
}

/// The `Host` field for `authority`: without the port when it is the
/// scheme's default.
fn host_field(scheme: &Scheme, authority: &Authority) -> String {
    match authority.port_u16() {
        Some(port) if port == default_port(scheme.as_str()) => authority.host().to_owned(),
        _ => authority.as_str().to_owned(),
    }
}
