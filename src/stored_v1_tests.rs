//! Storage compatibility with what deployments already hold.
//!
//! `tests/fixtures/stored-v1/` holds every kind of record and key the
//! worker wrote (KV: client registrations, access-token records, cached
//! metadata documents, discovery documents and key sets, the last three
//! now ignored as the caches moved to memory and the edge; the per-client
//! Durable Objects: codes, grants, the refresh-token index, logins,
//! consent-ticket nonces, consents), written by the flows below with a
//! fixed clock and deterministic entropy, plus the token plaintexts a test
//! needs and the ledger messages as they travel between worker and object.
//!
//! The tests load them into the in-memory ports and carry on through the
//! public flows: refresh the grants, authenticate the access tokens, find
//! the consents, finish a login and a consent that were in flight,
//! redeem or refuse the codes. A deployment upgraded mid-week must log
//! nobody out.
//!
//! The v1 files are what the previous release wrote, and stay as they
//! are. `fixtures_are_what_the_flows_write` runs the same flows with
//! today's code and compares what they leave with
//! `tests/fixtures/stored-v2/` (the per-pair layout of issue 9);
//! `PMCP_WRITE_STORED_V2=1 cargo test fixtures_are_what_the_flows_write`
//! rewrites those files instead (only ever for a deliberate, migrated
//! change of layout), for the next release's loader tests to start from.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use base64::Engine;
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{Value, json};

use crate::http::{Headers, Method, Request, Response};
use crate::ports::{Clock, OutboundResponse, UnixMillis};
use crate::testing::{FakePlatform, MemoryLedgerStore, block_on};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stored-v1");
const DIR_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stored-v2");
const BASE: &str = "https://mcp.example.com";
const IDP: &str = "https://idp.example.com";
const CIMD: &str = "https://client.example.com/client.json";
/// When the fixtures were written (the fake platform's fixed "now").
const WRITTEN_AT_MS: u64 = 1_773_576_000_000;

fn config() -> HashMap<String, String> {
    [
        (
            "COOKIE_SECRET",
            "stored-v1-fixture-cookie-secret-0123456789abcdef",
        ),
        // The upgrade step: set before deploying the release that reads it.
        (
            "USER_KEY_SECRET",
            "stored-fixture-user-key-secret-0123456789abcdef",
        ),
        ("ALLOWED_EMAIL_DOMAIN", "example.com"),
        ("ACCESS_ISSUER", IDP),
        ("ACCESS_CLIENT_ID", "upstream-client"),
        ("ACCESS_CLIENT_SECRET", "upstream-client-secret"),
        ("MCP_ALLOWED_HOSTNAMES", "mcp.example.com"),
        ("MCP_ALLOWED_ORIGIN_HOSTNAMES", "claude.ai"),
        ("PLAUSIBLE_API_KEY", "plausible-shared-key"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn rsa_fixture() -> Value {
    crate::testing::rsa_keys()
}

/// What the fake upstream provider and the metadata-document host serve.
#[derive(Default)]
struct Upstream {
    /// The ID token the next code exchange returns.
    id_token: Option<String>,
    /// Paths fetched, in order.
    hits: Vec<String>,
}

struct World {
    p: FakePlatform,
    source: HashMap<String, String>,
    upstream: Rc<RefCell<Upstream>>,
}

/// A login the worker started: what the browser and the test hold.
#[derive(Clone)]
struct Login {
    cookie_name: String,
    cookie_value: String,
    upstream_state: String,
    nonce: String,
}

fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn challenge(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn verifier(tag: &str) -> String {
    format!("{tag:-<43}")
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

impl World {
    fn new(p: FakePlatform) -> Self {
        let upstream = Rc::new(RefCell::new(Upstream::default()));
        let served = upstream.clone();
        let keys = rsa_fixture();
        p.respond_with(move |req| {
            let url = req.url.as_str().to_owned();
            served.borrow_mut().hits.push(url.clone());
            let mut headers = Headers::new();
            headers.set("content-type", "application/json");
            let body = match url.as_str() {
                "https://idp.example.com/.well-known/openid-configuration" => json!({
                    "issuer": IDP,
                    "authorization_endpoint": format!("{IDP}/authorize"),
                    "token_endpoint": format!("{IDP}/token"),
                    "jwks_uri": format!("{IDP}/jwks"),
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
                "https://idp.example.com/jwks" => json!({"keys": [keys["signing"]["public"]]}),
                "https://idp.example.com/token" => {
                    json!({"id_token": served.borrow().id_token.clone(), "token_type": "Bearer"})
                }
                CIMD => {
                    headers.set("cache-control", "max-age=86400");
                    json!({
                        "client_id": CIMD,
                        "client_name": "Fixture Metadata Client",
                        "redirect_uris": ["https://client.example.com/cb"],
                        "token_endpoint_auth_method": "none",
                    })
                }
                _ => {
                    return Ok(OutboundResponse {
                        status: 404,
                        headers,
                        body: Vec::new(),
                    });
                }
            };
            Ok(OutboundResponse {
                status: 200,
                headers,
                body: body.to_string().into_bytes(),
            })
        });
        Self {
            p,
            source: config(),
            upstream,
        }
    }

    fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut request = Request::new(method, url::Url::parse(&format!("{BASE}{path}")).unwrap());
        for (k, v) in headers {
            request.headers.append(k, *v);
        }
        request.body = body.as_bytes().to_vec();
        let deployment = crate::config::deployment::current(&self.source);
        block_on(crate::handle(&self.p, &deployment, request))
    }

    fn register(&self, metadata: Value) -> Value {
        let r = self.send(
            Method::Post,
            "/register",
            &[("content-type", "application/json")],
            &metadata.to_string(),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json_body()
    }

    /// `GET /authorize`: the worker sends the browser upstream.
    fn start_login(
        &self,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        state: &str,
    ) -> Login {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("code_challenge", &challenge(verifier)),
                ("code_challenge_method", "S256"),
                ("state", state),
                ("scope", "mcp"),
                ("resource", &format!("{BASE}/internal")),
            ])
            .finish();
        let r = self.send(Method::Get, &format!("/authorize?{query}"), &[], "");
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        let location = r.headers.get("location").unwrap();
        assert!(location.starts_with(IDP), "{location}");
        let set_cookie = r.headers.get("set-cookie").unwrap();
        let (name, rest) = set_cookie.split_once('=').unwrap();
        Login {
            cookie_name: name.to_owned(),
            cookie_value: rest.split(';').next().unwrap().to_owned(),
            upstream_state: query_param(location, "state").unwrap(),
            nonce: query_param(location, "nonce").unwrap(),
        }
    }

    /// The provider signs `email` in; the browser returns to `/callback`.
    fn callback(&self, login: &Login, email: &str, upstream_code: &str) -> Response {
        let now = i64::try_from(self.p.now().as_secs()).unwrap();
        let claims = json!({
            "iss": IDP, "aud": "upstream-client", "sub": format!("sub|{email}"),
            "email": email, "email_verified": true, "nonce": login.nonce,
            "exp": now + 300, "iat": now,
        });
        let jwk: JsonWebKey<'_> =
            serde_json::from_str(&rsa_fixture()["signing"]["private"].to_string()).unwrap();
        let key = RsaPrivateKey::try_from(&jwk).unwrap();
        let token = Rsa::rs256()
            .token(
                &Header::empty().with_key_id("test-key-1"),
                &Claims::new(claims),
                &key,
            )
            .unwrap();
        self.upstream.borrow_mut().id_token = Some(token);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("code", upstream_code), ("state", &login.upstream_state)])
            .finish();
        let cookie = format!("{}={}", login.cookie_name, login.cookie_value);
        self.send(
            Method::Get,
            &format!("/callback?{query}"),
            &[("cookie", &cookie)],
            "",
        )
    }

    fn post_consent(&self, login: &Login, ticket: &str, csrf: &str, decision: &str) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("ticket", ticket), ("csrf", csrf), ("decision", decision)])
            .finish();
        let cookie = format!("{}={}", login.cookie_name, login.cookie_value);
        self.send(
            Method::Post,
            "/consent",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", BASE),
                ("cookie", &cookie),
            ],
            &body,
        )
    }

    fn token(&self, form: &[(&str, &str)], auth: Option<&str>) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        self.send(Method::Post, "/token", &headers, &body)
    }

    fn redeem(&self, client_id: &str, code: &str, verifier: &str, redirect: &str) -> Response {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
            ],
            None,
        )
    }

    fn refresh(&self, client_id: &str, refresh_token: &str, auth: Option<&str>) -> Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if auth.is_none() {
            form.push(("client_id", client_id));
        }
        self.token(&form, auth)
    }

    /// `tools/list` on `/internal` with `token`: its status.
    fn internal(&self, token: &str) -> u16 {
        let auth = format!("Bearer {token}");
        self.send(
            Method::Post,
            "/internal",
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-protocol-version", "2025-11-25"),
                ("authorization", &auth),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .status
    }

    fn advance(&self, secs: u64) {
        self.p.advance(Duration::from_secs(secs));
    }
}

fn code_of(r: &Response) -> String {
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    query_param(r.headers.get("location").unwrap(), "code").unwrap()
}

fn tokens_of(r: &Response) -> (String, String) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json_body();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn html(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

/// The fixture files, as text.
struct Fixtures {
    kv: String,
    durable_objects: String,
    secrets: String,
    wire: String,
}

/// Runs the flows that leave one of each record behind, with seeded
/// entropy, and returns what storage holds afterwards.
fn write_fixtures() -> Fixtures {
    let w = World::new(FakePlatform::seeded(1));
    let mut secrets = BTreeMap::<&str, String>::new();
    let step = |w: &World| w.advance(7);

    // Three clients: registered public, registered confidential
    // (client_secret_basic), and a client ID metadata document.
    let public = w.register(json!({
        "client_name": "Fixture Public Client",
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    }));
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    let confidential = w.register(json!({
        "client_name": "Fixture Confidential Client",
        "redirect_uris": ["https://conf.example/cb"],
    }));
    let conf_id = confidential["client_id"].as_str().unwrap().to_owned();
    secrets.insert("public_client_id", public_id.clone());
    secrets.insert("confidential_client_id", conf_id.clone());
    secrets.insert(
        "confidential_client_secret",
        confidential["client_secret"].as_str().unwrap().to_owned(),
    );
    let conf_auth = basic(&conf_id, confidential["client_secret"].as_str().unwrap());
    step(&w);

    // alice and the public client: login, consent, code, tokens, one
    // refresh (so the index holds a rotated-out token too).
    let v1 = verifier("alice-public-1");
    let login = w.start_login(&public_id, "https://app.example/cb", &v1, "alice-1");
    let page = w.callback(&login, "alice@example.com", "upstream-code-alice-1");
    assert_eq!(page.status, 200, "{}", html(&page));
    let (ticket, csrf) = (
        hidden_field(&html(&page), "ticket"),
        hidden_field(&html(&page), "csrf"),
    );
    let code1 = code_of(&w.post_consent(&login, &ticket, &csrf, "approve"));
    secrets.insert("alice_used_ticket", ticket);
    secrets.insert("alice_used_csrf", csrf);
    secrets.insert("alice_used_cookie_name", login.cookie_name.clone());
    secrets.insert("alice_used_cookie_value", login.cookie_value.clone());
    secrets.insert("alice_public_redeemed_code", code1.clone());
    secrets.insert("alice_public_redeemed_verifier", v1.clone());
    let (at1, rt1) = tokens_of(&w.redeem(&public_id, &code1, &v1, "https://app.example/cb"));
    step(&w);
    let (at2, rt2) = tokens_of(&w.refresh(&public_id, &rt1, None));
    secrets.insert("alice_public_access_1", at1);
    secrets.insert("alice_public_refresh_1_rotated_out", rt1);
    secrets.insert("alice_public_access_2", at2);
    secrets.insert("alice_public_refresh_2", rt2);
    step(&w);

    // alice again: consent is on record, so straight to a code, left
    // unredeemed.
    let v2 = verifier("alice-public-2");
    let login = w.start_login(&public_id, "https://app.example/cb", &v2, "alice-2");
    let code2 = code_of(&w.callback(&login, "alice@example.com", "upstream-code-alice-2"));
    secrets.insert("alice_public_unredeemed_code", code2);
    secrets.insert("alice_public_unredeemed_verifier", v2);
    step(&w);

    // alice a third time: the login is started and left at the provider.
    let v3 = verifier("alice-public-3");
    let pending = w.start_login(&public_id, "https://app.example/cb", &v3, "alice-3");
    secrets.insert("pending_login_verifier", v3);
    secrets.insert("pending_login_cookie_name", pending.cookie_name);
    secrets.insert("pending_login_cookie_value", pending.cookie_value);
    secrets.insert("pending_login_upstream_state", pending.upstream_state);
    secrets.insert("pending_login_nonce", pending.nonce);
    step(&w);

    // bob and the confidential client: the consent page is showing.
    let vb = verifier("bob-confidential");
    let login = w.start_login(&conf_id, "https://conf.example/cb", &vb, "bob-1");
    let page = w.callback(&login, "bob@example.com", "upstream-code-bob");
    assert_eq!(page.status, 200, "{}", html(&page));
    secrets.insert("bob_pending_ticket", hidden_field(&html(&page), "ticket"));
    secrets.insert("bob_pending_csrf", hidden_field(&html(&page), "csrf"));
    secrets.insert("bob_pending_cookie_name", login.cookie_name);
    secrets.insert("bob_pending_cookie_value", login.cookie_value);
    secrets.insert("bob_pending_verifier", vb);
    step(&w);

    // carol and the confidential client: a grant ended by a replayed code.
    let vc = verifier("carol-confidential");
    let login = w.start_login(&conf_id, "https://conf.example/cb", &vc, "carol-1");
    let page = w.callback(&login, "carol@example.com", "upstream-code-carol");
    let code = code_of(&w.post_consent(
        &login,
        &hidden_field(&html(&page), "ticket"),
        &hidden_field(&html(&page), "csrf"),
        "approve",
    ));
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", vc.as_str()),
        ("redirect_uri", "https://conf.example/cb"),
    ];
    let (atc, rtc) = tokens_of(&w.token(&redeem, Some(&conf_auth)));
    assert_eq!(w.token(&redeem, Some(&conf_auth)).status, 400);
    secrets.insert("carol_revoked_access", atc);
    secrets.insert("carol_revoked_refresh", rtc);
    step(&w);

    // alice and the metadata-document client.
    let vm = verifier("alice-metadata");
    let login = w.start_login(CIMD, "https://client.example.com/cb", &vm, "alice-m");
    let page = w.callback(&login, "alice@example.com", "upstream-code-alice-m");
    let code = code_of(&w.post_consent(
        &login,
        &hidden_field(&html(&page), "ticket"),
        &hidden_field(&html(&page), "csrf"),
        "approve",
    ));
    let (atm, rtm) = tokens_of(&w.redeem(CIMD, &code, &vm, "https://client.example.com/cb"));
    secrets.insert("alice_metadata_access", atm);
    secrets.insert("alice_metadata_refresh", rtm);
    secrets.insert("written_at_ms", w.p.now().0.to_string());

    let kv: BTreeMap<String, Value> = w
        .p
        .kv
        .borrow()
        .iter()
        .map(|(k, (bytes, ttl))| {
            (
                k.clone(),
                json!({"ttl_secs": ttl.as_secs(), "value": String::from_utf8(bytes.clone()).unwrap()}),
            )
        })
        .collect();
    let objects: BTreeMap<String, Value> =
        w.p.ledgers
            .borrow()
            .iter()
            // Objects only read (an empty legacy ledger asked for a
            // consent) hold nothing and are not part of the layout.
            .filter(|(_, store)| !store.entries.borrow().is_empty())
            .map(|(name, store)| {
                let entries: BTreeMap<String, Value> = store
                    .entries
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if name.starts_with("g:") {
                    // A pair's grant object: named by its routing id.
                    (
                        name.clone(),
                        json!({"class": "GrantLedger", "entries": entries}),
                    )
                } else if name.starts_with("u:") {
                    // A user's directory: named by the user key.
                    (
                        name.clone(),
                        json!({"class": "UserDirectory", "entries": entries}),
                    )
                } else if name.starts_with("used:") {
                    // A used-state shard: named by its hex digit.
                    (
                        name.clone(),
                        json!({"class": "UsedStates", "entries": entries}),
                    )
                } else {
                    (
                        object_name(name),
                        json!({"client_id": name, "entries": entries}),
                    )
                }
            })
            .collect();
    let wire: Vec<Value> =
        w.p.wire
            .borrow()
            .iter()
            .map(|(op, reply)| json!({"message": op, "reply": reply}))
            .collect();
    Fixtures {
        kv: pretty(&kv),
        durable_objects: pretty(&objects),
        secrets: pretty(&secrets),
        wire: pretty(&wire),
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// The Durable Object name of a client's ledger.
fn object_name(client: &str) -> String {
    crate::oauth::ledger::client::object_name(
        &crate::oauth::types::ClientId::parse(client).unwrap(),
    )
}

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn fixtures_are_what_the_flows_write() {
    let fresh = write_fixtures();
    let files = [
        ("kv.json", &fresh.kv),
        ("durable-objects.json", &fresh.durable_objects),
        ("secrets.json", &fresh.secrets),
        ("wire.json", &fresh.wire),
    ];
    if std::env::var("PMCP_WRITE_STORED_V2").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(DIR_V2).unwrap();
        for (name, text) in files {
            std::fs::write(format!("{DIR_V2}/{name}"), text).unwrap();
        }
    }
    for (name, text) in files {
        let stored = std::fs::read_to_string(format!("{DIR_V2}/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            stored == *text,
            "{name}: today's flows write something else than the v2 fixture"
        );
    }
}

/// A fresh platform holding the fixtures, its clock `later_secs` after
/// they were written.
fn loaded(later_secs: u64) -> (World, BTreeMap<String, String>) {
    let secrets: BTreeMap<String, String> = serde_json::from_str(&read("secrets.json")).unwrap();
    let p = FakePlatform::new();
    let written: u64 = secrets["written_at_ms"].parse().unwrap();
    assert!(written >= WRITTEN_AT_MS);
    p.now
        .set(UnixMillis(written).plus(Duration::from_secs(later_secs)).0);
    let kv: BTreeMap<String, Value> = serde_json::from_str(&read("kv.json")).unwrap();
    for (key, entry) in kv {
        let bytes = entry["value"].as_str().unwrap().as_bytes().to_vec();
        let ttl = Duration::from_secs(entry["ttl_secs"].as_u64().unwrap());
        p.kv.borrow_mut().insert(key, (bytes, ttl));
    }
    let objects: BTreeMap<String, Value> =
        serde_json::from_str(&read("durable-objects.json")).unwrap();
    for (name, object) in objects {
        let client = object["client_id"].as_str().unwrap().to_owned();
        assert_eq!(
            object_name(&client),
            name,
            "the object of {client} keeps its name"
        );
        let store = MemoryLedgerStore::default();
        for (k, v) in object["entries"].as_object().unwrap() {
            store.entries.borrow_mut().insert(k.clone(), v.clone());
        }
        p.ledgers.borrow_mut().insert(client, Rc::new(store));
    }
    (World::new(p), secrets)
}

const LATER: u64 = 300;

#[test]
fn access_tokens_authenticate_and_the_grant_refreshes() {
    let (w, s) = loaded(LATER);
    assert_eq!(w.internal(&s["alice_public_access_1"]), 200);
    assert_eq!(w.internal(&s["alice_public_access_2"]), 200);
    assert_eq!(w.internal(&s["alice_metadata_access"]), 200);
    let (access, refresh) =
        tokens_of(&w.refresh(&s["public_client_id"], &s["alice_public_refresh_2"], None));
    assert_eq!(w.internal(&access), 200);
    tokens_of(&w.refresh(&s["public_client_id"], &refresh, None));
}

#[test]
fn a_rotated_out_refresh_token_still_ends_the_grant() {
    let (w, s) = loaded(LATER);
    let r = w.refresh(
        &s["public_client_id"],
        &s["alice_public_refresh_1_rotated_out"],
        None,
    );
    assert_eq!(
        (r.status, r.json_body()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    assert_eq!(w.internal(&s["alice_public_access_2"]), 401);
    assert_eq!(
        w.refresh(&s["public_client_id"], &s["alice_public_refresh_2"], None)
            .status,
        400
    );
}

#[test]
fn the_unredeemed_code_redeems_and_the_redeemed_one_is_a_replay() {
    let (w, s) = loaded(LATER);
    tokens_of(&w.redeem(
        &s["public_client_id"],
        &s["alice_public_unredeemed_code"],
        &s["alice_public_unredeemed_verifier"],
        "https://app.example/cb",
    ));
    let replay = w.redeem(
        &s["public_client_id"],
        &s["alice_public_redeemed_code"],
        &s["alice_public_redeemed_verifier"],
        "https://app.example/cb",
    );
    assert_eq!(replay.status, 400);
    // The replay revoked the grant that code started, with its tokens.
    assert_eq!(w.internal(&s["alice_public_access_1"]), 401);
    assert_eq!(w.internal(&s["alice_public_access_2"]), 401);
}

#[test]
fn a_login_in_flight_finishes_and_finds_the_consent_on_record() {
    let (w, s) = loaded(LATER);
    let login = Login {
        cookie_name: s["pending_login_cookie_name"].clone(),
        cookie_value: s["pending_login_cookie_value"].clone(),
        upstream_state: s["pending_login_upstream_state"].clone(),
        nonce: s["pending_login_nonce"].clone(),
    };
    let code = code_of(&w.callback(&login, "alice@example.com", "upstream-code-late"));
    // Discovery and keys are no longer cached in KV (v1's entries there
    // are ignored): this isolate fetched them from the provider.
    assert_eq!(
        w.upstream.borrow().hits,
        vec![
            format!("{IDP}/.well-known/openid-configuration"),
            format!("{IDP}/token"),
            format!("{IDP}/jwks"),
        ]
    );
    tokens_of(&w.redeem(
        &s["public_client_id"],
        &code,
        &s["pending_login_verifier"],
        "https://app.example/cb",
    ));
}

#[test]
fn a_consent_page_shown_before_the_upgrade_can_be_approved() {
    let (w, s) = loaded(LATER);
    let login = Login {
        cookie_name: s["bob_pending_cookie_name"].clone(),
        cookie_value: s["bob_pending_cookie_value"].clone(),
        upstream_state: String::new(),
        nonce: String::new(),
    };
    let code = code_of(&w.post_consent(
        &login,
        &s["bob_pending_ticket"],
        &s["bob_pending_csrf"],
        "approve",
    ));
    let auth = basic(
        &s["confidential_client_id"],
        &s["confidential_client_secret"],
    );
    let (access, refresh) = tokens_of(&w.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &s["bob_pending_verifier"]),
            ("redirect_uri", "https://conf.example/cb"),
        ],
        Some(&auth),
    ));
    assert_eq!(w.internal(&access), 200);
    tokens_of(&w.refresh(&s["confidential_client_id"], &refresh, Some(&auth)));
}

#[test]
fn a_used_consent_ticket_stays_used() {
    let (w, s) = loaded(LATER);
    let login = Login {
        cookie_name: s["alice_used_cookie_name"].clone(),
        cookie_value: s["alice_used_cookie_value"].clone(),
        upstream_state: String::new(),
        nonce: String::new(),
    };
    let r = w.post_consent(
        &login,
        &s["alice_used_ticket"],
        &s["alice_used_csrf"],
        "approve",
    );
    assert_eq!(r.status, 400);
    assert!(html(&r).contains("already used"), "{}", html(&r));
}

#[test]
fn the_revoked_grant_stays_revoked() {
    let (w, s) = loaded(LATER);
    assert_eq!(w.internal(&s["carol_revoked_access"]), 401);
    let auth = basic(
        &s["confidential_client_id"],
        &s["confidential_client_secret"],
    );
    let r = w.refresh(
        &s["confidential_client_id"],
        &s["carol_revoked_refresh"],
        Some(&auth),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn the_metadata_clients_grant_and_consent_are_used() {
    let (w, s) = loaded(LATER);
    tokens_of(&w.refresh(CIMD, &s["alice_metadata_refresh"], None));
    let v = verifier("alice-metadata-again");
    let login = w.start_login(CIMD, "https://client.example.com/cb", &v, "again");
    let code = code_of(&w.callback(&login, "alice@example.com", "upstream-code-m2"));
    tokens_of(&w.redeem(CIMD, &code, &v, "https://client.example.com/cb"));
    // v1's KV copy of the document is ignored: the document came from its
    // host once, then from this isolate's cache; the consent on record
    // meant no consent page (the callback redirected with a code).
    let fetched = w
        .upstream
        .borrow()
        .hits
        .iter()
        .filter(|h| *h == CIMD)
        .count();
    assert_eq!(fetched, 1);
}

#[test]
fn revocation_finds_the_stored_records() {
    let (w, s) = loaded(LATER);
    let revoke = |token: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", s["public_client_id"].as_str()),
                ("token", token),
            ])
            .finish();
        w.send(
            Method::Post,
            "/revoke",
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        )
        .status
    };
    assert_eq!(revoke(&s["alice_public_access_1"]), 200);
    assert_eq!(w.internal(&s["alice_public_access_1"]), 401);
    assert_eq!(w.internal(&s["alice_public_access_2"]), 200);
    assert_eq!(revoke(&s["alice_public_refresh_2"]), 200);
    assert_eq!(w.internal(&s["alice_public_access_2"]), 401);
}

#[test]
fn the_daily_sweep_understands_the_stored_keys() {
    let (w, _) = loaded(8 * 24 * 3600);
    let now = w.p.now().as_secs();
    let mut left = Vec::new();
    for (client, store) in w.p.ledgers.borrow().iter() {
        block_on(crate::oauth::ledger::sweep::purge(store.as_ref(), now)).unwrap();
        let mut keys: Vec<String> = store.entries.borrow().keys().cloned().collect();
        keys.sort();
        left.push((client.clone(), keys));
    }
    for (client, keys) in left {
        assert!(
            keys.iter().all(|k| k.starts_with("consent:")) && !keys.is_empty(),
            "{client}: {keys:?}"
        );
    }
}

#[test]
fn ledger_messages_on_the_wire_keep_their_shape() {
    use crate::oauth::ledger::protocol::{
        ConsentReply, Done, LoginReply, Message, NonceReply, TokensReply,
    };
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &Value) {
        let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(&serde_json::to_value(&typed).unwrap(), v);
    }
    let wire: Vec<Value> = serde_json::from_str(&read("wire.json")).unwrap();
    assert!(wire.len() > 20);
    for entry in wire {
        let message: Message = serde_json::from_value(entry["message"].clone()).unwrap();
        assert_eq!(serde_json::to_value(&message).unwrap(), entry["message"]);
        let reply = &entry["reply"];
        match message {
            Message::IssueCode(_)
            | Message::RevokeRefresh(_)
            | Message::BeginLogin(_)
            | Message::RecordConsent(_) => round_trip::<Done>(reply),
            Message::RedeemCode(_) | Message::Refresh(_) => round_trip::<TokensReply>(reply),
            Message::FinishLogin(_) => round_trip::<LoginReply>(reply),
            Message::ConsumeNonce(_) => round_trip::<NonceReply>(reply),
            Message::GetConsent(_) => round_trip::<ConsentReply>(reply),
            Message::LookupAccess(_)
            | Message::RevokeAccess(_)
            | Message::MarkListed(_)
            | Message::LegacyConsentUsers(_)
            | Message::RevokeAll(_)
            | Message::Summarize(_)
            | Message::KeyChecked(_) => {
                panic!("v1 never sent {message:?}")
            }
        }
    }
}

// ---------------------------------------------------------------------
// The per-pair layout (issue 9): routing, tags, consent carried forward,
// the KV-lag fallback, two devices.
// ---------------------------------------------------------------------

/// Signs `email` in for `client` and approves if asked: the code.
fn sign_in(w: &World, client: &str, redirect: &str, verifier: &str, tag: &str) -> String {
    let login = w.start_login(client, redirect, verifier, tag);
    let r = w.callback(&login, "alice@example.com", &format!("upstream-{tag}"));
    if r.status == 302 {
        return code_of(&r);
    }
    let page = html(&r);
    code_of(&w.post_consent(
        &login,
        &hidden_field(&page, "ticket"),
        &hidden_field(&page, "csrf"),
        "approve",
    ))
}

fn fresh_world() -> (World, String) {
    let w = World::new(FakePlatform::new());
    let client = w.register(json!({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    }))["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (w, client)
}

const ROUTED_LEN: usize = 70;

fn flip_last(value: &str) -> String {
    let last = value.chars().last().unwrap();
    let swapped = if last == 'A' { 'B' } else { 'A' };
    format!("{}{swapped}", &value[..value.len() - 1])
}

#[test]
fn codes_and_tokens_are_routed_to_the_pair_object() {
    let (w, client) = fresh_world();
    let v = verifier("route");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "r1");
    assert_eq!(code.len(), "pmcp_ac_".len() + ROUTED_LEN);
    let (access, refresh) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    assert_eq!(access.len(), "pmcp_at_".len() + ROUTED_LEN);
    assert_eq!(refresh.len(), "pmcp_rt_".len() + ROUTED_LEN);
    {
        let ledgers = w.p.ledgers.borrow();
        let pairs: Vec<&String> = ledgers.keys().filter(|k| k.starts_with("g:")).collect();
        assert_eq!(pairs.len(), 1, "{:?}", ledgers.keys());
        let pair: Vec<String> = ledgers[pairs[0]].entries.borrow().keys().cloned().collect();
        assert!(pair.iter().any(|k| k.starts_with("grant:")));
        assert!(pair.iter().any(|k| k.starts_with("consent:")));
        assert!(pair.iter().any(|k| k == "listed:pair"));
        // The client's own ledger holds only its index: this pair.
        let legacy: Vec<String> = ledgers[&client].entries.borrow().keys().cloned().collect();
        assert_eq!(legacy, vec![format!("pair:{}", &pairs[0][2..])]);
    }
    assert_eq!(w.internal(&access), 200);
    let (access2, _) = tokens_of(&w.refresh(&client, &refresh, None));
    assert_eq!(w.internal(&access2), 200);
    // The refresh token of another client is refused there, grant intact.
    let (w2_other, _) = (
        w.register(json!({"redirect_uris": ["https://b.example/cb"], "token_endpoint_auth_method": "none"})),
        (),
    );
    let other = w2_other["client_id"].as_str().unwrap();
    assert_eq!(w.refresh(other, &refresh, None).status, 400);
    assert_eq!(
        w.internal(&access2),
        200,
        "another client's attempt revoked nothing"
    );
}

/// Issue 11: a pair object's token lines name the grant and the keyed
/// user (the one `code_issued` names); a replay names whose grant it
/// ended.
#[test]
fn a_pair_objects_token_lines_name_the_grant_and_the_keyed_user() {
    let (w, client) = fresh_world();
    let v = verifier("audit");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "a1");
    let (_, first) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    let (_, second) = tokens_of(&w.refresh(&client, &first, None));
    let _third = tokens_of(&w.refresh(&client, &second, None));
    assert_eq!(w.refresh(&client, &first, None).status, 400, "a replay");
    let lines: Vec<Value> =
        w.p.audits
            .borrow()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let find =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };
    let issued = find("code_issued")[0];
    let (user, grant) = (&issued["user"], &issued["grant"]);
    assert_eq!(user.as_str().unwrap().len(), 64);
    assert_ne!(
        user.as_str().unwrap(),
        crate::oauth::ids::UserKey::legacy_of_email("alice@example.com").as_str(),
        "the keyed hash, not the bare one"
    );
    assert_eq!(&find("code_redeemed")[0]["grant"], grant);
    let refreshed = find("token_refreshed");
    assert_eq!(refreshed.len(), 2);
    for line in refreshed
        .into_iter()
        .chain(find("replay_detected"))
        .chain(find("grant_revoked"))
    {
        assert_eq!(&line["user"], user, "{line}");
        assert_eq!(&line["grant"], grant, "{line}");
    }
    assert_eq!(find("replay_detected").len(), 1);
    assert_eq!(find("grant_revoked")[0]["by"], "replay");
}

#[test]
fn a_forged_tag_costs_no_storage_read() {
    let (w, client) = fresh_world();
    let v = verifier("forged");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "f1");
    let forged_code = flip_last(&code);
    w.p.reads.set(0);
    let r = w.redeem(&client, &forged_code, &v, "https://app.example/cb");
    assert_eq!(
        (r.status, r.json_body()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    assert_eq!(w.p.reads.get(), 0, "token endpoint");
    let (access, refresh) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    w.p.reads.set(0);
    assert_eq!(w.refresh(&client, &flip_last(&refresh), None).status, 400);
    assert_eq!(w.internal(&flip_last(&access)), 401);
    let body = format!("client_id={client}&token={}", flip_last(&refresh));
    let r = w.send(
        Method::Post,
        "/revoke",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(w.p.reads.get(), 0, "refresh, /internal and /revoke");
    // The genuine ones still work.
    assert_eq!(w.internal(&access), 200);
    assert!(w.p.reads.get() > 0);
}

#[test]
fn two_devices_keep_separate_grants() {
    let (w, client) = fresh_world();
    let (v1, v2) = (verifier("device-1"), verifier("device-2"));
    let c1 = sign_in(&w, &client, "https://app.example/cb", &v1, "d1");
    let (a1, r1) = tokens_of(&w.redeem(&client, &c1, &v1, "https://app.example/cb"));
    // The second device signs in (consent on record: no page).
    let c2 = sign_in(&w, &client, "https://app.example/cb", &v2, "d2");
    let (a2, r2) = tokens_of(&w.redeem(&client, &c2, &v2, "https://app.example/cb"));
    assert_eq!((w.internal(&a1), w.internal(&a2)), (200, 200));
    let (a1b, _) = tokens_of(&w.refresh(&client, &r1, None));
    let (a2b, r2b) = tokens_of(&w.refresh(&client, &r2, None));
    assert_eq!((w.internal(&a1b), w.internal(&a2b)), (200, 200));
    // Same object, two grants.
    {
        let ledgers = w.p.ledgers.borrow();
        let pairs: Vec<_> = ledgers.keys().filter(|k| k.starts_with("g:")).collect();
        assert_eq!(pairs.len(), 1);
        let grants = ledgers[pairs[0]]
            .entries
            .borrow()
            .keys()
            .filter(|k| k.starts_with("grant:"))
            .count();
        assert_eq!(grants, 2);
    }
    // Replaying device 1's rotated-out token, past the grace period a
    // lost response's retry has, ends device 1's grant only.
    w.p.advance(std::time::Duration::from_secs(
        crate::oauth::ledger::records::ROTATION_GRACE_SECS,
    ));
    assert_eq!(w.refresh(&client, &r1, None).status, 400);
    assert_eq!(w.internal(&a1b), 401);
    assert_eq!(w.internal(&a2b), 200);
    tokens_of(&w.refresh(&client, &r2b, None));
}

/// Issue 12's token memory, through the whole worker (on by default):
/// a hit costs no storage read, and a revocation made through this
/// isolate is refused at the very next request.
#[test]
fn the_token_memory_saves_the_read_and_forgets_local_revocations_at_once() {
    let (w, client) = fresh_world();
    let revoke = |token: &str| {
        let body = format!("client_id={client}&token={token}");
        let r = w.send(
            Method::Post,
            "/revoke",
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        );
        assert_eq!(r.status, 200);
    };
    let grant = |tag: &str| {
        let v = verifier(tag);
        let code = sign_in(&w, &client, "https://app.example/cb", &v, tag);
        tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"))
    };

    let (access, _) = grant("mem-1");
    w.p.reads.set(0);
    assert_eq!(w.internal(&access), 200);
    assert_eq!(w.p.reads.get(), 1, "the first request reads");
    assert_eq!(w.internal(&access), 200);
    assert_eq!(w.p.reads.get(), 1, "the second is remembered");
    revoke(&access);
    assert_eq!(w.internal(&access), 401, "an access token revoked here");

    // A refresh token revoked here ends its grant's access tokens too.
    let (access, refresh) = grant("mem-2");
    assert_eq!((w.internal(&access), w.internal(&access)), (200, 200));
    revoke(&refresh);
    assert_eq!(
        w.internal(&access),
        401,
        "its grant's refresh token revoked here"
    );

    // Past the window the record is read again (and, deleted from KV
    // by a revocation elsewhere, refused).
    let (access, _) = grant("mem-3");
    assert_eq!(w.internal(&access), 200);
    drop_kv(&w, &access);
    w.p.reads.set(0);
    assert_eq!(w.internal(&access), 200, "within 60 s: remembered");
    assert_eq!(w.p.reads.get(), 0);
    w.advance(121);
    assert_eq!(w.internal(&access), 401, "past the window: read, and gone");
}

fn drop_kv(w: &World, token: &str) {
    w.p.kv
        .borrow_mut()
        .remove(&format!("at:{}", crate::crypto::token_hash(token)));
}

#[test]
fn a_fresh_token_missing_from_kv_is_found_in_its_grant_object() {
    let (w, client) = fresh_world();
    let v = verifier("lag");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "k1");
    let (access, refresh) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    drop_kv(&w, &access);
    assert_eq!(
        w.internal(&access),
        200,
        "issued just now: asked the object"
    );
    // Issued more than 120 s ago: a KV miss is final.
    w.advance(121);
    assert_eq!(w.internal(&access), 401, "stale issued-at");
    // A revoked grant's fresh token is never resurrected.
    let (access2, _) = tokens_of(&w.refresh(&client, &refresh, None));
    let body = format!("client_id={client}&token={refresh}");
    w.send(
        Method::Post,
        "/revoke",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    );
    // (The rotated-out refresh token names the same grant.)
    drop_kv(&w, &access2);
    assert_eq!(w.internal(&access2), 401, "revoked grant");
    // A revoked access token alone is not resurrected either.
    let v = verifier("lag-2");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "k2");
    let (access3, _) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    let body = format!("client_id={client}&token={access3}");
    w.send(
        Method::Post,
        "/revoke",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(w.internal(&access3), 401, "revoked access token");
}

#[test]
fn a_legacy_consent_is_copied_forward_once() {
    let (w, s) = loaded(LATER);
    let public = s["public_client_id"].clone();
    let v = verifier("forward");
    // alice's consent lives only in the legacy ledger: no page.
    let login = w.start_login(&public, "https://app.example/cb", &v, "fw1");
    let r = w.callback(&login, "alice@example.com", "upstream-fw1");
    assert_eq!(r.status, 302, "{}", html(&r));
    let code = code_of(&r);
    assert_eq!(code.len(), "pmcp_ac_".len() + ROUTED_LEN);
    // Copied into the pair's object under the new user key.
    let pair_has_consent = |w: &World| {
        w.p.ledgers.borrow().iter().any(|(name, store)| {
            name.starts_with("g:")
                && store
                    .entries
                    .borrow()
                    .keys()
                    .any(|k| k.starts_with("consent:"))
        })
    };
    assert!(pair_has_consent(&w));
    // With the legacy record gone, the copy alone is honoured.
    w.p.ledgers.borrow()[&public]
        .entries
        .borrow_mut()
        .retain(|k, _| !k.starts_with("consent:"));
    let v2 = verifier("forward-2");
    let login = w.start_login(&public, "https://app.example/cb", &v2, "fw2");
    assert_eq!(
        w.callback(&login, "alice@example.com", "upstream-fw2")
            .status,
        302
    );
    tokens_of(&w.redeem(&public, &code, &v, "https://app.example/cb"));
    // The legacy grant's refresh keeps the legacy format.
    let (access, refresh) = tokens_of(&w.refresh(&public, &s["alice_public_refresh_2"], None));
    assert_eq!(access.len(), "pmcp_at_".len() + 43);
    assert_eq!(refresh.len(), "pmcp_rt_".len() + 43);
}

#[test]
fn without_user_key_secret_new_sign_ins_stop_and_legacy_tokens_work() {
    let (mut w, s) = loaded(LATER);
    w.source.remove("USER_KEY_SECRET");
    let query = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge={}&code_challenge_method=S256",
        s["public_client_id"],
        challenge(&verifier("x"))
    );
    let r = w.send(Method::Get, &query, &[], "");
    assert_eq!(r.status, 500);
    assert!(html(&r).contains("USER_KEY_SECRET"));
    assert_eq!(w.internal(&s["alice_public_access_2"]), 200);
    tokens_of(&w.refresh(&s["public_client_id"], &s["alice_public_refresh_2"], None));
}

// ---------------------------------------------------------------------
// Pending logins out of storage (issue 9): `/authorize` writes nothing;
// single use lives in the used-state shards.
// ---------------------------------------------------------------------

#[test]
fn authorize_writes_nothing_before_the_browser_returns() {
    let (w, client) = fresh_world();
    // Cold: the provider's discovery document and the metadata document
    // have never been fetched. Still nothing is written, anywhere: both
    // documents go to this isolate's memory and the edge cache.
    let kv_before = w.p.kv.borrow().len();
    let writes_before = w.p.storage_writes();
    let first = w.start_login(
        CIMD,
        "https://client.example.com/cb",
        &verifier("cold"),
        "cold",
    );
    assert!(first.cookie_name.starts_with("__Host-pmcp_login_"));
    let fetched = w.upstream.borrow().hits.clone();
    assert_eq!(
        fetched,
        vec![
            CIMD.to_owned(),
            format!("{IDP}/.well-known/openid-configuration")
        ],
        "both documents were fetched cold"
    );
    assert_eq!(w.p.storage_writes(), writes_before, "no KV or object write");
    assert_eq!(w.p.kv.borrow().len(), kv_before, "no KV entry");
    assert!(!w.p.edge.borrow().is_empty(), "cached at the edge instead");
    // Another unseen metadata URL (a stranger's): still no write.
    let stranger = "https://client.example.com/other.json";
    let r = w.send(
        Method::Get,
        &format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state=x",
            urlencode(stranger),
            urlencode("https://client.example.com/cb"),
            challenge(&verifier("x")),
        ),
        &[],
        "",
    );
    assert_ne!(r.status, 500);
    assert_eq!(
        w.p.storage_writes(),
        writes_before,
        "a stranger's URL: no write"
    );
    w.start_login(&client, "https://app.example/cb", &verifier("warm"), "warm");
    assert!(
        w.p.objects_with_state().is_empty(),
        "no Durable Object written"
    );
    let before = w.p.storage_writes();
    for i in 0..50 {
        let (id, redirect) = if i % 2 == 0 {
            (client.as_str(), "https://app.example/cb")
        } else {
            (CIMD, "https://client.example.com/cb")
        };
        let login = w.start_login(id, redirect, &verifier("many"), &format!("s{i}"));
        assert!(login.cookie_name.starts_with("__Host-pmcp_login_"));
    }
    assert_eq!(w.p.storage_writes(), before, "50 starts, no write");
    assert!(
        w.p.objects_with_state().is_empty(),
        "{:?}",
        w.p.objects_with_state()
    );
}

#[test]
fn a_callback_spends_its_state_once_in_a_used_state_shard_and_no_client_ledger() {
    let (w, client) = fresh_world();
    let login = w.start_login(&client, "https://app.example/cb", &verifier("once"), "once");
    // A callback the provider reports as failed still spends the state.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("error", "access_denied"), ("state", &login.upstream_state)])
        .finish();
    let cookie = format!("{}={}", login.cookie_name, login.cookie_value);
    let denied = w.send(
        Method::Get,
        &format!("/callback?{query}"),
        &[("cookie", &cookie)],
        "",
    );
    assert_eq!(denied.status, 403, "{}", html(&denied));
    let used: Vec<String> =
        w.p.objects_with_state()
            .into_iter()
            .filter(|n| n.starts_with("used:"))
            .collect();
    assert_eq!(used.len(), 1, "{used:?}");
    let replay = w.callback(&login, "alice@example.com", "upstream-once");
    assert_eq!(replay.status, 400);
    assert!(html(&replay).contains("already used"), "{}", html(&replay));
    // A whole sign-in with consent: the state and the ticket are spent in
    // shards; no client ledger holds anything.
    sign_in(
        &w,
        &client,
        "https://app.example/cb",
        &verifier("full"),
        "full",
    );
    // (The client's ledger holds only its index of pairs, the user's
    // directory its one pair.)
    let objects = w.p.objects_with_state();
    assert!(
        objects.iter().all(|n| n.starts_with("used:")
            || n.starts_with("g:")
            || n.starts_with("u:")
            || n == &client),
        "{objects:?}"
    );
    let legacy = w.p.ledgers.borrow()[&client].entries.borrow().clone();
    assert!(legacy.keys().all(|k| k.starts_with("pair:")), "{legacy:?}");
    let spent: usize = objects
        .iter()
        .filter(|n| n.starts_with("used:"))
        .map(|n| w.p.ledgers.borrow()[n].entries.borrow().len())
        .sum();
    assert_eq!(spent, 3, "two states and one ticket");
}

#[test]
fn a_login_cookie_from_another_login_or_key_does_not_open() {
    let (w, client) = fresh_world();
    let a = w.start_login(&client, "https://app.example/cb", &verifier("a"), "a");
    let b = w.start_login(&client, "https://app.example/cb", &verifier("b"), "b");
    // b's sealed value under a's cookie name: bound to b's login id.
    let swapped = Login {
        cookie_value: b.cookie_value.clone(),
        ..a.clone()
    };
    let r = w.callback(&swapped, "alice@example.com", "upstream-a");
    assert_eq!(r.status, 400);
    assert!(html(&r).contains("different browser"), "{}", html(&r));
    // Refused before the shard: a is still unspent and finishes.
    let r = w.callback(&a, "alice@example.com", "upstream-a");
    assert_eq!(r.status, 200, "{}", html(&r));
}

// ---------------------------------------------------------------------
// The directory and the index (issue 9, part C): written at a pair's
// first code only.
// ---------------------------------------------------------------------

#[test]
fn a_pair_is_listed_at_its_first_code_and_never_on_later_codes_or_refreshes() {
    let (w, client) = fresh_world();
    let v = verifier("dir-1");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "dir-1");
    let (_, refresh) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    let directory =
        w.p.objects_with_state()
            .into_iter()
            .find(|n| n.starts_with("u:"))
            .expect("the user's directory");
    let writes = |name: &str| w.p.ledgers.borrow()[name].writes.get();
    let listed = (writes(&directory), writes(&client));
    assert_eq!(listed, (1, 1), "one write each");
    // A second device, a refresh: the listings are not written again.
    let v2 = verifier("dir-2");
    let code2 = sign_in(&w, &client, "https://app.example/cb", &v2, "dir-2");
    tokens_of(&w.redeem(&client, &code2, &v2, "https://app.example/cb"));
    tokens_of(&w.refresh(&client, &refresh, None));
    assert_eq!((writes(&directory), writes(&client)), listed);
    // The test probe is not served on a deployed host.
    let r = w.send(
        Method::Get,
        "/__test/listings?email=alice@example.com",
        &[],
        "",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json_body()["error"], "not_found");
}

/// The test build's per-client layout (`TEST_GRANT_LAYOUT=per-client`,
/// the scale benchmark's baseline): one grant object for every user of a
/// client, and still each user's directory lists the client.
#[cfg(feature = "test-hooks")]
#[test]
fn the_per_client_layout_shares_one_grant_object_and_lists_every_user() {
    let (mut w, client) = fresh_world();
    w.source
        .insert("TEST_GRANT_LAYOUT".to_owned(), "per-client".to_owned());
    for (n, email) in ["alice@example.com", "bob@example.com"].iter().enumerate() {
        let tag = format!("pc-{n}");
        let v = verifier(&tag);
        let login = w.start_login(&client, "https://app.example/cb", &v, &tag);
        let r = w.callback(&login, email, &format!("upstream-{tag}"));
        let page = html(&r);
        let code = code_of(&w.post_consent(
            &login,
            &hidden_field(&page, "ticket"),
            &hidden_field(&page, "csrf"),
            "approve",
        ));
        tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    }
    let names = w.p.objects_with_state();
    let grant_objects = names.iter().filter(|n| n.starts_with("g:")).count();
    let directories = names.iter().filter(|n| n.starts_with("u:")).count();
    assert_eq!((grant_objects, directories), (1, 2), "{names:?}");
}

// ---------------------------------------------------------------------
// The legacy consent set (issue 9's scale fix): the legacy ledger is
// asked once per isolate for its users, then only about users in it.
// ---------------------------------------------------------------------

use crate::oauth::ledger::protocol::Message;

fn sent(w: &World) -> Vec<Message> {
    w.p.wire
        .borrow()
        .iter()
        .map(|(m, _)| serde_json::from_value(m.clone()).unwrap())
        .collect()
}

fn set_calls(w: &World) -> usize {
    sent(w)
        .iter()
        .filter(|m| matches!(m, Message::LegacyConsentUsers(_)))
        .count()
}

fn legacy_reads(w: &World, email: &str) -> usize {
    let key = crate::oauth::ids::UserKey::legacy_of_email(email);
    sent(w)
        .iter()
        .filter(|m| matches!(m, Message::GetConsent(g) if g.user_key == key))
        .count()
}

/// Signs `email` in and answers the callback's status.
fn callback_status(w: &World, client: &str, email: &str, tag: &str) -> u16 {
    let login = w.start_login(client, "https://app.example/cb", &verifier(tag), tag);
    w.callback(&login, email, &format!("upstream-{tag}")).status
}

#[test]
fn the_legacy_ledger_is_asked_once_for_its_users_then_only_about_users_in_it() {
    let (w, s) = loaded(LATER);
    let public = s["public_client_id"].clone();
    for (n, email) in ["newcomer1@example.com", "newcomer2@example.com"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            callback_status(&w, &public, email, &format!("set-{n}")),
            200
        );
        assert_eq!(legacy_reads(&w, email), 0, "{email}: no legacy read");
    }
    // alice approved under the previous release: read there, once, and
    // spared the page.
    assert_eq!(
        callback_status(&w, &public, "alice@example.com", "set-a"),
        302
    );
    assert_eq!(legacy_reads(&w, "alice@example.com"), 1);
    assert_eq!(set_calls(&w), 1, "one call for the set");
}

#[test]
fn a_client_without_legacy_state_costs_one_call_for_its_empty_set() {
    let (w, client) = fresh_world();
    for (n, email) in ["alice@example.com", "bob@example.com", "carol@example.com"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            callback_status(&w, &client, email, &format!("none-{n}")),
            200
        );
        assert_eq!(legacy_reads(&w, email), 0);
    }
    assert_eq!(set_calls(&w), 1);
}

/// Issue 15: the records of both stored layouts, which name no sites,
/// load as grants of every site (`sites: None`) and are written back
/// without the field, byte for byte.
#[test]
fn records_without_sites_load_as_all_sites_and_keep_their_shape() {
    use crate::oauth::ledger::records::{
        AccessRecord, CodeRecord, ConsentRecord, GrantRecord, KeyKind,
    };
    fn same<T: serde::Serialize + serde::de::DeserializeOwned>(
        value: &Value,
        sites: impl Fn(&T) -> Option<&Vec<String>>,
    ) {
        let record: T = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(sites(&record), None, "{value}");
        assert_eq!(&serde_json::to_value(&record).unwrap(), value);
    }
    let mut seen = [0usize; 4];
    for dir in [DIR, DIR_V2] {
        let objects: BTreeMap<String, Value> = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/durable-objects.json")).unwrap(),
        )
        .unwrap();
        for object in objects.values() {
            for (key, value) in object["entries"].as_object().unwrap() {
                match KeyKind::parse(key).map(|(kind, _)| kind) {
                    Some(KeyKind::Code) => {
                        same::<CodeRecord>(value, |r| r.sites.as_ref());
                        seen[0] += 1;
                    }
                    Some(KeyKind::Grant) => {
                        same::<GrantRecord>(value, |r| r.sites.as_ref());
                        seen[1] += 1;
                    }
                    Some(KeyKind::Consent) => {
                        same::<ConsentRecord>(value, |r| r.sites.as_ref());
                        seen[2] += 1;
                    }
                    _ => {}
                }
            }
        }
        let kv: BTreeMap<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/kv.json")).unwrap())
                .unwrap();
        for (key, entry) in kv {
            if key.starts_with("at:") {
                let value: Value = serde_json::from_str(entry["value"].as_str().unwrap()).unwrap();
                same::<AccessRecord>(&value, |r| r.sites.as_ref());
                seen[3] += 1;
            }
        }
    }
    assert!(seen.iter().all(|n| *n > 0), "every kind met: {seen:?}");
}

// ---------------------------------------------------------------------
// Per-site grants (issue 15): the consent page's chooser, carried from
// the post to the code, the grant, every access token (refreshed ones
// too) and a later sign-in that skips the page.
// ---------------------------------------------------------------------

impl World {
    fn post_consent_fields(&self, login: &Login, fields: &[(&str, &str)]) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let cookie = format!("{}={}", login.cookie_name, login.cookie_value);
        self.send(
            Method::Post,
            "/consent",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", BASE),
                ("cookie", &cookie),
            ],
            &body,
        )
    }

    /// `tools/call` on `/internal`: the JSON-RPC result.
    fn call_tool(&self, token: &str, tool: &str, arguments: Value) -> Value {
        let auth = format!("Bearer {token}");
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let r = self.send(
            Method::Post,
            "/internal",
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-protocol-version", "2025-11-25"),
                ("authorization", &auth),
            ],
            &body.to_string(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json_body()["result"].clone()
    }

    /// How many requests went to Plausible (the fake's default base URL).
    fn plausible_requests(&self) -> usize {
        self.upstream
            .borrow()
            .hits
            .iter()
            .filter(|u| u.starts_with("https://plausible.io/"))
            .count()
    }
}

fn tool_text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

#[test]
fn a_grant_limited_to_one_site_refuses_the_others_through_refresh_and_reuse() {
    let (mut w, client) = fresh_world();
    w.source.insert(
        "PLAUSIBLE_SITES".into(),
        "example.com, shop.example.com:Europe/Berlin".into(),
    );
    let v = verifier("sites");
    let login = w.start_login(&client, "https://app.example/cb", &v, "s1");
    let page = w.callback(&login, "alice@example.com", "upstream-s1");
    assert_eq!(page.status, 200);
    let page = html(&page);
    assert!(
        page.contains(r#"<input type="radio" name="all_sites" value="1" checked>"#),
        "all sites preselected: {page}"
    );
    for site in ["example.com", "shop.example.com"] {
        assert!(
            page.contains(&format!(
                r#"<input type="checkbox" name="site" value="{site}">"#
            )),
            "{site} offered: {page}"
        );
    }
    let (ticket, csrf) = (hidden_field(&page, "ticket"), hidden_field(&page, "csrf"));
    let base = [
        ("ticket", ticket.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
        ("all_sites", "0"),
    ];
    // A site the page did not offer: a 400 page, nothing spent.
    let forged = w.post_consent_fields(
        &login,
        &[base.as_slice(), &[("site", "trends.example.com")]].concat(),
    );
    assert_eq!(forged.status, 400);
    assert!(html(&forged).contains(r#"<meta name="error" content="site_not_offered">"#));
    let code = code_of(&w.post_consent_fields(
        &login,
        &[base.as_slice(), &[("site", "shop.example.com")]].concat(),
    ));
    let (access, refresh) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    let consents: Vec<Value> =
        w.p.audits
            .borrow()
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["event"] == "consent_given")
            .collect();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0]["reason"], "chosen sites");
    assert!(!consents[0].to_string().contains("shop.example.com"));

    let refused_exactly = |token: &str| {
        let before = w.plausible_requests();
        let result = w.call_tool(token, "list_goals", json!({"site_id": "example.com"}));
        assert_eq!(result["isError"], true, "{result}");
        assert_eq!(
            tool_text(&result),
            "Error: Invalid argument `site_id`: \"example.com\" is not a site this connection may read; it may read only \"shop.example.com\". To read another site, the user reconnects and chooses it on the consent page."
        );
        assert_eq!(w.plausible_requests(), before, "refused before any request");
        let listed = w.call_tool(token, "list_sites", json!({}));
        assert_eq!(
            listed["structuredContent"]["sites"],
            json!([{"site_id": "shop.example.com", "timezone": "Europe/Berlin"}]),
            "{listed}"
        );
        assert_eq!(listed["structuredContent"]["source"], "grant");
    };
    refused_exactly(&access);
    // The granted site is read (the fake Plausible answers 404, so the
    // call fails upstream, not at the grant).
    let before = w.plausible_requests();
    let granted = w.call_tool(
        &access,
        "list_goals",
        json!({"site_id": "shop.example.com"}),
    );
    assert!(
        !tool_text(&granted).contains("is not a site this connection may read"),
        "{granted}"
    );
    assert!(
        w.plausible_requests() > before,
        "the granted site reached Plausible"
    );
    // A refreshed token carries the grant's sites.
    let (refreshed, _) = tokens_of(&w.refresh(&client, &refresh, None));
    refused_exactly(&refreshed);
    // A later sign-in skips the page and gets the same sites.
    let v2 = verifier("sites-2");
    let again = w.start_login(&client, "https://app.example/cb", &v2, "s2");
    let code = code_of(&w.callback(&again, "alice@example.com", "upstream-s2"));
    let (second, _) = tokens_of(&w.redeem(&client, &code, &v2, "https://app.example/cb"));
    refused_exactly(&second);
}

#[test]
fn all_sites_stays_the_default_of_the_consent_page() {
    let (mut w, client) = fresh_world();
    w.source.insert(
        "PLAUSIBLE_SITES".into(),
        "example.com, shop.example.com".into(),
    );
    // A post that names no sites at all (a page of the previous release,
    // or a client posting only its decision) approves every site.
    let v = verifier("all");
    let code = sign_in(&w, &client, "https://app.example/cb", &v, "a1");
    let (access, _) = tokens_of(&w.redeem(&client, &code, &v, "https://app.example/cb"));
    let result = w.call_tool(
        &access,
        "list_goals",
        json!({"site_id": "trends.example.com"}),
    );
    assert!(
        !tool_text(&result).contains("is not a site this connection may read"),
        "{result}"
    );
}
