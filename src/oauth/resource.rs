//! The resource server: who may call `/internal`. Either Cloudflare
//! Access in front vouches for the caller (a verified assertion, then the
//! email gate), or the caller presents one of our bearer tokens (RFC 6750,
//! RFC 9728 §5.1): at most one KV read on the hot path, none when the
//! isolate remembers the record (`token_cache`) or the value has no shape
//! we mint.
//!
//! A routed token's tag is checked before that read (a forged one costs
//! none). When the read misses a well-tagged token issued within the last
//! [`KV_LAG_SECS`], KV may simply not have the fresh record at this
//! location yet (its read-after-write lag, a known cause of connectors
//! failing right after login): the token's grant object, which holds its
//! own copy of every live access record, is asked before refusing.

use serde_json::json;

use super::ids::{TokenHash, TokenKind};
use super::ledger::client::{Coordinator, Ledger};
use super::ledger::records::{AccessRecord, access_key};
use super::routing::{Located, Unroutable, locate};
use super::scope::{Need, Shortfall};
use super::server::AuthServer;
use super::token_cache::TokenMemory;
use super::types::{Audience, DEFAULT_SCOPE, Resource};
use crate::config::names;
use crate::config::oauth::{NotBefore, NotBeforeMisconfigured, OAuthSettings};
use crate::doc_cache::DocumentCache;
use crate::http::{Request, Response};
use crate::oidc::access::{self, AssertionRefused};
use crate::ports::{Clock, KeyValue, Outbound, SignatureCheck, StorageError};

/// How long after issue a KV miss is worth asking the grant object:
/// Workers KV documents up to 60 s for a write to be visible everywhere;
/// twice that, for clocks and retries.
pub const KV_LAG_SECS: u64 = 120;

/// Why a request to `/internal` is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No bearer token: a bare challenge starts discovery (RFC 6750 §3.1).
    NoToken,
    /// Unknown, expired, revoked, or issued for another resource.
    InvalidToken,
    /// A routed token, but `USER_KEY_SECRET` is not configured (500).
    NoUserKey,
    /// The token lacks a scope: none of this server's at all (checked
    /// here), or one a message needs (`mcp::scopes`) → 403 step-up.
    InsufficientScope(Shortfall),
    Unavailable(StorageError),
    /// A Cloudflare Access assertion that is not genuine, or names
    /// someone the email gate refuses (403).
    Assertion(AssertionRefused),
    /// `TOKENS_NOT_BEFORE` is in the future or does not parse (500).
    NotBefore,
}

impl Denied {
    /// The variable a refusal blames, for the audit trail's
    /// misconfiguration line (issue 11).
    pub fn misconfigured(&self) -> Option<&'static str> {
        match self {
            Denied::NoUserKey => Some(names::USER_KEY_SECRET),
            Denied::NotBefore => Some(names::TOKENS_NOT_BEFORE),
            _ => None,
        }
    }

    /// What the operator is told, for refusals worth telling.
    pub fn log_line(&self) -> Option<String> {
        self.log_line_at(Audience::Internal)
    }

    /// [`Denied::log_line`], naming the endpoint that refused.
    pub fn log_line_at(&self, at: Audience) -> Option<String> {
        let at = at.path().trim_start_matches('/');
        match self {
            Denied::Unavailable(e) => Some(format!("{at}: token lookup failed: {}", e.0)),
            Denied::Assertion(refused) => {
                Some(format!("{at}: Access assertion refused: {refused:?}"))
            }
            Denied::NotBefore => Some(format!("{at}: {}", NotBeforeMisconfigured.description())),
            Denied::NoUserKey => Some(format!(
                "{at}: a routed access token was presented but {} is not configured",
                names::USER_KEY_SECRET
            )),
            _ => None,
        }
    }
}

/// Admits a call to `/internal`: Access's signed assertion when Access is
/// configured and the header is present (no record: no token scopes, every site), else
/// our bearer token (its record: the grant's sites and scope).
pub async fn admit<
    P: KeyValue + Outbound + DocumentCache + Coordinator + TokenMemory + SignatureCheck,
>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<Option<AccessRecord>, Denied> {
    let settings = server.settings;
    if let (Some(app), Some(assertion)) = (
        &settings.access_app,
        request.headers.get(access::ASSERTION_HEADER),
    ) {
        return access::verify(platform, app, assertion, &settings.allowed_email_domains)
            .await
            .map(|_identity| None)
            .map_err(Denied::Assertion);
    }
    authorize(platform, server, request).await.map(Some)
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers
        .credentials("bearer")
        .filter(|v| !v.is_empty())
}

/// The bearer token, if it has a shape we mint; else the refusal it
/// earns by its shape alone (no bearer: [`Denied::NoToken`]; any other
/// shape: [`Denied::InvalidToken`]). No key, storage or clock is used, so
/// the fetch path can answer it before reading the body or counting a
/// rate limit (`crate::answer_before_body`).
pub fn shaped_bearer(request: &Request) -> Result<&str, Denied> {
    let token = bearer(request).ok_or(Denied::NoToken)?;
    if TokenKind::AccessToken.has_minted_shape(token) {
        Ok(token)
    } else {
        Err(Denied::InvalidToken)
    }
}

/// Whether Cloudflare Access vouches for this request instead of a
/// bearer token ([`admit`]'s first branch): Access is configured and its
/// assertion header is present.
pub fn access_applies(settings: &OAuthSettings, request: &Request) -> bool {
    settings.access_app.is_some() && request.headers.get(access::ASSERTION_HEADER).is_some()
}

/// Checks the bearer token against the access record, the resource it
/// was issued for (RFC 8707; MCP: tokens for other resources MUST be
/// refused), its expiry and its scope.
///
/// The order is the cost order: a value of no shape we mint is refused
/// before any key is used; a remembered record (`token_cache`) saves the
/// one storage read; a routed token's tag is checked before that read.
/// Every check of the record runs on every request, remembered or read.
pub async fn authorize<P: KeyValue + Clock + Coordinator + TokenMemory>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<AccessRecord, Denied> {
    authorize_for(platform, server, request, Audience::Internal).await
}

/// [`authorize`] for either endpoint: the record must have been issued
/// for `audience`'s resource, so a token of `/internal` is refused at
/// `/mcp` and the reverse (RFC 8707; MCP "Token Audience Binding").
pub async fn authorize_for<P: KeyValue + Clock + Coordinator + TokenMemory>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
    audience: Audience,
) -> Result<AccessRecord, Denied> {
    let token = shaped_bearer(request)?;
    let settings = server.settings;
    // The kill switch (issue 11), read before any storage: a misconfigured
    // value is a 500 naming the variable, not a lock-out.
    let not_before = settings
        .not_before
        .in_force(platform.now().as_secs())
        .map_err(|_| Denied::NotBefore)?;
    let hash = TokenHash::of(token);
    let now = platform.now();
    let window = settings.lifetimes.token_cache;
    let memory = platform.token_memory();
    let remembered = if window.is_zero() {
        None
    } else {
        memory.borrow_mut().recall(&hash, now)
    };
    let (record, read_under) = match remembered {
        Some(record) => (record, None),
        None => {
            let epoch = memory.borrow().epoch();
            let record = read(platform, token, &hash, now.as_secs(), settings).await?;
            (record, Some(epoch))
        }
    };
    admits(
        &record,
        now.as_secs(),
        (audience, &server.resource_for(audience)),
        not_before,
    )?;
    if let Some(epoch) = read_under
        && !window.is_zero()
    {
        memory
            .borrow_mut()
            .remember(hash, record.clone(), now, window, epoch);
    }
    Ok(record)
}

/// The token's record from storage: one KV read, or (a fresh routed
/// token KV does not show yet) its grant object instead.
async fn read<P: KeyValue + Coordinator>(
    platform: &P,
    token: &str,
    hash: &TokenHash,
    now: u64,
    settings: &OAuthSettings,
) -> Result<AccessRecord, Denied> {
    let located = locate(TokenKind::AccessToken, token, settings.user_keys.as_ref()).map_err(
        |e| match e {
            Unroutable::Forged => Denied::InvalidToken,
            Unroutable::NoUserKey => Denied::NoUserKey,
        },
    )?;
    let stored = platform
        .get(&access_key(hash))
        .await
        .map_err(Denied::Unavailable)?;
    match (stored, located) {
        (Some(bytes), _) => serde_json::from_slice(&bytes).map_err(|_| Denied::InvalidToken),
        (None, Located::Pair(routed)) if routed.issued_at.abs_diff(now) <= KV_LAG_SECS => {
            Ledger::pair(platform, routed.routing)
                .lookup_access(hash.clone())
                .await
                .map_err(Denied::Unavailable)?
                .ok_or(Denied::InvalidToken)
        }
        (None, _) => Err(Denied::InvalidToken),
    }
}

/// Whether a record admits a call to this resource now: its expiry, its
/// resource and, where recorded, its subject's kind (a key holder's grant
/// at `/mcp` only, a person's at `/internal` only: issue 15, defence in
/// depth beside the resource), the kill switch (`TOKENS_NOT_BEFORE`: tokens of grants
/// created before it are refused with nothing swept from storage; a
/// record without a creation time counts as older) and that it holds a
/// scope of ours (which one each call needs is the transport's check). It
/// runs on every request, whether the record was read or remembered, so
/// the token memory cannot outlive a revocation's cut-off.
fn admits(
    record: &AccessRecord,
    now: u64,
    (audience, resource): (Audience, &Resource),
    not_before: Option<u64>,
) -> Result<(), Denied> {
    if now >= record.expires_at
        || &record.resource != resource
        || record
            .subject
            .kind
            .is_some_and(|k| k.audience() != audience)
        || NotBefore::refuses(not_before, record.grant_created_at)
    {
        return Err(Denied::InvalidToken);
    }
    match record.scope.shortfall([Need::AnyScope]) {
        Some(short) => Err(Denied::InsufficientScope(short)),
        None => Ok(()),
    }
}

/// The response for a refusal, with the RFC 6750 §3 challenge pointing at
/// our protected resource metadata (RFC 9728 §5.1; required by MCP
/// 2025-06-18, and with `scope` per MCP 2025-11-25).
pub fn challenge(denied: &Denied, metadata_url: &str) -> Response {
    let base = format!(
        "Bearer realm=\"plausible-mcp\", resource_metadata=\"{metadata_url}\", scope=\"{DEFAULT_SCOPE}\""
    );
    let (status, header, body) = match denied {
        Denied::NoToken => (
            401,
            base,
            // RFC 6750 §3.1: no error code when no credentials were sent.
            json!({"error_description": "Authorization required: obtain an access token from this server's OAuth authorization server (see the resource_metadata link)."}),
        ),
        Denied::InvalidToken => (
            401,
            format!(
                "{base}, error=\"invalid_token\", error_description=\"The access token is invalid, expired or revoked\""
            ),
            json!({"error": "invalid_token", "error_description": "The access token is invalid, expired, revoked, or was issued for another resource."}),
        ),
        Denied::InsufficientScope(short) => return insufficient_scope(short, metadata_url),
        Denied::NoUserKey => {
            return Response::json(
                500,
                &json!({"error": "server_error", "error_description": format!("The server is misconfigured: {} is missing or shorter than 32 characters.", names::USER_KEY_SECRET)}),
            );
        }
        Denied::NotBefore => {
            return Response::json(
                500,
                &json!({"error": "server_error", "error_description": format!("The server is misconfigured: {} is not an RFC 3339 time in the past.", names::TOKENS_NOT_BEFORE)}),
            );
        }
        Denied::Unavailable(_) => {
            return Response::json(503, &json!({"error": "temporarily_unavailable", "error_description": "Token storage is unavailable; retry shortly."}))
                .with_header("retry-after", "5");
        }
        Denied::Assertion(_) => {
            return Response::json(
                403,
                &json!({"error": "forbidden", "error_description": "A valid Cloudflare Access identity from an allowed email domain is required."}),
            );
        }
    };
    Response::json(status, &body).with_header("www-authenticate", header)
}

/// The 403 for a call its token lacks a scope for: RFC 6750 §3.1
/// `insufficient_scope`, with `scope` and `resource_metadata` as MCP
/// 2025-11-25 and 2026-07-28 authorization define it ("Scope Challenge
/// Handling": the scopes to ask for, and the metadata URL "for
/// consistency with 401 responses"). 2025-03-26 and 2025-06-18 name 403
/// for insufficient scopes without saying what the challenge holds; the
/// same answer serves them. `metadata_url` is the RFC 9728 document of
/// the endpoint called, so one builder serves `/internal` and `/mcp`.
fn insufficient_scope(shortfall: &Shortfall, metadata_url: &str) -> Response {
    let scope = shortfall.challenge.to_param();
    let missing = shortfall
        .missing
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let noun = if shortfall.missing.len() > 1 {
        "scopes"
    } else {
        "scope"
    };
    let description = format!(
        "This call needs the {missing} {noun}, which the access token lacks; authorize again with scope \"{scope}\""
    );
    // Scope tokens are NQCHAR (no quote, no backslash), and the
    // description is ours: nothing here needs quoting (RFC 6750 §3).
    let header = format!(
        "Bearer realm=\"plausible-mcp\", resource_metadata=\"{metadata_url}\", scope=\"{scope}\", error=\"insufficient_scope\", error_description=\"This call needs the {missing} {noun}\""
    );
    Response::json(
        403,
        &json!({"error": "insufficient_scope", "error_description": description, "scope": scope}),
    )
    .with_header("www-authenticate", header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::oauth::ids::{GrantId, UserKey};
    use crate::oauth::ledger::records::Subject;
    use crate::oauth::scope::Scope;
    use crate::oauth::types::{ClientId, ScopeSet};
    use crate::testing::{FakePlatform, block_on};
    use std::time::Duration;

    const RESOURCE: &str = "https://mcp.example.com/internal";

    fn store(p: &FakePlatform, token: &str, scope: &str, resource_uri: &str, ttl: u64) {
        let record = AccessRecord {
            sites: None,
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            grant_id: GrantId::fixed("g1"),
            scope: serde_json::from_value::<ScopeSet>(json!([scope])).unwrap(),
            resource: crate::testing::resource(resource_uri),
            subject: Subject {
                user_key: UserKey::legacy_of_email("u@example.com"),
                sealed_props: "s".into(),
                kind: None,
            },
            grant_created_at: Some(0),
            expires_at: p.now().as_secs() + ttl,
        };
        block_on(p.put(
            &access_key(&TokenHash::of(token)),
            &serde_json::to_vec(&record).unwrap(),
            Duration::from_secs(ttl),
        ))
        .unwrap();
    }

    /// An access token of the previous release's shape, named for the test.
    fn tok(name: &str) -> String {
        format!("pmcp_at_{name:A<43}")
    }

    fn settings(cache_secs: &str) -> OAuthSettings {
        OAuthSettings::load(&crate::testing::source(&[(
            names::TOKEN_CACHE_SECONDS,
            cache_secs,
        )]))
    }

    fn call_with(
        p: &FakePlatform,
        settings: &OAuthSettings,
        auth: Option<&str>,
    ) -> Result<AccessRecord, Denied> {
        let mut r = Request::new(Method::Post, url::Url::parse(RESOURCE).unwrap());
        if let Some(a) = auth {
            r.headers.set("authorization", a);
        }
        let server = AuthServer::new(settings, &r);
        block_on(authorize(p, &server, &r))
    }

    fn call(p: &FakePlatform, auth: Option<&str>) -> Result<AccessRecord, Denied> {
        call_with(p, &settings("0"), auth)
    }

    #[test]
    fn bearer_checks() {
        let p = FakePlatform::new();
        let good = tok("good");
        store(&p, &good, "mcp", RESOURCE, 3600);
        store(
            &p,
            &tok("otherresource"),
            "mcp",
            "https://other.example/internal",
            3600,
        );
        store(&p, &tok("noscope"), "other", RESOURCE, 3600);
        // Stored, but of no shape we mint: never even looked up.
        store(&p, "pmcp_at_good", "mcp", RESOURCE, 3600);
        assert_eq!(
            call(&p, Some(&format!("Bearer {good}"))).unwrap().grant_id,
            GrantId::fixed("g1")
        );
        assert_eq!(
            call(&p, Some(&format!("bearer  {good} ")))
                .unwrap()
                .grant_id,
            GrantId::fixed("g1")
        );
        let cases = [
            (None, Denied::NoToken),
            (Some("Basic abc".to_owned()), Denied::NoToken),
            (Some("Bearer ".to_owned()), Denied::NoToken),
            (Some("Bearer pmcp_at_good".to_owned()), Denied::InvalidToken),
            (
                Some(format!("Bearer {}", tok("unknown"))),
                Denied::InvalidToken,
            ),
            (
                Some(format!("Bearer {}", tok("otherresource"))),
                Denied::InvalidToken,
            ),
            (
                Some(format!("Bearer {}", tok("noscope"))),
                Denied::InsufficientScope(Shortfall {
                    missing: vec![Scope::Mcp],
                    challenge: ScopeSet::of(&[Scope::Mcp]),
                }),
            ),
        ];
        for (auth, expected) in cases {
            assert_eq!(call(&p, auth.as_deref()).unwrap_err(), expected, "{auth:?}");
        }
        let bearer_good = format!("Bearer {good}");
        p.advance(Duration::from_secs(3600));
        assert_eq!(
            call(&p, Some(&bearer_good)).unwrap_err(),
            Denied::InvalidToken
        );
        p.fail_storage.set(true);
        assert!(matches!(
            call(&p, Some(&bearer_good)),
            Err(Denied::Unavailable(_))
        ));
    }

    /// Issue 15, defence in depth: a record whose subject is a key holder
    /// is refused at `/internal` even if its resource names `/internal`,
    /// and a person's at `/mcp`; a record of before the kind was stored
    /// is judged by its resource alone.
    #[test]
    fn the_subject_kind_must_fit_the_endpoint() {
        use crate::oauth::ledger::records::SubjectKind;
        let p = FakePlatform::new();
        let mcp = "https://mcp.example.com/mcp";
        for (name, resource_uri, kind) in [
            ("keyatinternal", RESOURCE, Some(SubjectKind::PlausibleKey)),
            ("personatinternal", RESOURCE, Some(SubjectKind::Person)),
            ("oldatinternal", RESOURCE, None),
            ("personatmcp", mcp, Some(SubjectKind::Person)),
            ("keyatmcp", mcp, Some(SubjectKind::PlausibleKey)),
        ] {
            store(&p, &tok(name), "mcp", resource_uri, 3600);
            let key = access_key(&TokenHash::of(&tok(name)));
            let mut record: AccessRecord =
                serde_json::from_slice(&block_on(p.get(&key)).unwrap().unwrap()).unwrap();
            record.subject.kind = kind;
            block_on(p.put(
                &key,
                &serde_json::to_vec(&record).unwrap(),
                Duration::from_secs(3600),
            ))
            .unwrap();
        }
        let at = |name: &str, audience: Audience| {
            let url = match audience {
                Audience::Internal => RESOURCE,
                Audience::Mcp => mcp,
            };
            let mut r = Request::new(Method::Post, url::Url::parse(url).unwrap());
            r.headers
                .set("authorization", format!("Bearer {}", tok(name)));
            let settings = settings("0");
            let server = AuthServer::new(&settings, &r);
            block_on(authorize_for(&p, &server, &r, audience)).map(|r| r.grant_id)
        };
        assert_eq!(
            at("keyatinternal", Audience::Internal),
            Err(Denied::InvalidToken)
        );
        assert!(at("personatinternal", Audience::Internal).is_ok());
        assert!(at("oldatinternal", Audience::Internal).is_ok());
        assert_eq!(at("personatmcp", Audience::Mcp), Err(Denied::InvalidToken));
        assert!(at("keyatmcp", Audience::Mcp).is_ok());
        // The kind is stored beside the subject, and only when known.
        let json = serde_json::to_value(Subject {
            user_key: UserKey::legacy_of_email("u@example.com"),
            sealed_props: "s".into(),
            kind: Some(SubjectKind::PlausibleKey),
        })
        .unwrap();
        assert_eq!(json["kind"], "plausible_key");
    }

    /// `TOKENS_NOT_BEFORE` at `/internal`: tokens of grants created
    /// before it are refused, records without a creation time count as
    /// older, and a future value is a 500 naming the variable.
    #[test]
    fn the_kill_switch_refuses_tokens_of_older_grants() {
        use crate::config::oauth::OAuthSettings;
        let p = FakePlatform::new();
        store(&p, &tok("good"), "mcp", RESOURCE, 3600); // created at 0
        let mut legacy: serde_json::Value = serde_json::from_slice(
            &block_on(p.get(&access_key(&TokenHash::of(&tok("good")))))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        legacy.as_object_mut().unwrap().remove("grant_created_at");
        block_on(p.put(
            &access_key(&TokenHash::of(&tok("legacy"))),
            legacy.to_string().as_bytes(),
            Duration::from_secs(3600),
        ))
        .unwrap();
        let admit_with = |not_before: Option<&str>, token: &str| {
            let pairs: Vec<(&str, &str)> = not_before
                .map(|v| vec![(names::TOKENS_NOT_BEFORE, v)])
                .unwrap_or_default();
            let settings = OAuthSettings::load(&crate::testing::source(&pairs));
            let mut r = Request::new(Method::Post, url::Url::parse(RESOURCE).unwrap());
            r.headers.set("authorization", format!("Bearer {token}"));
            let server = AuthServer::new(&settings, &r);
            block_on(admit(&p, &server, &r)).map(|record| record.is_some())
        };
        assert_eq!(admit_with(None, &tok("good")), Ok(true));
        assert_eq!(admit_with(None, &tok("legacy")), Ok(true));
        assert_eq!(
            admit_with(Some("1970-01-01T00:00:00Z"), &tok("good")),
            Ok(true)
        );
        assert_eq!(
            admit_with(Some("1970-01-01T00:00:00Z"), &tok("legacy")),
            Err(Denied::InvalidToken),
            "a record without a creation time counts as older"
        );
        assert_eq!(
            admit_with(Some("1970-01-01T00:00:01Z"), &tok("good")),
            Err(Denied::InvalidToken)
        );
        for bad in ["2099-01-01T00:00:00Z", "soon"] {
            let denied = admit_with(Some(bad), &tok("good")).unwrap_err();
            assert_eq!(denied, Denied::NotBefore);
            let r = challenge(&denied, "https://mcp.example.com/m");
            let body = String::from_utf8(r.body).unwrap();
            assert_eq!(r.status, 500);
            assert!(
                body.contains(names::TOKENS_NOT_BEFORE) && !body.contains(bad),
                "{body}"
            );
        }
    }

    #[test]
    fn a_token_of_no_minted_shape_costs_no_read() {
        let p = FakePlatform::new();
        let keys = crate::testing::user_keys();
        let routing = crate::oauth::ids::RoutingId::of(
            &keys,
            "c",
            &UserKey::of_email(&keys, "a@example.com"),
        );
        let routed = TokenKind::AccessToken
            .mint_routed(&p, &keys, &routing, 7)
            .unwrap();
        let garbled = format!("{}!!", &routed[..routed.len() - 2]);
        for token in [
            "not-a-token",
            "pmcp_at_unknown",
            "pmcp_rt_x",
            garbled.as_str(),
        ] {
            assert_eq!(
                call(&p, Some(&format!("Bearer {token}"))).unwrap_err(),
                Denied::InvalidToken,
                "{token}"
            );
        }
        assert_eq!(p.reads.get(), 0);
    }

    /// Issue 12: at most one storage read per authenticated request.
    #[test]
    fn one_storage_read_per_authenticated_request_without_the_memory() {
        let p = FakePlatform::new();
        let good = format!("Bearer {}", tok("good"));
        store(&p, &tok("good"), "mcp", RESOURCE, 3600);
        for n in 1..=3 {
            call(&p, Some(&good)).unwrap();
            assert_eq!(p.reads.get(), n);
        }
        assert_eq!(p.token_memory.borrow().len(), 0, "0 turns it off");
    }

    #[test]
    fn the_memory_saves_the_read_for_at_most_60_s() {
        let p = FakePlatform::new();
        let on = settings("60");
        let good = format!("Bearer {}", tok("good"));
        store(&p, &tok("good"), "mcp", RESOURCE, 3600);
        call_with(&p, &on, Some(&good)).unwrap();
        assert_eq!(p.reads.get(), 1);
        p.advance(Duration::from_secs(59));
        call_with(&p, &on, Some(&good)).unwrap();
        assert_eq!(p.reads.get(), 1, "a hit");
        // Revoked in another location: KV no longer has it, but this
        // isolate may still answer from memory, never from 60 s on.
        block_on(p.delete(&access_key(&TokenHash::of(&tok("good"))))).unwrap();
        call_with(&p, &on, Some(&good)).unwrap();
        p.advance(Duration::from_secs(1));
        assert_eq!(
            call_with(&p, &on, Some(&good)).unwrap_err(),
            Denied::InvalidToken
        );
        assert_eq!(p.reads.get(), 2);
    }

    #[test]
    fn every_check_runs_on_a_hit() {
        let p = FakePlatform::new();
        let on = settings("60");
        let good = format!("Bearer {}", tok("good"));
        store(&p, &tok("good"), "mcp", RESOURCE, 30);
        call_with(&p, &on, Some(&good)).unwrap();
        // Remembered for 60 s, but the token itself ends at 30 s.
        p.advance(Duration::from_secs(30));
        assert_eq!(
            call_with(&p, &on, Some(&good)).unwrap_err(),
            Denied::InvalidToken
        );
        // Refused records are never remembered.
        store(&p, &tok("noscope"), "other", RESOURCE, 3600);
        let noscope = format!("Bearer {}", tok("noscope"));
        call_with(&p, &on, Some(&noscope)).unwrap_err();
        assert_eq!(p.token_memory.borrow().len(), 0);
        // Another resource's request never takes this resource's record.
        let fresh = format!("Bearer {}", tok("fresh"));
        store(&p, &tok("fresh"), "mcp", RESOURCE, 3600);
        call_with(&p, &on, Some(&fresh)).unwrap();
        let mut r = Request::new(
            Method::Post,
            url::Url::parse("https://other.example/internal").unwrap(),
        );
        r.headers.set("authorization", &fresh);
        let elsewhere = AuthServer::new(&on, &r);
        assert_eq!(
            block_on(authorize(&p, &elsewhere, &r)).unwrap_err(),
            Denied::InvalidToken
        );
    }

    #[test]
    fn challenges() {
        let meta = "https://mcp.example.com/.well-known/oauth-protected-resource/internal";
        let r = challenge(&Denied::NoToken, meta);
        assert_eq!(r.status, 401);
        let h = r.headers.get("www-authenticate").unwrap();
        assert!(
            h.starts_with("Bearer ")
                && h.contains(&format!("resource_metadata=\"{meta}\""))
                && h.contains("scope=\"mcp\"")
        );
        assert!(!h.contains("error="));
        let r = challenge(&Denied::InvalidToken, meta);
        assert!(
            r.headers
                .get("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let r = challenge(
            &Denied::InsufficientScope(Shortfall {
                missing: vec![Scope::Mcp],
                challenge: ScopeSet::of(&[Scope::Mcp]),
            }),
            meta,
        );
        assert_eq!(r.status, 403);
        assert!(
            r.headers
                .get("www-authenticate")
                .unwrap()
                .contains("error=\"insufficient_scope\"")
        );
        assert_eq!(
            challenge(&Denied::Unavailable(StorageError("x".into())), meta).status,
            503
        );
        // Issue 15's step-up challenge, for `/mcp`'s metadata as well.
        let mcp_meta = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let both = Shortfall {
            missing: vec![Scope::SitesRead, Scope::StatsRead],
            challenge: ScopeSet::of(&[Scope::SitesRead, Scope::StatsRead]),
        };
        let r = challenge(&Denied::InsufficientScope(both), mcp_meta);
        assert_eq!(r.status, 403);
        assert_eq!(
            r.headers.get("www-authenticate").unwrap(),
            format!(
                "Bearer realm=\"plausible-mcp\", resource_metadata=\"{mcp_meta}\", scope=\"sites:read stats:read\", error=\"insufficient_scope\", error_description=\"This call needs the sites:read and stats:read scopes\""
            )
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({
                "error": "insufficient_scope",
                "error_description": "This call needs the sites:read and stats:read scopes, which the access token lacks; authorize again with scope \"sites:read stats:read\"",
                "scope": "sites:read stats:read",
            })
        );
    }
}
