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
#[cfg(test)]
mod testing;

use config::deployment::Deployment;
use http::{Request, Response};
use oauth::server::Platform;
use routes::reply::{Refusal, refusal};

/// Every route the worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Liveness and build identity.
    Health,
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
        "/health" => Route::Health,
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
    let mut response = match route(request.path()) {
        Route::Health => routes::health::handle(&request),
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
        let platform = FakePlatform::new();
        block_on(handle(
            &platform,
            &Deployment::load(&HashMap::<String, String>::new()),
            Request::new(Method::Get, url),
        ))
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
    fn unknown_paths_are_json_404_with_security_headers() {
        for path in ["/", "/healthz", "/mcpx", "/health/extra"] {
            let resp = get(path);
            assert_eq!(resp.status, 404, "{path}");
            assert_eq!(resp.json_body()["error"], "not_found");
            assert_eq!(resp.headers.get("x-frame-options"), Some("DENY"));
            assert_eq!(resp.headers.get("cache-control"), Some("no-store"));
        }
    }
}
