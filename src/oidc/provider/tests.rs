//! Discovery, key caching and rotation, and the code exchange.

use super::*;
use crate::ports::{Clock, OutboundResponse};
use crate::testing::{FakePlatform, block_on};
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;

const ISSUER: &str = "https://idp.example.com/oidc/app";
const PROD: FetchPolicy = FetchPolicy {
    allow_loopback_http: false,
};

fn fixture() -> Value {
    crate::testing::rsa_keys()
}

fn discovery() -> Value {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// A provider whose documents the test can change; counts fetches by path.
struct Idp {
    docs: Rc<RefCell<Value>>,
    hits: Rc<RefCell<Vec<String>>>,
}

fn idp(p: &FakePlatform, discovery: Value, keys: &[&str]) -> Idp {
    let f = fixture();
    let jwks = json!({"keys": keys.iter().map(|k| f[*k]["public"].clone()).collect::<Vec<_>>()});
    let docs = Rc::new(RefCell::new(json!({"discovery": discovery, "jwks": jwks})));
    let hits = Rc::new(RefCell::new(Vec::new()));
    let (d, h) = (docs.clone(), hits.clone());
    p.respond_with(move |req| {
        h.borrow_mut().push(req.url.path().to_owned());
        let body = match req.url.path() {
            "/oidc/app/.well-known/openid-configuration" => d.borrow()["discovery"].to_string(),
            "/jwks" => d.borrow()["jwks"].to_string(),
            "/token" => d.borrow()["token"].to_string(),
            _ => {
                return Ok(OutboundResponse {
                    status: 404,
                    headers: Headers::new(),
                    body: b"STUB-UPSTREAM-BODY".to_vec(),
                });
            }
        };
        Ok(OutboundResponse {
            status: 200,
            headers: Headers::new(),
            body: body.into_bytes(),
        })
    });
    Idp { docs, hits }
}

#[test]
fn discovery_is_validated_and_cached() {
    let p = FakePlatform::new();
    let idp = idp(&p, discovery(), &["signing"]);
    let provider = block_on(discover(&p, ISSUER, PROD)).unwrap();
    assert_eq!(provider.token_endpoint, "https://idp.example.com/token");
    assert!(!provider.secret_in_body);
    block_on(discover(&p, ISSUER, PROD)).unwrap();
    assert_eq!(
        idp.hits.borrow().len(),
        1,
        "second lookup served from cache"
    );
    // Cached in memory and the edge cache, never in storage.
    assert_eq!((p.storage_writes(), p.kv.borrow().len()), (0, 0));
    // A new isolate finds the edge cache's copy.
    p.isolate.borrow_mut().clear();
    block_on(discover(&p, ISSUER, PROD)).unwrap();
    assert_eq!(idp.hits.borrow().len(), 1, "served from the edge cache");
    p.advance(CACHE_LIFETIME);
    block_on(discover(&p, ISSUER, PROD)).unwrap();
    assert_eq!(
        idp.hits.borrow().len(),
        2,
        "refetched after the cache lifetime"
    );
}

#[test]
fn bad_discovery_documents() {
    let mut cases: Vec<(&str, Value)> = vec![];
    let mut d = discovery();
    d["issuer"] = json!("https://evil.example/oidc/app");
    cases.push(("issuer differs", d));
    let mut d = discovery();
    d["issuer"] = json!(format!("{ISSUER}/"));
    cases.push(("issuer with trailing slash", d));
    let mut d = discovery();
    d["id_token_signing_alg_values_supported"] = json!(["HS256"]);
    cases.push(("no RS256", d));
    let mut d = discovery();
    d["token_endpoint"] = json!("http://idp.example.com/token");
    cases.push(("plain http endpoint", d));
    let mut d = discovery();
    d["jwks_uri"] = json!("https://10.0.0.8/jwks");
    cases.push(("private address", d));
    let mut d = discovery();
    d.as_object_mut().unwrap().remove("jwks_uri");
    cases.push(("missing jwks_uri", d));
    for (name, doc) in cases {
        let p = FakePlatform::new();
        idp(&p, doc, &["signing"]);
        assert!(
            matches!(
                block_on(discover(&p, ISSUER, PROD)),
                Err(ProviderError::Invalid(_))
            ),
            "{name}"
        );
    }
    let p = FakePlatform::new();
    assert_eq!(
        block_on(discover(&p, "http://idp.example.com", PROD)),
        Err(ProviderError::Misconfigured(
            "ACCESS_ISSUER must be an https URL"
        ))
    );
    let p = FakePlatform::new();
    p.respond_with(|_| Err(OutboundError::Timeout));
    assert_eq!(
        block_on(discover(&p, ISSUER, PROD)),
        Err(ProviderError::Unreachable("timeout".into()))
    );
}

fn token(signer: &str, kid: &str, now: i64) -> String {
    let jwk: JsonWebKey<'_> =
        serde_json::from_str(&fixture()[signer]["private"].to_string()).unwrap();
    let key = RsaPrivateKey::try_from(&jwk).unwrap();
    let claims = json!({"iss": ISSUER, "aud": "c1", "sub": "s", "email": "a@example.com", "nonce": "n", "exp": now + 300, "iat": now});
    Rsa::rs256()
        .token(
            &Header::empty().with_key_id(kid),
            &Claims::new(claims),
            &key,
        )
        .unwrap()
}

fn expected(now: i64) -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        audience: "c1",
        nonce: Some("n"),
        now_secs: now,
    }
}

#[test]
fn rotated_keys_are_picked_up_with_at_most_one_refetch_a_minute() {
    let p = FakePlatform::new();
    let now = || i64::try_from(p.now().as_secs()).unwrap();
    let idp = idp(&p, discovery(), &["signing"]);
    let jwks = "https://idp.example.com/jwks";
    block_on(verify_token(
        &p,
        jwks,
        PROD,
        &token("signing", "test-key-1", now()),
        &expected(now()),
    ))
    .unwrap();
    block_on(verify_token(
        &p,
        jwks,
        PROD,
        &token("signing", "test-key-1", now()),
        &expected(now()),
    ))
    .unwrap();
    assert_eq!(idp.hits.borrow().len(), 1, "cached");
    // The provider rotates to a new key.
    let f = fixture();
    idp.docs.borrow_mut()["jwks"] = json!({"keys": [f["signing"]["public"], f["other"]["public"]]});
    let rotated = token("other", "test-key-2", now());
    // Within a minute of the last fetch: no refetch, refused.
    assert_eq!(
        block_on(verify_token(&p, jwks, PROD, &rotated, &expected(now()))),
        Err(VerifyError::Rejected(TokenRejected::UnknownKey))
    );
    assert_eq!(idp.hits.borrow().len(), 1);
    p.advance(REFETCH_INTERVAL);
    block_on(verify_token(
        &p,
        jwks,
        PROD,
        &token("other", "test-key-2", now()),
        &expected(now()),
    ))
    .unwrap();
    assert_eq!(idp.hits.borrow().len(), 2, "one refetch");
    // A flood of unknown kids right after costs nothing more.
    for _ in 0..5 {
        let bogus = token("other", "no-such-key", now());
        assert!(block_on(verify_token(&p, jwks, PROD, &bogus, &expected(now()))).is_err());
    }
    assert_eq!(idp.hits.borrow().len(), 2);
}

#[test]
fn an_expired_key_set_is_never_trusted_when_the_provider_is_down() {
    let p = FakePlatform::new();
    let now = || i64::try_from(p.now().as_secs()).unwrap();
    idp(&p, discovery(), &["signing"]);
    let jwks = "https://idp.example.com/jwks";
    block_on(verify_token(
        &p,
        jwks,
        PROD,
        &token("signing", "test-key-1", now()),
        &expected(now()),
    ))
    .unwrap();
    p.advance(CACHE_LIFETIME);
    p.respond_with(|_| Err(OutboundError::Network("down".into())));
    assert!(matches!(
        block_on(verify_token(
            &p,
            jwks,
            PROD,
            &token("signing", "test-key-1", now()),
            &expected(now())
        )),
        Err(VerifyError::Provider(ProviderError::Unreachable(_)))
    ));
}

#[test]
fn code_exchange_authenticates_as_the_provider_prefers() {
    for (methods, in_body) in [
        (json!(["client_secret_basic", "client_secret_post"]), false),
        (json!(["client_secret_post"]), true),
    ] {
        let p = FakePlatform::new();
        let mut d = discovery();
        d["token_endpoint_auth_methods_supported"] = methods;
        let idp = idp(&p, d, &["signing"]);
        idp.docs.borrow_mut()["token"] = json!({"id_token": "the.id.token", "access_token": "x"});
        let provider = block_on(discover(&p, ISSUER, PROD)).unwrap();
        assert_eq!(provider.secret_in_body, in_body);
        let client = UpstreamClient {
            client_id: "c1".into(),
            client_secret: ClientSecret::new("s3cret"),
        };
        let id_token = block_on(exchange_code(
            &p,
            &provider,
            &client,
            "code-1",
            "https://mcp.example.com/callback",
            &PkceVerifier::new("v".repeat(43)),
            PROD,
        ))
        .unwrap();
        assert_eq!(id_token, "the.id.token");
        let sent = p.sent.borrow();
        let req = sent.last().unwrap();
        let body = String::from_utf8(req.body.clone()).unwrap();
        assert!(body.contains("code_verifier=") && body.contains("grant_type=authorization_code"));
        assert_eq!(body.contains("client_secret=s3cret"), in_body);
        assert_eq!(req.headers.get("authorization").is_some(), !in_body);
        assert!(!format!("{req:?}").contains("s3cret"));
    }
}

#[test]
fn code_exchange_failures_never_carry_the_upstream_body() {
    let p = FakePlatform::new();
    idp(&p, discovery(), &["signing"]);
    let provider = block_on(discover(&p, ISSUER, PROD)).unwrap();
    p.respond_with(|_| {
        Ok(OutboundResponse {
            status: 400,
            headers: Headers::new(),
            body: b"STUB-UPSTREAM-BODY".to_vec(),
        })
    });
    let client = UpstreamClient {
        client_id: "c1".into(),
        client_secret: ClientSecret::new("s"),
    };
    let err = block_on(exchange_code(
        &p,
        &provider,
        &client,
        "c",
        "https://x/cb",
        &PkceVerifier::new("v".repeat(43)),
        PROD,
    ))
    .unwrap_err();
    assert!(!format!("{err:?}").contains("STUB-UPSTREAM-BODY"));
    p.respond_with(|_| {
        Ok(OutboundResponse {
            status: 200,
            headers: Headers::new(),
            body: b"{\"access_token\":\"x\"}".to_vec(),
        })
    });
    assert_eq!(
        block_on(exchange_code(
            &p,
            &provider,
            &client,
            "c",
            "https://x/cb",
            &PkceVerifier::new("v".repeat(43)),
            PROD
        )),
        Err(ProviderError::Invalid("the token response has no id_token"))
    );
}

/// Issue 10: forged assertions naming unknown kids, a flood of them over
/// several minutes, cost at most one key-set fetch a minute per isolate
/// and never a KV write (the set lives in isolate memory and the edge
/// cache only).
#[test]
fn a_flood_of_unknown_kids_fetches_at_most_once_a_minute_and_writes_no_kv() {
    let p = FakePlatform::new();
    let now = || i64::try_from(p.now().as_secs()).unwrap();
    let idp = idp(&p, discovery(), &["signing"]);
    let jwks = "https://idp.example.com/jwks";
    let mut minutes = 0;
    for i in 0..180u32 {
        // One forged assertion every 1.5 s, four and a half minutes.
        if i > 0 && i % 40 == 0 {
            minutes += 1;
        }
        p.advance(std::time::Duration::from_millis(1500));
        let forged = token("other", &format!("forged-{i}"), now());
        assert_eq!(
            block_on(verify_token(&p, jwks, PROD, &forged, &expected(now()))),
            Err(VerifyError::Rejected(TokenRejected::UnknownKey))
        );
    }
    let fetches = idp.hits.borrow().len();
    assert!(
        fetches <= 1 + minutes,
        "{fetches} key-set fetches in {} minutes",
        minutes + 1
    );
    assert!(fetches >= 2, "an unknown kid does refetch after a minute");
    assert_eq!(p.storage_writes(), 0, "no KV write");
}
