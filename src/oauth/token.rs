//! The token endpoint (RFC 6749 §3.2) and client authentication
//! (RFC 6749 §2.3), also used by revocation (RFC 7009).

use self::audit::{AuditedUsers, audit_refusal, of_grant};
use self::readmit::{Ended, holder_ends};
use self::retry::{open_pair, seal_pair};
use base64::Engine;

use crate::audit::{Event, Outcome, Record};
use serde_json::{Value, json};

use super::clients::record::{AuthMethod, ClientRecord};
use super::clients::registry::{self, LookupError};
use super::connections::block::blocked_since;
use super::ids::{RoutingId, TokenHash, TokenKind};
use super::ledger::client::Ledger;
use super::ledger::protocol::{Issued as LedgerIssued, NewTokens, RedeemCode, Refresh, Refusal};
use super::routing::{Located, Unroutable, locate};
use super::server::{AuthServer, Platform};
use super::types::{
    Audience, ClientId, CodeChallenge, Resource, ScopeError, ScopeSet, is_valid_verifier, s256,
};
use crate::config::names;
use crate::config::oauth::NotBeforeMisconfigured;
use crate::crypto::UserKeys;
use crate::http::{FormError, Headers, Params, Response, form_decode};
use crate::oauth::ledger::protocol::{Again, TokensReply};
use crate::secret::{AccessToken, ClientSecret, PkceVerifier, RefreshToken};

/// Token endpoint errors (RFC 6749 §5.2), each with its own status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed request: missing or repeated parameter, wrong media type.
    InvalidRequest(String),
    /// Unknown client, wrong secret, or an auth method other than the
    /// registered one. `basic` when the client tried HTTP Basic, which
    /// makes the answer a 401 with a `Basic` challenge (RFC 6749 §5.2).
    InvalidClient {
        basic: bool,
    },
    /// Unknown, expired, replayed or mismatched code or refresh token.
    /// The reason is for the log only.
    InvalidGrant(String),
    UnsupportedGrantType,
    InvalidScope(String),
    /// RFC 8707 §2.
    InvalidTarget,
    /// Storage or randomness failed; the client may retry.
    TemporarilyUnavailable(String),
    /// `USER_KEY_SECRET` is not configured, so a routed code or token
    /// cannot be checked.
    NoUserKey,
    /// `TOKENS_NOT_BEFORE` is in the future or does not parse.
    NotBefore,
    /// An admin blocked the client (RFC 6749 §5.2 `unauthorized_client`:
    /// it is authenticated but may not use this grant any more).
    UnauthorizedClient,
    /// A key grant of `/mcp` whose key Plausible no longer accepts
    /// (issue 15): `invalid_grant`, saying why, since only the person can
    /// fix it by reconnecting.
    KeyRefused,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient { .. } => "invalid_client",
            TokenError::InvalidGrant(_) | TokenError::KeyRefused => "invalid_grant",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::InvalidTarget => "invalid_target",
            TokenError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            TokenError::NoUserKey | TokenError::NotBefore => "server_error",
            TokenError::UnauthorizedClient => "unauthorized_client",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            TokenError::InvalidClient { .. } => 401,
            TokenError::TemporarilyUnavailable(_) => 503,
            TokenError::NoUserKey | TokenError::NotBefore => 500,
            _ => 400,
        }
    }

    /// What the client is told. Grant failures are deliberately vague:
    /// the precise reason (replay, PKCE mismatch) goes to the log.
    pub fn description(&self) -> String {
        match self {
            TokenError::InvalidRequest(d) | TokenError::InvalidScope(d) => d.clone(),
            TokenError::InvalidClient { .. } => "client authentication failed (unknown client, wrong secret, or not the registered token_endpoint_auth_method)".into(),
            TokenError::InvalidGrant(_) => "the authorization code or refresh token is invalid, expired, revoked, or was issued to another client or redirect URI".into(),
            TokenError::UnsupportedGrantType => "grant_type must be authorization_code or refresh_token".into(),
            TokenError::InvalidTarget => "resource does not name this grant's protected resource (tokens for /internal and /mcp come from separate authorizations)".into(),
            TokenError::TemporarilyUnavailable(_) => "the server could not complete the request; retry shortly".into(),
            TokenError::UnauthorizedClient => "an administrator of this server has blocked this client".into(),
            TokenError::KeyRefused => "the Plausible key of this connection is no longer accepted by Plausible; reconnect and enter a current key".into(),
            TokenError::NoUserKey => format!("the server is misconfigured: {} is missing or shorter than 32 characters", names::USER_KEY_SECRET),
            TokenError::NotBefore => NotBeforeMisconfigured.description(),
        }
    }

    /// The variable whose misconfiguration this is, if it is one.
    pub fn misconfigured(&self) -> Option<&'static str> {
        match self {
            TokenError::NoUserKey => Some(names::USER_KEY_SECRET),
            TokenError::NotBefore => Some(names::TOKENS_NOT_BEFORE),
            _ => None,
        }
    }

    /// The log line: the code and, for grant and availability failures,
    /// the server-side reason. Never holds token values.
    pub fn log_line(&self) -> String {
        match self {
            TokenError::InvalidGrant(reason) | TokenError::TemporarilyUnavailable(reason) => {
                format!("{}: {reason}", self.code())
            }
            _ => format!("{}: {}", self.code(), self.description()),
        }
    }

    pub fn response(&self) -> Response {
        let mut r = Response::json(
            self.status(),
            &json!({"error": self.code(), "error_description": self.description()}),
        )
        .with_header("pragma", "no-cache");
        // RFC 9110 §15.5.2: every 401 carries a challenge. Basic is the
        // scheme a confidential client can use here (RFC 6749 §2.3.1).
        if matches!(self, TokenError::InvalidClient { .. }) {
            r = r.with_header("www-authenticate", "Basic realm=\"plausible-mcp\"");
        }
        if matches!(self, TokenError::TemporarilyUnavailable(_)) {
            r = r.with_header("retry-after", "5");
        }
        r
    }
}

/// An `application/x-www-form-urlencoded` body, refusing repeated
/// parameters (RFC 6749 §3.2).
pub fn form(headers: &Headers, body: &[u8]) -> Result<Params, TokenError> {
    crate::http::form(headers, body).map_err(|e| {
        TokenError::InvalidRequest(match e {
            FormError::MediaType => "the body must be application/x-www-form-urlencoded".into(),
            FormError::Repeated(k) => format!("parameter {k} appears more than once"),
        })
    })
}

/// The credentials a request presents.
enum Presented {
    Basic(ClientId, ClientSecret),
    Post(ClientId, ClientSecret),
    Public(ClientId),
}

fn presented(headers: &Headers, form: &Params) -> Result<Presented, TokenError> {
    let basic = headers.credentials("basic");
    if let Some(value) = basic {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined
        // with ':' and base64-encoded.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(TokenError::InvalidClient { basic: true })?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or(TokenError::InvalidClient { basic: true })?;
        let id = form_decode(id)
            .and_then(|i| ClientId::parse(&i))
            .ok_or(TokenError::InvalidClient { basic: true })?;
        let secret = form_decode(secret).ok_or(TokenError::InvalidClient { basic: true })?;
        if form.get("client_id").is_some_and(|c| c != id.as_str())
            || form.contains_key("client_secret")
        {
            return Err(TokenError::InvalidRequest(
                "use one client authentication method per request".into(),
            ));
        }
        return Ok(Presented::Basic(id, ClientSecret::new(secret)));
    }
    let id = form
        .get("client_id")
        .and_then(|c| ClientId::parse(c))
        .ok_or(TokenError::InvalidClient { basic: false })?;
    Ok(match form.get("client_secret") {
        Some(secret) => Presented::Post(id, ClientSecret::new(secret.clone())),
        None => Presented::Public(id),
    })
}

/// Authenticates the client by its registered method only (RFC 7591 §2;
/// workers-oauth-provider#209).
pub async fn authenticate<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    headers: &Headers,
    form: &Params,
) -> Result<ClientRecord, TokenError> {
    let presented = presented(headers, form)?;
    let (id, secret, method, basic) = match &presented {
        Presented::Basic(id, s) => (id, Some(s), AuthMethod::ClientSecretBasic, true),
        Presented::Post(id, s) => (id, Some(s), AuthMethod::ClientSecretPost, false),
        Presented::Public(id) => (id, None, AuthMethod::None, false),
    };
    let client = match registry::find(platform, server.fetch_policy(), &server.reached, id).await {
        Ok(Some(c)) => c,
        Ok(None) | Err(LookupError::Metadata(_)) => {
            return Err(TokenError::InvalidClient { basic });
        }
        Err(LookupError::Storage(e)) => return Err(TokenError::TemporarilyUnavailable(e.0)),
    };
    let secret_ok = match secret {
        Some(s) => client.secret_matches(s),
        None => true,
    };
    if client.auth_method != method || !secret_ok {
        return Err(TokenError::InvalidClient { basic });
    }
    Ok(client)
}

fn required<'a>(form: &'a Params, name: &str) -> Result<&'a str, TokenError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TokenError::InvalidRequest(format!("{name} is required")))
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct Issued {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
    pub expires_in: u64,
    pub scope: ScopeSet,
    pub resource: Resource,
}

impl Issued {
    pub fn response(&self) -> Response {
        let body: Value = json!({
            "access_token": self.access_token.secret(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token.secret(),
            "scope": self.scope.to_param(),
            "resource": self.resource.as_str(),
        });
        Response::json(200, &body).with_header("pragma", "no-cache")
    }
}

/// The format new tokens are minted in: a legacy grant's stay legacy
/// until it ends, so they keep reaching its legacy ledger.
enum Minter<'a> {
    Legacy,
    Routed(&'a UserKeys, RoutingId),
}

impl Minter<'_> {
    fn mint<P: Platform>(&self, platform: &P, kind: TokenKind) -> Result<String, TokenError> {
        match self {
            Minter::Legacy => kind.mint(platform),
            Minter::Routed(keys, routing) => {
                kind.mint_routed(platform, keys, routing, platform.now().as_secs())
            }
        }
        .map_err(|_| TokenError::TemporarilyUnavailable("entropy".into()))
    }
}

fn mint_pair<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    minter: &Minter<'_>,
) -> Result<(AccessToken, RefreshToken, NewTokens), TokenError> {
    let access = AccessToken::new(minter.mint(platform, TokenKind::AccessToken)?);
    let refresh = RefreshToken::new(minter.mint(platform, TokenKind::RefreshToken)?);
    let lifetimes = &server.settings.lifetimes;
    let hashes = NewTokens {
        access_hash: TokenHash::of(access.secret()),
        refresh_hash: TokenHash::of(refresh.secret()),
        access_ttl_secs: lifetimes.access.as_secs(),
        refresh_ttl_secs: lifetimes.refresh.as_secs(),
    };
    Ok((access, refresh, hashes))
}

/// `resource`, if given, must name one of our protected resources
/// (RFC 8707 §2); the ledger then requires it to be the grant's own, so
/// a code or refresh token of `/mcp` never yields a token for
/// `/internal`, nor the reverse.
fn resource_param(form: &Params, server: &AuthServer<'_>) -> Result<Option<Resource>, TokenError> {
    match form.get("resource") {
        None => Ok(None),
        Some(r) => Audience::of_param(&server.issuer, Some(r))
            .map(|a| Some(server.resource_for(a)))
            .ok_or(TokenError::InvalidTarget),
    }
}

/// Handles `POST /token`.
pub async fn exchange<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    headers: &Headers,
    body: &[u8],
) -> Result<Issued, TokenError> {
    let form = form(headers, body)?;
    let grant_type = required(&form, "grant_type")?.to_owned();
    let (kind, presented) = match grant_type.as_str() {
        "authorization_code" => (TokenKind::AuthorizationCode, required(&form, "code")?),
        "refresh_token" => (TokenKind::RefreshToken, required(&form, "refresh_token")?),
        _ => return Err(TokenError::UnsupportedGrantType),
    };
    // Where the code or token lives, from the value alone: a forged one
    // is refused before any storage read, the client's included.
    let user_keys = server.settings.user_keys.as_ref();
    let located = locate(kind, presented, user_keys).map_err(|e| match e {
        Unroutable::Forged => TokenError::InvalidGrant("tag of a routed value is not ours".into()),
        Unroutable::NoUserKey => TokenError::NoUserKey,
    })?;
    let client = authenticate(platform, server, headers, &form).await?;
    match blocked_since(platform, &client.client_id).await {
        Ok(None) => {}
        Ok(Some(_)) => return Err(TokenError::UnauthorizedClient),
        Err(e) => return Err(TokenError::TemporarilyUnavailable(e.0)),
    }
    let resource = resource_param(&form, server)?;
    // A legacy ledger's user keys are the previous release's bare
    // SHA-256 of the email, which a list of addresses could match: its
    // audit lines name no user.
    let users = AuditedUsers::of(&located);
    let (ledger, minter) = match (located, user_keys) {
        (Located::Pair(routed), Some(keys)) => (
            Ledger::pair(platform, routed.routing),
            Minter::Routed(keys, routed.routing),
        ),
        (Located::Pair(_), None) => return Err(TokenError::NoUserKey),
        (Located::Legacy, _) => (Ledger::of(platform, &client.client_id), Minter::Legacy),
    };
    let (access, refresh, tokens) = mint_pair(platform, server, &minter)?;
    let outcome = match kind {
        TokenKind::AuthorizationCode => {
            let code = presented;
            // RFC 6749 §4.1.3: required only if the authorization request
            // carried one (the ledger enforces which).
            let redirect_uri = form.get("redirect_uri").filter(|r| !r.is_empty()).cloned();
            let verifier = required(&form, "code_verifier")?;
            if !is_valid_verifier(verifier) {
                return Err(TokenError::InvalidRequest(
                    "code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)"
                        .into(),
                ));
            }
            let computed_challenge = CodeChallenge::parse(&s256(&PkceVerifier::new(verifier)))
                .ok_or_else(|| TokenError::TemporarilyUnavailable("challenge".into()))?;
            ledger
                .redeem_code(RedeemCode {
                    client_id: client.client_id.clone(),
                    code_hash: TokenHash::of(code),
                    redirect_uri,
                    computed_challenge,
                    resource,
                    grant_lifetime_secs: server.settings.lifetimes.grant.as_secs(),
                    tokens,
                })
                .await
        }
        _ => {
            // An empty `scope` is an omitted one: the grant's own scope
            // (RFC 6749 §6), never the authorization default.
            let scope = ScopeSet::parse_given(form.get("scope").map(String::as_str)).map_err(
                |e| match e {
                    ScopeError::Syntax => {
                        TokenError::InvalidScope("scope is not a valid space-separated list".into())
                    }
                    ScopeError::Unsupported(s) => TokenError::InvalidScope(format!(
                        "scope \"{}\" is not offered",
                        s.escape_default()
                    )),
                },
            )?;
            let refreshed = refresh_grant(
                platform,
                server,
                &ledger,
                Refreshing {
                    client: &client.client_id,
                    users,
                    presented,
                    scope,
                    resource,
                },
                (access, refresh, tokens),
            )
            .await;
            if matches!(
                refreshed,
                Err(TokenError::InvalidGrant(_) | TokenError::KeyRefused)
            ) {
                // A reused rotated-out refresh token, or an identity the
                // email gate now refuses, has just ended the grant: the
                // client's remembered access tokens go with it.
                forget_client_tokens(platform, &client.client_id);
            }
            return refreshed;
        }
    };
    if let Ok(Err(refused)) = &outcome
        && matches!(refused.refusal, Refusal::InvalidGrant)
    {
        // The ledger may just have ended a grant (a reused code, RFC 9700
        // §4.14.2): the client's remembered access tokens go with it.
        forget_client_tokens(platform, &client.client_id);
    }
    match &outcome {
        Ok(Ok(issued)) => {
            let record = Record::new(Event::CodeRedeemed, Outcome::Success);
            server.audit(
                platform,
                of_grant(record, issued, users).client(&client.client_id),
            );
        }
        Ok(Err(refused)) => audit_refusal(
            platform,
            server,
            &client.client_id,
            refused,
            Event::CodeRedeemed,
            users,
        ),
        Err(_) => {}
    }
    match outcome {
        Ok(Ok(LedgerIssued {
            scope,
            resource,
            access_expires_in,
            ..
        })) => Ok(Issued {
            access_token: access,
            refresh_token: refresh,
            expires_in: access_expires_in,
            scope,
            resource,
        }),
        Ok(Err(refused)) => Err(refusal(refused)),
        Err(e) => Err(TokenError::TemporarilyUnavailable(e.0)),
    }
}

/// Forgets every access token this isolate remembers for a client
/// (`token_cache`), when a grant of it may just have ended.
fn forget_client_tokens<P: Platform>(platform: &P, client: &ClientId) {
    platform.token_memory().borrow_mut().forget_client(client);
}

/// What a refresh request presents, once parsed.
struct Refreshing<'a> {
    client: &'a ClientId,
    users: AuditedUsers,
    presented: &'a str,
    scope: Option<ScopeSet>,
    resource: Option<Resource>,
}

/// RFC 6749 §6 with rotation, and issue 11's rules around it: the kill
/// switch goes to the object with the request; the new pair goes sealed,
/// so a lost response's retry gets it again; and the email gate is
/// applied to the grant's sealed identity as configured now.
async fn refresh_grant<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    ledger: &Ledger<'_, P>,
    refreshing: Refreshing<'_>,
    (access, refresh, tokens): (AccessToken, RefreshToken, NewTokens),
) -> Result<Issued, TokenError> {
    let not_before = server
        .settings
        .not_before
        .in_force(platform.now().as_secs())
        .map_err(|_| TokenError::NotBefore)?;
    let refresh_hash = TokenHash::of(refreshing.presented);
    let sealed_pair = match &server.settings.keys {
        Some(keys) => Some(
            seal_pair(platform, keys, &refresh_hash, &access, &refresh)
                .map_err(|_| TokenError::TemporarilyUnavailable("entropy".into()))?,
        ),
        None => None,
    };
    let reply = ledger
        .refresh(Refresh {
            client_id: refreshing.client.clone(),
            refresh_hash: refresh_hash.clone(),
            scope: refreshing.scope,
            resource: refreshing.resource,
            tokens,
            sealed_pair,
            not_before,
        })
        .await
        .map_err(|e| TokenError::TemporarilyUnavailable(e.0))?;
    let (issued, access, refresh, event) = match reply {
        TokensReply::Tokens(issued) => (issued, access, refresh, Event::TokenRefreshed),
        TokensReply::Refused(refused) => {
            audit_refusal(
                platform,
                server,
                refreshing.client,
                &refused,
                Event::TokenRefreshed,
                refreshing.users,
            );
            return Err(refusal(refused));
        }
        TokensReply::Again(Again {
            sealed_pair,
            issued,
        }) => {
            let (access, refresh) = server
                .settings
                .keys
                .as_ref()
                .and_then(|keys| open_pair(keys, &refresh_hash, &sealed_pair))
                .ok_or_else(|| {
                    TokenError::InvalidGrant("a retry's sealed pair does not open".into())
                })?;
            (issued, access, refresh, Event::RefreshRetry)
        }
    };
    let newest = (TokenHash::of(refresh.secret()), refreshing.client);
    let ended = holder_ends(platform, server, ledger, newest, &issued).await;
    if let Some(ended) = ended {
        let (reason, actor) = (ended.reason(), ended.actor());
        let error = match ended {
            Ended::Gate(reason) => TokenError::InvalidGrant(reason.into()),
            Ended::KeyRefused => TokenError::KeyRefused,
        };
        // The grant ends. Its newest refresh token names it.
        let _ = ledger
            .revoke_refresh(TokenHash::of(refresh.secret()), refreshing.client, false)
            .await;
        server.audit(
            platform,
            of_grant(
                Record::new(Event::GrantRevoked, Outcome::Success),
                &issued,
                refreshing.users,
            )
            .reason(reason)
            .client(refreshing.client)
            .by(actor),
        );
        return Err(error);
    }
    server.audit(
        platform,
        of_grant(
            Record::new(event, Outcome::Success),
            &issued,
            refreshing.users,
        )
        .client(refreshing.client),
    );
    Ok(Issued {
        access_token: access,
        refresh_token: refresh,
        expires_in: issued.access_expires_in,
        scope: issued.scope,
        resource: issued.resource,
    })
}

fn refusal(refused: super::ledger::protocol::Refused) -> TokenError {
    match refused.refusal {
        Refusal::InvalidGrant => TokenError::InvalidGrant(refused.reason.text().into()),
        Refusal::InvalidScope => TokenError::InvalidScope("scope exceeds what was granted".into()),
        Refusal::InvalidTarget => TokenError::InvalidTarget,
    }
}

mod audit;
mod readmit;
mod retry;
#[cfg(test)]
mod tests;
