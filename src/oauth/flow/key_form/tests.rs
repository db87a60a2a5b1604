//! The key form natively, through the worker's own request handler: the
//! whole `/mcp` authorization (form, Plausible check, consent, code,
//! token, a tool call with the person's key), and its refusals.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::config::deployment::Deployment;
use crate::http::Method;
use crate::limits::Tier;
use crate::ports::{OutboundRequest, OutboundResponse};
use crate::testing::{FakePlatform, block_on};

const ORIGIN: &str = "https://mcp.example.com";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const GOOD_KEY: &str = "good-plausible-key-0001";
const REDIRECT: &str = "http://127.0.0.1:4567/cb";

fn deployment(extra: &[(&str, &str)]) -> Deployment {
    let mut pairs = vec![
        ("MCP_ALLOWED_HOSTNAMES", "mcp.example.com"),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
        ("USER_KEY_SECRET", "user-key-secret-for-tests-0123456789"),
        ("PLAUSIBLE_BASE_URL", "https://plausible.example"),
        ("PLAUSIBLE_API_KEY", "shared-key-000000"),
    ];
    pairs.extend_from_slice(extra);
    Deployment::load(&crate::testing::source(&pairs))
}

/// A Plausible that knows one key, which reads two sites, and answers
/// every other key or site with its 401.
fn plausible(p: &FakePlatform) {
    plausible_answering(p, std::rc::Rc::new(std::cell::Cell::new(200)));
}

/// [`plausible`], answering the known key with `status` as it is when
/// asked (200: its data; 401: the key was revoked; 503: an outage).
fn plausible_answering(p: &FakePlatform, status: std::rc::Rc<std::cell::Cell<u16>>) {
    p.respond_with(move |req: &OutboundRequest| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let key_ok = req.headers.get("authorization") == Some(&*format!("Bearer {GOOD_KEY}"));
        let site = body["site_id"].as_str().unwrap_or("");
        let readable = ["example.com", "shop.example.com"].contains(&site);
        let (status, answer) = if key_ok && site.is_empty() && status.get() != 401 {
            // Plausible finds the key before the site: a known key
            // without a site is a 400.
            (400, json!({"error": "Missing site ID."}))
        } else if key_ok && readable && status.get() != 200 {
            (
                status.get(),
                json!({"error": "Invalid API key or site ID."}),
            )
        } else if key_ok && readable {
            (
                200,
                json!({"results": [{"metrics": [3], "dimensions": []}], "meta": {}, "query": body}),
            )
        } else {
            (401, json!({"error": "Invalid API key or site ID."}))
        };
        Ok(OutboundResponse {
            status,
            headers: crate::http::Headers::new(),
            body: answer.to_string().into_bytes(),
        })
    });
}

fn send(
    p: &FakePlatform,
    d: &Deployment,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let url = url::Url::parse(ORIGIN)
        .unwrap()
        .join(path_and_query)
        .unwrap();
    let mut request = Request::new(method, url);
    request.headers.set("cf-connecting-ip", "198.51.100.20");
    for (n, v) in headers {
        request.headers.append(n, *v);
    }
    request.body = body.as_bytes().to_vec();
    block_on(crate::handle(p, d, request))
}

fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

/// The value of the hidden field `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

fn enc(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn register(p: &FakePlatform, d: &Deployment, redirect: &str) -> String {
    let r = send(
        p,
        d,
        Method::Post,
        "/register",
        &[("content-type", "application/json")],
        &json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none", "client_name": "Key App"})
            .to_string(),
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    r.json_body()["client_id"].as_str().unwrap().to_owned()
}

fn authorize_url(client: &str, redirect: &str, resource: &str) -> String {
    format!(
        "/authorize?{}",
        enc(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st"),
            ("resource", resource),
        ])
    )
}

/// The key form of a fresh authorization: its page and its cookie.
struct Form {
    ticket: String,
    csrf: String,
    cookie: String,
}

fn open_form(p: &FakePlatform, d: &Deployment, client: &str) -> Form {
    let r = send(
        p,
        d,
        Method::Get,
        &authorize_url(client, REDIRECT, &format!("{ORIGIN}/mcp")),
        &[],
        "",
    );
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("name=\"api_key\"") && page.contains("autocomplete=\"off\""));
    assert!(
        r.headers
            .get("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers.get("cache-control"), Some("no-store"));
    let set = r.headers.get("set-cookie").unwrap().to_owned();
    assert!(set.starts_with(KEY_COOKIE_PREFIX) && set.contains("SameSite=Strict"));
    Form {
        ticket: hidden(&page, "ticket"),
        csrf: hidden(&page, "csrf"),
        cookie: set.split(';').next().unwrap().to_owned(),
    }
}

fn post_form(p: &FakePlatform, d: &Deployment, form: &Form, key: &str, sites: &str) -> Response {
    send(
        p,
        d,
        Method::Post,
        "/authorize/key",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &form.cookie),
            ("origin", ORIGIN),
        ],
        &enc(&[
            ("ticket", &form.ticket),
            ("csrf", &form.csrf),
            ("api_key", key),
            ("sites", sites),
        ]),
    )
}

fn error_code(r: &Response) -> String {
    let page = text(r);
    let marker = "<meta name=\"error\" content=\"";
    page.find(marker)
        .map(|at| {
            let rest = &page[at + marker.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .unwrap_or_default()
}

fn queries_sent(p: &FakePlatform) -> Vec<(String, String)> {
    p.sent
        .borrow()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (
                r.headers.get("authorization").unwrap_or("").to_owned(),
                body["site_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Approves on the consent page that `response` is, with the sites
/// `chosen` of those it offers ticked, redeems the code, and returns the
/// token response.
fn approve_and_redeem(
    p: &FakePlatform,
    d: &Deployment,
    client: &str,
    form: &Form,
    consent: &Response,
    chosen: &[&str],
) -> Value {
    let page = text(consent);
    let ticket = hidden(&page, "ticket");
    let csrf = hidden(&page, "csrf");
    let mut fields = vec![
        ("ticket", ticket.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
        ("all_sites", "0"),
    ];
    fields.extend(chosen.iter().map(|s| ("site", *s)));
    let r = send(
        p,
        d,
        Method::Post,
        "/consent",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &form.cookie),
            ("origin", ORIGIN),
        ],
        &enc(&fields),
    );
    assert_eq!(r.status, 302, "{}", text(&r));
    let location = url::Url::parse(r.headers.get("location").unwrap()).unwrap();
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let token = send(
        p,
        d,
        Method::Post,
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &enc(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client),
            ("resource", &format!("{ORIGIN}/mcp")),
        ]),
    );
    assert_eq!(token.status, 200, "{}", text(&token));
    token.json_body()
}

fn tool_call(p: &FakePlatform, d: &Deployment, path: &str, bearer: &str, site: &str) -> Response {
    send(
        p,
        d,
        Method::Post,
        path,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2025-06-18"),
            ("authorization", &format!("Bearer {bearer}")),
        ],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "query_stats",
            "arguments": {"site_id": site, "metrics": ["visitors"], "date_range": "day"},
        }})
        .to_string(),
    )
}

#[test]
fn the_whole_key_flow_ends_in_tool_calls_with_the_persons_key() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    assert!(p.sent.borrow().is_empty(), "nothing asked before the post");
    let writes_before = p.storage_writes();
    let consent = post_form(
        &p,
        &d,
        &form,
        GOOD_KEY,
        "example.com\nshop.example.com, example.com",
    );
    let page = text(&consent);
    assert_eq!(consent.status, 200, "{page}");
    // One query per distinct site, with the key.
    assert_eq!(
        queries_sent(&p),
        vec![
            (format!("Bearer {GOOD_KEY}"), "example.com".to_owned()),
            (format!("Bearer {GOOD_KEY}"), "shop.example.com".to_owned()),
        ]
    );
    assert!(page.contains("name=\"decision\" value=\"approve\""));
    assert!(page.contains("…0001") && !page.contains("Signed in as"));
    // The chooser offers the sites just checked, all ticked, and no
    // "all sites".
    for site in ["example.com", "shop.example.com"] {
        assert!(
            page.contains(&format!("name=\"site\" value=\"{site}\" checked")),
            "{page}"
        );
    }
    assert!(!page.contains("name=\"all_sites\" value=\"1\""));
    assert!(!page.contains(GOOD_KEY), "the key is never shown");
    // Nothing was written before the consent.
    assert_eq!(p.storage_writes(), writes_before);
    // The person unticks one: the grant reads the other only.
    let tokens = approve_and_redeem(&p, &d, &client, &form, &consent, &["example.com"]);
    assert_eq!(tokens["resource"], format!("{ORIGIN}/mcp"));
    let access = tokens["access_token"].as_str().unwrap();
    p.sent.borrow_mut().clear();
    let r = tool_call(&p, &d, "/mcp", access, "example.com");
    assert_eq!(r.status, 200, "{}", text(&r));
    let body = text(&r);
    assert!(!body.contains("\"isError\":true"), "{body}");
    assert_eq!(
        queries_sent(&p),
        vec![(format!("Bearer {GOOD_KEY}"), "example.com".to_owned())],
        "the person's key, never our token, reaches Plausible"
    );
    // The site left unticked is refused before Plausible is asked.
    p.sent.borrow_mut().clear();
    let r = tool_call(&p, &d, "/mcp", access, "shop.example.com");
    let body = text(&r);
    assert!(
        body.contains("\"isError\":true") && body.contains("example.com"),
        "{body}"
    );
    assert!(p.sent.borrow().is_empty());
    // The same token is no credential at /internal.
    let r = tool_call(&p, &d, "/internal", access, "example.com");
    assert_eq!(r.status, 401);
    assert!(
        r.headers
            .get("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // Refresh keeps the grant on /mcp.
    let refreshed = send(
        &p,
        &d,
        Method::Post,
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &enc(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ]),
    );
    assert_eq!(refreshed.status, 200, "{}", text(&refreshed));
    assert_eq!(refreshed.json_body()["resource"], format!("{ORIGIN}/mcp"));
    // Nothing the key touched holds it in the clear.
    let objects: Vec<String> = p
        .ledgers
        .borrow()
        .values()
        .map(|l| format!("{:?}", l.entries.borrow()))
        .collect();
    let kv: Vec<String> =
        p.kv.borrow()
            .values()
            .map(|(v, _)| String::from_utf8_lossy(v).into_owned())
            .collect();
    let stored = format!("{objects:?}{kv:?}");
    assert!(!stored.contains(GOOD_KEY));
    let logged = p.logs.borrow().concat() + &p.audits.borrow().concat();
    assert!(!logged.contains(GOOD_KEY), "{logged}");
}

#[test]
fn the_form_says_what_to_fix() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    let many: Vec<String> = (0..21).map(|i| format!("s{i}.example")).collect();
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "",
            "example.com".into(),
            400,
            "invalid_key",
            "Paste your Plausible API key",
        ),
        (
            "short",
            "example.com".into(),
            400,
            "invalid_key",
            "8 to 512 characters",
        ),
        (
            "pmcp_at_AAAAAAAAAAAAAAAAAAAA",
            "example.com".into(),
            400,
            "invalid_key",
            "not a Plausible API key",
        ),
        (
            GOOD_KEY,
            " ,\n".into(),
            400,
            "invalid_sites",
            "at least one site",
        ),
        (
            GOOD_KEY,
            many.join(","),
            400,
            "invalid_sites",
            "(you named 21)",
        ),
        (
            "wrong-plausible-key-1",
            "example.com".into(),
            400,
            "key_refused",
            "did not accept this key for the site &quot;example.com&quot;",
        ),
        (
            GOOD_KEY,
            "example.com other.example".into(),
            400,
            "site_unreadable",
            "cannot read the site &quot;other.example&quot;",
        ),
    ];
    for (key, sites, status, code, says) in cases {
        let r = post_form(&p, &d, &form, key, &sites);
        let page = text(&r);
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (status, code),
            "{key} {sites}"
        );
        assert!(page.contains(says), "{code}: {page}");
        // The form again, with the same ticket, the sites kept, the key not.
        assert_eq!(hidden(&page, "ticket"), form.ticket);
        assert!(!page.contains("value=\"wrong-plausible") && !page.contains(GOOD_KEY));
    }
    // Refusals by Plausible are audited as refused sign-ins, never with
    // the key.
    let audits = p.audits.borrow().concat();
    assert!(
        audits.contains("\"reason\":\"plausible refused the key\""),
        "{audits}"
    );
    assert!(audits.contains("\"reason\":\"plausible key cannot read a named site\""));
    assert!(!audits.contains("wrong-plausible-key") && !audits.contains(GOOD_KEY));
    // A refused first site costs one query and says nothing more.
    p.sent.borrow_mut().clear();
    post_form(
        &p,
        &d,
        &form,
        "wrong-plausible-key-1",
        "example.com,shop.example.com",
    );
    assert_eq!(p.sent.borrow().len(), 1);
}

/// A 402 or 429 for the first site comes only for a key Plausible knows:
/// the page answers it exactly as a wrong key (no key checker), and the
/// audit line keeps the true reason. After the first site the key is
/// known good, and the page says what happened.
#[test]
fn answers_that_prove_a_key_look_like_a_refusal_on_the_first_site() {
    let p = FakePlatform::new();
    let status = std::rc::Rc::new(std::cell::Cell::new(402));
    let answering = status.clone();
    // The known key reads example.com; shop.example.com answers `status`.
    p.respond_with(move |req: &OutboundRequest| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let key_ok = req.headers.get("authorization") == Some(&*format!("Bearer {GOOD_KEY}"));
        let (code, answer) = match body["site_id"].as_str() {
            Some("example.com") if key_ok => (
                200,
                json!({"results": [{"metrics": [3], "dimensions": []}], "meta": {}, "query": body}),
            ),
            Some("shop.example.com") if key_ok => (answering.get(), json!({"error": "no"})),
            _ => (401, json!({"error": "Invalid API key or site ID."})),
        };
        Ok(OutboundResponse {
            status: code,
            headers: crate::http::Headers::new(),
            body: answer.to_string().into_bytes(),
        })
    });
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    let problem = |r: &Response| {
        let page = text(r);
        let at = page.find("Plausible did not accept").unwrap_or(0);
        (
            r.status,
            error_code(r),
            page[at..at + 200.min(page.len() - at)].to_owned(),
        )
    };
    let wrong = problem(&post_form(
        &p,
        &d,
        &form,
        "wrong-plausible-key-1",
        "shop.example.com",
    ));
    assert_eq!((wrong.0, wrong.1.as_str()), (400, "key_refused"));
    for (answer, reason) in [
        (402, "plausible answered 402 for the first site"),
        (429, "plausible rate-limited the key at the first site"),
        (400, "rejected the query for the first site (400)"),
    ] {
        status.set(answer);
        let r = post_form(&p, &d, &form, GOOD_KEY, "shop.example.com");
        assert_eq!(problem(&r), wrong, "{answer}: the same page as a wrong key");
        let audits = p.audits.borrow().concat();
        assert!(audits.contains(reason), "{answer}: {audits}");
    }
    // After a first site that read: what happened, exactly.
    for (answer, status_code, code) in [
        (402, 400, "stats_api_unavailable"),
        (429, 503, "plausible_rate_limited"),
        (401, 400, "site_unreadable"),
    ] {
        status.set(answer);
        let r = post_form(&p, &d, &form, GOOD_KEY, "example.com shop.example.com");
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (status_code, code),
            "{answer}"
        );
    }
    assert!(!p.audits.borrow().concat().contains(GOOD_KEY));
}

#[test]
fn forged_or_foreign_posts_are_refused_before_plausible_is_asked() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    let other = open_form(&p, &d, &client);
    let cases = [
        (
            Form {
                csrf: String::new(),
                ..open_form(&p, &d, &client)
            },
            "bad_csrf",
        ),
        (
            Form {
                csrf: other.csrf.clone(),
                ticket: form.ticket.clone(),
                cookie: form.cookie.clone(),
            },
            "bad_csrf",
        ),
        (
            Form {
                cookie: other.cookie.clone(),
                ticket: form.ticket.clone(),
                csrf: form.csrf.clone(),
            },
            "ticket_other_browser",
        ),
        (
            Form {
                ticket: "garbage".into(),
                csrf: form.csrf.clone(),
                cookie: form.cookie.clone(),
            },
            "bad_ticket",
        ),
    ];
    for (f, code) in cases {
        let r = post_form(&p, &d, &f, GOOD_KEY, "example.com");
        assert_eq!(error_code(&r), code);
        assert!(matches!(r.status, 400 | 403), "{code}: {}", r.status);
    }
    // From another origin.
    let r = send(
        &p,
        &d,
        Method::Post,
        "/authorize/key",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &form.cookie),
            ("origin", "https://evil.example"),
        ],
        &enc(&[
            ("ticket", &form.ticket),
            ("csrf", &form.csrf),
            ("api_key", GOOD_KEY),
            ("sites", "example.com"),
        ]),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (403, "foreign_origin"));
    // Expired.
    p.advance(LOGIN_LIFETIME);
    let r = post_form(&p, &d, &form, GOOD_KEY, "example.com");
    assert_eq!(error_code(&r), "bad_ticket");
    assert!(p.sent.borrow().is_empty());
}

#[test]
fn only_trusted_redirect_hosts_get_the_form() {
    let p = FakePlatform::new();
    let d = deployment(&[]);
    for (redirect, offered) in [
        ("https://claude.ai/api/mcp/auth_callback", true),
        ("https://claude.com/api/mcp/auth_callback", true),
        ("http://localhost:5555/cb", true),
        ("http://127.0.0.1/cb", true),
        ("http://[::1]:8080/cb", true),
        // The host is compared without case; any path on it is trusted.
        ("https://CLAUDE.AI/api/mcp/auth_callback", true),
        ("https://claude.ai/any/other/path?x=1", true),
        ("https://claude.ai:443/cb", true),
        ("https://app.example/cb", false),
        ("https://claude.ai.evil.example/cb", false),
        ("https://evil.claude.ai/cb", false),
        // Another port on a listed name may be another service.
        ("https://claude.ai:8443/api/mcp/auth_callback", false),
        // Loopback is a native client's http redirect, never https.
        ("https://localhost/cb", false),
        ("https://127.0.0.1:4567/cb", false),
        ("https://127.0.0.2/cb", false),
        ("https://[::1]/cb", false),
    ] {
        let client = register(&p, &d, redirect);
        let r = send(
            &p,
            &d,
            Method::Get,
            &authorize_url(&client, redirect, &format!("{ORIGIN}/mcp")),
            &[],
            "",
        );
        let page = text(&r);
        if offered {
            assert_eq!(r.status, 200, "{redirect}");
            assert!(page.contains("name=\"api_key\""));
        } else {
            assert_eq!(
                (r.status, error_code(&r).as_str()),
                (403, "unverified_redirect_host")
            );
            // Named with scheme and port, so a listed name on another
            // port or scheme shows why it is refused.
            let origin = url::Url::parse(redirect)
                .unwrap()
                .origin()
                .ascii_serialization();
            assert!(
                page.contains(&format!("send you back to {origin},"))
                    && page.contains("BYOK_REDIRECT_HOSTS"),
                "{page}"
            );
            assert!(
                !page.contains("api_key") && !page.contains("<form"),
                "no form"
            );
            assert!(r.headers.get("set-cookie").is_none());
        }
    }
    // An operator adds a host; the defaults are then whatever they list.
    let d = deployment(&[("BYOK_REDIRECT_HOSTS", "app.example")]);
    let client = register(&p, &d, "https://app.example/cb");
    let r = send(
        &p,
        &d,
        Method::Get,
        &authorize_url(&client, "https://app.example/cb", &format!("{ORIGIN}/mcp")),
        &[],
        "",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn the_trusted_host_rule_reads_scheme_port_and_host() {
    let uri = |s: &str| RedirectUri::parse(s).unwrap();
    let listed = vec!["Claude.AI".to_owned(), "203.0.113.7".to_owned()];
    for (redirect, offered) in [
        ("https://claude.ai/cb", true),
        ("https://CLAUDE.ai/cb", true),
        ("https://203.0.113.7/cb", true),
        ("https://203.0.113.7:444/cb", false),
        ("https://claude.ai:8443/cb", false),
        ("https://localhost/cb", false),
        ("https://127.0.0.2/cb", false),
        ("http://127.0.0.1:1/cb", true),
        ("http://localhost/cb", true),
    ] {
        assert_eq!(offered_to(&listed, &uri(redirect)), offered, "{redirect}");
    }
    // Plain http to a listed host, or to the rest of 127.0.0.0/8, is no
    // redirect URI at all (RFC 8252 §8.3), so it never reaches the rule.
    for refused in ["http://claude.ai/cb", "http://127.0.0.2:5000/cb"] {
        assert!(RedirectUri::parse(refused).is_err(), "{refused}");
    }
    let p = FakePlatform::new();
    let d = deployment(&[]);
    let r = send(
        &p,
        &d,
        Method::Post,
        "/register",
        &[("content-type", "application/json")],
        &json!({"redirect_uris": ["http://claude.ai/cb"], "token_endpoint_auth_method": "none"})
            .to_string(),
    );
    assert_eq!(r.status, 400, "{}", text(&r));
}

/// A client metadata document client is held to the same rule as a
/// registered one: its document's redirect host decides.
#[test]
fn a_metadata_document_client_gets_the_form_only_for_a_trusted_host() {
    const DOC: &str = "https://client.example.com/client.json";
    let p = FakePlatform::new();
    let d = deployment(&[]);
    for (redirect, offered) in [
        ("https://claude.ai/api/mcp/auth_callback", true),
        ("https://client.example.com/cb", false),
    ] {
        let redirect_owned = redirect.to_owned();
        p.respond_with(move |req: &OutboundRequest| {
            let mut headers = crate::http::Headers::new();
            headers.set("content-type", "application/json");
            let body = if req.url.as_str() == DOC {
                json!({
                    "client_id": DOC,
                    "client_name": "Metadata App",
                    "redirect_uris": [redirect_owned],
                    "token_endpoint_auth_method": "none",
                })
                .to_string()
                .into_bytes()
            } else {
                Vec::new()
            };
            Ok(OutboundResponse {
                status: if body.is_empty() { 404 } else { 200 },
                headers,
                body,
            })
        });
        // A fresh isolate per case: the document is not cached across.
        p.isolate.borrow_mut().clear();
        p.edge.borrow_mut().clear();
        p.kv.borrow_mut().clear();
        let r = send(
            &p,
            &d,
            Method::Get,
            &authorize_url(DOC, redirect, &format!("{ORIGIN}/mcp")),
            &[],
            "",
        );
        let page = text(&r);
        if offered {
            assert_eq!(r.status, 200, "{page}");
            assert!(page.contains("name=\"api_key\""));
        } else {
            assert_eq!(
                (r.status, error_code(&r).as_str()),
                (403, "unverified_redirect_host"),
                "{page}"
            );
            assert!(!page.contains("<form"));
        }
    }
}

#[test]
fn every_post_counts_against_the_address_limit() {
    let p = FakePlatform::new();
    plausible(&p);
    p.rate_limits
        .borrow_mut()
        .insert(Tier::KeyForm.binding(), 2);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    for _ in 0..2 {
        assert_eq!(
            post_form(&p, &d, &form, "wrong-plausible-key-1", "example.com").status,
            400
        );
    }
    let limited = post_form(&p, &d, &form, GOOD_KEY, "example.com");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers.get("retry-after"), Some("60"));
    assert_eq!(
        p.sent.borrow().len(),
        2,
        "a limited post asks Plausible nothing"
    );
}

/// The allowance is per address, not per client (issue 15): a shared
/// client id must not let one person lock everyone out, and a second
/// client must not lift the limit for the address that spent it.
#[test]
fn the_limit_follows_the_address_not_the_client() {
    let p = FakePlatform::new();
    plausible(&p);
    p.rate_limits
        .borrow_mut()
        .insert(Tier::KeyForm.binding(), 2);
    let d = deployment(&[]);
    let post_from = |address: &str, form: &Form| {
        let url = url::Url::parse(ORIGIN)
            .unwrap()
            .join("/authorize/key")
            .unwrap();
        let mut request = Request::new(Method::Post, url);
        request.headers.set("cf-connecting-ip", address);
        request
            .headers
            .set("content-type", "application/x-www-form-urlencoded");
        request.headers.set("cookie", &form.cookie);
        request.headers.set("origin", ORIGIN);
        request.body = enc(&[
            ("ticket", &form.ticket),
            ("csrf", &form.csrf),
            ("api_key", "wrong-plausible-key-1"),
            ("sites", "example.com"),
        ])
        .into_bytes();
        block_on(crate::handle(&p, &d, request)).status
    };
    let first = register(&p, &d, REDIRECT);
    let second = register(&p, &d, REDIRECT);
    let a = open_form(&p, &d, &first);
    let b = open_form(&p, &d, &second);
    let (here, there) = ("198.51.100.20", "203.0.113.9");
    assert_eq!(post_from(here, &a), 400);
    assert_eq!(post_from(here, &a), 400);
    // Another client from the same address: limited.
    assert_eq!(post_from(here, &b), 429);
    // The same client from another address: not.
    assert_eq!(post_from(there, &a), 400);
    assert_eq!(post_from(there, &b), 400);
    assert_eq!(post_from(there, &a), 429);
    assert_eq!(
        p.sent.borrow().len(),
        4,
        "a limited post asks Plausible nothing"
    );
}

#[test]
fn the_mcp_endpoint_challenges_toward_its_own_metadata() {
    let p = FakePlatform::new();
    let d = deployment(&[]);
    let r = send(
        &p,
        &d,
        Method::Post,
        "/mcp",
        &[("content-type", "application/json")],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    );
    assert_eq!(r.status, 401);
    let challenge = r.headers.get("www-authenticate").unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{ORIGIN}/.well-known/oauth-protected-resource/mcp\""
        )) && !challenge.contains("error="),
        "{challenge}"
    );
    // A bearer value that is neither a key nor ours: invalid_token, and
    // still the metadata (RFC 9728 §5.1).
    for bad in ["abc", "ключ-ключ-ключ"] {
        let r = tool_call(&p, &d, "/mcp", bad, "example.com");
        assert_eq!(r.status, 401);
        let challenge = r.headers.get("www-authenticate").unwrap();
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{ORIGIN}/.well-known/oauth-protected-resource/mcp\""
            )) && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
    }
    let prm = send(
        &p,
        &d,
        Method::Get,
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        "",
    );
    assert_eq!(prm.status, 200);
    assert_eq!(prm.json_body()["resource"], format!("{ORIGIN}/mcp"));
    assert_eq!(prm.json_body()["authorization_servers"], json!([ORIGIN]));
    // A raw key keeps working as the bearer value.
    plausible(&p);
    let r = tool_call(&p, &d, "/mcp", GOOD_KEY, "example.com");
    assert_eq!(r.status, 200);
    assert_eq!(
        queries_sent(&p),
        vec![(format!("Bearer {GOOD_KEY}"), "example.com".to_owned())]
    );
}

#[test]
fn site_lists_parse() {
    let ok = parse(Some(" key-123456 "), Some("a.com, b.com\n\na.com\tc.com")).unwrap();
    assert_eq!(ok.0.secret(), "key-123456");
    let sites: Vec<&str> = ok.1.iter().map(SiteId::as_str).collect();
    assert_eq!(sites, ["a.com", "b.com", "c.com"]);
    assert_eq!(parse(None, Some("a.com")).unwrap_err(), Problem::NoKey);
    assert_eq!(
        parse(Some("key-123456"), None).unwrap_err(),
        Problem::NoSites
    );
    let twenty: Vec<String> = (0..20).map(|i| format!("s{i}.com")).collect();
    assert!(parse(Some("key-123456"), Some(&twenty.join(","))).is_ok());
    let long = "x".repeat(300);
    assert_eq!(
        parse(Some("key-123456"), Some(&format!("a.com {long}"))).unwrap_err(),
        Problem::BadSite { position: 2 }
    );
    // The key among the sites, wherever it stands, is named as such
    // (before any other problem with the sites).
    assert_eq!(
        parse(Some("key-123456"), Some("a.com x_y key-123456")).unwrap_err(),
        Problem::KeyInSites
    );
    // Sites are read as Plausible writes them.
    let ok = parse(Some("key-123456"), Some("https://www.Shop.example.com/")).unwrap();
    assert_eq!(ok.1[0].as_str(), "shop.example.com");
}

#[test]
fn the_refilled_sites_never_hold_the_key() {
    assert_eq!(refill(Some("key-123456"), "a.com, B.com"), "a.com\nb.com");
    // What is not a site (perhaps a key) is left out.
    assert_eq!(refill(Some("example.com"), "a.com Sv_Key-1234"), "a.com");
    assert_eq!(refill(None, "Sv_Key-1234"), "");
    // The typed key anywhere: nothing is re-filled.
    assert_eq!(refill(Some(" key-123456 "), "a.com key-123456"), "");
}

/// A person who swaps the fields (the domain as the key, the key as a
/// site) is told what to fix, and the key appears nowhere in the answer.
#[test]
fn swapped_fields_never_echo_the_key() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    for (key_field, sites_field, code) in [
        ("example.com", GOOD_KEY, "invalid_sites"),
        (
            "example.com",
            &*format!("shop.example.com,{GOOD_KEY}"),
            "invalid_sites",
        ),
        (
            GOOD_KEY,
            &*format!("example.com {GOOD_KEY}"),
            "invalid_sites",
        ),
        ("", GOOD_KEY, "invalid_key"),
    ] {
        let r = post_form(&p, &d, &form, key_field, sites_field);
        let page = text(&r);
        assert_eq!((r.status, error_code(&r).as_str()), (400, code), "{page}");
        assert!(!page.contains(GOOD_KEY), "{page}");
        for (name, value) in r.headers.iter() {
            assert!(!value.contains(GOOD_KEY), "{name}: {value}");
        }
    }
    // Swapped: the message says where the key belongs; the domains that
    // were sites are kept, the key is not.
    let r = post_form(
        &p,
        &d,
        &form,
        "example.com",
        &format!("shop.example.com\n{GOOD_KEY}"),
    );
    let page = text(&r);
    assert!(
        page.contains("Entry 2 of the sites is not a site")
            && page.contains("belongs in the key field"),
        "{page}"
    );
    assert!(page.contains(">shop.example.com</textarea>"), "{page}");
    // The key typed in both: the field comes back empty.
    let r = post_form(&p, &d, &form, GOOD_KEY, &format!("example.com {GOOD_KEY}"));
    let page = text(&r);
    assert!(
        page.contains("Your API key is in the sites field"),
        "{page}"
    );
    assert!(page.contains("\"sites\" rows=\"4\" cols=\"48\" required spellcheck=\"false\" autocapitalize=\"off\"></textarea>"), "{page}");
    assert!(p.sent.borrow().is_empty(), "Plausible is never asked");
    let logged = p.logs.borrow().concat() + &p.audits.borrow().concat();
    assert!(!logged.contains(GOOD_KEY));
}

fn refresh(p: &FakePlatform, d: &Deployment, client: &str, token: &str) -> Response {
    send(
        p,
        d,
        Method::Post,
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &enc(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ]),
    )
}

/// Issue 15: a refresh asks Plausible about a key grant's key at most
/// hourly; an outage passes; a refused key ends the grant with a
/// description that says to reconnect.
#[test]
fn refresh_rechecks_the_key_at_most_hourly() {
    use std::time::Duration;
    let p = FakePlatform::new();
    let status = std::rc::Rc::new(std::cell::Cell::new(200));
    plausible_answering(&p, status.clone());
    let d = deployment(&[("REFRESH_TOKEN_TTL", "604800")]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    let consent = post_form(&p, &d, &form, GOOD_KEY, "shop.example.com");
    let tokens = approve_and_redeem(&p, &d, &client, &form, &consent, &["shop.example.com"]);
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut step = |after_secs: u64, expect_query: bool| -> Response {
        p.advance(Duration::from_secs(after_secs));
        let before = p.sent.borrow().len();
        let r = refresh(&p, &d, &client, &rt);
        let mut asked = queries_sent(&p)[before..].to_vec();
        if expect_query {
            // One query (a 5xx is tried once more, as every query is);
            // a refusal is followed by one about the key alone.
            let one = (format!("Bearer {GOOD_KEY}"), "shop.example.com".to_owned());
            let alone = (format!("Bearer {GOOD_KEY}"), String::new());
            if asked.last() == Some(&alone) {
                asked.pop();
            }
            assert!(
                (1..=2).contains(&asked.len()) && asked.iter().all(|q| *q == one),
                "{asked:?}"
            );
        } else {
            assert!(asked.is_empty(), "{asked:?}");
        }
        if r.status == 200 {
            rt = r.json_body()["refresh_token"].as_str().unwrap().to_owned();
        }
        r
    };
    // Checked by the key form: not again within the hour.
    assert_eq!(step(600, false).status, 200);
    assert_eq!(step(3000, true).status, 200, "an hour after the form");
    assert_eq!(step(1800, false).status, 200, "recorded: not again yet");
    // An outage at Plausible ends nobody's connection, and is asked again.
    status.set(503);
    assert_eq!(step(1800, true).status, 200);
    status.set(401);
    let refused = step(1, true);
    assert_eq!(refused.status, 400, "{}", text(&refused));
    assert_eq!(refused.json_body()["error"], "invalid_grant");
    assert!(
        refused.json_body()["error_description"]
            .as_str()
            .unwrap()
            .contains("no longer accepted by Plausible; reconnect")
    );
    // The grant is gone: its newest refresh token too.
    status.set(200);
    let after = refresh(&p, &d, &client, &rt);
    assert_eq!(after.json_body()["error"], "invalid_grant");
    let audits = p.audits.borrow().concat();
    assert!(audits.contains("plausible_key_check"), "{audits}");
    assert!(!audits.contains(GOOD_KEY));
}

/// A Plausible whose answers a test changes as it goes: the known key
/// (unless revoked) reads `example.com` and `shop.example.com`, except
/// sites marked gone (answered with `gone_status`: 401 as Plausible
/// answers a deleted site, or 400).
#[derive(Default)]
struct Upstream {
    revoked: std::cell::Cell<bool>,
    gone: std::cell::RefCell<Vec<&'static str>>,
    gone_status: std::cell::Cell<u16>,
}

fn plausible_world(p: &FakePlatform) -> std::rc::Rc<Upstream> {
    let up = std::rc::Rc::new(Upstream::default());
    up.gone_status.set(401);
    let state = up.clone();
    p.respond_with(move |req: &OutboundRequest| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let key_ok = req.headers.get("authorization") == Some(&*format!("Bearer {GOOD_KEY}"))
            && !state.revoked.get();
        let invalid = json!({"error": "Invalid API key or site ID."});
        let (status, answer) = match body["site_id"].as_str() {
            None if key_ok => (400, json!({"error": "Missing site ID."})),
            Some(site) if key_ok && state.gone.borrow().contains(&site) => {
                (state.gone_status.get(), invalid)
            }
            Some(site) if key_ok && ["example.com", "shop.example.com"].contains(&site) => (
                200,
                json!({"results": [{"metrics": [3], "dimensions": []}], "meta": {}, "query": body}),
            ),
            _ => (401, invalid),
        };
        Ok(OutboundResponse {
            status,
            headers: crate::http::Headers::new(),
            body: answer.to_string().into_bytes(),
        })
    });
    up
}

/// A key grant reading `chosen` (of the two sites named on the form),
/// and its refresh token.
fn key_grant_reading(p: &FakePlatform, d: &Deployment, chosen: &[&str]) -> (String, String) {
    let client = register(p, d, REDIRECT);
    let form = open_form(p, d, &client);
    let consent = post_form(p, d, &form, GOOD_KEY, "example.com\nshop.example.com");
    assert_eq!(consent.status, 200, "{}", text(&consent));
    let tokens = approve_and_redeem(p, d, &client, &form, &consent, chosen);
    (client, tokens["refresh_token"].as_str().unwrap().to_owned())
}

/// Issue 15: the hourly re-check reads a site of the grant's own (not
/// one the person unticked), moves on past a site that is gone, and
/// revokes only when Plausible refuses the key itself.
#[test]
fn the_hourly_recheck_reads_the_grants_own_sites() {
    use std::time::Duration;
    let hour = Duration::from_secs(3601);
    let asked_since = |p: &FakePlatform, before: usize| -> Vec<String> {
        queries_sent(p)[before..]
            .iter()
            .map(|(auth, site)| {
                assert_eq!(*auth, format!("Bearer {GOOD_KEY}"));
                site.clone()
            })
            .collect()
    };
    let d = deployment(&[("REFRESH_TOKEN_TTL", "604800")]);

    // The person unticked example.com (the form's first site): the check
    // reads shop.example.com.
    let p = FakePlatform::new();
    plausible_world(&p);
    let (client, rt) = key_grant_reading(&p, &d, &["shop.example.com"]);
    p.advance(hour);
    let before = p.sent.borrow().len();
    let r = refresh(&p, &d, &client, &rt);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(asked_since(&p, before), ["shop.example.com"]);

    // A granted site gone (a 400, or Plausible's 401 for a deleted site):
    // the next granted site answers, and the grant lives on.
    for gone_status in [400, 401] {
        let p = FakePlatform::new();
        let up = plausible_world(&p);
        let (client, rt) = key_grant_reading(&p, &d, &["example.com", "shop.example.com"]);
        up.gone.borrow_mut().push("example.com");
        up.gone_status.set(gone_status);
        p.advance(hour);
        let before = p.sent.borrow().len();
        let r = refresh(&p, &d, &client, &rt);
        assert_eq!(r.status, 200, "{gone_status}: {}", text(&r));
        assert_eq!(
            asked_since(&p, before),
            ["example.com", "shop.example.com"],
            "{gone_status}"
        );
    }

    // Every granted site gone, the key itself accepted: one question
    // about the key alone; the grant lives on, and the check is recorded.
    let p = FakePlatform::new();
    let up = plausible_world(&p);
    let (client, rt) = key_grant_reading(&p, &d, &["example.com", "shop.example.com"]);
    up.gone
        .borrow_mut()
        .extend(["example.com", "shop.example.com"]);
    p.advance(hour);
    let before = p.sent.borrow().len();
    let r = refresh(&p, &d, &client, &rt);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        asked_since(&p, before),
        ["example.com", "shop.example.com", ""]
    );
    let rt = r.json_body()["refresh_token"].as_str().unwrap().to_owned();
    p.advance(Duration::from_secs(600));
    let before = p.sent.borrow().len();
    assert_eq!(refresh(&p, &d, &client, &rt).status, 200);
    assert!(
        asked_since(&p, before).is_empty(),
        "recorded: not again yet"
    );

    // The key revoked at Plausible: its refusal of the key itself ends
    // the grant.
    let p = FakePlatform::new();
    let up = plausible_world(&p);
    let (client, rt) = key_grant_reading(&p, &d, &["example.com", "shop.example.com"]);
    up.revoked.set(true);
    p.advance(hour);
    let before = p.sent.borrow().len();
    let r = refresh(&p, &d, &client, &rt);
    assert_eq!(r.json_body()["error"], "invalid_grant", "{}", text(&r));
    assert_eq!(
        asked_since(&p, before),
        ["example.com", "shop.example.com", ""]
    );
    assert_eq!(
        refresh(&p, &d, &client, &rt).json_body()["error"],
        "invalid_grant"
    );
}

/// `TOKENS_NOT_BEFORE` applies to key grants as to any: their tokens are
/// refused at `/mcp` and their refresh at `/token`.
#[test]
fn the_kill_switch_ends_key_grants_too() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);
    let form = open_form(&p, &d, &client);
    let consent = post_form(&p, &d, &form, GOOD_KEY, "example.com");
    let tokens = approve_and_redeem(&p, &d, &client, &form, &consent, &["example.com"]);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tool_call(&p, &d, "/mcp", access, "example.com").status, 200);
    p.advance(std::time::Duration::from_secs(5));
    let cut = time::OffsetDateTime::from_unix_timestamp(i64::try_from(p.now.get() / 1000).unwrap())
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let killed = deployment(&[("TOKENS_NOT_BEFORE", &cut)]);
    let r = tool_call(&p, &killed, "/mcp", access, "example.com");
    assert_eq!(r.status, 401, "{}", text(&r));
    assert!(
        r.headers
            .get("www-authenticate")
            .unwrap()
            .contains("oauth-protected-resource/mcp")
    );
    let r = refresh(
        &p,
        &killed,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(r.json_body()["error"], "invalid_grant");
}

/// The key form of an authorization asking for `scope`.
fn open_scoped_form(p: &FakePlatform, d: &Deployment, client: &str, scope: &str) -> Form {
    let url = format!(
        "{}&{}",
        authorize_url(client, REDIRECT, &format!("{ORIGIN}/mcp")),
        enc(&[("scope", scope)])
    );
    let r = send(p, d, Method::Get, &url, &[], "");
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    let set = r.headers.get("set-cookie").unwrap().to_owned();
    Form {
        ticket: hidden(&page, "ticket"),
        csrf: hidden(&page, "csrf"),
        cookie: set.split(';').next().unwrap().to_owned(),
    }
}

/// The scopes a consent page lists under `id` (`scopes-asked` or
/// `scopes-allowed`), in order.
fn listed_scopes(page: &str, id: &str) -> Vec<String> {
    let Some(start) = page.find(&format!("<ul id=\"{id}\">")) else {
        return Vec::new();
    };
    let list = &page[start..start + page[start..].find("</ul>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|s| s[..s.find("</code>").unwrap()].to_owned())
        .collect()
}

#[test]
fn stepping_up_with_the_same_key_asks_only_for_what_is_new() {
    let p = FakePlatform::new();
    plausible(&p);
    let d = deployment(&[]);
    let client = register(&p, &d, REDIRECT);

    let form = open_scoped_form(&p, &d, &client, "sites:read");
    let consent = post_form(&p, &d, &form, GOOD_KEY, "example.com");
    let page = text(&consent);
    assert_eq!(consent.status, 200, "{page}");
    assert_eq!(listed_scopes(&page, "scopes-asked"), ["sites:read"]);
    assert!(listed_scopes(&page, "scopes-allowed").is_empty(), "{page}");
    let first = approve_and_redeem(&p, &d, &client, &form, &consent, &["example.com"]);
    assert_eq!(first["scope"], "sites:read");

    // The step-up: the key form again (the key is never kept), then a
    // consent page asking for stats:read alone, sites:read already allowed.
    let form = open_scoped_form(&p, &d, &client, "sites:read stats:read");
    let consent = post_form(&p, &d, &form, GOOD_KEY, "example.com");
    let page = text(&consent);
    assert_eq!(consent.status, 200, "{page}");
    assert_eq!(listed_scopes(&page, "scopes-asked"), ["stats:read"]);
    assert_eq!(listed_scopes(&page, "scopes-allowed"), ["sites:read"]);
    assert!(page.contains("It asks to also") && page.contains("Already allowed"));
    let stepped = approve_and_redeem(&p, &d, &client, &form, &consent, &["example.com"]);
    assert_eq!(stepped["scope"], "sites:read stats:read");
}
