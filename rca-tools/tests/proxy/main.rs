//! `rca-proxy` as a real process in front of a real upstream (a small hyper
//! server here), over loopback: people and bots on one port, the identity
//! headers the upstream sees, spoofed headers that never reach it (HTTP/1.1
//! in any letter case and repeated, HTTP/2), the bots-only policy, an upstream
//! that is down, configuration errors, SIGHUP reload and SIGTERM.

mod access_log_file;
mod client_connections;
mod configuration;
mod fleet;
mod hardening;
mod http1_front;
mod http2_guards;
mod identity;
mod operations;
mod proxy_protocol;
mod request_limits;
mod revocation;
mod support;
mod trust_boundary;
mod upstream_connections;
mod upstream_read_timeout;
