//! The login step of the authorization flow: from a validated
//! authorization request to the upstream provider, and back at
//! `/callback` to a verified, admitted identity bound to this browser.
//!
//! Nothing is stored before the browser comes back. The authorization
//! request, the upstream PKCE verifier and nonce, the login id and its
//! expiry (10 minutes) are sealed (AES-256-GCM under the `Keyring`, with
//! its key id, bound to the login id) into the login's own `__Host-`
//! cookie, named from its id, so two sign-ins running at once in one
//! browser do not overwrite each other. The `state` we send upstream is
//! `base64url({"l": login id, "e": expiry}).<kid>.<signature>`, an
//! HMAC-SHA256 under a key derived from `COOKIE_SECRET`: a state replayed
//! in another browser lacks the cookie that opens under its login id and
//! fails before anything is looked up. Single use is enforced after the
//! state and cookie checks, in the sharded used-state objects
//! ([`crate::oauth::used`]); a callback that fails later still spent it.
//!
//! A sealed request can exceed one cookie (a browser keeps at most 4096
//! bytes of name and value, RFC 6265 §6.1): it is split over up to
//! `MAX_COOKIE_PARTS` cookies of at most `COOKIE_PART_LEN` characters
//! (`<name>`, `<name>_1`, `<name>_2`). Everything `/authorize` accepts
//! (a client id and a redirect URI of 2048 characters each, a state of
//! 1024, a resource of 512) fits; a request sealing larger than that
//! (only reachable with characters JSON must escape) is refused at
//! `/authorize` with `request_too_large`.
//!
//! A `state` of the previous release (its payload names a client and a
//! login record in that client's ledger, and a hash of a random cookie)
//! still finishes there, once.

use crate::audit::{Event, Outcome, Record};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, Keyring};
use crate::http::{Headers, Params, cookie};
use crate::identity::{self, Identity, Refused};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::ids::LoginId;
use crate::oauth::ledger::client::Ledger;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::{ClientId, s256};
use crate::oauth::used::{self, Once};
use crate::oidc::provider::{self, Provider, ProviderError, Upstream, VerifyError};
use crate::oidc::verify::{Expected, TokenRejected};
use crate::secret::{CookieValue, LoginNonce, PkceVerifier, SetCookie};

use super::login_cookie::set_login_cookie;
pub use super::login_cookie::{
    LOGIN_LIFETIME, clear_cookie, clear_login_cookie, login_cookie_name, read_login_cookie,
};

/// What a sign-in is for. Each purpose signs its `state` and seals its
/// cookie under its own label, so a sign-in started for the connections
/// page can never finish an authorization (and yield a code), nor an
/// authorization's sign-in open a connections session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `/authorize`: the sealed cookie carries the authorization request.
    Authorize,
    /// `/connections`: the sealed cookie carries no request.
    Connections,
}

impl Purpose {
    const ALL: [Purpose; 2] = [Purpose::Authorize, Purpose::Connections];

    fn state_label(self) -> &'static str {
        match self {
            Purpose::Authorize => "login-state",
            Purpose::Connections => "connections-login-state",
        }
    }

    /// Binds a sealed login cookie to its login id and purpose.
    fn cookie_label(self) -> &'static str {
        match self {
            Purpose::Authorize => "login-cookie",
            Purpose::Connections => "connections-login-cookie",
        }
    }
}
/// The signed part of `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StatePayload {
    /// Login id.
    l: LoginId,
    /// Expiry, seconds.
    e: u64,
    /// The previous release's state: the client whose ledger holds the
    /// login record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<ClientId>,
    /// The previous release's state: SHA-256 of the browser cookie value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
}

/// What the login cookie seals: everything `/callback` needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SealedLogin {
    l: LoginId,
    e: u64,
    /// The authorization request; none for a connections sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<AuthorizationRequest>,
    v: PkceVerifier,
    n: LoginNonce,
}

fn cookie_aad(purpose: Purpose, login_id: &LoginId) -> String {
    format!("{}:{}", purpose.cookie_label(), login_id.as_str())
}

fn seal_login(
    keys: &Keyring,
    entropy: &dyn crate::ports::Entropy,
    purpose: Purpose,
    login: &SealedLogin,
) -> Option<String> {
    let json = serde_json::to_vec(login).ok()?;
    keys.seal(entropy, &json, &cookie_aad(purpose, &login.l))
        .ok()
}

fn open_login(
    keys: &Keyring,
    purpose: Purpose,
    login_id: &LoginId,
    value: &str,
) -> Option<SealedLogin> {
    let json = keys.open(value, &cookie_aad(purpose, login_id))?;
    serde_json::from_slice::<SealedLogin>(&json)
        .ok()
        .filter(|l| &l.l == login_id)
        // An authorization's cookie carries its request; a connections
        // sign-in's carries none.
        .filter(|l| l.r.is_some() == (purpose == Purpose::Authorize))
}

/// Where `/authorize` sends the browser, and the cookies to set.
#[derive(Debug)]
pub struct LoginStart {
    pub location: String,
    pub set_cookies: Vec<SetCookie>,
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
    /// The request is too large to carry through sign-in (400).
    TooLarge,
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
    /// The audit event of a failed sign-in: the email gate's refusal of
    /// a domain is its own event; everything else is a failed sign-in,
    /// its page code the reason.
    pub fn audit_record(&self) -> Record<'static> {
        match self {
            LoginError::Refused(Refused::Domain) => {
                Record::new(Event::DomainRefused, Outcome::Refused).reason(self.code())
            }
            LoginError::Refused(_)
            | LoginError::Upstream { denied: true }
            | LoginError::Token(_) => {
                Record::new(Event::SignIn, Outcome::Refused).reason(self.code())
            }
            _ => Record::new(Event::SignIn, Outcome::Failure).reason(self.code()),
        }
    }

    /// The variable a misconfiguration names.
    pub fn misconfigured(&self) -> Option<&'static str> {
        matches!(self, LoginError::Provider(ProviderError::Misconfigured(_)))
            .then_some(crate::config::names::ACCESS_ISSUER)
    }

    /// The machine-readable code shown on the page.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::BadState => "bad_state",
            LoginError::OtherBrowser => "other_browser",
            LoginError::Replayed => "login_replayed",
            LoginError::TooLarge => "request_too_large",
            LoginError::Upstream { denied: true } => "upstream_denied",
            LoginError::Upstream { denied: false } => "upstream_error",
            LoginError::MissingCode => "missing_code",
            LoginError::Provider(ProviderError::Misconfigured(_)) => "server_misconfigured",
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
            | LoginError::TooLarge
            | LoginError::MissingCode => 400,
            LoginError::Upstream { denied: true }
            | LoginError::Token(_)
            | LoginError::Refused(_) => 403,
            // Our own setting, not the provider's fault: a 500 naming it.
            LoginError::Provider(ProviderError::Misconfigured(_)) => 500,
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
            LoginError::TooLarge => {
                "This authorization request is too large to carry through sign-in: its client_id, redirect_uri, state and resource together must stay under about 8 KB."
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
            LoginError::Provider(ProviderError::Misconfigured(_)) => {
                "The server is misconfigured: ACCESS_ISSUER must be an https URL."
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

fn legacy_cookie_hash(value: &str) -> String {
    crypto::token_hash(&format!("login-cookie:{value}"))
}

fn sign_state(keys: &Keyring, purpose: Purpose, payload: &StatePayload) -> Option<String> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).ok()?);
    let sig = keys.sign(purpose.state_label(), body.as_bytes());
    Some(format!("{body}.{sig}"))
}

fn open_state(keys: &Keyring, purpose: Purpose, state: &str, now: u64) -> Option<StatePayload> {
    let (body, sig) = state.split_once('.')?;
    if !keys.verify(purpose.state_label(), body.as_bytes(), sig) {
        return None;
    }
    let payload: StatePayload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (now < payload.e).then_some(payload)
}

/// Starts a login: seals it into the browser's cookie (nothing is
/// stored) and returns the redirect to the provider (OIDC Core §3.1.2.1,
/// with PKCE and nonce).
pub async fn begin<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: &Keyring,
    upstream: &Upstream,
    request: Option<AuthorizationRequest>,
) -> Result<LoginStart, LoginError> {
    let purpose = match request {
        Some(_) => Purpose::Authorize,
        None => Purpose::Connections,
    };
    let mint = |prefix| crypto::mint(platform, prefix).map_err(|_| LoginError::Unavailable);
    let login_id = LoginId::mint(platform).map_err(|_| LoginError::Unavailable)?;
    let verifier = PkceVerifier::new(mint("")?);
    let nonce = LoginNonce::new(mint("")?);
    let expires_at = platform.now().plus(LOGIN_LIFETIME).as_secs();
    let sealed = SealedLogin {
        l: login_id.clone(),
        e: expires_at,
        r: request,
        v: verifier.clone(),
        n: nonce.clone(),
    };
    let value = seal_login(keys, platform, purpose, &sealed).ok_or(LoginError::Unavailable)?;
    let set_cookies =
        set_login_cookie(&login_cookie_name(&login_id), &value).ok_or(LoginError::TooLarge)?;
    let state = sign_state(
        keys,
        purpose,
        &StatePayload {
            l: login_id,
            e: expires_at,
            c: None,
            b: None,
        },
    )
    .ok_or(LoginError::Unavailable)?;
    let policy = server.fetch_policy();
    let provider = provider::discover(platform, &upstream.issuer, policy)
        .await
        .map_err(LoginError::Provider)?;
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
        set_cookies,
    })
}

/// What a login carries to `/callback`.
struct PendingLogin {
    request: Option<AuthorizationRequest>,
    upstream_verifier: PkceVerifier,
    nonce: LoginNonce,
}

/// A login the previous release started: its record is in the client's
/// ledger, spent there once; its cookie is a random value whose hash the
/// state carries.
async fn legacy_login<P: Platform>(
    platform: &P,
    client: &ClientId,
    login_id: &LoginId,
    hash: &str,
    headers: &Headers,
    cookie_name: &str,
) -> Result<(PendingLogin, CookieValue), LoginError> {
    let cookie_value = cookie(headers, cookie_name)
        .filter(|v| crate::secret::ct_eq(legacy_cookie_hash(v).as_bytes(), hash.as_bytes()))
        .map(CookieValue::new)
        .ok_or(LoginError::OtherBrowser)?;
    let record = match Ledger::of(platform, client)
        .finish_login(login_id.clone())
        .await
    {
        Ok(Ok(record)) => record,
        Ok(Err(_refused)) => return Err(LoginError::Replayed),
        Err(_) => return Err(LoginError::Unavailable),
    };
    Ok((
        PendingLogin {
            request: Some(record.request),
            upstream_verifier: record.upstream_verifier,
            nonce: record.nonce,
        },
        cookie_value,
    ))
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

/// A failed `/callback`. When the person was refused (the provider's
/// `access_denied`, the email gate), the state has been verified, so the
/// authorization request is known and its client can be told
/// (`access_denied`, RFC 6749 §4.1.2.1) through a link on the page.
#[derive(Debug)]
pub struct LoginFailed {
    pub error: LoginError,
    pub denied: Option<Box<AuthorizationRequest>>,
}

impl LoginFailed {
    fn denied(error: LoginError, request: AuthorizationRequest) -> Self {
        Self {
            error,
            denied: Some(Box::new(request)),
        }
    }
}

impl From<LoginError> for LoginFailed {
    fn from(error: LoginError) -> Self {
        Self {
            error,
            denied: None,
        }
    }
}

/// A sign-in that came back and passed every check, for what it was
/// started for.
#[derive(Debug)]
pub enum SignedIn {
    /// The authorization continues to consent.
    Authorize(Box<LoggedIn>),
    /// The connections page opens a session.
    Connections {
        identity: Identity,
        browser: Browser,
    },
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
) -> Result<SignedIn, LoginFailed> {
    let policy = server.fetch_policy();
    let now = platform.now().as_secs();
    let (state, purpose) = params
        .get("state")
        .and_then(|s| {
            Purpose::ALL
                .into_iter()
                .find_map(|p| open_state(keys, p, s, now).map(|st| (st, p)))
        })
        .ok_or(LoginError::BadState)?;
    let cookie_name = login_cookie_name(&state.l);
    let (record, cookie_value) = match (&state.c, &state.b) {
        // Only an authorization's state was ever of the previous release.
        (Some(client), Some(hash)) if purpose == Purpose::Authorize => {
            legacy_login(platform, client, &state.l, hash, headers, &cookie_name).await?
        }
        _ => {
            let value = read_login_cookie(headers, &cookie_name).ok_or(LoginError::OtherBrowser)?;
            let sealed =
                open_login(keys, purpose, &state.l, &value).ok_or(LoginError::OtherBrowser)?;
            if now >= sealed.e {
                return Err(LoginError::BadState.into());
            }
            // Spent here, after every check a stranger could fail, and
            // before anything that can fail later: a refused callback
            // cannot be retried.
            match used::spend(platform, &Once::Login(&state.l), sealed.e).await {
                Ok(true) => {}
                Ok(false) => return Err(LoginError::Replayed.into()),
                Err(_) => return Err(LoginError::Unavailable.into()),
            }
            let record = PendingLogin {
                request: sealed.r,
                upstream_verifier: sealed.v,
                nonce: sealed.n,
            };
            (record, CookieValue::new(value))
        }
    };
    if let Some(error) = params.get("error") {
        let upstream = LoginError::Upstream {
            denied: error == "access_denied",
        };
        return Err(match record.request {
            Some(request) if error == "access_denied" => LoginFailed::denied(upstream, request),
            _ => upstream.into(),
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
    let admitted = claims
        .email
        .as_deref()
        .ok_or(Refused::NoEmail)
        .and_then(|email| {
            identity::admit(
                email,
                claims.email_verified,
                &server.settings.allowed_email_domains,
            )
        });
    let identity = match admitted {
        Ok(identity) => identity,
        // An authorization's client is told through the page's link; a
        // connections sign-in has no client to tell.
        Err(refused) => {
            return Err(match record.request {
                Some(request) => LoginFailed::denied(LoginError::Refused(refused), request),
                None => LoginError::Refused(refused).into(),
            });
        }
    };
    let browser = Browser {
        cookie_name,
        cookie_value,
    };
    Ok(match record.request {
        Some(request) => SignedIn::Authorize(Box::new(LoggedIn {
            request,
            identity,
            browser,
        })),
        None => SignedIn::Connections { identity, browser },
    })
}

#[cfg(test)]
mod tests {
    use super::super::login_cookie::{COOKIE_PART_LEN, LOGIN_COOKIE_PREFIX, MAX_COOKIE_PARTS};
    use super::*;
    use crate::secret::ServerSecret;
    use crate::testing::keys;

    fn payload(e: u64) -> StatePayload {
        StatePayload {
            l: LoginId::fixed("l_1"),
            e,
            c: None,
            b: None,
        }
    }

    #[test]
    fn state_is_signed_and_expires() {
        let k = keys();
        let state = sign_state(&k, Purpose::Authorize, &payload(1000)).unwrap();
        assert_eq!(
            open_state(&k, Purpose::Authorize, &state, 999),
            Some(payload(1000))
        );
        assert_eq!(
            open_state(&k, Purpose::Authorize, &state, 1000),
            None,
            "expired"
        );
        let (body, sig) = state.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload(9_999_999)).unwrap());
        assert_eq!(
            open_state(&k, Purpose::Authorize, &format!("{forged_body}.{sig}"), 999),
            None,
            "tampered payload"
        );
        assert_eq!(
            open_state(&k, Purpose::Authorize, &format!("{body}.AAAA"), 999),
            None,
            "bad signature"
        );
        let other = Keyring::new(
            crate::crypto::Keys::derive(&ServerSecret::new("ffffffffffffffffffffffffffffffff"))
                .unwrap(),
        );
        assert_eq!(
            open_state(&other, Purpose::Authorize, &state, 999),
            None,
            "other key"
        );
        for junk in ["", ".", "abc", "a.b.c"] {
            assert_eq!(open_state(&k, Purpose::Authorize, junk, 0), None, "{junk}");
        }
    }

    fn sealed(client: &str, redirect: &str, state: &str) -> SealedLogin {
        use crate::oauth::types::{CodeChallenge, RedirectUri, ScopeSet, State};
        SealedLogin {
            l: LoginId::fixed("l_0123456789012345678901234567890123456789012"),
            e: 1000,
            r: Some(AuthorizationRequest {
                client_id: ClientId::parse(client).unwrap(),
                redirect_uri: RedirectUri::parse(redirect).unwrap(),
                redirect_uri_given: true,
                state: State::parse(state),
                scope: ScopeSet::parse(None).unwrap(),
                code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                    .unwrap(),
                resource: crate::testing::resource(&format!(
                    "https://{}.example/internal",
                    "m".repeat(480)
                )),
            }),
            v: PkceVerifier::new("v".repeat(43)),
            n: LoginNonce::new("n".repeat(43)),
        }
    }

    #[test]
    fn the_largest_accepted_request_fits_in_parted_cookies_and_reads_back() {
        let k = keys();
        let p = crate::testing::FakePlatform::new();
        let client = format!("https://c.example/{}", "c".repeat(2048 - 18));
        let redirect = format!("https://r.example/{}", "r".repeat(2048 - 18));
        // JSON escapes a quote: 2 bytes each.
        let login = sealed(&client, &redirect, &"\"".repeat(1024));
        let value = seal_login(&k, &p, Purpose::Authorize, &login).unwrap();
        let name = login_cookie_name(&login.l);
        let set = set_login_cookie(&name, &value).expect("fits");
        assert_eq!(set.len(), MAX_COOKIE_PARTS);
        let mut jar = Headers::new();
        let mut pairs = Vec::new();
        for c in &set {
            let pair = c.secret().split(';').next().unwrap().to_owned();
            assert!(pair.len() <= 4096, "{}", pair.len());
            pairs.push(pair);
        }
        jar.append("cookie", pairs.join("; "));
        let read = read_login_cookie(&jar, &name).unwrap();
        assert_eq!(read, value);
        assert_eq!(
            open_login(&k, Purpose::Authorize, &login.l, &read),
            Some(login.clone())
        );
        // Bound to its login id.
        assert_eq!(
            open_login(&k, Purpose::Authorize, &LoginId::fixed("l_other"), &read),
            None
        );
        // A part missing: does not open.
        let mut partial = Headers::new();
        partial.append("cookie", pairs[..2].join("; "));
        let short = read_login_cookie(&partial, &name).unwrap();
        assert_eq!(open_login(&k, Purpose::Authorize, &login.l, &short), None);
        assert_eq!(clear_login_cookie(&name).len(), MAX_COOKIE_PARTS);
    }

    #[test]
    fn a_request_sealing_larger_than_three_parts_is_refused() {
        let k = keys();
        let p = crate::testing::FakePlatform::new();
        let client = format!("https://c.example/{}", "c".repeat(2048 - 18));
        let redirect = format!("https://r.example/{}", "r".repeat(2048 - 18));
        // Control characters escape to six bytes each in JSON.
        let login = sealed(&client, &redirect, &"\u{1}".repeat(1024));
        let value = seal_login(&k, &p, Purpose::Authorize, &login).unwrap();
        assert!(value.len() > MAX_COOKIE_PARTS * COOKIE_PART_LEN);
        assert!(set_login_cookie("n", &value).is_none());
        // A small request takes one cookie.
        let small = sealed("pmcp_client_A", "https://app.example/cb", "s");
        let value = seal_login(&k, &p, Purpose::Authorize, &small).unwrap();
        assert_eq!(set_login_cookie("n", &value).unwrap().len(), 1);
        assert_eq!(LoginError::TooLarge.status(), 400);
        assert_eq!(LoginError::TooLarge.code(), "request_too_large");
    }

    #[test]
    fn a_sign_in_cannot_change_its_purpose() {
        let k = keys();
        let p = crate::testing::FakePlatform::new();
        let state = sign_state(&k, Purpose::Connections, &payload(1000)).unwrap();
        assert_eq!(
            open_state(&k, Purpose::Connections, &state, 999),
            Some(payload(1000))
        );
        assert_eq!(open_state(&k, Purpose::Authorize, &state, 999), None);
        let authorize = sealed("pmcp_client_A", "https://app.example/cb", "s");
        let value = seal_login(&k, &p, Purpose::Authorize, &authorize).unwrap();
        assert_eq!(
            open_login(&k, Purpose::Connections, &authorize.l, &value),
            None
        );
        let mut connections = authorize.clone();
        connections.r = None;
        let value = seal_login(&k, &p, Purpose::Connections, &connections).unwrap();
        assert_eq!(
            open_login(&k, Purpose::Connections, &connections.l, &value),
            Some(connections.clone())
        );
        assert_eq!(
            open_login(&k, Purpose::Authorize, &connections.l, &value),
            None
        );
        // A cookie sealed for one purpose with the other's contents opens
        // for neither.
        let value = seal_login(&k, &p, Purpose::Connections, &authorize).unwrap();
        assert_eq!(
            open_login(&k, Purpose::Connections, &authorize.l, &value),
            None
        );
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
