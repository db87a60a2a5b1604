//! Transport and dispatch rules, one named change per case.

// Case tables name a change as a boxed closure.
#![allow(clippy::type_complexity, clippy::result_large_err)]

use serde_json::{Value, json};

use super::dispatch::LIST_TTL_MS;
use super::transport::{MAX_BODY_BYTES, serve};
use crate::build_info;
use crate::http::Headers;
use crate::http::{Method, Request, Response};
use crate::plausible::client::PlausibleBaseUrl;
use crate::plausible::context::ToolContext;
use crate::ports::{OutboundError, OutboundResponse};
use crate::secret::PlausibleKey;
use crate::testing::{FakePlatform, block_on};

fn ctx() -> ToolContext {
    ToolContext {
        base_url: PlausibleBaseUrl::parse("https://plausible.io").unwrap(),
        key: PlausibleKey::new("KEY-SECRET-9"),
        default_site: None,
        cache_ttl: std::time::Duration::from_secs(60),
        configured_sites: Vec::new(),
        allowed_sites: crate::plausible::sites::AllowedSites::Any,
    }
}

fn post(headers: &[(&str, &str)], body: Value) -> Request {
    let mut req = Request::new(
        Method::Post,
        url::Url::parse("https://mcp.example.com/mcp").unwrap(),
    );
    req.headers = headers.iter().map(|(n, v)| (*n, *v)).collect::<Headers>();
    req.body = serde_json::to_vec(&body).unwrap();
    req
}

const JSON: (&str, &str) = ("content-type", "application/json");
const ACCEPT: (&str, &str) = ("accept", "application/json, text/event-stream");

fn legacy(version: &str, body: Value) -> Request {
    post(&[JSON, ACCEPT, ("mcp-protocol-version", version)], body)
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn modern(method: &str, name: Option<&str>, mut params: Value) -> Request {
    params["_meta"] = modern_meta();
    let mut headers = vec![
        JSON,
        ACCEPT,
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        headers.push(("mcp-name", n));
    }
    post(
        &headers,
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
    )
}

fn run(req: Request) -> Response {
    run_with(&FakePlatform::new(), req)
}

fn run_with(p: &FakePlatform, req: Request) -> Response {
    block_on(serve(p, &ctx(), &req))
}

fn error_code(resp: &Response) -> i64 {
    resp.json_body()["error"]["code"].as_i64().unwrap_or(0)
}

#[test]
fn only_post_is_served() {
    for method in [Method::Get, Method::Delete, Method::Head] {
        let mut req = legacy("2025-11-25", json!({}));
        req.method = method.clone();
        let resp = run(req);
        assert_eq!(resp.status, 405, "{method:?}");
        assert_eq!(resp.headers.get("allow"), Some("POST, OPTIONS"));
        assert_eq!(resp.json_body()["jsonrpc"], "2.0");
        assert_eq!(resp.json_body()["id"], Value::Null);
    }
}

#[test]
fn transport_rejections() {
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let cases: Vec<(&str, Request, u16, i64)> = vec![
        (
            "no content type",
            post(&[ACCEPT], ping.clone()),
            415,
            -32600,
        ),
        (
            "text/plain content type",
            post(
                &[("content-type", "text/plain; x=application/json"), ACCEPT],
                ping.clone(),
            ),
            415,
            -32600,
        ),
        (
            "accept excludes json",
            post(&[JSON, ("accept", "text/event-stream")], ping.clone()),
            406,
            -32600,
        ),
        (
            "unsupported version header",
            legacy("2024-11-05", ping.clone()),
            400,
            -32022,
        ),
        (
            "garbage version header",
            legacy("latest", ping.clone()),
            400,
            -32022,
        ),
        (
            "not a JSON-RPC object",
            legacy("2025-11-25", json!({"id": 1, "method": "ping"})),
            400,
            -32600,
        ),
        (
            "batch after 2025-03-26",
            legacy("2025-06-18", json!([ping.clone()])),
            400,
            -32600,
        ),
        ("empty batch", post(&[JSON, ACCEPT], json!([])), 400, -32600),
    ];
    for (name, req, status, code) in cases {
        let resp = run(req);
        assert_eq!(resp.status, status, "{name}");
        assert_eq!(error_code(&resp), code, "{name}");
    }
}

#[test]
fn invalid_json_is_a_parse_error() {
    let mut req = legacy("2025-11-25", json!({}));
    req.body = b"{not json".to_vec();
    let resp = run(req);
    assert_eq!((resp.status, error_code(&resp)), (400, -32700));
    assert_eq!(resp.json_body()["id"], Value::Null);
}

#[test]
fn oversized_bodies_are_refused() {
    let mut req = legacy("2025-11-25", json!({}));
    req.body = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(run(req).status, 413);
}

#[test]
fn unsupported_version_lists_what_is_supported() {
    let resp = run(legacy(
        "1900-01-01",
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ));
    let data = &resp.json_body()["error"]["data"];
    assert_eq!(data["requested"], "1900-01-01");
    assert_eq!(
        data["supported"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
}

#[test]
fn initialize_negotiates_each_handshake_revision() {
    for (requested, expected) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
    ] {
        // The initialize POST itself carries no version header.
        let resp = run(post(
            &[JSON, ACCEPT],
            json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
                "protocolVersion": requested, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}
            }}),
        ));
        assert_eq!(resp.status, 200);
        let body = resp.json_body();
        assert_eq!(body["id"], "init");
        assert_eq!(body["result"]["protocolVersion"], expected, "{requested}");
        assert_eq!(body["result"]["serverInfo"]["name"], "plausible-mcp");
        assert!(
            body["result"]["serverInfo"]["version"]
                .as_str()
                .unwrap()
                .starts_with(build_info::VERSION)
        );
        assert!(body["result"]["capabilities"]["tools"].is_object());
        assert!(
            body["result"]["instructions"]
                .as_str()
                .unwrap()
                .contains("date_range")
        );
        assert!(body["result"].get("resultType").is_none());
    }
}

#[test]
fn notifications_and_responses_get_202() {
    for body in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "id": 5, "result": {}}),
    ] {
        let resp = run(legacy("2025-11-25", body));
        assert_eq!(resp.status, 202);
        assert!(resp.body.is_empty());
    }
}

#[test]
fn legacy_methods() {
    let resp = run(legacy(
        "2025-06-18",
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ));
    assert_eq!(
        (resp.status, resp.json_body()["result"].clone()),
        (200, json!({}))
    );
    let resp = run(legacy(
        "2025-06-18",
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}),
    ));
    assert_eq!((resp.status, error_code(&resp)), (200, -32601));
    let resp = run(legacy(
        "2025-11-25",
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    ));
    let tools = resp.json_body()["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "get_timeseries",
            "get_breakdown",
            "get_conversions",
            "compare_periods",
            "list_sites",
            "get_realtime_visitors",
            "list_goals",
            "query_stats",
            "find_anomalies",
            "measure_change"
        ]
    );
}

#[test]
fn batches_under_2025_03_26() {
    let resp = run(post(
        &[JSON, ACCEPT],
        json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
            {"jsonrpc": "1.0", "id": 3, "method": "ping"},
        ]),
    ));
    assert_eq!(resp.status, 200);
    let out = resp.json_body();
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
    assert_eq!(out[1]["error"]["code"], -32601);
    assert_eq!(out[2]["error"]["code"], -32600);
    let only_notes = run(post(
        &[JSON, ACCEPT],
        json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]),
    ));
    assert_eq!(only_notes.status, 202);
}

#[test]
fn modern_discover_and_list() {
    let resp = run(modern("server/discover", None, json!({})));
    assert_eq!(resp.status, 200);
    let r = &resp.json_body()["result"];
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["supportedVersions"][0], "2026-07-28");
    assert!(r["capabilities"]["tools"].is_object());
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "plausible-mcp"
    );
    assert_eq!(r["ttlMs"], LIST_TTL_MS);
    assert_eq!(r["cacheScope"], "public");
    let resp = run(modern("tools/list", None, json!({})));
    let r = &resp.json_body()["result"];
    assert_eq!(r["tools"].as_array().unwrap().len(), 10);
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["ttlMs"], LIST_TTL_MS);
}

#[test]
fn modern_unknown_methods_are_404() {
    for method in ["initialize", "ping", "resources/list"] {
        let resp = run(modern(method, None, json!({})));
        assert_eq!((resp.status, error_code(&resp)), (404, -32601), "{method}");
    }
}

#[test]
fn modern_header_validation() {
    let base = || {
        modern(
            "tools/call",
            Some("get_timeseries"),
            json!({"name": "get_timeseries", "arguments": {}}),
        )
    };
    let cases: Vec<(&str, Box<dyn Fn(&mut Request)>, u16, i64)> = vec![
        (
            "empty version header",
            Box::new(|r| r.headers.set("mcp-protocol-version", "")),
            400,
            -32020,
        ),
        (
            "header says legacy, body modern",
            Box::new(|r| r.headers.set("mcp-protocol-version", "2025-11-25")),
            400,
            -32020,
        ),
        (
            "missing Mcp-Method",
            Box::new(|r| {
                let h: Headers = r
                    .headers
                    .iter()
                    .filter(|(n, _)| *n != "mcp-method")
                    .collect();
                r.headers = h;
            }),
            400,
            -32020,
        ),
        (
            "wrong Mcp-Method",
            Box::new(|r| r.headers.set("mcp-method", "tools/list")),
            400,
            -32020,
        ),
        (
            "missing Mcp-Name",
            Box::new(|r| {
                let h: Headers = r.headers.iter().filter(|(n, _)| *n != "mcp-name").collect();
                r.headers = h;
            }),
            400,
            -32020,
        ),
        (
            "wrong Mcp-Name",
            Box::new(|r| r.headers.set("mcp-name", "get_breakdown")),
            400,
            -32020,
        ),
        (
            "bad base64 Mcp-Name",
            Box::new(|r| r.headers.set("mcp-name", "=?base64?***?=")),
            400,
            -32020,
        ),
    ];
    for (name, mutate, status, code) in cases {
        let mut req = base();
        mutate(&mut req);
        let resp = run(req);
        assert_eq!((resp.status, error_code(&resp)), (status, code), "{name}");
        assert_eq!(resp.json_body()["id"], 7, "{name}");
    }
}

#[test]
fn modern_meta_validation() {
    let with_meta = |meta: Value| {
        let mut req = modern("tools/list", None, json!({}));
        req.body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": meta}}),
        )
        .unwrap();
        req
    };
    let cases = [
        (
            "no protocolVersion",
            json!({"io.modelcontextprotocol/clientCapabilities": {}}),
            400,
            -32602,
        ),
        (
            "no capabilities",
            json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"}),
            400,
            -32602,
        ),
        (
            "numeric version",
            json!({"io.modelcontextprotocol/protocolVersion": 2026, "io.modelcontextprotocol/clientCapabilities": {}}),
            400,
            -32602,
        ),
        (
            "unknown version in body only",
            json!({"io.modelcontextprotocol/protocolVersion": "2027-01-01", "io.modelcontextprotocol/clientCapabilities": {}}),
            400,
            -32020,
        ),
        (
            "legacy version in meta",
            json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25", "io.modelcontextprotocol/clientCapabilities": {}}),
            400,
            -32020,
        ),
    ];
    for (name, meta, status, code) in cases {
        let resp = run(with_meta(meta));
        assert_eq!((resp.status, error_code(&resp)), (status, code), "{name}");
    }
    // Mismatch is reported before support: header unknown, body modern.
    let mut req = modern("tools/list", None, json!({}));
    req.headers.set("mcp-protocol-version", "2027-01-01");
    let resp = run(req);
    assert_eq!((resp.status, error_code(&resp)), (400, -32020));
    // Both agree on an unknown version: unsupported.
    let mut req = with_meta(
        json!({"io.modelcontextprotocol/protocolVersion": "2027-01-01", "io.modelcontextprotocol/clientCapabilities": {}}),
    );
    req.headers.set("mcp-protocol-version", "2027-01-01");
    let resp = run(req);
    assert_eq!((resp.status, error_code(&resp)), (400, -32022));
    assert_eq!(resp.json_body()["id"], 7);
    // A modern header with no _meta at all is invalid params, not legacy.
    let mut req = modern("tools/list", None, json!({}));
    req.body =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})).unwrap();
    let resp = run(req);
    assert_eq!((resp.status, error_code(&resp)), (400, -32602));
    // A modern body without the header is a header mismatch.
    let mut req = modern("tools/list", None, json!({}));
    let h: Headers = req
        .headers
        .iter()
        .filter(|(n, _)| *n != "mcp-protocol-version")
        .collect();
    req.headers = h;
    let resp = run(req);
    assert_eq!((resp.status, error_code(&resp)), (400, -32020));
}

#[test]
fn base64_sentinel_names_are_decoded() {
    let resp = run(modern(
        "tools/call",
        Some("=?base64?Z2V0X3RpbWVzZXJpZXM=?="),
        json!({"name": "get_timeseries", "arguments": {}}),
    ));
    assert_eq!(resp.status, 200);
    // The call itself fails on input (no site_id), as a tool result.
    assert_eq!(resp.json_body()["result"]["isError"], true);
}

#[test]
fn tool_call_errors() {
    let call = |params: Value| {
        legacy(
            "2025-11-25",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}),
        )
    };
    for (name, params) in [
        ("unknown tool", json!({"name": "drop_tables"})),
        ("no name", json!({"arguments": {}})),
        (
            "arguments not an object",
            json!({"name": "get_timeseries", "arguments": [1]}),
        ),
    ] {
        let resp = run(call(params));
        assert_eq!((resp.status, error_code(&resp)), (200, -32602), "{name}");
    }
    let resp = run(call(
        json!({"name": "get_breakdown", "arguments": {"site_id": "a.com", "date_range": "7d", "dimension": "visit:chanel"}}),
    ));
    let r = &resp.json_body()["result"];
    assert_eq!(r["isError"], true);
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("`dimension`") && text.contains("visit:chanel"),
        "{text}"
    );
    assert!(r.get("structuredContent").is_none());
}

#[test]
fn tool_call_success_has_structured_content_and_text() {
    let p = FakePlatform::new();
    p.respond_with(|_| -> Result<OutboundResponse, OutboundError> {
        Ok(OutboundResponse {
            status: 200,
            headers: Headers::new(),
            body: br#"{"results":[{"dimensions":["2026-03-01"],"metrics":[10,20,30,40]}]}"#
                .to_vec(),
        })
    });
    let resp = run_with(
        &p,
        modern(
            "tools/call",
            Some("get_timeseries"),
            json!({"name": "get_timeseries", "arguments": {"site_id": "example.com", "date_range": "7d"}}),
        ),
    );
    assert_eq!(resp.status, 200);
    let r = &resp.json_body()["result"];
    assert_eq!(r["isError"], false);
    assert_eq!(r["resultType"], "complete");
    assert_eq!(
        r["structuredContent"]["results"][0]["dimensions"],
        json!(["2026-03-01"])
    );
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("time:day")
    );
    assert_eq!(
        p.sent.borrow()[0].headers.get("authorization"),
        Some("Bearer KEY-SECRET-9")
    );
}
