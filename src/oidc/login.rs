//! The upstream login: from a validated authorization request to the
//! provider, and back at `/callback` to a verified, admitted identity.
//!
//! The `state` we send upstream is `base64url(payload).signature`, an
//! HMAC-SHA256 under a key derived from `COOKIE_SECRET`. The payload names
//! the login record (kept in the client's ledger, consumed once), its
//! expiry (10 minutes), and a hash of a random value set in a
//! `__Host-` cookie: a state link replayed in another browser lacks the
//! cookie and fails before anything is looked up. Each login has its own
//! cookie (named from its id), so two sign-ins running at once in one
//! browser do not overwrite each other.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::provider::{self, Provider, ProviderError, UpstreamClient, VerifyError};
use super::verify::{Expected, TokenRejected};
use crate::crypto::{self, Keys};
use crate::http::Headers;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::identity::{self, Identity, Refused};
use crate::oauth::ledger::{LedgerOp, LedgerReply, LoginRecord};
use crate::oauth::target::FetchPolicy;
use crate::oauth::types::{ClientId, s256};
use crate::ports::Platform;
use crate::secret::PkceVerifier;

/// How long a login may take, end to end.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// The browser-binding cookies' name prefix. `__Host-` forces Secure,
/// Path=/ and no Domain, so no subdomain can set or read them
/// (RFC 6265bis §4.1.3.2).
pub const LOGIN_COOKIE_PREFIX: &str = "__Host-pmcp_login_";

/// The cookie of one login.
pub fn login_cookie_name(login_id: &str) -> String {
    let tag: String = crypto::short_hash(login_id).chars().take(16).collect();
    format!("{LOGIN_COOKIE_PREFIX}{tag}")
}

/// A `Set-Cookie` value that deletes the named cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
const STATE_PURPOSE: &str = "login-state";

/// The upstream configuration: issuer and our client there.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub issuer: String,
    pub client: UpstreamClient,
}

/// The signed part of `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StatePayload {
    /// Client whose ledger holds the login.
    c: ClientId,
    /// Login id.
    l: String,
    /// Expiry, seconds.
    e: u64,
    /// SHA-256 of the browser cookie value.
    b: String,
}

/// Where `/authorize` sends the browser, and the cookie to set.
#[derive(Debug)]
pub struct LoginStart {
    pub location: String,
    pub set_cookie: String,
}

/// Why a login could not complete. Each is shown as a page with its
/// status; none stores anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Missing, tampered or expired state (400).
    BadState,
    /// The state was started in another browser (400).
    OtherBrowser,
    /// The state was already used (400).
    Replayed,
    /// The provider reported an error, e.g. the user cancelled (403 for
    /// `access_denied`, else 502).
    Upstream { denied: bool },
    /// The callback has no code (400).
    MissingCode,
    /// The provider could not be reached or answered wrongly (502).
    Provider(ProviderError),
    /// The ID token failed verification (403).
    Token(TokenRejected),
    /// The person is not admitted (403).
    Refused(Refused),
    /// Our storage failed (503).
    Unavailable,
}

impl LoginError {
    pub fn status(&self) -> u16 {
        match self {
            LoginError::BadState
            | LoginError::OtherBrowser
            | LoginError::Replayed
            | LoginError::MissingCode => 400,
            LoginError::Upstream { denied: true }
            | LoginError::Token(_)
            | LoginError::Refused(_) => 403,
            LoginError::Upstream { denied: false } | LoginError::Provider(_) => 502,
            LoginError::Unavailable => 503,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            LoginError::BadState => {
                "This sign-in link is invalid or has expired. Start connecting again from your application."
            }
            LoginError::OtherBrowser => {
                "This sign-in was started in a different browser. Finish it in the browser where you started, or start again here."
            }
            LoginError::Replayed => {
                "This sign-in link was already used. Start connecting again from your application."
            }
            LoginError::Upstream { denied: true } => {
                "Sign-in was cancelled or refused at the identity provider."
            }
            LoginError::Upstream { denied: false } => {
                "The identity provider reported an error. Try again later."
            }
            LoginError::MissingCode => {
                "The identity provider did not return an authorization code."
            }
            LoginError::Provider(_) => {
                "The identity provider could not be reached or gave an unexpected answer. Try again later."
            }
            LoginError::Token(_) => "Your sign-in could not be verified.",
            LoginError::Refused(Refused::Domain) => {
                "Your account is not allowed to use this server: only people from the organisation's email domains may connect."
            }
            LoginError::Refused(Refused::Unverified) => {
                "Your email address is not verified with the identity provider."
            }
            LoginError::Refused(Refused::NoEmail) => {
                "The identity provider did not share an email address."
            }
            LoginError::Unavailable => {
                "The server could not complete the sign-in. Try again shortly."
            }
        }
    }
}

fn cookie_hash(value: &str) -> String {
    crypto::token_hash(&format!("login-cookie:{value}"))
}

fn sign_state(keys: &Keys, payload: &StatePayload) -> Option<String> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).ok()?);
    let sig = keys.sign(STATE_PURPOSE, body.as_bytes());
    Some(format!("{body}.{sig}"))
}

fn open_state(keys: &Keys, state: &str, now: u64) -> Option<StatePayload> {
    let (body, sig) = state.split_once('.')?;
    if !keys.verify(STATE_PURPOSE, body.as_bytes(), sig) {
        return None;
    }
    let payload: StatePayload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (now < payload.e).then_some(payload)
}

/// The value of a cookie in the request, if present once.
pub fn cookie<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// Starts a login: records it in the client's ledger and returns the
/// redirect to the provider (OIDC Core §3.1.2.1, with PKCE and nonce).
pub async fn begin<P: Platform>(
    platform: &P,
    keys: &Keys,
    upstream: &Upstream,
    policy: FetchPolicy,
    callback: &str,
    request: AuthorizationRequest,
) -> Result<LoginStart, LoginError> {
    let provider = provider::discover(platform, &upstream.issuer, policy)
        .await
        .map_err(LoginError::Provider)?;
    let mint = |prefix| crypto::mint(platform, prefix).map_err(|_| LoginError::Unavailable);
    let login_id = mint("l_")?;
    let verifier = PkceVerifier::new(mint("")?);
    let nonce = mint("")?;
    let browser = mint("")?;
    let now = platform.now();
    let expires_at = now.plus(LOGIN_LIFETIME).as_secs();
    let client_id = request.client_id.clone();
    let record = LoginRecord {
        request,
        upstream_verifier: verifier.secret().to_owned(),
        nonce: nonce.clone(),
        expires_at,
        used: false,
    };
    let reply = platform
        .ledger(
            &client_id,
            LedgerOp::BeginLogin {
                login_id: login_id.clone(),
                record,
            },
        )
        .await
        .map_err(|_| LoginError::Unavailable)?;
    if reply != LedgerReply::Done {
        return Err(LoginError::Unavailable);
    }
    let cookie_name = login_cookie_name(&login_id);
    let state = sign_state(
        keys,
        &StatePayload {
            c: client_id,
            l: login_id,
            e: expires_at,
            b: cookie_hash(&browser),
        },
    )
    .ok_or(LoginError::Unavailable)?;
    let mut url = url::Url::parse(&provider.authorization_endpoint).map_err(|_| {
        LoginError::Provider(ProviderError::Invalid(
            "the authorization endpoint is not a URL",
        ))
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &upstream.client.client_id)
        .append_pair("redirect_uri", callback)
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(LoginStart {
        location: url.to_string(),
        set_cookie: format!(
            "{cookie_name}={browser}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            LOGIN_LIFETIME.as_secs()
        ),
    })
}

/// A login that came back and passed every check.
#[derive(Debug)]
pub struct Finished {
    pub request: AuthorizationRequest,
    pub identity: Identity,
    /// This login's browser cookie, which the consent step stays bound to.
    pub cookie_name: String,
    pub cookie_value: String,
}

/// Completes a login at `/callback`: state, browser, single use, then the
/// upstream code exchange, the ID token and the email gate, in that order.
#[allow(clippy::too_many_arguments)]
pub async fn finish<P: Platform>(
    platform: &P,
    keys: &Keys,
    upstream: &Upstream,
    policy: FetchPolicy,
    callback: &str,
    allowed_domains: &[String],
    params: &std::collections::HashMap<String, String>,
    headers: &Headers,
) -> Result<Finished, LoginError> {
    let now = platform.now().as_secs();
    let state = params
        .get("state")
        .and_then(|s| open_state(keys, s, now))
        .ok_or(LoginError::BadState)?;
    let cookie_name = login_cookie_name(&state.l);
    let cookie_value = cookie(headers, &cookie_name)
        .filter(|v| crate::secret::ct_eq(cookie_hash(v).as_bytes(), state.b.as_bytes()))
        .ok_or(LoginError::OtherBrowser)?
        .to_owned();
    let record = match platform
        .ledger(&state.c, LedgerOp::FinishLogin { login_id: state.l })
        .await
    {
        Ok(LedgerReply::Login { record }) => record,
        Ok(_) => return Err(LoginError::Replayed),
        Err(_) => return Err(LoginError::Unavailable),
    };
    if let Some(error) = params.get("error") {
        return Err(LoginError::Upstream {
            denied: error == "access_denied",
        });
    }
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or(LoginError::MissingCode)?;
    let provider: Provider = provider::discover(platform, &upstream.issuer, policy)
        .await
        .map_err(LoginError::Provider)?;
    let verifier = PkceVerifier::new(record.upstream_verifier.clone());
    let id_token = provider::exchange_code(
        platform,
        &provider,
        &upstream.client,
        code,
        callback,
        &verifier,
        policy,
    )
    .await
    .map_err(LoginError::Provider)?;
    let expected = Expected {
        issuer: &provider.issuer,
        audience: &upstream.client.client_id,
        nonce: Some(&record.nonce),
        now_secs: i64::try_from(now).unwrap_or(i64::MAX),
    };
    let claims = provider::verify_token(platform, &provider.jwks_uri, policy, &id_token, &expected)
        .await
        .map_err(|e| match e {
            VerifyError::Provider(p) => LoginError::Provider(p),
            VerifyError::Rejected(r) => LoginError::Token(r),
        })?;
    let email = claims
        .email
        .as_deref()
        .ok_or(LoginError::Refused(Refused::NoEmail))?;
    let identity = identity::admit(email, claims.email_verified, allowed_domains)
        .map_err(LoginError::Refused)?;
    Ok(Finished {
        request: record.request.clone(),
        identity,
        cookie_name,
        cookie_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ServerSecret;

    fn keys() -> Keys {
        Keys::derive(&ServerSecret::new("0123456789abcdef0123456789abcdef")).unwrap()
    }

    fn payload(e: u64) -> StatePayload {
        StatePayload {
            c: ClientId::parse("pmcp_client_A").unwrap(),
            l: "l_1".into(),
            e,
            b: cookie_hash("browser-1"),
        }
    }

    #[test]
    fn state_is_signed_and_expires() {
        let k = keys();
        let state = sign_state(&k, &payload(1000)).unwrap();
        assert_eq!(open_state(&k, &state, 999), Some(payload(1000)));
        assert_eq!(open_state(&k, &state, 1000), None, "expired");
        let (body, sig) = state.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload(9_999_999)).unwrap());
        assert_eq!(
            open_state(&k, &format!("{forged_body}.{sig}"), 999),
            None,
            "tampered payload"
        );
        assert_eq!(
            open_state(&k, &format!("{body}.AAAA"), 999),
            None,
            "bad signature"
        );
        let other = Keys::derive(&ServerSecret::new("ffffffffffffffffffffffffffffffff")).unwrap();
        assert_eq!(open_state(&other, &state, 999), None, "other key");
        for junk in ["", ".", "abc", "a.b.c"] {
            assert_eq!(open_state(&k, junk, 0), None, "{junk}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let name = login_cookie_name("l_1");
        assert!(name.starts_with(LOGIN_COOKIE_PREFIX));
        assert_ne!(name, login_cookie_name("l_2"));
        let mut h = Headers::new();
        h.append("cookie", format!("a=1; {name}=xyz; {name}x=no"));
        assert_eq!(cookie(&h, &name), Some("xyz"));
        assert_eq!(cookie(&h, "missing"), None);
        let mut h = Headers::new();
        h.append("cookie", format!("x{name}=evil"));
        assert_eq!(cookie(&h, &name), None);
    }

    #[test]
    fn error_statuses() {
        assert_eq!(LoginError::BadState.status(), 400);
        assert_eq!(LoginError::Upstream { denied: true }.status(), 403);
        assert_eq!(LoginError::Upstream { denied: false }.status(), 502);
        assert_eq!(
            LoginError::Provider(ProviderError::Unreachable("x".into())).status(),
            502
        );
        assert_eq!(LoginError::Token(TokenRejected::Nonce).status(), 403);
        assert_eq!(LoginError::Refused(Refused::Domain).status(), 403);
    }
}
