//! The application behind the one-port server: a page for everyone that says
//! who the client is, an API for bots of the flag path only, and CORS so a
//! browser page on another origin can call it (its preflights come without
//! certificates, and get no CertificateRequest).

use axum::http::{Method, Version};
use axum::routing::get;
use axum::Router;
use rustls_req_client_auth::{Bot, PeerIdentity};
use tower_http::cors::{Any, CorsLayer};

/// The routes: `/` for everyone, `/api/crawl` for verified bots.
pub(crate) fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/api/crawl", get(crawl))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET]),
        )
}

/// Everyone: who the server thinks the client is.
async fn hello(peer: PeerIdentity, version: Version) -> String {
    format!("hello, {peer} [{version:?}]\n")
}

/// Bots only (others get 403 from the `Bot` extractor).
async fn crawl(Bot(bot): Bot) -> String {
    let name = bot.leaf().map_or("?", |leaf| leaf.subject());
    format!("crawl granted to {name}\n")
}
