//! Streamable HTTP transport rules: what an HTTP request must look like
//! before one JSON-RPC message reaches [`dispatch`](super::dispatch).
//!
//! [`serve`] applies them in order — method, media types, body size, JSON,
//! batch policy, protocol era, mirrored headers, the token's scope — and
//! maps each refusal to its HTTP status and JSON-RPC error once.

use serde_json::{Map, Value, json};

use super::dispatch::dispatch;
use super::jsonrpc::{self, ErrorCode, Id, Incoming, Outgoing, RpcError};
use super::scopes::{Authority, need};
use super::version::Revision;
use crate::http::{Method, Request, Response, media_type};
use crate::plausible::context::ToolContext;
use crate::ports::{Clock, EdgeCache, Outbound};

/// The per-request `_meta` keys of 2026-07-28 that decide the era.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Larger bodies are refused before parsing (413).
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON-RPC response as a whole HTTP response.
fn json_response(status: u16, body: Vec<u8>) -> Response {
    Response::new(status)
        .with_header("content-type", "application/json")
        .with_body(body)
}

/// A JSON-RPC error as a whole HTTP response.
fn error_response(status: u16, id: Option<Id>, error: RpcError) -> Response {
    json_response(
        status,
        Outgoing {
            id,
            body: Err(error),
        }
        .into_bytes(),
    )
}

fn protocol_error(status: u16, code: ErrorCode, message: impl Into<String>) -> Response {
    error_response(status, None, RpcError::new(code, message))
}

/// 413 for a body past [`MAX_BODY_BYTES`], from here or from the edge,
/// which stops reading at the ceiling.
pub(crate) fn body_too_large() -> Response {
    protocol_error(
        413,
        ErrorCode::InvalidRequest,
        format!("Request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

/// 429 for a caller past a rate limit (RFC 6585 §4), as a JSON-RPC error
/// with no id: the request was not read.
pub(crate) fn rate_limited(retry_after_secs: u64) -> Response {
    error_response(
        429,
        None,
        RpcError::new(
            ErrorCode::InvalidRequest,
            format!("Rate limit exceeded: retry after {retry_after_secs} seconds"),
        )
        .with_data(json!({"retryAfter": retry_after_secs})),
    )
    .with_header("retry-after", retry_after_secs.to_string())
}

fn unsupported_version(requested: &str) -> RpcError {
    RpcError::new(
        ErrorCode::UnsupportedProtocolVersion,
        "Unsupported protocol version",
    )
    .with_data(json!({"supported": Revision::supported_list(), "requested": requested}))
}

/// Handles one HTTP request to an MCP endpoint, after authentication:
/// `authority` is what the credential may do (its scopes).
pub(crate) async fn serve<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    authority: Authority<'_>,
    request: &Request,
) -> Response {
    if request.method != Method::Post {
        // Stateless server: no GET stream, no session to DELETE
        // (2025-11-25 and 2026-07-28 transports: 405).
        return protocol_error(
            405,
            ErrorCode::InvalidRequest,
            "Method not allowed: this MCP endpoint accepts POST only (no GET stream, no sessions)",
        )
        .with_header("allow", "POST, OPTIONS");
    }
    if let Some(response) = check_media_types(request) {
        return response;
    }
    if request.body.len() > MAX_BODY_BYTES {
        return body_too_large();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return protocol_error(
            400,
            ErrorCode::ParseError,
            "Parse error: the body is not valid JSON",
        );
    };
    let header_version = request
        .headers
        .get("mcp-protocol-version")
        .map(|v| v.trim().to_owned());

    if let Value::Array(items) = body {
        return match header_version
            .as_deref()
            .map(|raw| Revision::parse(raw).ok_or(raw))
        {
            None => serve_batch(platform, ctx, authority, None, items).await,
            Some(Ok(v)) => serve_batch(platform, ctx, authority, Some(v), items).await,
            Some(Err(raw)) => error_response(400, None, unsupported_version(raw)),
        };
    }

    let message = jsonrpc::parse_message(body);
    let (id, method, params) = match message {
        Err(invalid) => {
            return error_response(
                400,
                invalid.id,
                RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("Invalid request: {}", invalid.reason),
                ),
            );
        }
        // Notifications (`notifications/initialized`, cancellations) and
        // responses need no answer (all revisions: 202, empty body).
        Ok(Incoming::Notification { .. } | Incoming::Response) => return Response::new(202),
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
    };

    let revision = match era(request, header_version.as_deref(), &method, params.as_ref()) {
        Ok(r) => r,
        Err((status, error)) => return error_response(status, Some(id), error),
    };
    // A well-formed request its token may not make: the step-up challenge
    // (see `super::scopes`), after the checks that make it well-formed.
    if let Some(refused) = authority.refuse([need(&method, params.as_ref())]) {
        return refused;
    }
    let answer = dispatch(platform, ctx, revision, &method, params).await;
    json_response(
        answer.status,
        Outgoing {
            id: Some(id),
            body: answer.body,
        }
        .into_bytes(),
    )
}

/// `Content-Type` must be JSON (415), and `Accept` must allow a JSON answer
/// (406). We always answer with a single JSON object, so a client that
/// lists only `application/json` is served; one that excludes it is not.
fn check_media_types(request: &Request) -> Option<Response> {
    let content_type = request.headers.get("content-type").map(media_type);
    if content_type.as_deref() != Some("application/json") {
        return Some(protocol_error(
            415,
            ErrorCode::InvalidRequest,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    if let Some(accept) = request.headers.get("accept") {
        let ok = accept
            .split(',')
            .map(media_type)
            .any(|m| matches!(m.as_str(), "application/json" | "application/*" | "*/*"));
        if !ok {
            return Some(protocol_error(
                406,
                ErrorCode::InvalidRequest,
                "Not Acceptable: Accept must include application/json (and text/event-stream)",
            ));
        }
    }
    None
}

/// The most messages one batch may carry. A batch fans out to one
/// Plausible query per tool call, so an uncapped batch would turn one
/// rate-limited request into any number of upstream calls; clients send
/// a handful at most (an `initialized` notification beside a request).
pub(crate) const MAX_BATCH_ITEMS: usize = 20;

/// JSON-RPC batches: only under 2025-03-26 (the revision assumed without a
/// version header); removed from 2025-06-18 on.
async fn serve_batch<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    authority: Authority<'_>,
    header_version: Option<Revision>,
    items: Vec<Value>,
) -> Response {
    let revision = header_version.unwrap_or(Revision::V2025_03_26);
    if !revision.allows_batches() {
        return protocol_error(
            400,
            ErrorCode::InvalidRequest,
            format!(
                "Invalid request: JSON-RPC batches are not supported in protocol revision {}",
                revision.as_str()
            ),
        );
    }
    if items.is_empty() {
        return protocol_error(
            400,
            ErrorCode::InvalidRequest,
            "Invalid request: empty batch",
        );
    }
    if items.len() > MAX_BATCH_ITEMS {
        return protocol_error(
            400,
            ErrorCode::InvalidRequest,
            format!("Invalid request: a batch holds at most {MAX_BATCH_ITEMS} messages"),
        );
    }
    let messages: Vec<_> = items.into_iter().map(jsonrpc::parse_message).collect();
    // Every element's need is checked before any runs: one short refuses
    // the whole batch with one challenge (see `super::scopes`).
    let needs = messages.iter().filter_map(|m| match m {
        Ok(Incoming::Request { method, params, .. }) => Some(need(method, params.as_ref())),
        _ => None,
    });
    if let Some(refused) = authority.refuse(needs) {
        return refused;
    }
    let mut out = Vec::new();
    for message in messages {
        match message {
            Err(invalid) => out.push(
                Outgoing {
                    id: invalid.id,
                    body: Err(RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("Invalid request: {}", invalid.reason),
                    )),
                }
                .into_bytes(),
            ),
            Ok(Incoming::Notification { .. } | Incoming::Response) => {}
            Ok(Incoming::Request { id, method, params }) => {
                let answer = dispatch(platform, ctx, revision, &method, params).await;
                out.push(
                    Outgoing {
                        id: Some(id),
                        body: answer.body,
                    }
                    .into_bytes(),
                );
            }
        }
    }
    if out.is_empty() {
        return Response::new(202);
    }
    // The batch answer: a JSON array of the responses, as serde_json
    // writes one (no whitespace).
    let mut body = vec![b'['];
    for (i, response) in out.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend(response);
    }
    body.push(b']');
    json_response(200, body)
}

/// Decides which revision a request is made under.
///
/// A request is modern (2026-07-28) when its header or its `_meta` says
/// so; then the mirrored headers must agree with the body (2026-07-28
/// Streamable HTTP, "Server Validation"), checked before whether the
/// version is served. Otherwise it is a handshake-era request under the
/// header's revision, or 2025-03-26 without one (2025-06-18 transports,
/// "Protocol Version Header").
fn era(
    request: &Request,
    header_version: Option<&str>,
    method: &str,
    params: Option<&Map<String, Value>>,
) -> Result<Revision, (u16, RpcError)> {
    let mismatch = |msg: String| (400, RpcError::new(ErrorCode::HeaderMismatch, msg));
    let invalid_params = |msg: String| (400, RpcError::new(ErrorCode::InvalidParams, msg));
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    let Some(meta_version) = meta.and_then(|m| m.get(META_VERSION)) else {
        return match header_version.map(|raw| Revision::parse(raw).ok_or(raw)) {
            None => Ok(Revision::V2025_03_26),
            Some(Err(raw)) => Err((400, unsupported_version(raw))),
            Some(Ok(r)) if r.is_modern() => Err(invalid_params(format!(
                "Invalid params: _meta[\"{META_VERSION}\"] is required"
            ))),
            Some(Ok(r)) => Ok(r),
        };
    };
    let Some(meta_version) = meta_version.as_str() else {
        return Err(invalid_params(format!(
            "Invalid params: _meta[\"{META_VERSION}\"] must be a string"
        )));
    };
    let Some(header_version) = header_version else {
        return Err(mismatch(
            "Header mismatch: the MCP-Protocol-Version header is required".into(),
        ));
    };
    if header_version != meta_version {
        return Err(mismatch(format!(
            "Header mismatch: MCP-Protocol-Version header value '{}' does not match body value '{}'",
            header_version.escape_default(),
            meta_version.escape_default()
        )));
    }
    let Some(revision) = Revision::parse(meta_version).filter(|r| r.is_modern()) else {
        return Err((400, unsupported_version(meta_version)));
    };
    if !meta.is_some_and(|m| m.get(META_CAPABILITIES).is_some_and(Value::is_object)) {
        return Err(invalid_params(format!(
            "Invalid params: _meta[\"{META_CAPABILITIES}\"] is required"
        )));
    }
    match request.headers.get("mcp-method") {
        None => {
            return Err(mismatch(
                "Header mismatch: the Mcp-Method header is required".into(),
            ));
        }
        Some(h) if h != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{h}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }
    let name_source = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_source {
        let body_value = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        let header_value = request.headers.get("mcp-name").map(decode_header_value);
        match (header_value, body_value) {
            (None, _) => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is required".into(),
                ));
            }
            (Some(None), _) => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is malformed".into(),
                ));
            }
            (Some(Some(h)), Some(b)) if h == b => {}
            (Some(Some(h)), b) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{}' does not match body value '{}'",
                    h.escape_default(),
                    b.unwrap_or("").escape_default()
                )));
            }
        }
    }
    Ok(revision)
}

/// Decodes the `=?base64?…?=` sentinel form (2026-07-28 Streamable HTTP,
/// "Value Encoding"); plain values pass through. `None` when the sentinel
/// form holds invalid base64 or UTF-8.
fn decode_header_value(raw: &str) -> Option<String> {
    use base64::Engine;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        None => Some(raw.to_owned()),
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
    }
}
