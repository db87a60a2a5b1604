//! The landing page and the connections page: extract, call
//! `oauth::connections::endpoint`, map.

use super::reply::{Refusal, refusal};
use crate::config::oauth::OAuthSettings;
use crate::http::{Method, Request, Response};
use crate::oauth::connections::endpoint::{self, ConnectionsError};
use crate::oauth::connections::viewer;
use crate::oauth::server::{AuthServer, Platform};
use crate::ports::Log;

fn reply<P: Log>(platform: &P, outcome: Result<Response, ConnectionsError>) -> Response {
    match outcome {
        Ok(r) => r,
        Err(e) => {
            if let Some(line) = e.log_line() {
                platform.warn(&line);
            }
            e.response()
        }
    }
}

/// `GET /`.
pub fn landing(request: &Request) -> Response {
    if !matches!(request.method, Method::Get | Method::Head) {
        return refusal(Refusal::MethodNotAllowed("GET, HEAD"));
    }
    endpoint::landing(&request.origin())
}

/// `GET` or `POST /connections`.
pub async fn page<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    let server = AuthServer::new(settings, request);
    match request.method {
        Method::Get | Method::Head => {
            reply(platform, endpoint::show(platform, &server, request).await)
        }
        Method::Post => reply(platform, endpoint::act(platform, &server, request).await),
        _ => refusal(Refusal::MethodNotAllowed("GET, HEAD, POST")),
    }
}

/// `GET /connections/login`.
pub async fn login<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Get) {
        return refusal(Refusal::MethodNotAllowed("GET"));
    }
    let server = AuthServer::new(settings, request);
    reply(platform, endpoint::login(platform, &server).await)
}

/// `POST /connections/key`.
pub async fn key<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Post) {
        return refusal(Refusal::MethodNotAllowed("POST"));
    }
    let server = AuthServer::new(settings, request);
    reply(
        platform,
        viewer::enter_key(platform, &server, request).await,
    )
}
