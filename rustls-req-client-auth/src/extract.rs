//! axum extractors for the client's identity (feature `axum`): any client,
//! or bots of the flag path only.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::identity::PeerIdentity;

impl<S: Send + Sync> FromRequestParts<S> for PeerIdentity {
    type Rejection = MissingIdentity;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<PeerIdentity>()
            .cloned()
            .ok_or(MissingIdentity)
    }
}

/// A client authenticated on the flag path: a bot that set
/// `request_client_auth` and presented a certificate the flag path's
/// verifier accepted. Any other client is refused with 403 Forbidden, so a
/// handler that takes a `Bot` is for bots only.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use rustls_req_client_auth::Bot;
///
/// async fn crawl(Bot(bot): Bot) -> String {
///     format!("hello, {}", bot.leaf().map_or("?", |leaf| leaf.subject()))
/// }
/// let app: Router = Router::new().route("/api/crawl", get(crawl));
/// ```
#[derive(Clone, Debug)]
pub struct Bot(pub PeerIdentity);

impl<S: Send + Sync> FromRequestParts<S> for Bot {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = PeerIdentity::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if identity.is_flag_path() {
            Ok(Self(identity))
        } else {
            Err(NotABot.into_response())
        }
    }
}

/// The request came through a server that does not record a
/// [`PeerIdentity`] (serve with [`crate::serve`]): 500, a server bug.
#[derive(Clone, Copy, Debug)]
pub struct MissingIdentity;

impl IntoResponse for MissingIdentity {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no TLS client identity on this request: the server must be run with rustls_req_client_auth::serve\n",
        )
            .into_response()
    }
}

/// The client is not a bot of the flag path: 403.
#[derive(Clone, Copy, Debug)]
pub struct NotABot;

impl IntoResponse for NotABot {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            "this resource is for bots authenticated with a client certificate on the request_client_auth TLS flag\n",
        )
            .into_response()
    }
}
