//! `rca-connect`: a local forward proxy that gives any HTTP client the
//! `request_client_auth` flag. A request travels: [`front`] (the client's
//! proxy connection, the tunnel's TLS with a certificate from [`local_ca`])
//! → [`relay`] (the request rewritten for the server, the outcome told back)
//! → [`upstream`] (the flagged, verified, pooled connection that answers with
//! the [`identity`]).

pub mod front;
pub mod identity;
pub mod local_ca;
pub mod metrics;
pub mod prepared;
pub mod relay;
pub mod upstream;
