//! `GET /health`: liveness and build identity; `GET /robots.txt`.

use super::reply::{Refusal, refusal};
use crate::build_info;
use crate::http::{Method, Request, Response};

pub fn handle(request: &Request) -> Response {
    match request.method {
        Method::Get | Method::Head => Response::json(200, &build_info::health()),
        _ => refusal(Refusal::MethodNotAllowed("GET, HEAD")),
    }
}

/// `GET /robots.txt` (RFC 9309): every path is disallowed. Nothing here
/// is meant for a search index (OAuth endpoints, consent pages, MCP);
/// each response also carries `X-Robots-Tag: noindex`.
pub fn robots() -> Response {
    Response::new(200)
        .with_header("content-type", "text/plain; charset=utf-8")
        .with_header("cache-control", "public, max-age=86400")
        .with_body(b"User-agent: *\nDisallow: /\n".to_vec())
}
