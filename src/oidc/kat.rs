//! Known-answer vectors for the RS256 check, run natively by `cargo test`
//! (the `rsa` crate) and inside workerd by the test build's `/__test/kat`
//! (WebCrypto), so the runtime's implementation answers exactly as the
//! native one: a valid signature passes; a changed bit, a changed
//! payload, another key, a short signature and another algorithm fail.
//! Compiled into tests and the test build only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::verify::{self, Expected, KeySet, TokenRejected};
use crate::ports::SignatureCheck;

/// RFC 7515 Appendix A.2: the RS256 example JWS and its RSA public key.
pub const RFC7515_A2_JWS: &str = concat!(
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
pub const RFC7515_A2_N: &str = concat!(
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx",
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs",
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH",
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV",
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8",
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
);

/// RFC 7517 Appendix A.1: the example set's RSA key (another key).
pub const RFC7517_A1_N: &str = concat!(
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP",
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY",
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f",
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
);

/// The public half of `tests/fixtures/rsa-test-keys.json`'s "signing"
/// key (kid `test-key-1`).
const FIXTURE_N: &str = concat!(
    "sQjrDnAQTgl45K7FmOOkces8AXgaUd2Sm650LPR3VH1zw0rQBB6eRnE1M1Hd1gCx",
    "B2r1uEnuvKDH-zdf2f_o1pihhIf0xQH5SqCvfKmAebKwojWMotorTfJTkP5KGj3D",
    "2Z1uGOY7jftrAruwj7qGtt4Bw9-z3zhTNu3X85eSsi6PWLfXZxcBGx08TRgNUsWx",
    "D-jbAuqZ3CpNEy08Q1N_aQVUFriSilIU9muCYVvze3C0l9rgpYYtZ5V9p7O5dK4y",
    "Pqmn1dERTyf_jp4foBeHuVJe5acz4byO6pnz7C4DG-VAHQz0ielTSlo1KKVnpPqf",
    "60_zQpT-8Du5dBBb8IkiaQ",
);

/// An ID token signed (with Node's `crypto`, once) by the fixture key:
/// iss `https://kat.example`, aud `kat-client`, nonce `kat-nonce`, iat
/// 1773576000, exp 300 s later.
const FIXTURE_ID_TOKEN: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ.eyJpc3MiOiJodHRwc",
    "zovL2thdC5leGFtcGxlIiwiYXVkIjoia2F0LWNsaWVudCIsInN1YiI6ImthdC11c",
    "2VyIiwiZW1haWwiOiJrYXRAZXhhbXBsZS5jb20iLCJub25jZSI6ImthdC1ub25jZ",
    "SIsImlhdCI6MTc3MzU3NjAwMCwiZXhwIjoxNzczNTc2MzAwfQ.Kyi1SqyntkjDLO",
    "AvkifqAL-MEeeL66uzSlFaL9U5PkSQjNI63YdmCUCOqRsh9yRfM-dvSoJrlrflx9",
    "o7ByGtlqLSRHg-e2CSuho5bnJa7I7XN1RMxcgVShlGUjDZGCe14k7YTMQe33FOHT",
    "h1wL2Fm2cxELr22hvbPJtKdGdjno1Yy9iUt_daUAf9YGaVS3g4jaqqfMgDyxSa3l",
    "arHr9C4WmcSkSYECQ6MFp5HbcTAkCXg27BZsU3Kpq_B8M4WW4bX1_vmi6I8pNMjK",
    "XBHQQtlfPLf8OSgckzUA3VqUe6eIb99pU6xkzI4OlyYeH0VVWo-pzkqmC_EvL9aJ",
    "txqgPA9A",
);

fn key_set(n: &str, kid: Option<&str>) -> KeySet {
    let key = json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": kid});
    KeySet::parse(json!({"keys": [key]}).to_string().as_bytes()).unwrap_or_default()
}

/// The token with its signature bytes changed by `change`.
fn resigned(token: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return String::new();
    };
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    change(&mut sig);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The token with its signature's first bit flipped.
fn flipped(token: &str) -> String {
    resigned(token, |sig| {
        if let Some(first) = sig.first_mut() {
            *first ^= 1;
        }
    })
}

/// The token under another header (its signature no longer matches,
/// but the algorithm check comes first).
fn with_alg(token: &str, alg: &str) -> String {
    let rest = token.split_once('.').map_or("", |(_, rest)| rest);
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string());
    format!("{header}.{rest}")
}

/// A vector: its name, the keys and expectations, the token, the answer.
type Case<'a> = (
    &'static str,
    &'a KeySet,
    &'a Expected<'a>,
    String,
    Result<&'static str, TokenRejected>,
);

/// Runs every vector through `crypto`; each case names what it expected
/// and what it got.
pub async fn rs256<C: SignatureCheck>(crypto: &C) -> Value {
    // RFC 7515 A.2's claims are no ID token for us (no audience): a good
    // signature shows as the audience check failing next.
    let a2 = Expected {
        issuer: "joe",
        audience: "client-1",
        nonce: None,
        now_secs: 1_300_819_000,
    };
    let fixture = Expected {
        issuer: "https://kat.example",
        audience: "kat-client",
        nonce: Some("kat-nonce"),
        now_secs: 1_773_576_100,
    };
    let a2_keys = key_set(RFC7515_A2_N, None);
    let other_keys = key_set(RFC7517_A1_N, None);
    let fixture_keys = key_set(FIXTURE_N, Some("test-key-1"));
    let impostor_keys = key_set(RFC7517_A1_N, Some("test-key-1"));
    let truncated = resigned(RFC7515_A2_JWS, |sig| {
        sig.pop();
    });
    let cases: Vec<Case<'_>> = vec![
        (
            "rfc7515-a2: valid signature",
            &a2_keys,
            &a2,
            RFC7515_A2_JWS.to_owned(),
            Err(TokenRejected::Audience),
        ),
        (
            "rfc7515-a2: tampered signature (one bit)",
            &a2_keys,
            &a2,
            flipped(RFC7515_A2_JWS),
            Err(TokenRejected::Signature),
        ),
        (
            "rfc7515-a2: signature one byte short",
            &a2_keys,
            &a2,
            truncated,
            Err(TokenRejected::Signature),
        ),
        (
            "rfc7515-a2: wrong key (rfc7517-a1)",
            &other_keys,
            &a2,
            RFC7515_A2_JWS.to_owned(),
            Err(TokenRejected::Signature),
        ),
        (
            "rfc7515-a2: wrong alg RS512",
            &a2_keys,
            &a2,
            with_alg(RFC7515_A2_JWS, "RS512"),
            Err(TokenRejected::Algorithm("RS512".into())),
        ),
        (
            "rfc7515-a2: wrong alg HS256",
            &a2_keys,
            &a2,
            with_alg(RFC7515_A2_JWS, "HS256"),
            Err(TokenRejected::Algorithm("HS256".into())),
        ),
        (
            "fixture ID token: verifies end to end",
            &fixture_keys,
            &fixture,
            FIXTURE_ID_TOKEN.to_owned(),
            Ok("kat-user"),
        ),
        (
            "fixture ID token: tampered signature",
            &fixture_keys,
            &fixture,
            flipped(FIXTURE_ID_TOKEN),
            Err(TokenRejected::Signature),
        ),
        (
            "fixture ID token: another key under its kid",
            &impostor_keys,
            &fixture,
            FIXTURE_ID_TOKEN.to_owned(),
            Err(TokenRejected::Signature),
        ),
    ];
    let mut results = Vec::new();
    let mut all = true;
    for (name, keys, expected, token, want) in cases {
        let got = verify::verify(crypto, &token, keys, expected).await;
        let got = got
            .as_ref()
            .map(|c| c.subject.as_str())
            .map_err(Clone::clone);
        let passed = got == want;
        all &= passed;
        results.push(json!({
            "name": name,
            "passed": passed,
            "expected": format!("{want:?}"),
            "got": format!("{got:?}"),
        }));
    }
    json!({"algorithm": "RS256", "passed": all, "cases": results})
}

/// Verifies the fixture ID token `times` times; answers how many passed.
pub async fn repeat<C: SignatureCheck>(crypto: &C, times: u32) -> u32 {
    let keys = key_set(FIXTURE_N, Some("test-key-1"));
    let expected = Expected {
        issuer: "https://kat.example",
        audience: "kat-client",
        nonce: Some("kat-nonce"),
        now_secs: 1_773_576_100,
    };
    let mut passed = 0;
    for _ in 0..times {
        if verify::verify(crypto, FIXTURE_ID_TOKEN, &keys, &expected)
            .await
            .is_ok()
        {
            passed += 1;
        }
    }
    passed
}

#[cfg(test)]
mod tests {
    use crate::testing::{NativeCrypto, block_on};

    #[test]
    fn every_rs256_vector_answers_as_expected_natively() {
        let report = block_on(super::rs256(&NativeCrypto));
        assert_eq!(report["passed"], true, "{report:#}");
        assert_eq!(report["cases"].as_array().map(Vec::len), Some(9));
        assert_eq!(block_on(super::repeat(&NativeCrypto, 3)), 3);
    }
}
