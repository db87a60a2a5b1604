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

// Known-answer vectors from the RFCs (test data, quoted from the specs).

/// RFC 7515 Appendix A.2: the RS256 example JWS and its RSA public key.
const RFC7515_A2_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7",
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K",
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB",
    "p0igcN_IoypGlUPQGe77Rw",
);
const RFC7515_A2_N: &str = concat!(
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx",
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs",
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH",
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV",
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8",
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
);

/// RFC 7517 Appendix A.1: the example public key set (an EC key for
/// encryption, an RSA key for RS256).
const RFC7517_A1_N: &str = concat!(
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP",
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY",
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f",
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
);

fn rfc7515_a2_keys() -> KeySet {
    KeySet::parse(
        json!({"keys": [{"kty": "RSA", "n": RFC7515_A2_N, "e": "AQAB"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn rfc7515_a2_signature_verifies_and_a_changed_bit_does_not() {
    // The example's claims are not an ID token for us (no audience), so a
    // good signature shows as the next check failing, not as Signature.
    let expected = Expected {
        issuer: "joe",
        audience: "client-1",
        nonce: None,
        now_secs: 1_300_819_000,
    };
    assert_eq!(
        verify(RFC7515_A2_JWS, &rfc7515_a2_keys(), &expected).unwrap_err(),
        TokenRejected::Audience
    );
    let (input, signature) = RFC7515_A2_JWS.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        verify(&flipped, &rfc7515_a2_keys(), &expected).unwrap_err(),
        TokenRejected::Signature
    );
    // Under another key (RFC 7517's example), the same token is refused.
    assert_eq!(
        verify(RFC7515_A2_JWS, &rfc7517_a1_keys(), &expected).unwrap_err(),
        TokenRejected::Signature
    );
}

fn rfc7517_a1_keys() -> KeySet {
    let doc = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
         "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM", "use": "enc", "kid": "1"},
        {"kty": "RSA", "n": RFC7517_A1_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"},
    ]});
    KeySet::parse(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn rfc7517_a1_key_set_keeps_only_the_rs256_key() {
    let set = rfc7517_a1_keys();
    assert!(set.has_kid("2011-04-29"));
    assert!(!set.has_kid("1"), "the EC encryption key is skipped");
}
