//! Method dispatch: one JSON-RPC request, already admitted by the
//! transport, answered under its protocol revision.

use serde_json::{Map, Value, json};

use super::caching::{LIST_TTL_MS, hint};
use super::catalog;
use super::jsonrpc::{ErrorCode, Payload, RpcError};
use super::method::Method;
use super::shared::{self, Key};
use super::version::Revision;
use crate::build_info;
use crate::plausible::context::ToolContext;
use crate::plausible::instructions;
use crate::plausible::resources::CacheScope;
use crate::plausible::tools::{self, Outcome, Tool};
use crate::plausible::ui;
use crate::ports::{Clock, EdgeCache, Outbound};

const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// `serverInfo`: name, title and a version carrying the git commit.
fn server_info() -> Value {
    json!({
        "name": build_info::NAME,
        "title": "Plausible Analytics",
        "version": format!("{}+{}", build_info::VERSION, build_info::COMMIT),
        "websiteUrl": "https://plausible.io",
    })
}

/// Everything this server offers (`initialize` and `server/discover`),
/// with the MCP Apps extension declared only to a client that offered it
/// (SEP-2133 extensions are negotiated; MCP Apps, "Client<>Server
/// Capability Negotiation").
fn capabilities(apps: bool) -> Value {
    let mut caps = catalog::capabilities();
    caps.insert("tools".into(), json!({"listChanged": false}));
    if apps {
        caps.insert(
            "extensions".into(),
            json!({ ui::EXTENSION_ID: ui::declaration() }),
        );
    }
    Value::Object(caps)
}

/// What a dispatched request produced: its HTTP status and JSON-RPC body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Result<Payload, RpcError>,
}

impl Answer {
    fn ok(result: Value) -> Self {
        Self {
            status: 200,
            body: Ok(Payload::Built(result)),
        }
    }

    fn err(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Err(RpcError::new(code, message)),
        }
    }
}

/// Runs one request under its revision. Only a [`Method`] is answered:
/// the scope table is exhaustive over that type (see [`Method`]).
pub(super) async fn dispatch<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    revision: Revision,
    method: &str,
    params: Option<Map<String, Value>>,
) -> Answer {
    let modern = revision.is_modern();
    let Some(known) = Method::parse(method) else {
        return not_found(method, modern);
    };
    if let Some(key) = shared_key(ctx, revision, known, params.as_ref()) {
        let bytes = shared::result(key.clone(), || build_shared(&key, ctx));
        return Answer {
            status: 200,
            body: Ok(Payload::Shared(bytes)),
        };
    }
    let answer = match (known, modern) {
        (Method::Ping, false) => Answer::ok(json!({})),
        (Method::ToolsCall, _) => call_tool(platform, ctx, params).await,
        (known, _) => {
            match catalog::handle(platform, ctx, revision, known, params.as_ref()).await {
                Some(body) => Answer {
                    status: 200,
                    body: body.map(Payload::Built),
                },
                None => not_found(method, modern),
            }
        }
    };
    if !modern {
        return answer;
    }
    Answer {
        status: answer.status,
        body: answer.body.map(|payload| match payload {
            Payload::Built(result) => Payload::Built(modernise(result)),
            shared => shared,
        }),
    }
}

fn not_found(method: &str, modern: bool) -> Answer {
    Answer::err(
        // 2026-07-28: an unknown method is 404 with -32601.
        if modern { 404 } else { 200 },
        ErrorCode::MethodNotFound,
        format!("Method not found: {method}"),
    )
}

/// Modern results carry `resultType` and identify the server.
fn modernise(mut result: Value) -> Value {
    if let Value::Object(obj) = &mut result {
        obj.insert("resultType".into(), json!("complete"));
        obj.insert("_meta".into(), json!({ META_SERVER_INFO: server_info() }));
    }
    result
}

/// The key of a request whose result is shared (see [`shared`]), or
/// `None` for a method answered per request.
fn shared_key(
    ctx: &ToolContext,
    revision: Revision,
    method: Method,
    params: Option<&Map<String, Value>>,
) -> Option<Key> {
    let modern = revision.is_modern();
    let (revision, apps) = match (method, modern) {
        // The answer's revision is the negotiated one.
        (Method::Initialize, false) => (
            Revision::negotiate(
                params
                    .and_then(|p| p.get("protocolVersion"))
                    .and_then(Value::as_str),
            ),
            ui::offered(params.and_then(|p| p.get("capabilities"))),
        ),
        (Method::ServerDiscover, true) => (
            revision,
            ui::offered(
                params
                    .and_then(|p| p.get("_meta"))
                    .and_then(|m| m.get(META_CLIENT_CAPABILITIES)),
            ),
        ),
        (
            Method::ToolsList
            | Method::PromptsList
            | Method::ResourcesList
            | Method::ResourcesTemplatesList,
            _,
        ) => (revision, false),
        _ => return None,
    };
    Some(Key {
        method: method.as_str(),
        revision,
        default_site: ctx.default_site.as_ref().map(|s| s.as_str().to_owned()),
        apps,
    })
}

/// Builds a shared result from its key alone.
fn build_shared(key: &Key, ctx: &ToolContext) -> Value {
    let modern = key.revision.is_modern();
    let has_default = ctx.default_site.is_some();
    let result = match key.method {
        "initialize" => json!({
            "protocolVersion": key.revision.as_str(),
            "capabilities": capabilities(key.apps),
            "serverInfo": server_info(),
            "instructions": instructions::text(ctx.default_site.as_ref()),
        }),
        "server/discover" => json!({
            "supportedVersions": Revision::supported_list(),
            "capabilities": capabilities(key.apps),
            "instructions": instructions::text(ctx.default_site.as_ref()),
            "ttlMs": LIST_TTL_MS,
            "cacheScope": "public",
        }),
        "tools/list" => hint(
            json!({"tools": tools::definitions(has_default)}),
            modern,
            LIST_TTL_MS,
            CacheScope::Public,
        ),
        list => catalog::list(list, modern, has_default),
    };
    if modern { modernise(result) } else { result }
}

async fn call_tool<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    params: Option<Map<String, Value>>,
) -> Answer {
    let mut params = params.unwrap_or_default();
    let Some(name) = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Answer::err(
            200,
            ErrorCode::InvalidParams,
            "Invalid params: `name` must be a string",
        );
    };
    let Some(tool) = Tool::parse(&name) else {
        return Answer::err(
            200,
            ErrorCode::InvalidParams,
            format!(
                "Unknown tool: {}. Available tools: {}",
                name.escape_default(),
                Tool::ALL.map(Tool::name).join(", ")
            ),
        );
    };
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => Some(a),
        Some(_) => {
            return Answer::err(
                200,
                ErrorCode::InvalidParams,
                "Invalid params: `arguments` must be an object",
            );
        }
    };
    Answer::ok(match tools::call(platform, ctx, tool, arguments).await {
        Outcome::Success { text, structured } => json!({
            "content": [{"type": "text", "text": text}],
            "structuredContent": structured,
            "isError": false,
        }),
        Outcome::Failure(message) => json!({
            "content": [{"type": "text", "text": format!("Error: {message}")}],
            "isError": true,
        }),
    })
}
