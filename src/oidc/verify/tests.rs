//! Each verification rule, with tokens minted from fixed test keys.

use super::*;
use crate::testing::{NativeCrypto, block_on};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
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

/// The verifier with the native RS256 check (the worker's is WebCrypto).
fn run(
    token: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<VerifiedClaims, TokenRejected> {
    block_on(verify(&NativeCrypto, token, keys, expected))
}

fn check(token: &str) -> Result<VerifiedClaims, TokenRejected> {
    run(token, &jwks(&["signing"]), &expected())
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
    assert!(run(&unknown, &jwks(&["signing", "other"]), &expected()).is_ok());
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

use crate::oidc::kat::{RFC7515_A2_JWS, RFC7515_A2_N, RFC7517_A1_N};

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
        run(RFC7515_A2_JWS, &rfc7515_a2_keys(), &expected).unwrap_err(),
        TokenRejected::Audience
    );
    let (input, signature) = RFC7515_A2_JWS.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        run(&flipped, &rfc7515_a2_keys(), &expected).unwrap_err(),
        TokenRejected::Signature
    );
    // Under another key (RFC 7517's example), the same token is refused.
    assert_eq!(
        run(RFC7515_A2_JWS, &rfc7517_a1_keys(), &expected).unwrap_err(),
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

#[test]
fn critical_extensions_are_refused() {
    // RFC 7515 §4.1.11: we understand no extension.
    let token = forged(
        json!({"alg": "RS256", "kid": "test-key-1", "crit": ["exp"], "exp": 1}),
        &good_claims(),
        b"sig",
    );
    assert_eq!(check(&token).unwrap_err(), TokenRejected::Malformed);
}

#[test]
fn a_signed_payload_that_is_not_a_claims_object_is_malformed() {
    use rsa::Pkcs1v15Sign;
    use sha2::{Digest, Sha256};
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"test-key-1"}"#);
    for payload in ["not json", "[1,2]", r#"{"exp":"tomorrow"}"#] {
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let sig = private("signing")
            .sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(input.as_bytes()),
            )
            .unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            check(&token).unwrap_err(),
            TokenRejected::Malformed,
            "{payload}"
        );
    }
}

#[test]
fn key_sets_skip_keys_too_weak_or_odd_for_rs256() {
    let b64 = |bytes: Vec<u8>| URL_SAFE_NO_PAD.encode(bytes);
    let mut modulus_2048 = vec![0xff; 256];
    modulus_2048[255] = 0xfd;
    let doc = json!({"keys": [
        // RFC 7518 §3.3: at least 2048 bits.
        {"kty": "RSA", "kid": "1024", "n": b64(vec![0xff; 128]), "e": "AQAB"},
        {"kty": "RSA", "kid": "2047", "n": b64([vec![0x7f], vec![0xff; 255]].concat()), "e": "AQAB"},
        {"kty": "RSA", "kid": "4104", "n": b64(vec![0xff; 513]), "e": "AQAB"},
        {"kty": "RSA", "kid": "even-e", "n": b64(modulus_2048.clone()), "e": "AAI"},
        {"kty": "RSA", "kid": "e-1", "n": b64(modulus_2048.clone()), "e": "AQ"},
        {"kty": "RSA", "kid": "padded", "n": format!("{}=", b64(modulus_2048.clone())), "e": "AQAB"},
        {"kty": "RSA", "kid": "no-e", "n": b64(modulus_2048.clone())},
        {"kid": "no-kty", "n": b64(modulus_2048.clone()), "e": "AQAB"},
        {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
        // Leading zero bytes do not count towards the size.
        {"kty": "RSA", "kid": "ok", "n": b64([vec![0], modulus_2048].concat()), "e": "AQAB"},
    ]});
    let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
    for kid in [
        "1024", "2047", "4104", "even-e", "e-1", "padded", "no-e", "no-kty", "oct",
    ] {
        assert!(!set.has_kid(kid), "{kid}");
    }
    assert!(set.has_kid("ok"));
}
