//! `rca-connect`: a local forward proxy that gives any HTTP client the
//! `request_client_auth` flag. A request travels: [`front`] (the client's
//! proxy connection, the tunnel's TLS with a certificate from [`local_ca`])
//! → [`relay`] (the request rewritten for the server, the outcome told back)
//! → [`upstream`] (the flagged, verified, pooled connections, answering with
//! the [`identity`]; one is an [`upstream_io::UpstreamIo`], begun early by
//! [`prepared`]) → [`outcome`] or [`failure`], which say what happened. A
//! WebSocket handshake takes [`websocket`] instead of the pool. What a
//! proxy credential admitted ends when a reload removes it (`withdrawal`).

pub mod cli;
pub mod failure;
pub mod front;
pub mod graceful;
pub mod identity;
pub mod local_ca;
pub mod metrics;
pub mod outcome;
pub mod prepared;
pub mod proxy_auth;
pub mod relay;
pub mod sessions;
pub mod upstream;
pub mod upstream_io;
pub mod websocket;
mod withdrawal;
