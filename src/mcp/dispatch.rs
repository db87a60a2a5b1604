//! Method dispatch: one JSON-RPC request, already admitted by the
//! transport, answered under its protocol revision.

use serde_json::{Map, Value, json};

use super::jsonrpc::{ErrorCode, RpcError};
use super::version::Revision;
use crate::build_info;
use crate::plausible::context::ToolContext;
use crate::plausible::instructions;
use crate::plausible::tools::{self, Outcome, Tool};
use crate::ports::{Clock, EdgeCache, Outbound};

const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// How long clients may cache `server/discover` and `tools/list`
/// (MCP 2026-07-28 caching): the tool set changes only on deploy.
pub(super) const LIST_TTL_MS: u64 = 3_600_000;

/// `serverInfo`: name, title and a version carrying the git commit.
fn server_info() -> Value {
    json!({
        "name": build_info::NAME,
        "title": "Plausible Analytics",
        "version": format!("{}+{}", build_info::VERSION, build_info::COMMIT),
        "websiteUrl": "https://plausible.io",
    })
}

/// What a dispatched request produced: its HTTP status and JSON-RPC body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Result<Value, RpcError>,
}

impl Answer {
    fn ok(result: Value) -> Self {
        Self {
            status: 200,
            body: Ok(result),
        }
    }

    fn err(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Err(RpcError::new(code, message)),
        }
    }
}

/// Runs one request under its revision.
pub(super) async fn dispatch<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    revision: Revision,
    method: &str,
    params: Option<Map<String, Value>>,
) -> Answer {
    let modern = revision.is_modern();
    let answer = match (method, modern) {
        ("initialize", false) => initialize(ctx, params.as_ref()),
        ("ping", false) => Answer::ok(json!({})),
        ("server/discover", true) => Answer::ok(json!({
            "supportedVersions": Revision::supported_list(),
            "capabilities": {"tools": {}},
            "instructions": instructions::text(ctx.default_site.as_ref()),
            "ttlMs": LIST_TTL_MS,
            "cacheScope": "public",
        })),
        ("tools/list", _) => {
            let list: Vec<Value> = Tool::ALL
                .iter()
                .map(|t| t.definition(ctx.default_site.is_some()))
                .collect();
            let mut result = Map::new();
            result.insert("tools".into(), Value::Array(list));
            if modern {
                result.insert("ttlMs".into(), json!(LIST_TTL_MS));
                result.insert("cacheScope".into(), json!("public"));
            }
            Answer::ok(Value::Object(result))
        }
        ("tools/call", _) => call_tool(platform, ctx, params).await,
        (method, _) => Answer::err(
            // 2026-07-28: an unknown method is 404 with -32601.
            if modern { 404 } else { 200 },
            ErrorCode::MethodNotFound,
            format!("Method not found: {method}"),
        ),
    };
    if !modern {
        return answer;
    }
    // Modern results carry `resultType` and identify the server.
    Answer {
        status: answer.status,
        body: answer.body.map(|mut result| {
            if let Value::Object(obj) = &mut result {
                obj.insert("resultType".into(), json!("complete"));
                obj.insert("_meta".into(), json!({ META_SERVER_INFO: server_info() }));
            }
            result
        }),
    }
}

fn initialize(ctx: &ToolContext, params: Option<&Map<String, Value>>) -> Answer {
    let requested = params
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str);
    let revision = Revision::negotiate(requested);
    Answer::ok(json!({
        "protocolVersion": revision.as_str(),
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": server_info(),
        "instructions": instructions::text(ctx.default_site.as_ref()),
    }))
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
