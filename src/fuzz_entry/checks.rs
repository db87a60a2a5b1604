//! The invariants every fuzz target asserts on what the worker answers.

use serde_json::Value;

use super::world::{BASE, IDP, REDIRECT};
use crate::http::Response;

/// The ID token the `jws` target expects.
pub const JWS_ISSUER: &str = "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/client-1";
pub const JWS_AUDIENCE: &str = "client-1";
pub const JWS_NOW: i64 = 1_773_576_000;

/// Values that must never appear in any response.
const NEVER_ECHOED: [&str; 4] = [
    "plausible-shared-key",
    "upstream-client-secret",
    "fuzz-cookie-secret",
    "fuzz-user-key-secret",
];
pub const BYOK_KEY: &str = "fuzz-byok-plausible-key";

/// What every response must satisfy. `input` is what the stranger sent:
/// a secret the input itself carries may come back (e.g. as a client
/// name), any other must not.
pub fn check_response(r: &Response, input: &[u8], context: &str) {
    assert!(
        r.status < 500,
        "{context}: status {} body {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.headers.get("x-content-type-options"),
        Some("nosniff"),
        "{context}"
    );
    let body = String::from_utf8_lossy(&r.body);
    let sent = String::from_utf8_lossy(input);
    for secret in NEVER_ECHOED.iter().chain([&BYOK_KEY]) {
        if sent.contains(secret) {
            continue;
        }
        assert!(!body.contains(secret), "{context}: {secret} in body");
        for (_, v) in r.headers.iter() {
            assert!(!v.contains(secret), "{context}: {secret} in a header");
        }
    }
    let json = r
        .headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if json && !r.body.is_empty() {
        let value: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{context}: JSON body does not parse: {e}"));
        if let Some(code) = value.get("error").and_then(Value::as_str) {
            // RFC 6749 §5.2: error = 1*( %x20-21 / %x23-5B / %x5D-7E ); ours
            // are snake_case words.
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{context}: error code {code:?}"
            );
        }
    }
    if let Some(location) = r.headers.get("location") {
        // No open redirect: only the client's registered URIs, the
        // upstream provider, or a page of ours.
        let allowed = [REDIRECT, "http://127.0.0.1", IDP, BASE, "/"];
        assert!(
            allowed.iter().any(|a| location.starts_with(a)),
            "{context}: redirect to {location}"
        );
    }
}

/// A header value as the runtime would deliver it (no CR, LF or NUL).
pub fn header_value(bytes: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(bytes).into_owned();
    (!s.contains(['\r', '\n', '\0'])).then_some(s)
}

pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// What every accepted claim set satisfies (OIDC Core §3.1.3.7).
pub fn check_accepted_claims(claims: &Value) {
    assert_eq!(claims["iss"], JWS_ISSUER);
    let aud_ok = claims["aud"] == JWS_AUDIENCE
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == JWS_AUDIENCE));
    assert!(aud_ok, "aud {}", claims["aud"]);
    assert_eq!(claims["nonce"], "n-1");
    let exp = claims["exp"].as_f64().unwrap_or(f64::NAN);
    assert!(exp > (JWS_NOW - 60) as f64, "exp {exp}");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub");
}

pub fn header_safe(s: &str) -> Option<String> {
    header_value(s.as_bytes())
}

/// Every JSON-RPC answer is a response object (or a batch of them) with
/// exactly one of `result` and `error` (JSON-RPC 2.0 §5).
pub fn check_jsonrpc(r: &Response) {
    if r.body.is_empty() || r.headers.get("content-type") != Some("application/json") {
        return;
    }
    let v = r.json_body();
    let all: Vec<&Value> = match &v {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for item in all {
        assert_eq!(item["jsonrpc"], "2.0", "{item}");
        let has_result = item.get("result").is_some();
        let error = item.get("error");
        assert!(has_result != error.is_some(), "{item}");
        if let Some(e) = error {
            let code = e["code"].as_i64().unwrap();
            assert!(code != -32603, "internal error: {item}");
            assert!(e["message"].as_str().is_some(), "{item}");
        }
    }
}
