//! Prompts, resources and completions on the wire: `prompts/list`,
//! `prompts/get`, `resources/list`, `resources/read`,
//! `resources/templates/list` and `completion/complete`, answered under
//! the request's revision. What they contain lives in
//! [`crate::plausible`]; this module reads params, shapes results and maps
//! each refusal to its JSON-RPC error once.

use serde_json::{Map, Value, json};

use super::caching::{LIST_TTL_MS, hint};
use super::jsonrpc::{ErrorCode, RpcError};
use super::method::Method;
use super::version::Revision;
use crate::plausible::args::InputError;
use crate::plausible::completion::{self, CompleteError, Target};
use crate::plausible::context::ToolContext;
use crate::plausible::prompts::Prompt;
use crate::plausible::resources::{self, CacheScope, ReadError, Resource, Template};
use crate::ports::{Clock, EdgeCache, Outbound};

/// The capabilities these methods add (MCP prompts, resources and
/// completion "Capabilities"): nothing changes at runtime, so no
/// `listChanged`, and nothing to subscribe to.
pub(super) fn capabilities() -> Map<String, Value> {
    let mut caps = Map::new();
    caps.insert("prompts".into(), json!({"listChanged": false}));
    caps.insert(
        "resources".into(),
        json!({"subscribe": false, "listChanged": false}),
    );
    caps.insert("completions".into(), json!({}));
    caps
}

/// Answers a catalog method, or `None` when `method` is not one.
pub(super) async fn handle<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    revision: Revision,
    method: Method,
    params: Option<&Map<String, Value>>,
) -> Option<Result<Value, RpcError>> {
    Some(match method {
        Method::PromptsGet => get_prompt(platform, ctx, params),
        Method::ResourcesRead => read_resource(platform, ctx, revision, params).await,
        Method::CompletionComplete => complete(platform, ctx, params).await,
        _ => return None,
    })
}

/// `prompts/list`, `resources/list` or `resources/templates/list` (any
/// other method: `resources/templates/list`), with caching hints when
/// `modern`. The dispatcher shares the result (see `super::shared`).
pub(super) fn list(method: &str, modern: bool, has_default_site: bool) -> Value {
    let (key, items): (&str, Vec<Value>) = match method {
        "prompts/list" => (
            "prompts",
            Prompt::ALL
                .iter()
                .map(|p| p.definition(has_default_site))
                .collect(),
        ),
        "resources/list" => (
            "resources",
            Resource::ALL.iter().map(|r| r.definition()).collect(),
        ),
        _ => (
            "resourceTemplates",
            Template::ALL.iter().map(|t| t.definition()).collect(),
        ),
    };
    let mut result = Map::new();
    result.insert(key.into(), Value::Array(items));
    hint(
        Value::Object(result),
        modern,
        LIST_TTL_MS,
        CacheScope::Public,
    )
}

fn invalid(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::InvalidParams, message)
}

/// An invalid argument: -32602 naming it, in the message and in `data`.
fn invalid_argument(e: &InputError) -> RpcError {
    invalid(e.to_string()).with_data(json!({"argument": e.field}))
}

fn string_param<'p>(
    params: Option<&'p Map<String, Value>>,
    field: &str,
) -> Result<&'p str, RpcError> {
    params
        .and_then(|p| p.get(field))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("Invalid params: `{field}` must be a string")))
}

/// MCP prompts "Error Handling": an unknown prompt and a missing or bad
/// argument are -32602.
fn get_prompt<P: Clock>(
    platform: &P,
    ctx: &ToolContext,
    params: Option<&Map<String, Value>>,
) -> Result<Value, RpcError> {
    let name = string_param(params, "name")?;
    let prompt = Prompt::parse(name).ok_or_else(|| {
        invalid(format!(
            "Unknown prompt: {}. Available prompts: {}",
            name.escape_default(),
            Prompt::ALL.map(Prompt::name).join(", ")
        ))
    })?;
    let empty = Map::new();
    let arguments = match params.and_then(|p| p.get("arguments")) {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => return Err(invalid("Invalid params: `arguments` must be an object")),
    };
    let now = i64::try_from(platform.now().as_secs()).unwrap_or(i64::MAX);
    let rendered = prompt
        .render(ctx, arguments, now)
        .map_err(|e| invalid_argument(&e))?;
    Ok(json!({
        "description": rendered.description,
        "messages": [{"role": "user", "content": {"type": "text", "text": rendered.text}}],
    }))
}

/// MCP resources "Error Handling": an unknown URI is -32002 "Resource not
/// found" up to 2025-11-25; 2026-07-28 (SEP-2164) makes it -32602. Both
/// carry the URI in `data`.
async fn read_resource<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    revision: Revision,
    params: Option<&Map<String, Value>>,
) -> Result<Value, RpcError> {
    let uri = string_param(params, "uri")?;
    match resources::read(platform, ctx, uri).await {
        Ok(c) => {
            let mut content = json!({"uri": c.uri, "mimeType": c.mime_type, "text": c.text});
            if let (Some(meta), Value::Object(obj)) = (c.meta, &mut content) {
                obj.insert("_meta".into(), meta);
            }
            Ok(hint(
                json!({"contents": [content]}),
                revision.is_modern(),
                c.ttl_ms,
                c.scope,
            ))
        }
        Err(ReadError::NotFound(reason)) => {
            let code = if revision.is_modern() {
                ErrorCode::InvalidParams
            } else {
                ErrorCode::ResourceNotFound
            };
            Err(RpcError::new(code, format!("Resource not found: {reason}"))
                .with_data(json!({"uri": uri})))
        }
        Err(ReadError::Upstream(message)) => Err(RpcError::new(
            ErrorCode::InternalError,
            format!("Could not read {}: {message}", uri.escape_default()),
        )
        .with_data(json!({"uri": uri}))),
    }
}

/// MCP completion: `ref` names a prompt or a resource template,
/// `argument` what is being typed.
async fn complete<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    params: Option<&Map<String, Value>>,
) -> Result<Value, RpcError> {
    let reference = params.and_then(|p| p.get("ref")).and_then(Value::as_object);
    let target = match reference
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
    {
        Some("ref/prompt") => {
            let name = string_param(reference, "name")?;
            Target::Prompt(
                Prompt::parse(name)
                    .ok_or_else(|| invalid(format!("Unknown prompt: {}", name.escape_default())))?,
            )
        }
        Some("ref/resource") => {
            let uri = string_param(reference, "uri")?;
            Target::Template(Template::parse(uri).ok_or_else(|| {
                invalid(format!(
                    "No resource template {} takes arguments; templates: {}",
                    uri.escape_default(),
                    Template::ALL.map(Template::uri_template).join(", ")
                ))
            })?)
        }
        _ => {
            return Err(invalid(
                "Invalid params: `ref` must be {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}",
            ));
        }
    };
    let argument = params
        .and_then(|p| p.get("argument"))
        .and_then(Value::as_object);
    let name = string_param(argument, "name")
        .map_err(|_| invalid("Invalid params: `argument.name` must be a string"))?;
    let value = string_param(argument, "value")
        .map_err(|_| invalid("Invalid params: `argument.value` must be a string"))?;
    match completion::complete(platform, ctx, target, name, value).await {
        Ok(c) => Ok(json!({"completion": {
            "values": c.values,
            "total": c.total,
            "hasMore": c.total > c.values.len(),
        }})),
        Err(CompleteError::UnknownArgument(arg)) => Err(invalid(format!(
            "Invalid params: {} has no argument `{}`",
            match target {
                Target::Prompt(p) => p.name(),
                Target::Template(t) => t.uri_template(),
            },
            arg.escape_default()
        ))
        .with_data(json!({"argument": arg}))),
    }
}
