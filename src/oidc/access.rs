//! Cloudflare Access in front of the worker ("Managed OAuth"): Access
//! signs an application token and passes it in `Cf-Access-Jwt-Assertion`.
//! We verify it with the same verifier as ID tokens: RS256 from the
//! team's certs (`<team>/cdn-cgi/access/certs`), `iss` = the team domain,
//! `aud` containing the application's AUD tag; then the email gate.

use super::provider::{self, VerifyError};
use super::verify::Expected;
use crate::identity::{self, Identity};
use crate::ports::{Outbound, SignatureCheck};
use crate::ssrf_guard::FetchPolicy;

pub const ASSERTION_HEADER: &str = "cf-access-jwt-assertion";

/// `CF_ACCESS_TEAM_DOMAIN` and `CF_ACCESS_AUD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessApp {
    /// `https://<team>.cloudflareaccess.com`, no trailing slash.
    pub team_domain: String,
    pub aud: String,
}

/// Why an assertion was refused (403: the caller passed Access but is
/// not someone we admit, or the header is not genuine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssertionRefused {
    Verify(VerifyError),
    Identity(identity::Refused),
}

pub async fn verify<P: Outbound + crate::doc_cache::DocumentCache + SignatureCheck>(
    platform: &P,
    app: &AccessApp,
    assertion: &str,
    allowed_domains: &[String],
) -> Result<Identity, AssertionRefused> {
    let certs = format!("{}/cdn-cgi/access/certs", app.team_domain);
    let expected = Expected {
        issuer: &app.team_domain,
        audience: &app.aud,
        nonce: None,
        now_secs: i64::try_from(platform.now().as_secs()).unwrap_or(i64::MAX),
    };
    let claims = provider::verify_token(
        platform,
        &certs,
        FetchPolicy::default(),
        assertion,
        &expected,
    )
    .await
    .map_err(AssertionRefused::Verify)?;
    let email = claims
        .email
        .as_deref()
        .ok_or(AssertionRefused::Identity(identity::Refused::NoEmail))?;
    identity::admit(email, claims.email_verified, allowed_domains)
        .map_err(AssertionRefused::Identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::oidc::verify::TokenRejected;
    use crate::ports::{Clock, OutboundResponse};
    use crate::testing::{FakePlatform, block_on};
    use jwt_compact::alg::{Rsa, RsaPrivateKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{AlgorithmExt, Claims, Header};
    use serde_json::{Value, json};

    const TEAM: &str = "https://team.cloudflareaccess.com";

    fn fixture() -> Value {
        crate::testing::rsa_keys()
    }

    fn assertion(claims: Value, signer: &str) -> String {
        let jwk: JsonWebKey<'_> =
            serde_json::from_str(&fixture()[signer]["private"].to_string()).unwrap();
        let key = RsaPrivateKey::try_from(&jwk).unwrap();
        Rsa::rs256()
            .token(
                &Header::empty().with_key_id("test-key-1"),
                &Claims::new(claims),
                &key,
            )
            .unwrap()
    }

    fn platform() -> FakePlatform {
        let p = FakePlatform::new();
        let certs = json!({"keys": [fixture()["signing"]["public"]], "public_cert": {"kid": "test-key-1", "cert": "-----BEGIN CERTIFICATE-----"}});
        p.respond_with(move |req| {
            assert_eq!(
                req.url.as_str(),
                "https://team.cloudflareaccess.com/cdn-cgi/access/certs"
            );
            Ok(OutboundResponse {
                status: 200,
                headers: Headers::new(),
                body: certs.to_string().into_bytes(),
            })
        });
        p
    }

    fn claims(p: &FakePlatform) -> Value {
        let now = i64::try_from(p.now().as_secs()).unwrap();
        json!({"iss": TEAM, "aud": ["aud-tag"], "sub": "s", "email": "Alice@Example.com", "exp": now + 600, "iat": now, "type": "app"})
    }

    fn app() -> AccessApp {
        AccessApp {
            team_domain: TEAM.into(),
            aud: "aud-tag".into(),
        }
    }

    #[test]
    fn a_genuine_assertion_admits_the_user() {
        let p = platform();
        let token = assertion(claims(&p), "signing");
        let identity = block_on(verify(&p, &app(), &token, &["example.com".into()])).unwrap();
        assert_eq!(identity.email(), "alice@example.com");
    }

    #[test]
    fn forged_or_foreign_assertions_are_refused() {
        let p = platform();
        let domains = vec!["example.com".to_owned()];
        let mut other_aud = claims(&p);
        other_aud["aud"] = json!(["another-app"]);
        let mut other_team = claims(&p);
        other_team["iss"] = json!("https://evil.cloudflareaccess.com");
        let mut outsider = claims(&p);
        outsider["email"] = json!("mallory@evil.example");
        let cases = [
            (
                assertion(other_aud, "signing"),
                AssertionRefused::Verify(VerifyError::Rejected(TokenRejected::Audience)),
            ),
            (
                assertion(other_team, "signing"),
                AssertionRefused::Verify(VerifyError::Rejected(TokenRejected::Issuer)),
            ),
            (
                assertion(claims(&p), "other"),
                AssertionRefused::Verify(VerifyError::Rejected(TokenRejected::Signature)),
            ),
            (
                assertion(outsider, "signing"),
                AssertionRefused::Identity(identity::Refused::Domain),
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(
                block_on(verify(&p, &app(), &token, &domains)).unwrap_err(),
                expected
            );
        }
    }
}
