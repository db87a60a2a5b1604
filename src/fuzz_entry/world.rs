//! The deployment a fuzz input is sent to: the real [`crate::handle`] over
//! a [`FakePlatform`] with deterministic entropy, a fake upstream identity
//! provider (discovery, the JWKS of `tests/fixtures/rsa-test-keys.json`, a
//! token endpoint), a metadata-document host and a Plausible stand-in.
//!
//! Inputs name the world's live values by placeholder (`$CLIENT`, `$AT`,
//! …, see [`World::expand`]), so the fuzzer can reach the paths behind a
//! valid client, login cookie or token without guessing 256-bit secrets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use base64::Engine;
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{Value, json};
use sha2::Digest;

use crate::http::{Headers, Method, Request, Response};
use crate::ports::{Clock, OutboundResponse};
use crate::testing::{FakePlatform, block_on};

pub const BASE: &str = "https://mcp.example.com";
pub const IDP: &str = "https://idp.example.com";
pub const CIMD: &str = "https://client.example.com/client.json";
pub const REDIRECT: &str = "https://client.example.com/cb";
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";
pub const VERIFIER: &str = "fuzz-verifier-fuzz-verifier-fuzz-verifier-0001";
/// A state of the longest length `/authorize` accepts (1024): with
/// [`long_redirect`] it seals to more than one cookie part.
const LONG_STATE_LEN: usize = 1024;
const UPSTREAM_CLIENT: &str = "upstream-client";

fn config() -> HashMap<String, String> {
    [
        (
            "COOKIE_SECRET",
            "fuzz-cookie-secret-0123456789abcdef0123456789",
        ),
        (
            "USER_KEY_SECRET",
            "fuzz-user-key-secret-0123456789abcdef0123456789",
        ),
        ("ALLOWED_EMAIL_DOMAIN", "example.com"),
        ("ACCESS_ISSUER", IDP),
        ("ACCESS_CLIENT_ID", UPSTREAM_CLIENT),
        ("ACCESS_CLIENT_SECRET", "upstream-client-secret"),
        ("MCP_ALLOWED_HOSTNAMES", "mcp.example.com"),
        ("MCP_ALLOWED_ORIGIN_HOSTNAMES", "claude.ai"),
        ("PLAUSIBLE_API_KEY", "plausible-shared-key"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A registered redirect URI long enough that a login using it is sealed
/// over two `__Host-` cookie parts (see `oauth::flow::login`).
pub fn long_redirect() -> String {
    format!("{REDIRECT}/{}", "l".repeat(1900))
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// The fixture's private signing key (parsed once: RSA parsing is slow).
pub fn signing_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let fixture = crate::testing::rsa_keys();
        let jwk: JsonWebKey<'_> =
            serde_json::from_str(&fixture["signing"]["private"].to_string()).unwrap();
        RsaPrivateKey::try_from(&jwk).unwrap()
    })
}

/// An RS256 token over `claims`, signed with the fixture key. Tokens are
/// cached by content: the world is deterministic, so one signature serves
/// every run.
pub fn sign(header: &Header, claims: &Value) -> String {
    try_sign(header, claims).unwrap()
}

/// As [`sign`], or `None` for claims jwt-compact cannot serialise as a
/// claim set (not an object, found by the `jws` target).
pub fn try_sign(header: &Header, claims: &Value) -> Option<String> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = format!("{:?}|{claims}", header.key_id);
    if let Some(t) = cache.lock().unwrap().get(&key) {
        return Some(t.clone());
    }
    let token = Rsa::rs256()
        .token(header, &Claims::new(claims.clone()), signing_key())
        .ok()?;
    cache.lock().unwrap().insert(key, token.clone());
    Some(token)
}

fn plausible_answer(url: &url::Url) -> Option<Value> {
    let path = url.path();
    if path.ends_with("/api/v2/query") {
        Some(json!({"results": [], "meta": {}, "query": {}}))
    } else if path.contains("/goals") {
        Some(json!({"goals": [], "meta": {"after": null, "before": null, "limit": 100}}))
    } else if path.contains("/sites") {
        Some(json!({"sites": [], "meta": {"after": null, "before": null, "limit": 100}}))
    } else {
        None
    }
}

/// What the world's live values are after setup.
#[derive(Default, Clone)]
pub struct Live {
    pub client: String,
    pub confidential: String,
    pub secret: String,
    pub access_token: String,
    pub refresh_token: String,
    pub code: String,
    /// A login in flight at the upstream provider, in one cookie.
    pub login: InFlight,
    /// A login in flight whose sealed request takes two cookie parts.
    pub split: InFlight,
    /// A login back from the provider, its consent page open: the
    /// cookie, and the page's ticket and CSRF token.
    pub consent_cookie: String,
    pub ticket: String,
    pub csrf: String,
}

/// A login the worker sent upstream and the browser has not finished.
#[derive(Default, Clone)]
pub struct InFlight {
    /// Its cookie parts, each `name=value`, first to last.
    pub cookies: Vec<String>,
    /// The `state` sent upstream.
    pub state: String,
    /// The upstream code whose exchange returns an ID token for it.
    pub code: String,
}

/// The ID token the fake provider's token endpoint returns, per upstream
/// code.
type IdTokens = Rc<RefCell<HashMap<String, String>>>;

pub struct World {
    pub p: FakePlatform,
    /// The settings, derived once as the worker does per isolate.
    deployment: crate::config::deployment::Deployment,
    id_tokens: IdTokens,
    pub live: Live,
}

/// A world's state after setup, to start each run from (the login flow
/// costs milliseconds under the fuzzer's instrumentation).
struct Snapshot {
    kv: HashMap<String, (Vec<u8>, std::time::Duration)>,
    ledgers: Vec<(String, HashMap<String, Value>)>,
    edge: HashMap<String, (Vec<u8>, u64)>,
    isolate: HashMap<String, (Vec<u8>, u64)>,
    seed: Option<(u64, u64)>,
    now: u64,
    id_tokens: HashMap<String, String>,
    live: Live,
}

impl World {
    /// A deployment with a public and a confidential client registered.
    pub fn new() -> Self {
        let mut world = Self::blank();
        let public = world.register(json!({
            "client_name": "Fuzz Public",
            "redirect_uris": [REDIRECT, LOOPBACK_REDIRECT, long_redirect()],
            "token_endpoint_auth_method": "none",
        }));
        let confidential = world.register(json!({
            "client_name": "Fuzz Confidential",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
        }));
        world.live.client = public["client_id"].as_str().unwrap_or_default().to_owned();
        world.live.confidential = confidential["client_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        world.live.secret = confidential["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        world
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            kv: self.p.kv.borrow().clone(),
            ledgers: self
                .p
                .ledgers
                .borrow()
                .iter()
                .map(|(k, store)| (k.clone(), store.entries.borrow().clone()))
                .collect(),
            edge: self.p.edge.borrow().clone(),
            isolate: self.p.isolate.borrow().clone(),
            seed: self.p.seed.get(),
            now: self.p.now.get(),
            id_tokens: self.id_tokens.borrow().clone(),
            live: self.live.clone(),
        }
    }

    fn restore(s: &Snapshot) -> Self {
        let mut w = Self::blank();
        *w.p.kv.borrow_mut() = s.kv.clone();
        *w.p.ledgers.borrow_mut() = s
            .ledgers
            .iter()
            .map(|(k, entries)| {
                let store = crate::testing::MemoryLedgerStore::default();
                *store.entries.borrow_mut() = entries.clone();
                (k.clone(), Rc::new(store))
            })
            .collect();
        *w.p.edge.borrow_mut() = s.edge.clone();
        *w.p.isolate.borrow_mut() = s.isolate.clone();
        w.p.seed.set(s.seed);
        w.p.now.set(s.now);
        *w.id_tokens.borrow_mut() = s.id_tokens.clone();
        w.live = s.live.clone();
        w
    }

    /// [`World::login`], run once per thread and then restored from a
    /// snapshot: every run starts from the same state.
    pub fn with_tokens() -> Option<Self> {
        thread_local! {
            static SNAPSHOT: Option<Snapshot> = World::login().map(|w| w.snapshot());
        }
        SNAPSHOT.with(|s| s.as_ref().map(Self::restore))
    }

    /// The platform and its fake upstreams, nothing registered.
    fn blank() -> Self {
        let p = FakePlatform::seeded(7);
        let id_tokens = IdTokens::default();
        let served = id_tokens.clone();
        let keys = crate::testing::rsa_keys();
        p.respond_with(move |req| {
            let mut headers = Headers::new();
            headers.set("content-type", "application/json");
            let body = match req.url.as_str() {
                "https://idp.example.com/.well-known/openid-configuration" => json!({
                    "issuer": IDP,
                    "authorization_endpoint": format!("{IDP}/authorize"),
                    "token_endpoint": format!("{IDP}/token"),
                    "jwks_uri": format!("{IDP}/jwks"),
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
                "https://idp.example.com/jwks" => json!({"keys": [keys["signing"]["public"]]}),
                "https://idp.example.com/token" => {
                    let code = url::form_urlencoded::parse(&req.body)
                        .find(|(k, _)| k == "code")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    match served.borrow().get(&code) {
                        Some(t) => json!({"id_token": t, "token_type": "Bearer"}),
                        None => {
                            let body = json!({"error": "invalid_grant"}).to_string();
                            return Ok(OutboundResponse {
                                status: 400,
                                headers,
                                body: body.into_bytes(),
                            });
                        }
                    }
                }
                CIMD => json!({
                    "client_id": CIMD,
                    "client_name": "Fuzz Metadata Client",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                }),
                _ => match plausible_answer(&req.url) {
                    Some(v) => v,
                    None => {
                        return Ok(OutboundResponse {
                            status: 404,
                            headers,
                            body: Vec::new(),
                        });
                    }
                },
            };
            Ok(OutboundResponse {
                status: 200,
                headers,
                body: body.to_string().into_bytes(),
            })
        });
        Self {
            p,
            deployment: crate::config::deployment::Deployment::load(&config()),
            id_tokens,
            live: Live::default(),
        }
    }

    /// [`World::new`], then one full login (a code redeemed for an access
    /// and a refresh token), and three logins left at different steps for
    /// the cookie target: one in flight in one cookie, one in flight in
    /// two cookie parts, one at its consent page. `None` when a step no
    /// longer answers as it did (the corpus test reports that).
    pub fn login() -> Option<Self> {
        let mut w = Self::new();
        let client = w.live.client.clone();
        let first = w.start_login(&client, REDIRECT, "client-state", "upstream-code-1")?;
        let (ticket, csrf) = w.to_consent(&first)?;
        let approved = w.consent(&first.cookies.join("; "), &ticket, &csrf);
        let location = url::Url::parse(approved.headers.get("location")?).ok()?;
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")?
            .1
            .into_owned();
        let tokens = w.send(
            Method::Post,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
            ])
            .as_bytes(),
        );
        let tokens = tokens.json_body();
        w.live.code = code;
        w.live.access_token = tokens["access_token"].as_str()?.to_owned();
        w.live.refresh_token = tokens["refresh_token"].as_str()?.to_owned();
        // The logins left in flight (after the tokens, so the live values
        // above stay what they were: the world's entropy is a stream).
        w.live.login = w.start_login(&client, REDIRECT, "client-state", "upstream-code-2")?;
        let long_state = "s".repeat(LONG_STATE_LEN);
        w.live.split = w.start_login(&client, &long_redirect(), &long_state, "upstream-code-3")?;
        if w.live.login.cookies.len() != 1 || w.live.split.cookies.len() != 2 {
            return None;
        }
        // A different person, so the consent page is shown again.
        let at_consent = w.start_login_as(
            &client,
            REDIRECT,
            "client-state",
            "upstream-code-4",
            "bob@example.com",
        )?;
        let (ticket, csrf) = w.to_consent(&at_consent)?;
        w.live.consent_cookie = at_consent.cookies.join("; ");
        w.live.ticket = ticket;
        w.live.csrf = csrf;
        Some(w)
    }

    /// The browser comes back from the provider for `login`; `/callback`
    /// shows the consent page: its ticket and CSRF token.
    fn to_consent(&self, login: &InFlight) -> Option<(String, String)> {
        let query = form(&[("code", &login.code), ("state", &login.state)]);
        let page = self.send(
            Method::Get,
            &format!("/callback?{query}"),
            &[("cookie", &login.cookies.join("; "))],
            b"",
        );
        let html = String::from_utf8_lossy(&page.body).into_owned();
        Some((hidden_field(&html, "ticket")?, hidden_field(&html, "csrf")?))
    }

    /// `POST /consent` approving, from the browser holding `cookie`.
    pub fn consent(&self, cookie: &str, ticket: &str, csrf: &str) -> Response {
        let body = form(&[("ticket", ticket), ("csrf", csrf), ("decision", "approve")]);
        self.send(
            Method::Post,
            "/consent",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", BASE),
                ("cookie", cookie),
            ],
            body.as_bytes(),
        )
    }

    fn register(&self, metadata: Value) -> Value {
        let r = self.send(
            Method::Post,
            "/register",
            &[("content-type", "application/json")],
            metadata.to_string().as_bytes(),
        );
        r.json_body()
    }

    /// `GET /authorize` for `client` with `redirect` and `state`; the
    /// provider will answer `upstream_code` with an ID token for alice
    /// bound to this login's nonce.
    fn start_login(
        &self,
        client: &str,
        redirect: &str,
        state: &str,
        upstream_code: &str,
    ) -> Option<InFlight> {
        self.start_login_as(client, redirect, state, upstream_code, "alice@example.com")
    }

    fn start_login_as(
        &self,
        client: &str,
        redirect: &str,
        state: &str,
        upstream_code: &str,
        email: &str,
    ) -> Option<InFlight> {
        let query = form(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("state", state),
            ("scope", "mcp"),
            ("resource", &format!("{BASE}/internal")),
        ]);
        let r = self.send(Method::Get, &format!("/authorize?{query}"), &[], b"");
        let location = url::Url::parse(r.headers.get("location")?).ok()?;
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let cookies: Vec<String> = r
            .headers
            .get_all("set-cookie")
            .filter_map(|c| c.split(';').next())
            .map(str::to_owned)
            .collect();
        let now = i64::try_from(self.p.now().as_secs()).ok()?;
        let token = sign(
            &Header::empty().with_key_id("test-key-1"),
            &json!({
                "iss": IDP, "aud": UPSTREAM_CLIENT, "sub": format!("sub|{email}"),
                "email": email, "email_verified": true, "nonce": param("nonce")?,
                "exp": now + 300, "iat": now,
            }),
        );
        self.id_tokens
            .borrow_mut()
            .insert(upstream_code.to_owned(), token);
        (!cookies.is_empty()).then(|| InFlight {
            cookies,
            state: param("state").unwrap_or_default(),
            code: upstream_code.to_owned(),
        })
    }

    /// Sends one request through the whole worker.
    pub fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let Ok(url) = url::Url::parse(BASE).and_then(|b| b.join(target)) else {
            // A target `join` refuses never reaches the worker: the
            // runtime only delivers parsed URLs.
            return Response::new(400);
        };
        self.send_url(method, url, headers, body)
    }

    pub fn send_url(
        &self,
        method: Method,
        url: url::Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut request = Request::new(method, url);
        for (k, v) in headers {
            request.headers.append(k, *v);
        }
        request.body = body.to_vec();
        block_on(crate::handle(&self.p, &self.deployment, request))
    }

    /// Replaces the placeholders in `input` by the world's live values.
    pub fn expand(&self, input: &[u8]) -> Vec<u8> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.live.confidential, self.live.secret));
        let challenge = challenge(VERIFIER);
        let part = |i: usize| self.live.split.cookies.get(i).map_or("", String::as_str);
        let pairs: [(&[u8], &str); 16] = [
            (b"$CLIENT", &self.live.client),
            (b"$CONF", &self.live.confidential),
            (b"$SECRET", &self.live.secret),
            (b"$BASIC", &basic),
            (b"$REDIRECT", REDIRECT),
            (b"$CHALLENGE", &challenge),
            (b"$VERIFIER", VERIFIER),
            (b"$AT", &self.live.access_token),
            (b"$RT", &self.live.refresh_token),
            (b"$CODE", &self.live.code),
            (
                b"$LOGIN",
                self.live.login.cookies.first().map_or("", String::as_str),
            ),
            (b"$STATE", &self.live.login.state),
            (b"$PART0", part(0)),
            (b"$PART1", part(1)),
            (b"$CONSENT", &self.live.consent_cookie),
            (b"$CIMD", CIMD),
        ];
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        'outer: while i < input.len() {
            if input[i] == b'$' {
                for (name, value) in &pairs {
                    if input[i..].starts_with(name) {
                        out.extend_from_slice(value.as_bytes());
                        i += name.len();
                        continue 'outer;
                    }
                }
            }
            out.push(input[i]);
            i += 1;
        }
        out
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}
