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
mod build_info;
mod config;
mod crypto;
mod doc_cache;
mod guard;
mod http;
mod identity;
mod mcp;
mod oauth;
mod oidc;
mod pages;
mod plausible;
mod ports;
mod routes;
mod secret;
mod ssrf_guard;

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
use http::{Request, Response};
use oauth::server::Platform;
use routes::reply::{Refusal, refusal};

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
    /// RFC 9728 protected resource metadata (root and path forms).
    ProtectedResourceMetadata,
    /// RFC 7591 dynamic client registration.
    Register,
    /// RFC 6749 §4.1.1 authorization endpoint.
    Authorize,
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
        "/register" => Route::Register,
        "/authorize" => Route::Authorize,
        "/callback" => Route::Callback,
        "/consent" => Route::Consent,
        "/token" => Route::Token,
        "/revoke" => Route::Revoke,
        "/connections" => Route::Connections,
        "/connections/login" => Route::ConnectionsLogin,
        #[cfg(feature = "test-hooks")]
        "/__test/listings" => Route::TestListings,
        #[cfg(feature = "test-hooks")]
        "/__test/kat" => Route::TestKat,
        _ => Route::NotFound,
    }
}

/// Handles one request end to end. (Natively only tests call it; the
/// allowance keeps the compiler's dead-code search rooted here.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
async fn handle<P: Platform>(platform: &P, deployment: &Deployment, request: Request) -> Response {
    // The settings were derived once per isolate (`config::deployment`);
    // the request-dependent part (`AuthServer`) is built per request.
    let oauth = &deployment.oauth;
    let mcp = &deployment.mcp;
    let route = route(request.path());
    // The MCP endpoints check Host together with Origin and answer in
    // JSON-RPC; every other route is checked here, before it reads the
    // request's origin into an issuer.
    if !matches!(route, Route::McpByok | Route::McpInternal)
        && let Err(refused) = guard::host_allowed(&request, &mcp.allowed_hosts)
    {
        let mut response = refused.response();
        http::apply_security_headers(&mut response);
        return response;
    }
    let mut response = match route {
        Route::Landing => routes::connections::landing(&request),
        Route::Health => routes::health::handle(&request),
        Route::Robots => routes::health::robots(),
        Route::McpByok => routes::mcp::byok(platform, mcp, &request).await,
        Route::McpInternal => routes::mcp::internal(platform, deployment, &request).await,
        Route::AuthorizationServerMetadata => {
            routes::oauth::authorization_server_metadata(&request, oauth)
        }
        Route::ProtectedResourceMetadata => {
            routes::oauth::protected_resource_metadata(&request, oauth)
        }
        Route::Register => routes::oauth::register(platform, &request).await,
        Route::Authorize => routes::oauth::authorize(platform, oauth, &request).await,
        Route::Callback => routes::oauth::callback(platform, oauth, &request).await,
        Route::Consent => routes::oauth::consent(platform, oauth, &request).await,
        Route::Token => routes::oauth::token(platform, oauth, &request).await,
        Route::Revoke => routes::oauth::revoke(platform, oauth, &request).await,
        Route::Connections => routes::connections::page(platform, oauth, &request).await,
        Route::ConnectionsLogin => routes::connections::login(platform, oauth, &request).await,
        #[cfg(feature = "test-hooks")]
        Route::TestListings => routes::oauth::test_listings(platform, oauth, &request).await,
        #[cfg(feature = "test-hooks")]
        Route::TestKat => routes::oauth::test_kat(platform, oauth, &request).await,
        Route::NotFound => refusal(Refusal::NotFound),
    };
    http::apply_security_headers(&mut response);
    response
}

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<worker::Response> {
    let platform = platform::WorkerPlatform::new(env);
    let response = match platform::to_core_request(req).await {
        Ok(request) => handle(&platform, &platform.deployment(), request).await,
        Err(_) => {
            let mut r = Response::json(400, &serde_json::json!({"error": "invalid_request"}));
            http::apply_security_headers(&mut r);
            r
        }
    };
    platform::to_worker_response(response)
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
