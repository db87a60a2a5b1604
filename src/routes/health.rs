//! `GET /health`: liveness and build identity.

use super::reply::{Refusal, refusal};
use crate::build_info;
use crate::http::{Method, Request, Response};

pub fn handle(request: &Request) -> Response {
    match request.method {
        Method::Get | Method::Head => Response::json(200, &build_info::health()),
        _ => refusal(Refusal::MethodNotAllowed("GET, HEAD")),
    }
}
