//! plausible-mcp: a remote MCP server for Plausible Analytics on
//! Cloudflare Workers.
//!
//! The request path, top to bottom:
//! 1. `fetch` (bottom of this file, wasm32 only) converts the Workers
//!    request into [`http::Request`] and builds a [`platform`] over the
//!    bindings.
//! 2. [`handle`] routes by path (the table in [`route`]) to a handler
//!    module, then stamps the security headers on whatever came back.
//! 3. Handlers extract, call the core, and map the result to a response.
//!    The core modules never import `worker`; they reach storage, the
//!    clock, randomness and the network through [`ports`].
#![forbid(unsafe_code)]

mod audit;
mod body;
mod build_info;
mod config;
mod crypto;
mod doc_cache;
mod guard;
mod http;
mod identity;
mod limits;
mod mcp;
mod oauth;
mod oidc;
mod pages;
mod plausible;
mod ports;
mod routes;
mod secret;
mod ssrf_guard;
// The test build's clock and storage-fault hooks (absent from the release
// build).
#[cfg(feature = "test-hooks")]
mod test_hooks;

#[cfg(target_arch = "wasm32")]
mod platform;
#[cfg(test)]
mod stored_v1_tests;
// The fuzz targets' entry points and the in-memory platform they drive:
// only in `cargo fuzz` builds (`--cfg fuzzing`) and tests, never in the
// worker. See FUZZING.md.
#[cfg(any(fuzzing, test))]
mod fuzz_entry;
#[cfg(test)]
mod testing;
#[cfg(all(fuzzing, not(test)))]
#[allow(dead_code)]
#[path = "testing.rs"]
mod testing;

/// Runs the fuzz target `name` on `data` (the `fuzz/` crate's only door
/// into the crate; it exists only under `--cfg fuzzing`).
#[cfg(fuzzing)]
pub fn fuzz_run(name: &str, data: &[u8]) {
    match fuzz_entry::TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, target)) => target(data),
        None => unreachable!("no fuzz target {name}"),
    }
}

use config::deployment::Deployment;
use http::{Method, Request, Response};
use limits::{ClientAddress, RateLimits, Tier};
use oauth::server::Platform;
use oauth::types::Audience;
use ports::{Clock, IsolateCache};
use routes::reply::{MAX_FORM_BODY_BYTES, Refusal, Surface, refusal};

/// Every route the worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The landing page: what this server is and how to connect.
    Landing,
    /// Liveness and build identity.
    Health,
    /// Crawlers are asked to stay out of everything.
    Robots,
    /// MCP with the caller's own Plausible key as the bearer token.
    McpByok,
    /// MCP behind our OAuth access tokens, with the shared key.
    McpInternal,
    /// RFC 8414 authorization server metadata.
    AuthorizationServerMetadata,
    /// RFC 9728 protected resource metadata of `/internal` (root and
    /// path forms).
    ProtectedResourceMetadata,
    /// RFC 9728 protected resource metadata of `/mcp` (path form).
    ProtectedResourceMetadataMcp,
    /// RFC 7591 dynamic client registration.
    Register,
    /// RFC 6749 §4.1.1 authorization endpoint.
    Authorize,
    /// The key form's post (`/mcp` authorizations, issue 15).
    AuthorizeKey,
    /// The upstream provider's redirect back (OIDC Core §3.1.2.5).
    Callback,
    /// The consent form's Approve/Deny post.
    Consent,
    /// RFC 6749 §3.2 token endpoint.
    Token,
    /// RFC 7009 revocation endpoint.
    Revoke,
    /// Connected applications: the page (GET) and its actions (POST).
    Connections,
    /// The connections page's sign-in.
    ConnectionsLogin,
    /// The connections page's Plausible key, entered again (issue 15).
    ConnectionsKey,
    /// The end-to-end tests' view of the listings (loopback with
    /// `TEST_IDENTITY_HOOK` only; elsewhere a 404 like any other path).
    /// The test build only: the release build has no such route.
    #[cfg(feature = "test-hooks")]
    TestListings,
    /// The RS256 known-answer vectors run through the runtime's
    /// WebCrypto (the same gate as `TestListings`; test build only).
    #[cfg(feature = "test-hooks")]
    TestKat,
    NotFound,
}

/// The route table. Paths match exactly: `/mcpx` is not `/mcp`.
fn route(path: &str) -> Route {
    match path {
        "/" => Route::Landing,
        "/health" => Route::Health,
        "/robots.txt" => Route::Robots,
        "/mcp" => Route::McpByok,
        "/internal" => Route::McpInternal,
        "/.well-known/oauth-authorization-server" => Route::AuthorizationServerMetadata,
        "/.well-known/oauth-protected-resource"
        | "/.well-known/oauth-protected-resource/internal" => Route::ProtectedResourceMetadata,
        "/.well-known/oauth-protected-resource/mcp" => Route::ProtectedResourceMetadataMcp,
        "/register" => Route::Register,
        "/authorize" => Route::Authorize,
        "/authorize/key" => Route::AuthorizeKey,
        "/callback" => Route::Callback,
        "/consent" => Route::Consent,
        "/token" => Route::Token,
        "/revoke" => Route::Revoke,
        "/connections" => Route::Connections,
        "/connections/login" => Route::ConnectionsLogin,
        "/connections/key" => Route::ConnectionsKey,
        #[cfg(feature = "test-hooks")]
        "/__test/listings" => Route::TestListings,
        #[cfg(feature = "test-hooks")]
        "/__test/kat" => Route::TestKat,
        _ => Route::NotFound,
    }
}

impl Route {
    /// Who reads this route's refusals.
    fn surface(self) -> Surface {
        match self {
            Route::McpByok | Route::McpInternal => Surface::Mcp,
            Route::Authorize
            | Route::AuthorizeKey
            | Route::Callback
            | Route::Consent
            | Route::ConnectionsKey => Surface::Browser,
            _ => Surface::Api,
        }
    }

    /// The most body bytes read for this route; past it, 413 before
    /// routing. MCP messages carry tool arguments (1 MiB, as the
    /// transport checks); every other route takes a small form or
    /// registration document, or no body at all.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn body_cap(self) -> usize {
        match self.surface() {
            Surface::Mcp => mcp::MAX_BODY_BYTES,
            Surface::Api | Surface::Browser => MAX_FORM_BODY_BYTES,
        }
    }
}

/// The most body bytes read for a request to `path`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn body_cap(path: &str) -> usize {
    route(path).body_cap()
}

/// The answer to a request whose body passed its route's ceiling.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn body_too_large(path: &str) -> Response {
    let mut response = refusal(Refusal::TooLarge(route(path).surface()));
    http::apply_security_headers(&mut response);
    response
}

/// The answer to a request that its method, URL and headers alone
/// decide, before its body is read and before any rate limit is counted;
/// `None` when it needs [`handle_with_body`]. `request` is the head: the
/// fetch path calls this with an empty body.
///
/// Answered here:
/// - a Host (and, at the MCP endpoints, Origin) this deployment refuses;
/// - at `/mcp` and `/internal`, a CORS preflight and a bearer value
///   refused by its shape: none, one of no shape we mint (the check
///   `resource::shaped_bearer` also makes in the full path), at `/mcp` a
///   value that cannot be a Plausible key (`routes::mcp::byok_head`);
/// - routes whose answer never reads a body or storage: `/`, `/health`,
///   `/robots.txt`, the discovery documents, unknown paths.
///
/// Why before the limiters: these answers read no storage and call no
/// upstream, so they cost what a GET or `/health` costs, and the limiters
/// count only POSTs, never those. An anonymous caller learns nothing from
/// them (no key or token is tested by a request refused by its shape), so
/// spending a rate-limit call on them protects nothing, while reading a
/// body up to 1 MiB and two limiter calls first made them several times
/// dearer than the refusal itself (BENCHMARKS.md, "Refusal before the
/// body"). Every answer is the one the full path gives: the handlers
/// start with the same functions.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn answer_before_body(deployment: &Deployment, request: &Request) -> Option<Response> {
    let route = route(request.path());
    let mut response = match route {
        Route::McpByok => routes::mcp::byok_head(deployment, request)?,
        Route::McpInternal => routes::mcp::internal_head(deployment, request)?,
        // Every other route checks Host here, before it reads the
        // request's origin into an issuer.
        _ => match guard::host_allowed(request, &deployment.mcp.allowed_hosts) {
            Err(refused) => refused.response(),
            Ok(()) => match route {
                Route::Landing => routes::connections::landing(request),
                Route::Health => routes::health::handle(request),
                Route::Robots => routes::health::robots(),
                Route::AuthorizationServerMetadata => {
                    routes::oauth::authorization_server_metadata(request, &deployment.oauth)
                }
                Route::ProtectedResourceMetadata => routes::oauth::protected_resource_metadata(
                    request,
                    &deployment.oauth,
                    Audience::Internal,
                ),
                Route::ProtectedResourceMetadataMcp => routes::oauth::protected_resource_metadata(
                    request,
                    &deployment.oauth,
                    Audience::Mcp,
                ),
                Route::NotFound => refusal(Refusal::NotFound),
                _ => return None,
            },
        },
    };
    http::apply_security_headers(&mut response);
    Some(response)
}

/// Handles one request end to end: [`answer_before_body`], else
/// [`handle_with_body`]. (Only tests call it; the fetch path reads the
/// body between the two.)
#[cfg(test)]
async fn handle<P: Platform + RateLimits>(
    platform: &P,
    deployment: &Deployment,
    request: Request,
) -> Response {
    match answer_before_body(deployment, &request) {
        Some(response) => response,
        None => handle_with_body(platform, deployment, request).await,
    }
}

/// Handles a request [`answer_before_body`] left open, its body read:
/// the limiters, the route's handler, the failures tier, the security
/// headers. (Natively only tests call it; the allowance keeps the
/// compiler's dead-code search rooted here.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
async fn handle_with_body<P: Platform + RateLimits>(
    platform: &P,
    deployment: &Deployment,
    request: Request,
) -> Response {
    let route = route(request.path());
    let limits = Limits {
        platform,
        address: ClientAddress::of(&request.headers),
        off: deployment.rate_limits_off.as_deref(),
    };
    if let Some(tier) = limits.before(route, &request, deployment).await {
        audit_limited(platform, deployment, &request, tier);
        let mut response = refusal(Limits::<P>::limited(route, tier));
        http::apply_security_headers(&mut response);
        return response;
    }
    let mut response = serve(platform, deployment, route, &request).await;
    if let Some(tier) = limits.after(route, &response).await {
        audit_limited(platform, deployment, &request, tier);
        response = refusal(Limits::<P>::limited(route, tier));
    }
    http::apply_security_headers(&mut response);
    response
}

/// The routes whose failures the strict tier counts, and what a failure
/// looks like there: a 400 or 401 from `/token` and `/revoke` (invalid
/// client, grant or request, RFC 6749 §5.2), a refused registration
/// (RFC 7591 §3.2.2), a bad state or consent post at `/consent` (400/403).
/// Our own 5xx are never the caller's failure.
fn counts_failure(route: Route, status: u16) -> bool {
    match route {
        Route::Token | Route::Revoke => matches!(status, 400 | 401),
        Route::Register => status == 400,
        Route::Consent => matches!(status, 400 | 403),
        _ => false,
    }
}

/// One request's view of the rate limits.
struct Limits<'a, P> {
    platform: &'a P,
    address: ClientAddress,
    /// The test build's `TEST_RATE_LIMITS_OFF` (ignored by release builds).
    off: Option<&'a str>,
}

impl<P: RateLimits + IsolateCache + Clock> Limits<'_, P> {
    async fn allow(&self, tier: Tier, key: &str) -> bool {
        limits::switched_off(tier, self.off) || self.platform.allow(tier, key).await
    }

    fn limited(route: Route, tier: Tier) -> Refusal {
        Refusal::Limited {
            surface: route.surface(),
            retry_after_secs: tier.period_secs(),
        }
    }

    /// This isolate's note that the address passed the failures tier.
    fn tripped_key(&self) -> String {
        format!("limit-tripped/{}", self.address.as_str())
    }

    /// The tiers counted before the handler runs.
    async fn before(
        &self,
        route: Route,
        request: &Request,
        deployment: &Deployment,
    ) -> Option<Tier> {
        if request.method != Method::Post {
            return None;
        }
        // An address past the failures tier is refused at every counted
        // route until the period ends (in this isolate; the binding
        // catches it in others at its next failure), so it cannot keep
        // guessing and read the answer of the one guess that succeeds.
        if counts_failure(route, 400)
            && self
                .platform
                .recall(&self.tripped_key(), self.platform.now())
                .is_some()
        {
            return Some(Tier::Failures);
        }
        let address = self.address.as_str();
        match route {
            Route::Register => {
                (!self.allow(Tier::Registrations, address).await).then_some(Tier::Registrations)
            }
            Route::McpByok | Route::McpInternal => {
                let surface = if route == Route::McpByok {
                    "mcp"
                } else {
                    "internal"
                };
                if !self
                    .allow(Tier::McpAddress, &format!("{surface}:{address}"))
                    .await
                {
                    return Some(Tier::McpAddress);
                }
                let credential = request.headers.credentials("bearer")?;
                let key = format!("{surface}:{}", limits::credential_key(credential));
                (!self.allow(Tier::McpCredential, &key).await).then_some(Tier::McpCredential)
            }
            // Every post of the key form, whatever its outcome, per
            // address (never per client: a shared client id must not let
            // one person lock everyone out): each may cost a Plausible
            // query, and the form must not become a fast key checker.
            // The connections page's key form shares the key form's
            // allowance: both take a pasted key (issue 15).
            Route::AuthorizeKey | Route::ConnectionsKey => {
                (!self.allow(Tier::KeyForm, address).await).then_some(Tier::KeyForm)
            }
            Route::Token => {
                let grant = refreshed_grant(request, deployment)?;
                (!self.allow(Tier::Refreshes, &grant).await).then_some(Tier::Refreshes)
            }
            _ => None,
        }
    }

    /// The failures tier, counted once the handler has refused.
    async fn after(&self, route: Route, response: &Response) -> Option<Tier> {
        if !counts_failure(route, response.status) {
            return None;
        }
        if self.allow(Tier::Failures, self.address.as_str()).await {
            return None;
        }
        let now = self.platform.now();
        let until = now.plus(std::time::Duration::from_secs(Tier::Failures.period_secs()));
        self.platform.remember(&self.tripped_key(), b"1", until);
        Some(Tier::Failures)
    }
}

/// The audit line of a limited request (issue 11): the tier's binding
/// name as the reason, the client address as the auditor truncates it.
fn audit_limited<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
    tier: Tier,
) {
    let auditor = audit::Auditor::of(deployment.oauth.audit, &request.headers);
    audit::rate_limited(platform, &auditor, tier.binding(), None);
}

/// The grant a refresh request names: the (client, user) pair its
/// refresh token routes to, only once the token's tag verifies (a forged
/// token must not spend someone else's allowance). Anything else
/// (another grant type, a legacy or garbled token) is left to the token
/// endpoint and, when refused, to the failures tier.
fn refreshed_grant(request: &Request, deployment: &Deployment) -> Option<String> {
    let form = http::form(&request.headers, &request.body).ok()?;
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return None;
    }
    let token = form.get("refresh_token")?;
    let oauth::ids::Format::Routed(unverified) =
        oauth::ids::TokenKind::RefreshToken.parse(token)?
    else {
        return None;
    };
    let keys = deployment.oauth.user_keys.as_ref()?;
    Some(unverified.verify(keys)?.routing.to_hex())
}

async fn serve<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    route: Route,
    request: &Request,
) -> Response {
    // The settings were derived once per isolate (`config::deployment`);
    // the request-dependent part (`AuthServer`) is built per request.
    let oauth = &deployment.oauth;
    match route {
        Route::Landing => routes::connections::landing(request),
        Route::Health => routes::health::handle(request),
        Route::Robots => routes::health::robots(),
        Route::McpByok => routes::mcp::byok(platform, deployment, request).await,
        Route::McpInternal => routes::mcp::internal(platform, deployment, request).await,
        Route::AuthorizationServerMetadata => {
            routes::oauth::authorization_server_metadata(request, oauth)
        }
        Route::ProtectedResourceMetadata => {
            routes::oauth::protected_resource_metadata(request, oauth, Audience::Internal)
        }
        Route::ProtectedResourceMetadataMcp => {
            routes::oauth::protected_resource_metadata(request, oauth, Audience::Mcp)
        }
        Route::Register => routes::oauth::register(platform, request).await,
        Route::Authorize => routes::oauth::authorize(platform, oauth, request).await,
        Route::AuthorizeKey => routes::oauth::authorize_key(platform, deployment, request).await,
        Route::Callback => routes::oauth::callback(platform, deployment, request).await,
        Route::Consent => routes::oauth::consent(platform, oauth, request).await,
        Route::Token => routes::oauth::token(platform, oauth, request).await,
        Route::Revoke => routes::oauth::revoke(platform, oauth, request).await,
        Route::Connections => routes::connections::page(platform, oauth, request).await,
        Route::ConnectionsLogin => routes::connections::login(platform, oauth, request).await,
        Route::ConnectionsKey => routes::connections::key(platform, oauth, request).await,
        #[cfg(feature = "test-hooks")]
        Route::TestListings => routes::oauth::test_listings(platform, oauth, request).await,
        #[cfg(feature = "test-hooks")]
        Route::TestKat => routes::oauth::test_kat(platform, oauth, request).await,
        Route::NotFound => refusal(Refusal::NotFound),
    }
}

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: platform::EdgeRequest,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<platform::EdgeResponse> {
    let platform = platform::WorkerPlatform::new(env);
    let response = match platform::to_core_head(&req) {
        Ok(head) => {
            let deployment = platform.deployment();
            #[cfg(feature = "test-hooks")]
            platform.run_clock_ahead(&deployment.oauth, &head);
            match answer_before_body(&deployment, &head) {
                Some(answer) => answer,
                None => match platform::read_core_body(&req, head, body_cap).await {
                    Ok(request) => handle_with_body(&platform, &deployment, request).await,
                    Err(refused) => inbound_refused(refused),
                },
            }
        }
        Err(refused) => inbound_refused(refused),
    };
    platform::to_edge_response(response)
}

/// The answer to a request the edge could not convert.
#[cfg(target_arch = "wasm32")]
fn inbound_refused(refused: platform::Inbound) -> Response {
    match refused {
        platform::Inbound::TooLarge(path) => body_too_large(&path),
        platform::Inbound::Unreadable => {
            let mut r = Response::json(400, &serde_json::json!({"error": "invalid_request"}));
            http::apply_security_headers(&mut r);
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::testing::{FakePlatform, block_on};
    use std::collections::HashMap;

    fn get(path: &str) -> Response {
        let url = url::Url::parse("https://mcp.example.com")
            .unwrap()
            .join(path)
            .unwrap();
        get_url(url)
    }

    fn get_url(url: url::Url) -> Response {
        let platform = FakePlatform::new();
        let source: HashMap<String, String> = [(
            "MCP_ALLOWED_HOSTNAMES".to_owned(),
            "mcp.example.com".to_owned(),
        )]
        .into();
        block_on(handle(
            &platform,
            &Deployment::load(&source),
            Request::new(Method::Get, url),
        ))
    }

    /// Issue 10: a foreign Host was reflected into the issuer of the
    /// discovery documents; now no route answers on it.
    #[test]
    fn no_route_answers_on_a_foreign_host() {
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource/internal",
            "/authorize?client_id=x",
            "/register",
            "/token",
            "/health",
            "/robots.txt",
            "/mcp",
            "/nowhere",
        ] {
            let url = url::Url::parse("https://evil.example")
                .unwrap()
                .join(path)
                .unwrap();
            let resp = get_url(url);
            assert_eq!(resp.status, 403, "{path}");
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            assert!(!body.contains("https://evil.example"), "{path}: {body}");
        }
        let ok = get("/.well-known/oauth-authorization-server");
        assert_eq!(ok.json_body()["issuer"], "https://mcp.example.com");
    }

    #[test]
    fn robots_are_kept_out_of_every_endpoint() {
        let robots = get("/robots.txt");
        assert_eq!(robots.status, 200);
        assert_eq!(
            String::from_utf8(robots.body).unwrap(),
            "User-agent: *\nDisallow: /\n"
        );
        for path in [
            "/authorize",
            "/token",
            "/.well-known/oauth-authorization-server",
            "/health",
        ] {
            assert_eq!(
                get(path).headers.get("x-robots-tag"),
                Some("noindex, nofollow"),
                "{path}"
            );
        }
    }

    #[test]
    fn health_reports_version_and_commit() {
        let resp = get("/health");
        assert_eq!(resp.status, 200);
        let body = resp.json_body();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["commit"].as_str().is_some_and(|c| !c.is_empty()));
    }

    fn post(platform: &FakePlatform, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let url = url::Url::parse("https://mcp.example.com")
            .unwrap()
            .join(path)
            .unwrap();
        let mut request = Request::new(Method::Post, url);
        for (n, v) in headers {
            request.headers.set(n, *v);
        }
        request.body = body.as_bytes().to_vec();
        let source: HashMap<String, String> = [(
            "MCP_ALLOWED_HOSTNAMES".to_owned(),
            "mcp.example.com".to_owned(),
        )]
        .into();
        block_on(handle(platform, &Deployment::load(&source), request))
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

    /// The connections page's key form and the `/mcp` key form share one
    /// allowance per address: both take a pasted key (issue 15).
    #[test]
    fn the_connections_key_form_shares_the_key_form_allowance() {
        let p = FakePlatform::new();
        p.rate_limits
            .borrow_mut()
            .insert(Tier::KeyForm.binding(), 2);
        assert_ne!(post(&p, "/authorize/key", &[FORM], "").status, 429);
        assert_ne!(post(&p, "/connections/key", &[FORM], "").status, 429);
        let limited = post(&p, "/connections/key", &[FORM], "api_key=k");
        assert_eq!(limited.status, 429);
        assert_eq!(limited.headers.get("retry-after"), Some("60"));
        assert!(
            limited
                .headers
                .get("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "a page for a browser"
        );
        assert_eq!(post(&p, "/authorize/key", &[FORM], "").status, 429);
        // The page's other actions are not this tier's.
        assert_ne!(post(&p, "/connections", &[FORM], "").status, 429);
    }

    #[test]
    fn failures_past_the_strict_tier_are_429_and_then_refused_up_front() {
        let p = FakePlatform::new();
        p.rate_limits
            .borrow_mut()
            .insert(Tier::Failures.binding(), 2);
        let from = |ip| [FORM, ("cf-connecting-ip", ip)];
        let bad = "grant_type=refresh_token&refresh_token=pmcp_rt_x&client_id=pmcp_client_x";
        for _ in 0..2 {
            assert_eq!(post(&p, "/token", &from("198.51.100.7"), bad).status, 401);
        }
        let third = post(&p, "/token", &from("198.51.100.7"), bad);
        assert_eq!(third.status, 429);
        assert_eq!(third.headers.get("retry-after"), Some("60"));
        assert_eq!(third.json_body()["error"], "temporarily_unavailable");
        // Now refused before the handler, at every counted route.
        let revoke = post(&p, "/revoke", &from("198.51.100.7"), "token=x");
        assert_eq!(revoke.status, 429);
        // Another address, and the same address a period later, are not.
        assert_eq!(post(&p, "/token", &from("198.51.100.8"), bad).status, 401);
        p.now.set(p.now.get() + 61_000);
        assert_eq!(post(&p, "/token", &from("198.51.100.7"), bad).status, 401);
    }

    #[test]
    fn registrations_and_mcp_requests_are_limited_per_address_and_credential() {
        let p = FakePlatform::new();
        p.rate_limits
            .borrow_mut()
            .insert(Tier::Registrations.binding(), 1);
        p.rate_limits
            .borrow_mut()
            .insert(Tier::McpCredential.binding(), 1);
        let json = ("content-type", "application/json");
        let doc =
            r#"{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#;
        assert_eq!(post(&p, "/register", &[json], doc).status, 201);
        let second = post(&p, "/register", &[json], doc);
        assert_eq!(second.status, 429);
        assert_eq!(second.json_body()["error"], "temporarily_unavailable");
        let mcp = |key: &str| {
            let auth = format!("Bearer {key}");
            post(&p, "/mcp", &[("authorization", auth.as_str())], "{}")
        };
        assert_ne!(mcp("plausible-key-1").status, 429);
        let limited = mcp("plausible-key-1");
        assert_eq!(limited.status, 429);
        assert_eq!(limited.json_body()["error"]["code"], -32600);
        assert_ne!(mcp("plausible-key-2").status, 429, "another credential");
    }

    /// A POST of `body` to `path` with `headers`, from one address.
    fn request(path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        let url = url::Url::parse("https://mcp.example.com")
            .unwrap()
            .join(path)
            .unwrap();
        let mut request = Request::new(Method::Post, url);
        request.headers.set("cf-connecting-ip", "198.51.100.9");
        for (n, v) in headers {
            request.headers.set(n, *v);
        }
        request.body = body.as_bytes().to_vec();
        request
    }

    fn deployment() -> Deployment {
        Deployment::load(&crate::testing::source(&[(
            config::names::MCP_ALLOWED_HOSTNAMES,
            "mcp.example.com",
        )]))
    }

    /// A platform that counts every MCP limiter call (a limit is set, so
    /// the fake records a count per call) and refuses none.
    fn counting() -> FakePlatform {
        let p = FakePlatform::new();
        for tier in [Tier::McpAddress, Tier::McpCredential] {
            p.rate_limits.borrow_mut().insert(tier.binding(), 1_000);
        }
        p
    }

    const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

    /// Requests their head alone refuses: answered by
    /// `answer_before_body`, which takes no body and no platform (so it
    /// can neither read one nor count a limit), with exactly the bytes of
    /// the full path (limiters, handler, security headers) for the same
    /// request with its body.
    #[test]
    fn refusals_by_shape_are_answered_from_the_head_with_the_same_bytes() {
        let d = deployment();
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);
        let cases: [Case<'_>; 10] = [
            ("/internal", &[], 401),
            (
                "/internal",
                &[("authorization", "Bearer not-one-of-ours")],
                401,
            ),
            (
                "/internal",
                &[("authorization", "Bearer pmcp_at_short")],
                401,
            ),
            ("/internal", &[("origin", "https://evil.example")], 403),
            ("/mcp", &[], 401),
            ("/mcp", &[("authorization", "Bearer short")], 401),
            ("/mcp", &[("authorization", "Bearer pmcp_at_short")], 401),
            ("/mcp", &[("origin", "null")], 403),
            ("/health", &[], 405),
            ("/nowhere", &[], 404),
        ];
        for (path, headers, status) in cases {
            let mut head = request(path, headers, "");
            head.body.clear();
            let early = answer_before_body(&d, &head)
                .unwrap_or_else(|| panic!("{path} {headers:?}: not answered early"));
            assert_eq!(early.status, status, "{path} {headers:?}");
            let p = counting();
            let full = block_on(handle_with_body(&p, &d, request(path, headers, TOOLS_LIST)));
            assert_eq!(early, full, "{path} {headers:?}");
            // Through `handle` the limiters are never reached: limits of
            // zero would have answered 429.
            let p = FakePlatform::new();
            for tier in [Tier::McpAddress, Tier::McpCredential] {
                p.rate_limits.borrow_mut().insert(tier.binding(), 0);
            }
            let answered = block_on(handle(&p, &d, request(path, headers, TOOLS_LIST)));
            assert_eq!(answered, early, "{path} {headers:?}");
            assert!(p.rate_counts.borrow().is_empty());
        }
        // A foreign Host, on every kind of route.
        for path in ["/internal", "/mcp", "/token", "/health"] {
            let url = url::Url::parse("https://evil.example")
                .unwrap()
                .join(path)
                .unwrap();
            let answer = answer_before_body(&d, &Request::new(Method::Post, url));
            assert_eq!(answer.map(|r| r.status), Some(403), "{path}");
        }
        // The challenge still points at the resource's metadata.
        let head = request("/internal", &[("authorization", "Bearer x")], "");
        let challenge = answer_before_body(&d, &head).unwrap();
        assert!(
            challenge
                .headers
                .get("www-authenticate")
                .is_some_and(|h| h.contains("resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/internal\"")
                    && h.contains("error=\"invalid_token\"")),
            "{:?}",
            challenge.headers
        );
        assert_eq!(
            challenge.headers.get("x-content-type-options"),
            Some("nosniff")
        );
    }

    /// A credential of a shape we accept is left to the full path: it
    /// needs storage (a token) or Plausible (a key), so both limiters
    /// count it first, and a spent credential allowance still answers 429.
    #[test]
    fn well_shaped_credentials_still_go_through_the_limiters() {
        let d = deployment();
        let token = format!("Bearer pmcp_at_{:A<43}", "x");
        for (path, auth) in [
            ("/internal", token.as_str()),
            ("/mcp", token.as_str()),
            ("/mcp", "Bearer plausible-key-1"),
        ] {
            let headers = [
                ("authorization", auth),
                ("content-type", "application/json"),
            ];
            assert_eq!(
                answer_before_body(&d, &request(path, &headers, "")),
                None,
                "{path}"
            );
            let p = counting();
            p.rate_limits
                .borrow_mut()
                .insert(Tier::McpCredential.binding(), 1);
            let first = block_on(handle(&p, &d, request(path, &headers, TOOLS_LIST)));
            assert_ne!(first.status, 429, "{path}");
            let counted: Vec<&str> = p.rate_counts.borrow().keys().map(|k| k.0).collect();
            assert!(
                counted.contains(&Tier::McpAddress.binding())
                    && counted.contains(&Tier::McpCredential.binding()),
                "{path}: {counted:?}"
            );
            let second = block_on(handle(&p, &d, request(path, &headers, TOOLS_LIST)));
            assert_eq!(second.status, 429, "{path}");
        }
        // Cloudflare Access's assertion needs its keys: never refused early.
        let access = Deployment::load(&crate::testing::source(&[
            (config::names::MCP_ALLOWED_HOSTNAMES, "mcp.example.com"),
            (
                config::names::CF_ACCESS_TEAM_DOMAIN,
                "team.cloudflareaccess.com",
            ),
            (config::names::CF_ACCESS_AUD, "aud"),
        ]));
        assert!(access.oauth.access_app.is_some());
        let asserted = request("/internal", &[("cf-access-jwt-assertion", "x.y.z")], "");
        assert_eq!(answer_before_body(&access, &asserted), None);
        // Without the assertion, the bearer's shape decides as before.
        let bare = request("/internal", &[], "");
        assert_eq!(
            answer_before_body(&access, &bare).map(|r| r.status),
            Some(401)
        );
    }

    /// Both MCP tiers count a post that reaches them, and when both
    /// refuse, the address tier is the one reported (it is asked first;
    /// asking both at once was measured no cheaper: BENCHMARKS.md,
    /// "Refusal before the body").
    #[test]
    fn both_mcp_tiers_are_counted_and_the_address_tier_reported_first() {
        let d = deployment();
        let p = counting();
        for tier in [Tier::McpAddress, Tier::McpCredential] {
            p.rate_limits.borrow_mut().insert(tier.binding(), 1);
        }
        let headers = [("authorization", "Bearer plausible-key-1")];
        let first = block_on(handle(&p, &d, request("/mcp", &headers, TOOLS_LIST)));
        assert_ne!(first.status, 429);
        let second = block_on(handle(&p, &d, request("/mcp", &headers, TOOLS_LIST)));
        assert_eq!(second.status, 429);
        let reasons: Vec<serde_json::Value> = p
            .audits
            .borrow()
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["event"] == "rate_limited")
            .map(|l| l["reason"].clone())
            .collect();
        assert_eq!(reasons, [Tier::McpAddress.binding()]);
        let counts = p.rate_counts.borrow();
        for tier in [Tier::McpAddress, Tier::McpCredential] {
            assert!(
                counts.keys().any(|k| k.0 == tier.binding()),
                "{:?}",
                tier.binding()
            );
        }
    }

    #[test]
    fn body_caps_per_route() {
        assert_eq!(body_cap("/mcp"), 1024 * 1024);
        assert_eq!(body_cap("/internal"), 1024 * 1024);
        for path in ["/token", "/revoke", "/register", "/consent", "/nowhere"] {
            assert_eq!(body_cap(path), 32 * 1024, "{path}");
        }
        assert_eq!(body_too_large("/mcp").json_body()["error"]["code"], -32600);
        assert_eq!(
            body_too_large("/token").json_body()["error"],
            "invalid_request"
        );
        let page = body_too_large("/consent");
        assert_eq!(page.status, 413);
        assert_eq!(page.headers.get("x-frame-options"), Some("DENY"));
    }

    #[test]
    fn the_root_is_the_landing_page_and_connections_has_its_routes() {
        let resp = get("/");
        assert_eq!(resp.status, 200);
        let page = String::from_utf8(resp.body.clone()).unwrap();
        assert!(page.contains("https://mcp.example.com/internal"));
        assert!(page.contains("href=\"/connections\""));
        assert!(
            resp.headers
                .get("content-security-policy")
                .is_some_and(|c| c.contains("default-src 'none'"))
        );
        assert_eq!(route("/connections"), Route::Connections);
        assert_eq!(route("/connections/login"), Route::ConnectionsLogin);
        assert_eq!(route("/connections/key"), Route::ConnectionsKey);
    }

    #[test]
    fn unknown_paths_are_json_404_with_security_headers() {
        for path in ["/healthz", "/connectionsx", "/mcpx", "/health/extra"] {
            let resp = get(path);
            assert_eq!(resp.status, 404, "{path}");
            assert_eq!(resp.json_body()["error"], "not_found");
            assert_eq!(resp.headers.get("x-frame-options"), Some("DENY"));
            assert_eq!(resp.headers.get("cache-control"), Some("no-store"));
        }
    }
}
