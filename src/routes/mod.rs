//! Route handlers: each extracts what it needs from the request, calls the
//! core, and maps the result to a response. No protocol rules live here.

pub mod health;
pub mod mcp;
pub mod oauth;

use crate::http::Response;

/// 405 with `Allow` (RFC 9110 §15.5.6).
pub fn method_not_allowed(allow: &str) -> Response {
    Response::json(
        405,
        &serde_json::json!({
            "error": "method_not_allowed",
            "error_description": format!("This path accepts {allow}."),
        }),
    )
    .with_header("allow", allow)
}

/// A JSON 404 that does not echo the path.
pub fn not_found() -> Response {
    Response::json(
        404,
        &serde_json::json!({
            "error": "not_found",
            "error_description": "Nothing is served at this path.",
        }),
    )
}
