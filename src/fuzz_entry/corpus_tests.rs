//! Every committed corpus input, replayed through its target on stable
//! Rust: what the fuzzer found once stays covered without nightly.

use super::world::World;
use super::{TARGETS, own_tokens};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

#[test]
fn every_corpus_input_holds_its_invariants() {
    let mut failed = Vec::new();
    for (name, target) in TARGETS {
        let dir = std::path::Path::new(CORPUS).join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: empty corpus");
        for file in files {
            let input = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&input));
            if outcome.is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "failing inputs (panics above): {failed:#?}"
    );
}

#[test]
fn every_target_has_a_corpus_and_no_corpus_lacks_a_target() {
    let mut dirs: Vec<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(dirs, names);
}

/// The world the request-level targets use still reaches the deep paths:
/// a full login completes and its tokens work, so placeholders in the
/// corpus name live values.
#[test]
fn the_fuzz_world_completes_a_login() {
    let w = World::with_tokens().expect("login flow");
    assert!(w.live.access_token.starts_with("pmcp_at_"));
    assert!(w.live.refresh_token.starts_with("pmcp_rt_"));
    assert!(w.live.login_cookie.contains('='));
    assert!(!w.live.secret.is_empty());
    // The live access token is accepted at /internal and the live refresh
    // token rotates; the invariants hold on those success paths too.
    own_tokens(b"\x00$AT");
    own_tokens(b"\x02$RT");
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}/{target}/{name}")).unwrap()
}

/// The hand-written seeds get past the first checks, so the fuzzer starts
/// from the deep paths (a seed that stops being valid shows here).
#[test]
fn seeds_reach_the_paths_behind_them() {
    use crate::http::Method;
    let w = World::new();
    let query = String::from_utf8(w.expand(&seed("authorize_query", "seed-000"))).unwrap();
    let r = w.send(Method::Get, &format!("/authorize?{query}"), &[], b"");
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.headers
            .get("location")
            .unwrap()
            .starts_with(super::world::IDP)
    );

    let r = w.send(
        Method::Post,
        "/register",
        &[("content-type", "application/json")],
        &seed("registration", "seed-000"),
    );
    assert_eq!(r.status, 201);

    let body = seed("tool_arguments", "seed-000");
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_timeseries",
                   "arguments": serde_json::from_slice::<serde_json::Value>(&body[1..]).unwrap()}});
    let r = w.send(
        Method::Post,
        "/mcp",
        &[
            super::MCP_JSON,
            super::MCP_ACCEPT,
            ("mcp-protocol-version", "2025-11-25"),
            ("authorization", "Bearer fuzz-byok-plausible-key"),
        ],
        call.to_string().as_bytes(),
    );
    let v = r.json_body();
    assert!(v["result"].is_object(), "{v}");
    assert_ne!(v["result"]["isError"], true, "{v}");
    assert!(
        w.p.sent_count() > 0,
        "the tool reached the Plausible stand-in"
    );

    let id = crate::oauth::types::ClientId::parse(super::CIMD).unwrap();
    let now = crate::ports::UnixMillis(1_773_576_000_000);
    let doc = seed("metadata_document", "seed-000");
    crate::oauth::clients::cimd_document::parse(&doc, &id, now, 0).unwrap();
}

/// Found by `redirect_uri`: a host mixing uppercase ASCII and non-ASCII
/// reached a debug assertion of idna_adapter 1.0.0 (see Cargo.toml). It is
/// refused, as every non-ASCII host is.
#[test]
fn a_host_mixing_uppercase_and_non_ascii_is_refused() {
    use crate::oauth::types::{RedirectUri, RedirectUriError};
    for raw in [
        "https://clienFFF\u{fffd}\te.example/cb",
        "https://ABC\u{fc}.example/cb",
        "https://A.B%C3%BC/cb",
    ] {
        assert_eq!(
            RedirectUri::parse(raw),
            Err(RedirectUriError::NotAbsolute),
            "{raw}"
        );
    }
    assert!(RedirectUri::parse("https://ABC.xn--bcher-kva.example/cb").is_ok());
}
