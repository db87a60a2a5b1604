//! Entry points for `cargo fuzz` (the `fuzz/` crate) and for the native
//! test that replays every committed corpus file (`fuzz/corpus/<target>/`).
//!
//! Built only with `--cfg fuzzing` (cargo-fuzz sets it) or in tests: the
//! worker never contains it. One function per fuzz target; each takes the
//! raw input, drives the real parser or the whole worker
//! ([`crate::handle`], through [`world::World`]) and asserts invariants
//! that must hold for any input a stranger can send: no panic, no 5xx, a
//! JSON body that parses, an error code of the right form, no secret in
//! any answer, redirects only to registered URIs, and properties of the
//! parsed values (they keep what was given, they match themselves).
//!
//! Harness code, never on a request path: it may unwrap and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod checks;
pub mod world;

use serde_json::{Value, json};

use crate::http::{Headers, Method};
use crate::oauth::clients::cimd_document;
use crate::oauth::clients::record::AuthMethod;
use crate::oauth::types::{ClientId, RedirectUri};
use crate::oidc::verify::{Expected, KeySet, TokenRejected, VerifiedClaims, verify};
use crate::plausible::tools::Tool;
use crate::ports::UnixMillis;
use checks::{
    BYOK_KEY, JWS_AUDIENCE, JWS_ISSUER, JWS_NOW, check_accepted_claims, check_jsonrpc,
    check_response, header_safe, header_value, split_line,
};
use world::{BASE, CIMD, REDIRECT, World};

/// A fuzz target's function: one raw input, invariants asserted inside.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the corpus directory) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("authorization_header", authorization_header),
    ("authorize_query", authorize_query),
    ("token_form", token_form),
    ("redirect_uri", redirect_uri),
    ("registration", registration),
    ("metadata_document", metadata_document),
    ("jws", jws),
    ("jsonrpc", jsonrpc),
    ("tool_arguments", tool_arguments),
    ("cookies", cookies),
    ("own_tokens", own_tokens),
];

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const MCP_JSON: (&str, &str) = ("content-type", "application/json");
const MCP_ACCEPT: (&str, &str) = ("accept", "application/json, text/event-stream");
const TOOLS_LIST: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// `Authorization` header values (RFC 9110 §11.6.2, RFC 6750 §2.1,
/// RFC 7617) at every endpoint that reads one. Byte 0 picks the endpoint.
pub fn authorization_header(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let w = World::new();
    let Some(value) = header_value(&w.expand(rest)) else {
        return;
    };
    let mut headers = Headers::new();
    headers.set("authorization", value.clone());
    for scheme in ["Bearer", "Basic"] {
        if let Some(c) = headers.credentials(scheme) {
            assert_eq!(c, c.trim());
            assert!(value.contains(c));
        }
    }
    let auth = ("authorization", value.as_str());
    let version = ("mcp-protocol-version", "2025-11-25");
    let r = match which % 4 {
        0 => w.send(
            Method::Post,
            "/mcp",
            &[MCP_JSON, MCP_ACCEPT, version, auth],
            TOOLS_LIST,
        ),
        1 => w.send(
            Method::Post,
            "/internal",
            &[MCP_JSON, MCP_ACCEPT, version, auth],
            TOOLS_LIST,
        ),
        2 => w.send(
            Method::Post,
            "/token",
            &[FORM, auth],
            b"grant_type=refresh_token&refresh_token=pmcp_rt_x",
        ),
        _ => w.send(Method::Post, "/revoke", &[FORM, auth], b"token=pmcp_at_x"),
    };
    check_response(&r, data, "authorization_header");
    if r.status == 401 {
        // RFC 6750 §3 / RFC 9728 §5.1: a refused bearer says how to retry.
        assert!(
            r.headers.get("www-authenticate").is_some() || which % 4 >= 2,
            "401 without WWW-Authenticate"
        );
    }
}

/// `GET /authorize?<query>` (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707).
pub fn authorize_query(data: &[u8]) {
    let w = World::new();
    let query = String::from_utf8_lossy(&w.expand(data)).into_owned();
    let mut url = url::Url::parse(BASE).unwrap().join("/authorize").unwrap();
    url.set_query(Some(&query));
    let r = w.send_url(Method::Get, url, &[], b"");
    check_response(&r, data, "authorize_query");
}

/// `POST /token` and `POST /revoke` forms, with or without client
/// credentials (RFC 6749 §2.3.1, §3.2, §4.1.3, §6; RFC 7009 §2.1).
/// Byte 0 picks the endpoint; then `authorization-value\nform-body`.
pub fn token_form(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let w = World::new();
    let expanded = w.expand(rest);
    let (auth, body) = split_line(&expanded);
    let Some(auth) = header_value(auth) else {
        return;
    };
    let mut headers = vec![FORM];
    if !auth.is_empty() {
        headers.push(("authorization", &auth));
    }
    let path = if which % 2 == 0 { "/token" } else { "/revoke" };
    let r = w.send(Method::Post, path, &headers, body);
    check_response(&r, data, path);
    if path == "/token" && r.status == 200 {
        // Nothing the fuzzer can send earns a token: the world holds no
        // code or refresh token it could name.
        panic!("token issued for {}", String::from_utf8_lossy(body));
    }
}

/// Redirect URI parsing and matching (RFC 6749 §3.1.2, OAuth 2.1 §2.3.1,
/// RFC 8252 §7.3). Lines: the candidate, then registered URIs.
pub fn redirect_uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let candidate = lines.next().unwrap_or_default();
    let registered: Vec<RedirectUri> = lines.filter_map(|l| RedirectUri::parse(l).ok()).collect();
    let Ok(uri) = RedirectUri::parse(candidate) else {
        return;
    };
    assert_eq!(uri.as_str(), candidate, "kept as given");
    assert!(uri.matches_registered(std::slice::from_ref(&uri)));
    let back: RedirectUri = serde_json::from_value(json!(candidate)).unwrap();
    assert_eq!(back, uri);
    let with = uri.with_params(&[("code", "c&=#"), ("state", "s t")]);
    let parsed = url::Url::parse(&with).unwrap();
    assert!(parsed.fragment().is_none());
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("code".into(), "c&=#".into())), "{with}");
    assert!(pairs.contains(&("state".into(), "s t".into())), "{with}");
    for r in &registered {
        if uri.matches_registered(std::slice::from_ref(r)) && r.as_str() != uri.as_str() {
            // Only a loopback URI may differ, and then only in its port.
            let (a, b) = (url::Url::parse(r.as_str()).unwrap(), parsed_plain(&uri));
            assert!(
                crate::http::is_loopback(&b),
                "{candidate} matched {}",
                r.as_str()
            );
            assert_eq!(
                (a.scheme(), a.host_str(), a.path(), a.query()),
                (b.scheme(), b.host_str(), b.path(), b.query())
            );
        }
    }
}

fn parsed_plain(uri: &RedirectUri) -> url::Url {
    url::Url::parse(uri.as_str()).unwrap()
}

/// `POST /register` bodies (RFC 7591 §2, §3.2).
pub fn registration(data: &[u8]) {
    let w = World::new();
    let r = w.send(
        Method::Post,
        "/register",
        &[("content-type", "application/json")],
        data,
    );
    check_response(&r, data, "registration");
    assert!(
        matches!(r.status, 201 | 400 | 413 | 415),
        "status {}",
        r.status
    );
    if r.status == 201 {
        let body = r.json_body();
        assert!(ClientId::parse(body["client_id"].as_str().unwrap()).is_some());
        for uri in body["redirect_uris"].as_array().unwrap() {
            RedirectUri::parse(uri.as_str().unwrap()).unwrap();
        }
    }
}

/// Client ID metadata documents (CIMD §4, §4.1), through the validator
/// registration shares.
pub fn metadata_document(data: &[u8]) {
    let id = ClientId::parse(CIMD).unwrap();
    let now = UnixMillis(1_773_576_000_000);
    let Ok(record) = cimd_document::parse(data, &id, now, now.as_secs() + 300, false) else {
        return;
    };
    assert_eq!(record.client_id, id);
    assert_eq!(
        record.auth_method,
        AuthMethod::None,
        "documents are public clients"
    );
    assert!(record.secret_hash.is_none());
    assert!(!record.redirect_uris.is_empty());
    let stored = serde_json::to_vec(&record).unwrap();
    let back: crate::oauth::clients::record::ClientRecord =
        serde_json::from_slice(&stored).unwrap();
    assert_eq!(back, record, "a record survives storage");
}

fn fixture_keys() -> KeySet {
    let f = crate::testing::rsa_keys();
    KeySet::parse(
        json!({"keys": [f["signing"]["public"]]})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

/// The verifier with the native RS256 check (the worker's is WebCrypto;
/// both answer the same known-answer vectors, `oidc::kat`).
fn verify_now(
    token: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<VerifiedClaims, TokenRejected> {
    futures_executor::block_on(verify(&crate::testing::NativeCrypto, token, keys, expected))
}

/// JWS compact serialisation and RS256 ID-token verification (RFC 7515
/// §7.1, OIDC Core §3.1.3.7, RFC 8725 §3.1) with the fixture key set.
/// Byte 0: 0 verifies the rest as a token; 1 signs `header\nclaims`
/// with the fixture key first (to reach the claim checks); 2 parses the
/// rest as a JWKS and verifies a good token against it.
pub fn jws(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let expected = Expected {
        issuer: JWS_ISSUER,
        audience: JWS_AUDIENCE,
        nonce: Some("n-1"),
        now_secs: JWS_NOW,
    };
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if let Ok(claims) = verify_now(&token, &fixture_keys(), &expected) {
                // Only a token signed by the fixture key verifies: its
                // signing input must be one we signed.
                assert!(token.split('.').count() == 3, "{token}");
                let _ = claims;
            }
        }
        1 => {
            let (header, claims) = split_line(rest);
            let Ok(claims) = serde_json::from_slice::<Value>(claims) else {
                return;
            };
            let header = match serde_json::from_slice::<Value>(header) {
                Ok(Value::Object(h)) => h.get("kid").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            let h = match &header {
                Some(kid) => jwt_compact::Header::empty().with_key_id(kid.as_str()),
                None => jwt_compact::Header::empty(),
            };
            // Only a claim set jwt-compact can serialise is signed (an
            // integer is not: found by this target, a harness bug).
            let Some(token) = world::try_sign(&h, &claims) else {
                return;
            };
            match verify_now(&token, &fixture_keys(), &expected) {
                Ok(_) => check_accepted_claims(&claims),
                Err(TokenRejected::Signature | TokenRejected::Malformed) => {
                    // The claims did not serialise as a JWT claim set
                    // (jwt-compact refuses e.g. a non-numeric `exp`).
                }
                Err(_) => {}
            }
        }
        _ => {
            let Some(keys) = KeySet::parse(rest) else {
                return;
            };
            let good = world::sign(
                &jwt_compact::Header::empty(),
                &json!({"iss": JWS_ISSUER, "aud": JWS_AUDIENCE, "sub": "u", "nonce": "n-1",
                        "exp": JWS_NOW + 300, "iat": JWS_NOW}),
            );
            let _ = verify_now(&good, &keys, &expected);
        }
    }
}

/// JSON-RPC bodies through the MCP transport and dispatcher, both eras
/// and batches. Byte 0 picks the revision; the rest is the body.
pub fn jsonrpc(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let w = World::new();
    let auth = format!("Bearer {BYOK_KEY}");
    let version = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"][usize::from(which % 4)];
    let mut headers: Vec<(&str, String)> = vec![
        MCP_JSON,
        MCP_ACCEPT,
        ("mcp-protocol-version", version),
        ("authorization", &auth),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    if version == "2026-07-28" {
        // The modern era repeats the method (and tool name) in headers;
        // take them from the body so the fuzzer gets past that check.
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
            if let Some(method) = m
                .get("method")
                .and_then(Value::as_str)
                .and_then(header_safe)
            {
                headers.push(("mcp-method", method));
            }
            if let Some(name) = m
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .and_then(header_safe)
            {
                headers.push(("mcp-name", name));
            }
        }
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = w.send(Method::Post, "/mcp", &headers, body);
    check_response(&r, data, "jsonrpc");
    check_jsonrpc(&r);
}

/// `tools/call` arguments for every tool. Byte 0 picks the tool; the rest
/// is the `arguments` JSON.
pub fn tool_arguments(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(arguments) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let tool = Tool::ALL[usize::from(which) % Tool::ALL.len()];
    let w = World::new();
    let auth = format!("Bearer {BYOK_KEY}");
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool.name(), "arguments": arguments},
    });
    let r = w.send(
        Method::Post,
        "/mcp",
        &[
            MCP_JSON,
            MCP_ACCEPT,
            ("mcp-protocol-version", "2025-11-25"),
            ("authorization", &auth),
        ],
        body.to_string().as_bytes(),
    );
    check_response(&r, data, tool.name());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    check_jsonrpc(&r);
}

/// `Cookie` headers (RFC 6265 §5.4) where the sealed login cookies are
/// read: byte 0 picks `/callback` for the login in flight in one cookie
/// (`$LOGIN`), `POST /consent` for the login at its consent page
/// (`$CONSENT`, with that page's live ticket and CSRF token), or
/// `/callback` for the login sealed in two parts (`$PART0`, `$PART1`).
/// The rest is the header value. Each endpoint gets its login's live
/// `state`, code or ticket, so only the cookie decides the outcome.
pub fn cookies(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some(w) = World::with_tokens() else {
        panic!("the fuzz world's login flow no longer completes");
    };
    let Some(cookie) = header_value(&w.expand(rest)) else {
        return;
    };
    let callback = |login: &world::InFlight| {
        let query = world::form(&[("code", &login.code), ("state", &login.state)]);
        w.send(
            Method::Get,
            &format!("/callback?{query}"),
            &[("cookie", &cookie)],
            b"",
        )
    };
    let r = match which % 3 {
        0 => callback(&w.live.login),
        1 => w.consent(&cookie, &w.live.ticket, &w.live.csrf),
        _ => callback(&w.live.split),
    };
    check_response(&r, data, "cookies");
    // A sign-in finishes only in the browser that started it: without
    // its whole cookie nothing is issued (RFC 9700 §4.7.1, CSRF).
    let whole = match which % 3 {
        0 => w.live.login.cookies.clone(),
        1 => vec![w.live.consent_cookie.clone()],
        _ => w.live.split.cookies.clone(),
    };
    let finished = r.status == 302
        && r.headers
            .get("location")
            .is_some_and(|l| l.starts_with(REDIRECT) && l.contains("code="))
        || r.status == 200 && String::from_utf8_lossy(&r.body).contains("name=\"ticket\"");
    if finished {
        for part in &whole {
            let value = part.split_once('=').map_or("", |(_, v)| v);
            assert!(cookie.contains(value), "finished without {part}");
        }
    }
}

/// Our own token format (`pmcp_…`) wherever a stranger can present one:
/// a bearer at `/internal` and `/mcp`, a refresh token or code at
/// `/token`, a token at `/revoke`. Byte 0 picks where. Tokens of ours are
/// never forwarded to Plausible.
pub fn own_tokens(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some(w) = World::with_tokens() else {
        panic!("the fuzz world's login flow no longer completes");
    };
    let expanded = w.expand(rest);
    let Some(token) = header_value(&expanded) else {
        return;
    };
    let sent_before = w.p.sent_count();
    let reads_before = w.p.reads.get();
    let bearer = format!("Bearer {token}");
    let version = ("mcp-protocol-version", "2025-11-25");
    let client = w.live.client.clone();
    let r = match which % 5 {
        0 => w.send(
            Method::Post,
            "/internal",
            &[MCP_JSON, MCP_ACCEPT, version, ("authorization", &bearer)],
            TOOLS_LIST,
        ),
        1 => w.send(
            Method::Post,
            "/mcp",
            &[MCP_JSON, MCP_ACCEPT, version, ("authorization", &bearer)],
            TOOLS_LIST,
        ),
        2 => w.send(
            Method::Post,
            "/token",
            &[FORM],
            world::form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_id", &client),
            ])
            .as_bytes(),
        ),
        3 => w.send(
            Method::Post,
            "/token",
            &[FORM],
            world::form(&[
                ("grant_type", "authorization_code"),
                ("code", &token),
                ("client_id", &client),
                ("code_verifier", world::VERIFIER),
                ("redirect_uri", REDIRECT),
            ])
            .as_bytes(),
        ),
        _ => w.send(
            Method::Post,
            "/revoke",
            &[FORM],
            world::form(&[("token", &token), ("client_id", &client)]).as_bytes(),
        ),
    };
    check_response(&r, data, "own_tokens");
    for sent in w.p.sent.borrow().iter().skip(sent_before) {
        if let Some(a) = sent.headers.get("authorization") {
            assert!(!a.contains("pmcp_"), "our token forwarded to {}", sent.url);
        }
    }
    // A routed token (issue 9) carries a tag checked before any storage
    // is read: one of the kind the endpoint takes, routed-shaped but not a
    // live value, costs no KV read and no object message.
    let kinds: &[&str] = match which % 5 {
        0 => &["pmcp_at_"],
        2 => &["pmcp_rt_"],
        3 => &["pmcp_ac_"],
        4 => &["pmcp_at_", "pmcp_rt_"],
        _ => &[],
    };
    let t = token.trim();
    let live = [&w.live.access_token, &w.live.refresh_token, &w.live.code];
    if routed_shape(t, kinds) && !live.iter().any(|l| l.as_str() == t) {
        assert_eq!(
            w.p.reads.get(),
            reads_before,
            "a forged routed token cost a storage read: {t}"
        );
    }
    // Only the live values themselves are honoured.
    if r.status == 200 && which % 5 == 3 {
        panic!("a code was redeemed twice or forged: {token}");
    }
    if r.status == 200 && which % 5 == 2 {
        assert_eq!(token, w.live.refresh_token, "a refresh token was forged");
    }
    if r.status == 200 && which % 5 == 0 {
        assert_eq!(
            token.trim(),
            w.live.access_token,
            "an access token was forged"
        );
    }
}

/// Whether `t` is one of `kinds` in the routed format: the prefix and 70
/// base64url characters (`oauth::ids`).
fn routed_shape(t: &str, kinds: &[&str]) -> bool {
    kinds.iter().any(|k| {
        t.strip_prefix(k).is_some_and(|body| {
            body.len() == 70
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    })
}

#[cfg(test)]
mod corpus_tests;
