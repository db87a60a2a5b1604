//! Token endpoint rules: a valid base request and one change per case.

// Case tables name a change as a boxed closure.
#![allow(clippy::type_complexity, clippy::result_large_err)]

use super::*;
use crate::config::oauth::OAuthSettings;
use crate::crypto::Keyring;
use crate::http::Method;
use crate::oauth::clients::metadata::ClientMetadata;
use crate::oauth::clients::register::register;
use crate::oauth::ids::{GrantId, UserKey};
use crate::oauth::ledger::records::{CodeRecord, Subject};
use crate::oauth::types::RedirectUri;
use crate::ports::Clock;
use crate::testing::{FakePlatform, block_on, source};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "https://app.example/cb";
const COOKIE_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A grant subject sealed as a sign-in seals it, under `keys`.
fn sealed_subject(keys: &Keyring, email: &str, p: &FakePlatform) -> Subject {
    let user_key = UserKey::legacy_of_email(email);
    let props = json!({ "email": email }).to_string();
    let sealed_props = keys
        .seal(
            p,
            props.as_bytes(),
            &format!("subject:{}", user_key.as_str()),
        )
        .unwrap();
    Subject {
        user_key,
        sealed_props,
        kind: None,
    }
}

struct World {
    p: FakePlatform,
    settings: OAuthSettings,
    client: ClientRecord,
    secret: Option<ClientSecret>,
}

fn token_request() -> crate::http::Request {
    crate::http::Request::new(
        Method::Post,
        url::Url::parse("https://mcp.example.com/token").unwrap(),
    )
}

impl World {
    fn new(method: AuthMethod) -> Self {
        let p = FakePlatform::new();
        let (client, secret) = block_on(register(
            &p,
            ClientMetadata {
                client_name: Some("App".into()),
                client_uri: None,
                redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
                auth_method: method,
            },
            p.now(),
        ))
        .unwrap();
        let w = Self {
            p,
            settings: OAuthSettings::load(&source(&[
                (names::COOKIE_SECRET, COOKIE_SECRET),
                (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
            ])),
            client,
            secret,
        };
        w.issue_code("code-1");
        w
    }

    fn server(&self) -> AuthServer<'_> {
        AuthServer::new(&self.settings, &token_request())
    }

    fn issue_code(&self, code: &str) {
        self.issue_code_for(code, "mcp");
    }

    fn issue_code_for(&self, code: &str, scope: &str) {
        let record = CodeRecord {
            sites: None,
            client_id: None,
            grant_id: GrantId::fixed(&format!("g-{code}")),
            redirect_uri: RedirectUri::parse(REDIRECT).unwrap(),
            redirect_uri_given: true,
            code_challenge: CodeChallenge::parse(CHALLENGE).unwrap(),
            scope: ScopeSet::parse(Some(scope)).unwrap(),
            resource: self.server().resource,
            subject: sealed_subject(
                self.settings.keys.as_ref().unwrap(),
                "u@example.com",
                &self.p,
            ),
            expires_at: self.p.now().as_secs() + 600,
            redeemed: false,
            issued_at: None,
            key_checked_at: None,
        };
        block_on(
            Ledger::of(&self.p, &self.client.client_id).issue_code(TokenHash::of(code), record),
        )
        .unwrap();
    }

    fn base_form(&self, code: &str) -> Vec<(String, String)> {
        let mut f = vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_verifier".into(), VERIFIER.into()),
            ("resource".into(), self.server().resource.as_str().into()),
        ];
        match self.client.auth_method {
            AuthMethod::ClientSecretPost => {
                f.push(("client_id".into(), self.client.client_id.as_str().into()));
                f.push((
                    "client_secret".into(),
                    self.secret.as_ref().unwrap().secret().into(),
                ));
            }
            AuthMethod::None => f.push(("client_id".into(), self.client.client_id.as_str().into())),
            AuthMethod::ClientSecretBasic => {}
        }
        f
    }

    fn headers(&self) -> Headers {
        let mut h = Headers::new();
        h.set("content-type", "application/x-www-form-urlencoded");
        if self.client.auth_method == AuthMethod::ClientSecretBasic {
            let raw = format!(
                "{}:{}",
                self.client.client_id.as_str(),
                self.secret.as_ref().unwrap().secret()
            );
            h.set(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            );
        }
        h
    }

    fn post(&self, headers: &Headers, form: &[(String, String)]) -> Result<Issued, TokenError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        block_on(exchange(&self.p, &self.server(), headers, body.as_bytes()))
    }

    fn exchange_with(
        &self,
        change: impl FnOnce(&mut Vec<(String, String)>, &mut Headers),
    ) -> Result<Issued, TokenError> {
        let mut form = self.base_form("code-1");
        let mut headers = self.headers();
        change(&mut form, &mut headers);
        self.post(&headers, &form)
    }
}

fn set(form: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    form.retain(|(k, _)| k != key);
    if let Some(v) = value {
        form.push((key.into(), v.into()));
    }
}

#[test]
fn each_auth_method_exchanges_a_code() {
    for method in [
        AuthMethod::None,
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretBasic,
    ] {
        let w = World::new(method);
        let issued = w
            .exchange_with(|_, _| {})
            .unwrap_or_else(|e| panic!("{method:?}: {e:?}"));
        assert!(TokenKind::AccessToken.is_kind_of(issued.access_token.secret()));
        assert!(TokenKind::RefreshToken.is_kind_of(issued.refresh_token.secret()));
        assert_eq!(issued.expires_in, 3600);
        let body = issued.response().json_body();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "mcp");
        assert_eq!(body["resource"], "https://mcp.example.com/internal");
    }
}

#[test]
fn request_errors() {
    let cases: Vec<(
        &str,
        Box<dyn FnOnce(&mut Vec<(String, String)>, &mut Headers)>,
        &str,
    )> = vec![
        (
            "json body",
            Box::new(|_, h| h.set("content-type", "application/json")),
            "invalid_request",
        ),
        (
            "no grant_type",
            Box::new(|f, _| set(f, "grant_type", None)),
            "invalid_request",
        ),
        (
            "implicit grant",
            Box::new(|f, _| set(f, "grant_type", Some("password"))),
            "unsupported_grant_type",
        ),
        (
            "client_credentials",
            Box::new(|f, _| set(f, "grant_type", Some("client_credentials"))),
            "unsupported_grant_type",
        ),
        (
            "no code",
            Box::new(|f, _| set(f, "code", None)),
            "invalid_request",
        ),
        (
            "no redirect_uri",
            Box::new(|f, _| set(f, "redirect_uri", None)),
            "invalid_grant",
        ),
        (
            "no verifier",
            Box::new(|f, _| set(f, "code_verifier", None)),
            "invalid_request",
        ),
        (
            "short verifier",
            Box::new(|f, _| set(f, "code_verifier", Some("abc"))),
            "invalid_request",
        ),
        (
            "wrong verifier",
            Box::new(|f, _| set(f, "code_verifier", Some(&"a".repeat(43)))),
            "invalid_grant",
        ),
        (
            "wrong redirect",
            Box::new(|f, _| set(f, "redirect_uri", Some("https://app.example/other"))),
            "invalid_grant",
        ),
        (
            "unknown code",
            Box::new(|f, _| set(f, "code", Some("nope"))),
            "invalid_grant",
        ),
        (
            "foreign resource",
            Box::new(|f, _| set(f, "resource", Some("https://evil.example/internal"))),
            "invalid_target",
        ),
        (
            "unknown client",
            Box::new(|f, _| set(f, "client_id", Some("pmcp_client_nope"))),
            "invalid_client",
        ),
        (
            "no client",
            Box::new(|f, _| set(f, "client_id", None)),
            "invalid_client",
        ),
        (
            "secret for a public client",
            Box::new(|f, _| set(f, "client_secret", Some("x"))),
            "invalid_client",
        ),
    ];
    for (name, change, code) in cases {
        let w = World::new(AuthMethod::None);
        let err = w.exchange_with(change).expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err:?}");
        assert_eq!(err.response().status, err.status());
    }
    let w = World::new(AuthMethod::None);
    let mut form = w.base_form("code-1");
    form.push(("code".into(), "code-1".into()));
    assert_eq!(
        w.post(&w.headers(), &form).unwrap_err().code(),
        "invalid_request"
    );
}

#[test]
fn confidential_clients_must_use_their_registered_method_and_secret() {
    let w = World::new(AuthMethod::ClientSecretBasic);
    // Right secret, but sent as client_secret_post.
    let err = w.exchange_with(|f, h| {
        *h = Headers::new();
        h.set("content-type", "application/x-www-form-urlencoded");
        f.push(("client_id".into(), w.client.client_id.as_str().into()));
        f.push((
            "client_secret".into(),
            w.secret.as_ref().unwrap().secret().into(),
        ));
    });
    assert_eq!(err.unwrap_err(), TokenError::InvalidClient { basic: false });
    // Wrong secret over Basic: 401 with a Basic challenge.
    let err = w
        .exchange_with(|_, h| {
            let raw = format!("{}:wrong", w.client.client_id.as_str());
            h.set(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            );
        })
        .unwrap_err();
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.response().headers.get("www-authenticate"),
        Some("Basic realm=\"plausible-mcp\"")
    );
    // Public auth for a confidential client.
    let err = w.exchange_with(|f, h| {
        *h = Headers::new();
        h.set("content-type", "application/x-www-form-urlencoded");
        f.push(("client_id".into(), w.client.client_id.as_str().into()));
    });
    assert_eq!(err.unwrap_err().code(), "invalid_client");
    let w = World::new(AuthMethod::ClientSecretPost);
    let err = w.exchange_with(|f, _| set(f, "client_secret", Some("pmcp_cs_wrong")));
    assert_eq!(err.unwrap_err().code(), "invalid_client");
}

#[test]
fn codes_are_single_use_and_refresh_rotates() {
    let w = World::new(AuthMethod::None);
    let first = w.exchange_with(|_, _| {}).unwrap();
    assert_eq!(
        w.exchange_with(|_, _| {}).unwrap_err().code(),
        "invalid_grant"
    );
    // The replay revoked the grant: its refresh token is dead too.
    let refresh = |token: &str| {
        let form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), token.to_owned()),
            (
                "client_id".to_owned(),
                w.client.client_id.as_str().to_owned(),
            ),
        ];
        w.post(&w.headers(), &form)
    };
    assert_eq!(
        refresh(first.refresh_token.secret()).unwrap_err().code(),
        "invalid_grant"
    );

    w.issue_code("code-2");
    let second = w.post(&w.headers(), &w.base_form("code-2")).unwrap();
    let rotated =
        refresh(second.refresh_token.secret()).unwrap_or_else(|e| panic!("{}", e.log_line()));
    assert_ne!(rotated.refresh_token, second.refresh_token);
    let again = refresh(rotated.refresh_token.secret()).unwrap();
    assert_eq!(
        refresh(second.refresh_token.secret()).unwrap_err().code(),
        "invalid_grant"
    );
    assert_eq!(
        refresh(again.refresh_token.secret()).unwrap_err().code(),
        "invalid_grant"
    );
}

#[test]
fn refresh_scope_and_other_clients() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let mut form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            issued.refresh_token.secret().to_owned(),
        ),
        (
            "client_id".to_owned(),
            w.client.client_id.as_str().to_owned(),
        ),
        ("scope".to_owned(), "admin".to_owned()),
    ];
    assert_eq!(
        w.post(&w.headers(), &form).unwrap_err().code(),
        "invalid_scope"
    );
    // Another registered client cannot use this refresh token.
    let (other, _) = block_on(register(
        &w.p,
        ClientMetadata {
            client_name: None,
            client_uri: None,
            redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
            auth_method: AuthMethod::None,
        },
        w.p.now(),
    ))
    .unwrap();
    form.pop();
    set(&mut form, "client_id", Some(other.client_id.as_str()));
    assert_eq!(
        w.post(&w.headers(), &form).unwrap_err().code(),
        "invalid_grant"
    );
    set(&mut form, "client_id", Some(w.client.client_id.as_str()));
    assert!(
        w.post(&w.headers(), &form).is_ok(),
        "still valid for its own client"
    );
}

/// RFC 6749 §6: a refresh that omits `scope` keeps the scope originally
/// granted; an empty `scope` is an omitted one, not a request for the
/// authorization default (`mcp`), which a narrow grant could not widen to.
#[test]
fn an_empty_refresh_scope_keeps_a_narrow_grant() {
    let w = World::new(AuthMethod::None);
    w.issue_code_for("narrow", "sites:read");
    let issued = w.post(&w.headers(), &w.base_form("narrow")).unwrap();
    assert_eq!(issued.response().json_body()["scope"], "sites:read");
    let mut current = issued.refresh_token;
    let cases: [(Option<&str>, Result<&str, &str>); 8] = [
        (Some(""), Ok("sites:read")),
        (Some("   "), Ok("sites:read")),
        (Some(" sites:read "), Ok("sites:read")),
        // Only SP separates (RFC 6749 §3.3): a tab is not "nothing".
        (Some("\t"), Err("invalid_scope")),
        (None, Ok("sites:read")),
        (Some("sites:read"), Ok("sites:read")),
        (Some("mcp"), Err("invalid_scope")),
        (Some("stats:read"), Err("invalid_scope")),
    ];
    for (scope, expected) in cases {
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), current.secret().to_owned()),
            (
                "client_id".to_owned(),
                w.client.client_id.as_str().to_owned(),
            ),
        ];
        set(&mut form, "scope", scope);
        match (w.post(&w.headers(), &form), expected) {
            (Ok(refreshed), Ok(granted)) => {
                assert_eq!(
                    refreshed.response().json_body()["scope"],
                    granted,
                    "{scope:?}"
                );
                current = refreshed.refresh_token;
            }
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{scope:?}"),
            (got, _) => panic!("{scope:?}: {:?}", got.map(|_| "issued")),
        }
    }
}

#[test]
fn storage_failures_are_temporary_not_500() {
    let w = World::new(AuthMethod::None);
    w.p.fail_storage.set(true);
    let err = w.exchange_with(|_, _| {}).unwrap_err();
    assert_eq!((err.code(), err.status()), ("temporarily_unavailable", 503));
    assert_eq!(err.response().headers.get("retry-after"), Some("5"));
}

#[test]
fn token_responses_never_debug_print_secrets() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let printed = format!("{issued:?}");
    assert!(!printed.contains(issued.access_token.secret()));
    assert!(!printed.contains(issued.refresh_token.secret()));
}

impl World {
    fn refresh_token(&self, token: &str) -> Result<Issued, TokenError> {
        let form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), token.to_owned()),
            (
                "client_id".to_owned(),
                self.client.client_id.as_str().to_owned(),
            ),
        ];
        self.post(&self.headers(), &form)
    }

    /// The same world under other settings (state kept), as after a
    /// redeploy with changed variables.
    fn reconfigured(mut self, pairs: &[(&str, &str)]) -> Self {
        self.settings = OAuthSettings::load(&source(pairs));
        self
    }
}

#[test]
fn a_lost_refresh_response_gets_the_identical_pair_and_an_audit_line() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let sent = w.refresh_token(issued.refresh_token.secret()).unwrap();
    let retried = w.refresh_token(issued.refresh_token.secret()).unwrap();
    assert_eq!(retried.access_token, sent.access_token);
    assert_eq!(retried.refresh_token, sent.refresh_token);
    let events: Vec<String> =
        w.p.audits
            .borrow()
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
    assert_eq!(
        events,
        ["code_redeemed", "token_refreshed", "refresh_retry"]
    );
    // No log or audit line holds a token.
    let tokens = [
        issued.access_token.secret(),
        issued.refresh_token.secret(),
        sent.refresh_token.secret(),
        sent.access_token.secret(),
    ];
    for line in w.p.logs.borrow().iter().chain(w.p.audits.borrow().iter()) {
        for t in tokens {
            assert!(!line.contains(t), "{line}");
        }
    }
}

#[test]
fn a_reused_rotated_out_refresh_token_is_audited_as_a_replay_that_revokes() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let first = w.refresh_token(issued.refresh_token.secret()).unwrap();
    // Using the new token clears the retry grace; the old one is now a replay.
    let _second = w.refresh_token(first.refresh_token.secret()).unwrap();
    assert!(w.refresh_token(issued.refresh_token.secret()).is_err());
    let lines: Vec<Value> =
        w.p.audits
            .borrow()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let replay = lines
        .iter()
        .find(|l| l["event"] == "replay_detected")
        .unwrap();
    assert_eq!(
        replay["reason"],
        "rotated-out refresh token reused; grant revoked"
    );
    let revoked = lines
        .iter()
        .find(|l| l["event"] == "grant_revoked")
        .unwrap();
    assert_eq!(revoked["by"], "replay");
    assert!(revoked["client_id"].is_string());
    // Both name the grant. This world's grants are a legacy ledger's,
    // whose user key is a bare hash of the email: no user is named (a
    // pair object's lines name it: `stored_v1_tests`).
    for line in [replay, revoked] {
        assert_eq!(line["grant"], "g-code-1", "{line}");
        assert!(line["user"].is_null(), "{line}");
    }
}

fn audit_lines(w: &World) -> Vec<Value> {
    w.p.audits
        .borrow()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn redemption_refresh_and_retry_lines_name_the_grant() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let _sent = w.refresh_token(issued.refresh_token.secret()).unwrap();
    let _retried = w.refresh_token(issued.refresh_token.secret()).unwrap();
    let lines = audit_lines(&w);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["code_redeemed", "token_refreshed", "refresh_retry"]
    );
    for line in &lines {
        assert_eq!(line["grant"], "g-code-1", "{line}");
        assert_eq!(line["client_id"], w.client.client_id.as_str(), "{line}");
    }
    // A legacy ledger's user key is a bare hash of the email: never
    // named (a pair object's refresh lines name the keyed one).
    for line in &lines {
        assert!(line["user"].is_null(), "{line}");
    }
}

#[test]
fn a_replayed_code_is_audited_with_its_grant() {
    let w = World::new(AuthMethod::None);
    w.exchange_with(|_, _| {}).unwrap();
    let err = w.exchange_with(|_, _| {}).unwrap_err();
    assert_eq!(err.code(), "invalid_grant");
    let lines = audit_lines(&w);
    let replayed: Vec<&Value> = lines.iter().skip(1).collect();
    assert_eq!(replayed.len(), 2, "{lines:?}");
    assert_eq!(replayed[0]["event"], "replay_detected");
    assert_eq!(replayed[1]["event"], "grant_revoked");
    assert_eq!(replayed[1]["by"], "replay");
    for line in replayed {
        assert_eq!(line["reason"], "code replayed; grant revoked");
        assert_eq!(line["grant"], "g-code-1", "{line}");
        assert!(
            line["user"].is_null(),
            "a legacy key is never logged: {line}"
        );
    }
}

#[test]
fn the_email_gate_and_kill_switch_lines_name_the_grant() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "other.example"),
    ]);
    w.refresh_token(issued.refresh_token.secret()).unwrap_err();
    let gate = audit_lines(&w).pop().unwrap();
    assert_eq!(gate["event"], "grant_revoked");
    assert_eq!(gate["by"], "email_gate");
    assert_eq!(gate["grant"], "g-code-1");
    assert!(gate["user"].is_null(), "a legacy key is never logged");

    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    w.p.advance(std::time::Duration::from_secs(10));
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
        (names::TOKENS_NOT_BEFORE, "2026-03-15T12:00:05Z"),
    ]);
    w.refresh_token(issued.refresh_token.secret()).unwrap_err();
    let kill = audit_lines(&w).pop().unwrap();
    assert_eq!(kill["event"], "token_refreshed");
    assert_eq!(kill["outcome"], "refused");
    assert_eq!(kill["by"], "kill_switch");
    assert_eq!(kill["reason"], "grant created before TOKENS_NOT_BEFORE");
    assert_eq!(kill["grant"], "g-code-1");
    assert!(kill["user"].is_null(), "a legacy key is never logged");
}

#[test]
fn each_refresh_applies_the_email_gate_as_configured_now() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "other.example"),
    ]);
    let refused = w.refresh_token(issued.refresh_token.secret()).unwrap_err();
    assert_eq!(refused.code(), "invalid_grant");
    // The grant ended: the domain coming back does not revive it.
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
    ]);
    assert_eq!(
        w.refresh_token(issued.refresh_token.secret())
            .unwrap_err()
            .code(),
        "invalid_grant"
    );
}

#[test]
fn a_rotated_cookie_secret_keeps_grants_with_the_previous_one_and_fails_cleanly_without() {
    let other = "fedcba9876543210fedcba9876543210";
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, other),
        (names::COOKIE_SECRET_PREVIOUS, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
    ]);
    let refreshed = w.refresh_token(issued.refresh_token.secret()).unwrap();
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, other),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
    ]);
    let err = w
        .refresh_token(refreshed.refresh_token.secret())
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("invalid_grant", 400));
}

#[test]
fn the_kill_switch_refuses_older_grants_and_a_future_value_is_a_500_naming_it() {
    let w = World::new(AuthMethod::None);
    let issued = w.exchange_with(|_, _| {}).unwrap();
    w.p.advance(std::time::Duration::from_secs(10));
    // Control: a cutoff at the grant's creation keeps it.
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
        (names::TOKENS_NOT_BEFORE, "2026-03-15T12:00:00Z"),
    ]);
    let issued = w.refresh_token(issued.refresh_token.secret()).unwrap();
    let cutoff = "2026-03-15T12:00:05Z"; // after the grant, before now
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
        (names::TOKENS_NOT_BEFORE, cutoff),
    ]);
    let err = w.refresh_token(issued.refresh_token.secret()).unwrap_err();
    assert_eq!(err.code(), "invalid_grant");
    let future = "2099-01-01T00:00:00Z";
    let w = w.reconfigured(&[
        (names::COOKIE_SECRET, COOKIE_SECRET),
        (names::ALLOWED_EMAIL_DOMAIN, "example.com"),
        (names::TOKENS_NOT_BEFORE, future),
    ]);
    let err = w.refresh_token(issued.refresh_token.secret()).unwrap_err();
    assert_eq!((err.code(), err.status()), ("server_error", 500));
    let body = String::from_utf8(err.response().body).unwrap();
    assert!(
        body.contains(names::TOKENS_NOT_BEFORE) && !body.contains("2099"),
        "{body}"
    );
}
