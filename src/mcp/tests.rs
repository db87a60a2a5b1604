//! Transport and dispatch rules, one named change per case.

// Case tables name a change as a boxed closure.
#![allow(clippy::type_complexity, clippy::result_large_err)]

use serde_json::{Value, json};

use super::caching::LIST_TTL_MS;
use super::scopes::Authority;
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
        granted: false,
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
    block_on(serve(p, &ctx(), Authority::Unscoped, &req))
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
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe"}),
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
fn batches_are_capped_at_twenty_messages() {
    let pings = |n: usize| {
        (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))
            .collect::<Vec<_>>()
    };
    let at_cap = run(post(&[JSON, ACCEPT], json!(pings(20))));
    assert_eq!(at_cap.status, 200);
    assert_eq!(at_cap.json_body().as_array().unwrap().len(), 20);
    let over = run(post(&[JSON, ACCEPT], json!(pings(21))));
    assert_eq!(over.status, 400);
    assert_eq!(over.json_body()["error"]["code"], -32600);
    assert_eq!(over.json_body()["id"], serde_json::Value::Null);
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
    for method in [
        "initialize",
        "ping",
        "resources/subscribe",
        "logging/setLevel",
    ] {
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

/// One request of `method` under `revision` (a handshake revision, or
/// 2026-07-28 with its `_meta` and mirrored headers).
fn under(revision: &str, method: &str, name: Option<&str>, params: Value) -> Request {
    if revision == "2026-07-28" {
        return modern(method, name, params);
    }
    legacy(
        revision,
        json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params}),
    )
}

const REVISIONS: [&str; 4] = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

#[test]
fn capabilities_declare_prompts_resources_and_completions() {
    let init = run(post(
        &[JSON, ACCEPT],
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}
        }}),
    ));
    let discover = run(modern("server/discover", None, json!({})));
    for caps in [
        &init.json_body()["result"]["capabilities"],
        &discover.json_body()["result"]["capabilities"],
    ] {
        assert_eq!(caps["prompts"], json!({"listChanged": false}));
        assert_eq!(
            caps["resources"],
            json!({"subscribe": false, "listChanged": false})
        );
        assert_eq!(caps["completions"], json!({}));
        assert_eq!(caps["tools"], json!({"listChanged": false}));
    }
}

/// The lists are the same bytes on every call, carry caching hints only
/// under 2026-07-28, and are public there.
#[test]
fn lists_are_deterministic_with_hints_only_when_modern() {
    for (method, key, count) in [
        ("prompts/list", "prompts", 3),
        ("resources/list", "resources", 3),
        ("resources/templates/list", "resourceTemplates", 1),
    ] {
        for revision in REVISIONS {
            let first = run(under(revision, method, None, json!({})));
            let again = run(under(revision, method, None, json!({})));
            assert_eq!(first.body, again.body, "{method} {revision}");
            let r = &first.json_body()["result"];
            assert_eq!(r[key].as_array().unwrap().len(), count, "{method}");
            if revision == "2026-07-28" {
                assert_eq!(r["ttlMs"], LIST_TTL_MS, "{method}");
                assert_eq!(r["cacheScope"], "public", "{method}");
            } else {
                assert!(r.get("ttlMs").is_none(), "{method} {revision}");
            }
        }
    }
}

#[test]
fn prompts_get_renders_or_names_the_bad_argument() {
    let p = FakePlatform::new();
    for revision in REVISIONS {
        let ok = run_with(
            &p,
            under(
                revision,
                "prompts/get",
                Some("weekly_report"),
                json!({"name": "weekly_report", "arguments": {"site": "example.com"}}),
            ),
        );
        let r = &ok.json_body()["result"];
        assert_eq!(r["messages"][0]["role"], "user", "{revision}");
        assert!(
            r["messages"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .contains("compare_periods {\"metrics\"")
        );
    }
    assert_eq!(
        p.sent_count(),
        0,
        "rendering a prompt asks Plausible nothing"
    );
    let cases = [
        ("unknown prompt", json!({"name": "nope"}), None),
        ("no name", json!({}), None),
        (
            "arguments not an object",
            json!({"name": "weekly_report", "arguments": []}),
            None,
        ),
        (
            "missing site",
            json!({"name": "weekly_report", "arguments": {}}),
            Some("site"),
        ),
        (
            "unknown argument",
            json!({"name": "launch_impact", "arguments": {"site": "a.com", "moment": "2026-03-01", "metric": "x"}}),
            Some("metric"),
        ),
        (
            "impossible moment",
            json!({"name": "launch_impact", "arguments": {"site": "a.com", "moment": "2026-02-30"}}),
            Some("moment"),
        ),
    ];
    for (name, params, argument) in cases {
        let resp = run(legacy(
            "2025-11-25",
            json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": params}),
        ));
        assert_eq!((resp.status, error_code(&resp)), (200, -32602), "{name}");
        let err = &resp.json_body()["error"];
        if let Some(arg) = argument {
            assert_eq!(err["data"]["argument"], arg, "{name}");
            assert!(
                err["message"].as_str().unwrap().contains(arg),
                "{name}: {err}"
            );
        }
    }
}

#[test]
fn resources_read_hints_and_not_found_codes_per_revision() {
    for revision in REVISIONS {
        let uri = "plausible://vocabulary";
        let resp = run(under(
            revision,
            "resources/read",
            Some(uri),
            json!({"uri": uri}),
        ));
        let r = &resp.json_body()["result"];
        assert_eq!(r["contents"][0]["mimeType"], "text/markdown", "{revision}");
        let missing = "plausible://nothing";
        let resp = run(under(
            revision,
            "resources/read",
            Some(missing),
            json!({"uri": missing}),
        ));
        let expected = if revision == "2026-07-28" {
            -32602
        } else {
            -32002
        };
        assert_eq!(
            (resp.status, error_code(&resp)),
            (200, expected),
            "{revision}"
        );
        assert_eq!(resp.json_body()["error"]["data"]["uri"], missing);
    }
    // The site list depends on the credential: private, and never shared.
    let p = FakePlatform::new();
    p.respond_with(|_| {
        Ok(OutboundResponse {
            status: 200,
            headers: Headers::new(),
            body: br#"{"sites":[{"domain":"a.example","timezone":"UTC"}],"meta":{"after":null}}"#
                .to_vec(),
        })
    });
    let uri = "plausible://sites";
    let resp = run_with(&p, modern("resources/read", Some(uri), json!({"uri": uri})));
    let r = &resp.json_body()["result"];
    assert_eq!(r["cacheScope"], "private");
    assert_eq!(r["ttlMs"], 60_000);
    let body: Value = serde_json::from_str(r["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["sites"][0]["site_id"], "a.example");
    let resp = run_with(&p, modern("resources/read", Some(uri), json!({"uri": 7})));
    assert_eq!(resp.status, 400, "Mcp-Name must match a string uri");
}

#[test]
fn completion_answers_and_refusals() {
    let p = FakePlatform::new();
    let resp = run_with(
        &p,
        legacy(
            "2025-06-18",
            json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
                "ref": {"type": "ref/prompt", "name": "traffic_drop_check"},
                "argument": {"name": "window", "value": "4"},
            }}),
        ),
    );
    assert_eq!(
        resp.json_body()["result"]["completion"],
        json!({"values": ["48h", "14d", "24h"], "total": 3, "hasMore": false}),
        "prefix matches first, then the rest"
    );
    for (name, params) in [
        ("no ref", json!({"argument": {"name": "site", "value": ""}})),
        (
            "unknown prompt",
            json!({"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "site", "value": ""}}),
        ),
        (
            "not a template",
            json!({"ref": {"type": "ref/resource", "uri": "plausible://sites"}, "argument": {"name": "site_id", "value": ""}}),
        ),
        (
            "unknown argument",
            json!({"ref": {"type": "ref/prompt", "name": "weekly_report"}, "argument": {"name": "nope", "value": ""}}),
        ),
        (
            "no value",
            json!({"ref": {"type": "ref/prompt", "name": "weekly_report"}, "argument": {"name": "site"}}),
        ),
    ] {
        let resp = run_with(
            &p,
            legacy(
                "2025-11-25",
                json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": params}),
            ),
        );
        assert_eq!((resp.status, error_code(&resp)), (200, -32602), "{name}");
    }
    assert_eq!(p.sent_count(), 0);
}

/// MCP Apps (`io.modelcontextprotocol/ui`): declared only to a client that
/// offers it, under both eras; the three charted tools link the view.
#[test]
fn apps_extension_is_declared_only_when_offered() {
    let offer = json!({"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}});
    let declared =
        json!({"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}});
    for (client, expected) in [(json!({}), Value::Null), (offer.clone(), declared.clone())] {
        let resp = run(post(
            &[JSON, ACCEPT],
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": client, "clientInfo": {"name": "t", "version": "1"}
            }}),
        ));
        let caps = &resp.json_body()["result"]["capabilities"];
        assert_eq!(caps["extensions"], expected, "initialize with {client}");
        assert!(caps["tools"].is_object());

        let mut req = modern("server/discover", None, json!({}));
        let mut body: Value = serde_json::from_slice(&req.body).unwrap();
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = client.clone();
        req.body = serde_json::to_vec(&body).unwrap();
        let caps = &run(req).json_body()["result"]["capabilities"];
        assert_eq!(
            caps["extensions"], expected,
            "server/discover with {client}"
        );
        assert!(caps["tools"].is_object());
    }
}

#[test]
fn charted_tools_link_the_chart_view() {
    let resp = run(modern("tools/list", None, json!({})));
    for tool in resp.json_body()["result"]["tools"].as_array().unwrap() {
        let charted = matches!(
            tool["name"].as_str().unwrap(),
            "get_timeseries" | "compare_periods" | "find_anomalies"
        );
        let expected = if charted {
            json!({"ui": {"resourceUri": "ui://plausible/chart"}})
        } else {
            Value::Null
        };
        assert_eq!(tool["_meta"], expected, "{}", tool["name"]);
    }
}

#[test]
fn the_chart_view_is_readable() {
    let uri = "ui://plausible/chart";
    for req in [
        modern("resources/read", Some(uri), json!({"uri": uri})),
        legacy(
            "2025-06-18",
            json!({"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": uri}}),
        ),
    ] {
        let resp = run(req);
        assert_eq!(resp.status, 200);
        let content = &resp.json_body()["result"]["contents"][0];
        assert_eq!(content["uri"], uri);
        assert_eq!(content["mimeType"], "text/html;profile=mcp-app");
        assert!(
            content["text"]
                .as_str()
                .unwrap()
                .starts_with("<!doctype html>")
        );
        assert_eq!(content["_meta"]["ui"]["prefersBorder"], true);
    }
    // An unknown ui:// URI is "resource not found": -32002 up to
    // 2025-11-25, -32602 under 2026-07-28 (SEP-2164).
    let unknown = "ui://plausible/other";
    let resp = run(legacy(
        "2025-11-25",
        json!({"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": unknown}}),
    ));
    assert_eq!(error_code(&resp), -32002);
    assert_eq!(resp.json_body()["error"]["data"]["uri"], unknown);
    let resp = run(modern(
        "resources/read",
        Some(unknown),
        json!({"uri": unknown}),
    ));
    assert_eq!(error_code(&resp), -32602);
    assert_eq!(resp.json_body()["error"]["data"]["uri"], unknown);
    let resp = run(legacy(
        "2025-11-25",
        json!({"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {}}),
    ));
    assert_eq!(error_code(&resp), -32602);
}

/// Issue 12: the lists, `server/discover` and `initialize` are serialised
/// once per key (method, revision, default site, MCP Apps offered) and
/// then served as the same bytes, with no result built per request; a
/// different key gets its own result.
#[test]
fn shared_results_are_built_once_per_key() {
    let offer = json!({"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}});
    let mut discover_apps = modern("server/discover", None, json!({}));
    let mut body: Value = serde_json::from_slice(&discover_apps.body).unwrap();
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = offer.clone();
    discover_apps.body = serde_json::to_vec(&body).unwrap();
    let initialize = |caps: &Value| {
        post(
            &[JSON, ACCEPT],
            json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": caps, "clientInfo": {"name": "t", "version": "1"}
            }}),
        )
    };
    let mut requests: Vec<(String, Request)> = vec![
        (
            "discover".into(),
            modern("server/discover", None, json!({})),
        ),
        ("discover with apps".into(), discover_apps),
        ("initialize".into(), initialize(&json!({}))),
        ("initialize with apps".into(), initialize(&offer)),
    ];
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        for revision in REVISIONS {
            requests.push((
                format!("{method} {revision}"),
                under(revision, method, None, json!({})),
            ));
        }
    }
    let p = FakePlatform::new();
    let with_site = ToolContext {
        default_site: Some(
            crate::plausible::args::SiteId::parse("site_id", "example.com").unwrap(),
        ),
        ..ctx()
    };
    for context in [ctx(), with_site] {
        for (name, req) in &requests {
            let before = super::shared::builds();
            let first = block_on(serve(&p, &context, Authority::Unscoped, req));
            assert_eq!(first.status, 200, "{name}");
            assert_eq!(super::shared::builds(), before + 1, "{name}: built");
            for _ in 0..3 {
                let again = block_on(serve(&p, &context, Authority::Unscoped, req));
                assert!(again.body == first.body, "{name}: same bytes");
            }
            assert_eq!(super::shared::builds(), before + 1, "{name}: rebuilt");
        }
    }
    // The default site shows in the shared results of its own key.
    let tools = |context: &ToolContext| {
        let resp = block_on(serve(
            &p,
            context,
            Authority::Unscoped,
            &under("2025-11-25", "tools/list", None, json!({})),
        ));
        resp.json_body()["result"]["tools"][0]["inputSchema"]["required"].clone()
    };
    assert!(
        tools(&ctx())
            .as_array()
            .unwrap()
            .contains(&json!("site_id"))
    );
    let site = ToolContext {
        default_site: Some(
            crate::plausible::args::SiteId::parse("site_id", "example.com").unwrap(),
        ),
        ..ctx()
    };
    assert!(!tools(&site).as_array().unwrap().contains(&json!("site_id")));
}

/// Issue 15: what a token's scope lets through the transport, under every
/// revision: 403 with the step-up challenge before anything runs, for
/// single requests and for a 2025-03-26 batch with one element short.
#[test]
fn a_token_without_the_scope_gets_the_step_up_challenge_before_anything_runs() {
    use crate::oauth::scope::ScopeSet;
    const META: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/internal";
    let serve_as = |p: &FakePlatform, scope: &str, req: &Request| {
        let scope = ScopeSet::parse(Some(scope)).unwrap();
        block_on(serve(
            p,
            &ctx(),
            Authority::Token {
                scope: &scope,
                resource_metadata: META,
            },
            req,
        ))
    };
    let breakdown = json!({"name": "get_breakdown", "arguments": {"site_id": "a.example", "property": "visit:source"}});
    let sites = json!({"name": "list_sites", "arguments": {}});
    let call = |version: &str, params: &Value| {
        if version == "2026-07-28" {
            modern("tools/call", params["name"].as_str(), params.clone())
        } else {
            legacy(
                version,
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}),
            )
        }
    };
    for version in ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"] {
        let p = FakePlatform::new();
        let r = serve_as(&p, "sites:read", &call(version, &breakdown));
        assert_eq!(r.status, 403, "{version}");
        assert_eq!(
            r.headers.get("www-authenticate").unwrap(),
            format!(
                "Bearer realm=\"plausible-mcp\", resource_metadata=\"{META}\", scope=\"sites:read stats:read\", error=\"insufficient_scope\", error_description=\"This call needs the stats:read scope\""
            ),
            "{version}"
        );
        assert_eq!(p.sent_count(), 0, "{version}: nothing reached Plausible");
        // The same token lists, and a wider one is let through.
        let listed = serve_as(&p, "sites:read", &call(version, &sites));
        assert_eq!(listed.status, 200, "{version}");
        for scope in ["stats:read", "mcp", "sites:read stats:read"] {
            let r = serve_as(&p, scope, &call(version, &breakdown));
            assert_eq!(r.status, 200, "{version} {scope}");
        }
        let r = serve_as(&p, "stats:read", &call(version, &sites));
        assert_eq!(r.status, 403, "{version}");
        assert!(
            r.headers
                .get("www-authenticate")
                .unwrap()
                .contains("scope=\"sites:read stats:read\"")
        );
    }
    // A malformed request is refused as malformed first (400), whatever
    // its scope; a notification needs nothing.
    let p = FakePlatform::new();
    let mut mismatched = modern("tools/call", Some("list_sites"), breakdown.clone());
    mismatched.headers.set("mcp-method", "tools/list");
    assert_eq!(serve_as(&p, "sites:read", &mismatched).status, 400);
    let note = legacy(
        "2025-11-25",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(serve_as(&p, "sites:read", &note).status, 202);

    // A batch with one element short runs none of its elements.
    let batch = post(
        &[JSON, ACCEPT],
        json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": sites},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": breakdown},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
        ]),
    );
    let r = serve_as(&p, "sites:read", &batch);
    assert_eq!(r.status, 403);
    assert!(
        r.headers
            .get("www-authenticate")
            .unwrap()
            .contains("scope=\"sites:read stats:read\"")
    );
    assert_eq!(p.sent_count(), 0);
    let r = serve_as(&p, "sites:read stats:read", &batch);
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body().as_array().unwrap().len(), 2);
}

/// The dispatcher answers exactly the closed set of methods the scope
/// table is exhaustive over: each of them under some revision, and
/// other methods of the MCP specification under none.
#[test]
fn only_the_methods_of_the_closed_set_are_answered() {
    use super::method::Method as Rpc;
    let answered = |method: &str| {
        REVISIONS
            .iter()
            .filter(|r| error_code(&run(under(r, method, None, json!({})))) != -32601)
            .count()
    };
    for m in Rpc::ALL {
        assert!(answered(m.as_str()) > 0, "{m:?} is answered nowhere");
    }
    for other in [
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "Tools/list",
    ] {
        assert_eq!(Rpc::parse(other), None);
        assert_eq!(answered(other), 0, "{other}");
    }
}
