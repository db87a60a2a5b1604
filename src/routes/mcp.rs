//! The MCP endpoints. `/mcp` authenticates with the caller's own
//! Plausible key, either as the bearer value itself or carried in one of
//! our access tokens issued for `/mcp` (the key form, issue 15);
//! `/internal` (see `oauth`) with our access tokens for it.

use super::reply::{KeyError, Refusal, key_refused, refusal};
use crate::audit::{self, Auditor};
use crate::config::deployment::Deployment;
use crate::config::mcp::Misconfigured;
use crate::config::names;
use crate::guard::{self, OriginPolicy};
use crate::http::{Method, Request, Response};
use crate::mcp::{self, Authority};
use crate::oauth::ids::TokenKind;
use crate::oauth::key_grant::{self, Holder};
use crate::oauth::resource::{self, Denied};
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::Audience;
use crate::plausible::sites::AllowedSites;
use crate::ports::{Clock, Log};
use crate::secret::PlausibleKey;

const METHODS: &str = "POST, OPTIONS";

/// The caller's Plausible key from `Authorization: Bearer <key>`. The
/// scheme is case-insensitive (RFC 9110 §11.1).
pub fn plausible_key(request: &Request) -> Result<PlausibleKey, KeyError> {
    let key = request
        .headers
        .credentials("bearer")
        .ok_or(KeyError::Missing)?;
    if TokenKind::is_ours(key) {
        return Err(KeyError::OurToken);
    }
    if key_grant::well_formed(key) {
        Ok(PlausibleKey::new(key))
    } else {
        Err(KeyError::Malformed)
    }
}

/// The answer to a misconfigured deployment: a 500 naming the variable,
/// and (once per isolate) its audit line.
fn misconfigured<P: Log + Clock>(
    platform: &P,
    auditor: &Auditor,
    misconfigured: Misconfigured,
) -> Response {
    audit::misconfiguration(platform, auditor, misconfigured.variable());
    refusal(Refusal::Misconfigured(misconfigured))
}

/// `/mcp`'s answer from the method, URL and headers alone, when there
/// is one: a refused Host or Origin, a CORS preflight, or a bearer value
/// refused by its shape (none; one of our tokens of a shape we never
/// mint; a value that cannot be a Plausible key). No storage, clock,
/// upstream or body is used; `None` means the request needs [`byok`].
/// [`byok`] starts with it, so both paths give the same bytes.
pub fn byok_head(deployment: &Deployment, request: &Request) -> Option<Response> {
    let settings = &deployment.mcp;
    if let Err(denied) = guard::check(
        request,
        &settings.allowed_hosts,
        OriginPolicy::AnyWellFormed,
    ) {
        return Some(guard::with_cors(denied, METHODS));
    }
    if request.method == Method::Options {
        return Some(guard::preflight(METHODS));
    }
    let metadata_url =
        || AuthServer::new(&deployment.oauth, request).resource_metadata_url_for(Audience::Mcp);
    let refused = match request.headers.credentials("bearer") {
        Some(token) if TokenKind::is_ours(token) => match resource::shaped_bearer(request) {
            Ok(_) => return None,
            Err(denied) => resource::challenge(&denied, &metadata_url()),
        },
        _ => match plausible_key(request) {
            Ok(_) => return None,
            Err(e) => key_refused(e, &metadata_url()),
        },
    };
    Some(guard::with_cors(refused, METHODS))
}

/// `/mcp`: bring your own key, as the bearer value or through OAuth.
pub async fn byok<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
) -> Response {
    if let Some(answer) = byok_head(deployment, request) {
        return answer;
    }
    let settings = &deployment.mcp;
    let server = AuthServer::new(&deployment.oauth, request);
    let ours = request
        .headers
        .credentials("bearer")
        .is_some_and(TokenKind::is_ours);
    let response = if ours {
        granted(platform, deployment, &server, request).await
    } else {
        match plausible_key(request) {
            // RFC 9728 §5.1: every 401 points at this resource's
            // metadata (no credentials: a bare challenge; a bad value:
            // invalid_token too), so an OAuth client (Claude.ai's
            // connectors) finds the key form from here.
            Err(e) => key_refused(e, &server.resource_metadata_url_for(Audience::Mcp)),
            Ok(key) => match settings.tool_context(key) {
                Ok(ctx) => mcp::serve(platform, &ctx, Authority::Unscoped, request).await,
                Err(e) => misconfigured(platform, &server.audit, e),
            },
        }
    };
    guard::with_cors(response, METHODS)
}

/// `/mcp` with one of our access tokens: the same check as `/internal`
/// (one KV read or the token memory, `TOKENS_NOT_BEFORE`), for a token
/// issued for `/mcp` only; then the tools run with the key sealed in the
/// grant. Never the token itself to Plausible (MCP: no token
/// passthrough).
async fn granted<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    server: &AuthServer<'_>,
    request: &Request,
) -> Response {
    let metadata_url = server.resource_metadata_url_for(Audience::Mcp);
    let record = match resource::authorize_for(platform, server, request, Audience::Mcp).await {
        Ok(record) => record,
        Err(denied) => {
            if let Some(variable) = denied.misconfigured() {
                audit::misconfiguration(platform, &server.audit, variable);
            }
            if let Some(line) = denied.log_line_at(Audience::Mcp) {
                platform.warn(&line);
            }
            return resource::challenge(&denied, &metadata_url);
        }
    };
    let Some(keys) = deployment.oauth.keys.as_ref() else {
        audit::misconfiguration(platform, &server.audit, names::COOKIE_SECRET);
        return refusal(Refusal::NoServerKey);
    };
    let key = match key_grant::holder(keys, &record.subject) {
        Holder::Key(held) => held.key,
        // A grant of `/mcp` always holds a key; one that does not open
        // (COOKIE_SECRET rotated without COOKIE_SECRET_PREVIOUS) must be
        // authorized again.
        Holder::Person | Holder::Unreadable => {
            platform.warn("mcp: an access token's grant holds no readable Plausible key");
            return resource::challenge(&Denied::InvalidToken, &metadata_url);
        }
    };
    let authority = Authority::Token {
        scope: &record.scope,
        resource_metadata: &metadata_url,
    };
    // The sites chosen on the consent page, of those named on the key
    // form (issue 15), narrow every tool, prompt, resource and completion.
    let allowed = AllowedSites::of_grant(record.sites.as_deref());
    match deployment.mcp.tool_context(key) {
        Ok(ctx) => {
            let mut ctx = ctx.restricted_to(allowed);
            ctx.granted = true;
            mcp::serve(platform, &ctx, authority, request).await
        }
        Err(e) => misconfigured(platform, &server.audit, e),
    }
}

/// `/internal`'s answer from the method, URL and headers alone, when
/// there is one: a refused Host or Origin, a CORS preflight, or (unless
/// Cloudflare Access vouches for the caller, which needs its keys) a
/// bearer token that is missing or of no shape we mint. Like
/// [`byok_head`]: nothing read, nothing counted; [`internal`] starts
/// with it.
pub fn internal_head(deployment: &Deployment, request: &Request) -> Option<Response> {
    let settings = &deployment.mcp;
    let origins = OriginPolicy::Hostnames(&settings.allowed_origins);
    if let Err(denied) = guard::check(request, &settings.allowed_hosts, origins) {
        return Some(guard::with_cors(denied, METHODS));
    }
    if request.method == Method::Options {
        return Some(guard::preflight(METHODS));
    }
    if resource::access_applies(&deployment.oauth, request) {
        return None;
    }
    let denied = resource::shaped_bearer(request).err()?;
    let server = AuthServer::new(&deployment.oauth, request);
    Some(guard::with_cors(
        resource::challenge(&denied, &server.resource_metadata_url()),
        METHODS,
    ))
}

/// `/internal`: our OAuth access tokens (or Cloudflare Access in
/// front); queries use the shared key.
pub async fn internal<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
) -> Response {
    if let Some(answer) = internal_head(deployment, request) {
        return answer;
    }
    let settings = &deployment.mcp;
    let server = AuthServer::new(&deployment.oauth, request);
    let response = match resource::admit(platform, &server, request).await {
        Err(denied) => {
            if let Some(variable) = denied.misconfigured() {
                audit::misconfiguration(platform, &server.audit, variable);
            }
            if let Some(line) = denied.log_line() {
                platform.warn(&line);
            }
            resource::challenge(&denied, &server.resource_metadata_url())
        }
        Ok(record) => {
            let metadata_url = server.resource_metadata_url();
            let authority = match &record {
                None => Authority::Unscoped,
                Some(r) => Authority::Token {
                    scope: &r.scope,
                    resource_metadata: &metadata_url,
                },
            };
            // A grant limited to chosen sites (issue 15) narrows every
            // tool, prompt, resource and completion to them.
            let allowed = AllowedSites::of_grant(record.as_ref().and_then(|r| r.sites.as_deref()));
            let context = deployment
                .shared_key
                .clone()
                .ok_or(Misconfigured::SharedKey)
                .and_then(|key| settings.tool_context(key))
                .and_then(|ctx| settings.with_configured_sites(ctx))
                .map(|ctx| ctx.restricted_to(allowed));
            match context {
                Ok(ctx) => mcp::serve(platform, &ctx, authority, request).await,
                Err(e) => misconfigured(platform, &server.audit, e),
            }
        }
    };
    guard::with_cors(response, METHODS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::names;
    use crate::testing::{FakePlatform, block_on, source};
    use url::Url;

    fn post(path: &str, authorization: &str) -> Request {
        let mut r = Request::new(
            Method::Post,
            Url::parse(&format!("https://mcp.example.com{path}")).unwrap(),
        );
        r.headers.set("authorization", authorization);
        r.headers.set("content-type", "application/json");
        r.headers.set("cf-connecting-ip", "203.0.113.77");
        r.body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec();
        r
    }

    fn deployment(extra: &[(&str, &str)]) -> Deployment {
        let mut pairs = vec![(names::MCP_ALLOWED_HOSTNAMES, "mcp.example.com")];
        pairs.extend_from_slice(extra);
        Deployment::load(&source(&pairs))
    }

    /// The audit lines of `p`, parsed.
    fn audits(p: &FakePlatform) -> Vec<serde_json::Value> {
        p.audits
            .borrow()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Issue 11: a misconfigured variable met at `/internal` answers a
    /// 500 naming it and writes one audit line per isolate (each test
    /// thread is its own isolate), never the value.
    #[test]
    fn internal_misconfigurations_are_audited_once_per_isolate() {
        let keys = crate::testing::user_keys();
        let p = FakePlatform::new();
        let routing = crate::oauth::ids::RoutingId::of(
            &keys,
            "c",
            &crate::oauth::ids::UserKey::of_email(&keys, "a@example.com"),
        );
        let routed = TokenKind::AccessToken
            .mint_routed(&p, &keys, &routing, 7)
            .unwrap();
        // The kill switch in the future, then USER_KEY_SECRET missing
        // while a routed token is presented.
        let cases = [
            (
                deployment(&[(names::TOKENS_NOT_BEFORE, "2999-01-01T00:00:00Z")]),
                format!("pmcp_at_{:A<43}", "x"),
                names::TOKENS_NOT_BEFORE,
                "2999",
            ),
            (
                deployment(&[]),
                routed.clone(),
                names::USER_KEY_SECRET,
                "pmcp_at_",
            ),
        ];
        for (d, token, variable, value) in &cases {
            let before = p.audits.borrow().len();
            for _ in 0..3 {
                let r = block_on(internal(
                    &p,
                    d,
                    &post("/internal", &format!("Bearer {token}")),
                ));
                assert_eq!(r.status, 500, "{variable}");
                let body = String::from_utf8(r.body).unwrap();
                assert!(body.contains(variable) && !body.contains(value), "{body}");
            }
            let lines = audits(&p);
            assert_eq!(lines.len(), before + 1, "once per isolate: {lines:?}");
            let line = &lines[before];
            assert_eq!(line["event"], "misconfiguration");
            assert_eq!(line["outcome"], "failure");
            assert_eq!(line["variable"], *variable);
            assert_eq!(line["ip"], "203.0.113.0/24");
            assert!(!line.to_string().contains(value), "{line}");
        }
    }

    /// Issue 11: `/mcp`'s own settings (here `PLAUSIBLE_CACHE_TTL`) are
    /// audited the same way when a request meets them.
    #[test]
    fn byok_misconfigurations_are_audited_once_per_isolate() {
        let p = FakePlatform::new();
        let d = deployment(&[(names::PLAUSIBLE_CACHE_TTL, "forever")]);
        for _ in 0..2 {
            let r = block_on(byok(&p, &d, &post("/mcp", "Bearer plausible-key-secret-1")));
            assert_eq!(r.status, 500);
            let body = String::from_utf8(r.body).unwrap();
            assert!(body.contains(names::PLAUSIBLE_CACHE_TTL) && !body.contains("forever"));
        }
        let lines = audits(&p);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["event"], "misconfiguration");
        assert_eq!(lines[0]["variable"], names::PLAUSIBLE_CACHE_TTL);
        let all = p.audits.borrow().concat() + &p.logs.borrow().concat();
        assert!(!all.contains("plausible-key-secret-1") && !all.contains("forever"));
    }

    #[test]
    fn every_mcp_misconfiguration_names_a_variable_the_worker_reads() {
        for m in [
            Misconfigured::BaseUrl,
            Misconfigured::DefaultSite,
            Misconfigured::SharedKey,
            Misconfigured::CacheTtl,
            Misconfigured::ConfiguredSites,
        ] {
            assert!(
                crate::config::deployment::inputs().contains(&m.variable()),
                "{m:?}"
            );
            let r = refusal(Refusal::Misconfigured(m));
            assert!(String::from_utf8(r.body).unwrap().contains(m.variable()));
        }
    }

    fn with_auth(value: Option<&str>) -> Request {
        let mut r = Request::new(Method::Post, Url::parse("https://a.example/mcp").unwrap());
        if let Some(v) = value {
            r.headers.set("authorization", v);
        }
        r
    }

    #[test]
    fn bearer_key_extraction() {
        let cases = [
            (Some("Bearer plausible-key-1"), Ok("plausible-key-1")),
            (Some("bearer   plausible-key-1  "), Ok("plausible-key-1")),
            (Some("BEARER plausible-key-1"), Ok("plausible-key-1")),
            (None, Err(KeyError::Missing)),
            (Some("Basic dXNlcjpwYXNz"), Err(KeyError::Missing)),
            (Some("Bearer"), Err(KeyError::Missing)),
            (Some("Bearer short"), Err(KeyError::Malformed)),
            (Some("Bearer has space inside"), Err(KeyError::Malformed)),
            (Some("Bearer ключ-ключ-ключ"), Err(KeyError::Malformed)),
            (
                Some("Bearer pmcp_at_AAAAAAAAAAAAAAAAAAAA"),
                Err(KeyError::OurToken),
            ),
        ];
        for (header, expected) in cases {
            let got = plausible_key(&with_auth(header));
            assert_eq!(
                got.as_ref().map(|k| k.secret()).map_err(|e| *e),
                expected,
                "{header:?}"
            );
        }
    }
}
