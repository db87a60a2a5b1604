//! The login step of the authorization flow: from a validated
//! authorization request to the upstream provider, and back at
//! `/callback` to a verified, admitted identity bound to this browser.
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

use crate::crypto::{self, Keyring};
use crate::http::{Headers, Params, cookie};
use crate::identity::{self, Identity, Refused};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::ids::LoginId;
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::records::LoginRecord;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::{ClientId, s256};
use crate::oidc::provider::{self, Provider, ProviderError, Upstream, VerifyError};
use crate::oidc::verify::{Expected, TokenRejected};
use crate::secret::{CookieValue, LoginNonce, PkceVerifier, SetCookie};

/// How long a login may take, end to end.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// The browser-binding cookies' name prefix. `__Host-` forces Secure,
/// Path=/ and no Domain, so no subdomain can set or read them
/// (RFC 6265bis §4.1.3.2).
pub const LOGIN_COOKIE_PREFIX: &str = "__Host-pmcp_login_";

/// The cookie of one login.
pub fn login_cookie_name(login_id: &LoginId) -> String {
    let tag: String = crypto::short_hash(login_id.as_str())
        .chars()
        .take(16)
        .collect();
    format!("{LOGIN_COOKIE_PREFIX}{tag}")
}

/// A `Set-Cookie` value that deletes the named cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
const STATE_PURPOSE: &str = "login-state";

/// The signed part of `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StatePayload {
    /// Client whose ledger holds the login.
    c: ClientId,
    /// Login id.
    l: LoginId,
    /// Expiry, seconds.
    e: u64,
    /// SHA-256 of the browser cookie value.
    b: String,
}

/// Where `/authorize` sends the browser, and the cookie to set.
#[derive(Debug)]
pub struct LoginStart {
    pub location: String,
    pub set_cookie: SetCookie,
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
    /// The machine-readable code shown on the page.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::BadState => "bad_state",
            LoginError::OtherBrowser => "other_browser",
            LoginError::Replayed => "login_replayed",
            LoginError::Upstream { denied: true } => "upstream_denied",
            LoginError::Upstream { denied: false } => "upstream_error",
            LoginError::MissingCode => "missing_code",
            LoginError::Provider(_) => "provider_unavailable",
            LoginError::Token(_) => "id_token_rejected",
            LoginError::Refused(Refused::Domain) => "domain_not_allowed",
            LoginError::Refused(Refused::Unverified) => "email_unverified",
            LoginError::Refused(Refused::NoEmail) => "no_email",
            LoginError::Unavailable => "temporarily_unavailable",
        }
    }

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

fn sign_state(keys: &Keyring, payload: &StatePayload) -> Option<String> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).ok()?);
    let sig = keys.sign(STATE_PURPOSE, body.as_bytes());
    Some(format!("{body}.{sig}"))
}

fn open_state(keys: &Keyring, state: &str, now: u64) -> Option<StatePayload> {
    let (body, sig) = state.split_once('.')?;
    if !keys.verify(STATE_PURPOSE, body.as_bytes(), sig) {
        return None;
    }
    let payload: StatePayload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (now < payload.e).then_some(payload)
}

/// Starts a login: records it in the client's ledger and returns the
/// redirect to the provider (OIDC Core §3.1.2.1, with PKCE and nonce).
pub async fn begin<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: &Keyring,
    upstream: &Upstream,
    request: AuthorizationRequest,
) -> Result<LoginStart, LoginError> {
    let policy = server.fetch_policy();
    let provider = provider::discover(platform, &upstream.issuer, policy)
        .await
        .map_err(LoginError::Provider)?;
    let mint = |prefix| crypto::mint(platform, prefix).map_err(|_| LoginError::Unavailable);
    let login_id = LoginId::mint(platform).map_err(|_| LoginError::Unavailable)?;
    let verifier = PkceVerifier::new(mint("")?);
    let nonce = LoginNonce::new(mint("")?);
    let browser = CookieValue::new(mint("")?);
    let now = platform.now();
    let expires_at = now.plus(LOGIN_LIFETIME).as_secs();
    let client_id = request.client_id.clone();
    let record = LoginRecord {
        request,
        upstream_verifier: verifier.clone(),
        nonce: nonce.clone(),
        expires_at,
        used: false,
    };
    Ledger::of(platform, &client_id)
        .begin_login(login_id.clone(), record)
        .await
        .map_err(|_| LoginError::Unavailable)?;
    let cookie_name = login_cookie_name(&login_id);
    let state = sign_state(
        keys,
        &StatePayload {
            c: client_id,
            l: login_id,
            e: expires_at,
            b: cookie_hash(browser.secret()),
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
        .append_pair("redirect_uri", &server.callback_url())
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", nonce.secret())
        .append_pair("code_challenge", &s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(LoginStart {
        location: url.to_string(),
        set_cookie: SetCookie::new(format!(
            "{cookie_name}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            browser.secret(),
            LOGIN_LIFETIME.as_secs()
        )),
    })
}

/// The browser a login is bound to: its cookie.
#[derive(Clone, Debug)]
pub struct Browser {
    pub cookie_name: String,
    pub cookie_value: CookieValue,
}

/// A login that came back and passed every check: the authenticated
/// state of the flow.
#[derive(Debug)]
pub struct LoggedIn {
    pub request: AuthorizationRequest,
    pub identity: Identity,
    /// The consent step stays bound to this browser.
    pub browser: Browser,
}

/// Completes a login at `/callback`: state, browser, single use, then the
/// upstream code exchange, the ID token and the email gate, in that order.
pub async fn finish<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: &Keyring,
    upstream: &Upstream,
    params: &Params,
    headers: &Headers,
) -> Result<LoggedIn, LoginError> {
    let policy = server.fetch_policy();
    let now = platform.now().as_secs();
    let state = params
        .get("state")
        .and_then(|s| open_state(keys, s, now))
        .ok_or(LoginError::BadState)?;
    let cookie_name = login_cookie_name(&state.l);
    let cookie_value = cookie(headers, &cookie_name)
        .filter(|v| crate::secret::ct_eq(cookie_hash(v).as_bytes(), state.b.as_bytes()))
        .map(CookieValue::new)
        .ok_or(LoginError::OtherBrowser)?;
    let record = match Ledger::of(platform, &state.c).finish_login(state.l).await {
        Ok(Ok(record)) => record,
        Ok(Err(_refused)) => return Err(LoginError::Replayed),
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
    let id_token = provider::exchange_code(
        platform,
        &provider,
        &upstream.client,
        code,
        &server.callback_url(),
        &record.upstream_verifier,
        policy,
    )
    .await
    .map_err(LoginError::Provider)?;
    let expected = Expected {
        issuer: &provider.issuer,
        audience: &upstream.client.client_id,
        nonce: Some(record.nonce.secret()),
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
    let identity = identity::admit(
        email,
        claims.email_verified,
        &server.settings.allowed_email_domains,
    )
    .map_err(LoginError::Refused)?;
    Ok(LoggedIn {
        request: record.request,
        identity,
        browser: Browser {
            cookie_name,
            cookie_value,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ServerSecret;
    use crate::testing::keys;

    fn payload(e: u64) -> StatePayload {
        StatePayload {
            c: ClientId::parse("pmcp_client_A").unwrap(),
            l: LoginId::fixed("l_1"),
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
        let other = Keyring::new(
            crate::crypto::Keys::derive(&ServerSecret::new("ffffffffffffffffffffffffffffffff"))
                .unwrap(),
        );
        assert_eq!(open_state(&other, &state, 999), None, "other key");
        for junk in ["", ".", "abc", "a.b.c"] {
            assert_eq!(open_state(&k, junk, 0), None, "{junk}");
        }
    }

    #[test]
    fn each_login_has_its_own_cookie() {
        let name = login_cookie_name(&LoginId::fixed("l_1"));
        assert!(name.starts_with(LOGIN_COOKIE_PREFIX));
        assert_ne!(name, login_cookie_name(&LoginId::fixed("l_2")));
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
