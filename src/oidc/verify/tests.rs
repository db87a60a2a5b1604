//! Each verification rule, with tokens minted from fixed test keys.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_compact::alg::RsaPrivateKey;
use jwt_compact::{Claims, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/client-1";
const CLIENT: &str = "client-1";
const NOW: i64 = 1_773_576_000;

fn fixture() -> Value {
    crate::testing::rsa_keys()
}

fn private(which: &str) -> RsaPrivateKey {
    let v = fixture()[which]["private"].to_string();
    let jwk: JsonWebKey<'_> = serde_json::from_str(&v).unwrap();
    RsaPrivateKey::try_from(&jwk).unwrap()
}

fn jwks(which: &[&str]) -> KeySet {
    let f = fixture();
    let keys: Vec<Value> = which.iter().map(|w| f[*w]["public"].clone()).collect();
    KeySet::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "user-1", "email": "alice@example.com",
        "nonce": "n-1", "exp": NOW + 300, "iat": NOW - 10,
    })
}

fn mint(claims: Value, signer: &str, kid: Option<&str>) -> String {
    let header = match kid {
        Some(k) => Header::empty().with_key_id(k),
        None => Header::empty(),
    };
    Rsa::rs256()
        .token(&header, &Claims::new(claims), &private(signer))
        .unwrap()
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        audience: CLIENT,
        nonce: Some("n-1"),
        now_secs: NOW,
    }
}

fn check(token: &str) -> Result<VerifiedClaims, TokenRejected> {
    verify(token, &jwks(&["signing"]), &expected())
}

fn with(change: &[(&str, Value)]) -> Value {
    let mut c = good_claims();
    for (k, v) in change {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(*k);
        } else {
            c[*k] = v.clone();
        }
    }
    c
}

/// A token with an arbitrary header and signature bytes.
fn forged(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[test]
fn a_good_token_verifies() {
    let claims = check(&mint(good_claims(), "signing", Some("test-key-1"))).unwrap();
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.email_verified, None);
    // Without a kid, any key of the set may verify it.
    assert!(check(&mint(good_claims(), "signing", None)).is_ok());
    // Multiple audiences with azp naming us.
    let multi = with(&[("aud", json!([CLIENT, "other"])), ("azp", json!(CLIENT))]);
    assert!(check(&mint(multi, "signing", Some("test-key-1"))).is_ok());
}

#[test]
fn each_rule_rejects_its_forgery() {
    let cases: Vec<(&str, Value, TokenRejected)> = vec![
        (
            "wrong issuer",
            with(&[("iss", json!("https://evil.example"))]),
            TokenRejected::Issuer,
        ),
        (
            "issuer with trailing slash",
            with(&[("iss", json!(format!("{ISSUER}/")))]),
            TokenRejected::Issuer,
        ),
        (
            "no issuer",
            with(&[("iss", Value::Null)]),
            TokenRejected::Issuer,
        ),
        (
            "wrong audience",
            with(&[("aud", json!("someone-else"))]),
            TokenRejected::Audience,
        ),
        (
            "no audience",
            with(&[("aud", Value::Null)]),
            TokenRejected::Audience,
        ),
        (
            "several audiences, no azp",
            with(&[("aud", json!([CLIENT, "other"]))]),
            TokenRejected::AuthorizedParty,
        ),
        (
            "azp names another client",
            with(&[("azp", json!("other"))]),
            TokenRejected::AuthorizedParty,
        ),
        (
            "expired",
            with(&[("exp", json!(NOW - 61))]),
            TokenRejected::Expired,
        ),
        (
            "no exp",
            with(&[("exp", Value::Null)]),
            TokenRejected::MissingClaim("exp"),
        ),
        (
            "not yet valid",
            with(&[("nbf", json!(NOW + 120))]),
            TokenRejected::NotYetValid,
        ),
        (
            "issued in the future",
            with(&[("iat", json!(NOW + 120))]),
            TokenRejected::IssuedInTheFuture,
        ),
        (
            "no iat",
            with(&[("iat", Value::Null)]),
            TokenRejected::MissingClaim("iat"),
        ),
        (
            "wrong nonce",
            with(&[("nonce", json!("n-2"))]),
            TokenRejected::Nonce,
        ),
        (
            "no nonce",
            with(&[("nonce", Value::Null)]),
            TokenRejected::Nonce,
        ),
        (
            "no sub",
            with(&[("sub", Value::Null)]),
            TokenRejected::MissingClaim("sub"),
        ),
    ];
    for (name, claims, expected_err) in cases {
        let token = mint(claims, "signing", Some("test-key-1"));
        assert_eq!(check(&token).unwrap_err(), expected_err, "{name}");
    }
}

#[test]
fn leeway_is_small_and_symmetric() {
    assert!(
        check(&mint(
            with(&[("exp", json!(NOW - 30))]),
            "signing",
            Some("test-key-1")
        ))
        .is_ok()
    );
    assert!(
        check(&mint(
            with(&[("nbf", json!(NOW + 30))]),
            "signing",
            Some("test-key-1")
        ))
        .is_ok()
    );
    assert!(
        check(&mint(
            with(&[("iat", json!(NOW + 30))]),
            "signing",
            Some("test-key-1")
        ))
        .is_ok()
    );
}

#[test]
fn keys_and_algorithms() {
    // Signed by a key the provider does not publish, under our kid.
    let wrong_key = mint(good_claims(), "other", Some("test-key-1"));
    assert_eq!(check(&wrong_key).unwrap_err(), TokenRejected::Signature);
    // A kid we have never seen: the caller may refetch once.
    let unknown = mint(good_claims(), "other", Some("test-key-2"));
    assert_eq!(check(&unknown).unwrap_err(), TokenRejected::UnknownKey);
    assert!(verify(&unknown, &jwks(&["signing", "other"]), &expected()).is_ok());
    // alg none, HS256 keyed with the public key, RS512, PS256.
    let claims = good_claims();
    for alg in ["none", "HS256", "RS512", "PS256", "ES256"] {
        let token = forged(json!({"alg": alg, "kid": "test-key-1"}), &claims, b"sig");
        assert_eq!(
            check(&token).unwrap_err(),
            TokenRejected::Algorithm(alg.into()),
            "{alg}"
        );
    }
    // A tampered payload keeps the original signature.
    let good = mint(good_claims(), "signing", Some("test-key-1"));
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(with(&[("email", json!("mallory@example.com"))]).to_string()),
        parts[2]
    );
    assert_eq!(check(&tampered).unwrap_err(), TokenRejected::Signature);
    for junk in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        assert!(check(junk).is_err(), "{junk}");
    }
}

#[test]
fn key_sets_skip_unusable_keys() {
    let f = fixture();
    let mut enc = f["other"]["public"].clone();
    enc["use"] = json!("enc");
    let doc = json!({"keys": [f["signing"]["public"], enc, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"}]});
    let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
    assert!(set.has_kid("test-key-1") && !set.has_kid("test-key-2") && !set.has_kid("ec"));
    assert!(KeySet::parse(b"{\"nope\":1}").is_none());
    assert!(KeySet::parse(b"{\"keys\":[]}").unwrap().is_empty());
}

#[test]
fn email_verified_forms() {
    for (value, expected_flag) in [
        (json!(true), Some(true)),
        (json!(false), Some(false)),
        (json!("false"), Some(false)),
        (json!("true"), Some(true)),
    ] {
        let token = mint(
            with(&[("email_verified", value)]),
            "signing",
            Some("test-key-1"),
        );
        assert_eq!(check(&token).unwrap().email_verified, expected_flag);
    }
    let claims = check(&mint(good_claims(), "signing", Some("test-key-1"))).unwrap();
    assert!(!format!("{claims:?}").contains("alice"));
}
