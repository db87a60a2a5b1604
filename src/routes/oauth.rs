//! The authorization server's endpoints: metadata, registration,
//! authorization, token and revocation.

use serde_json::json;

use crate::guard;
use crate::http::{Method, Request, Response, media_type};
use crate::oauth::authorize::{self, AuthorizeError, PageError, RedirectErrorCode};
use crate::oauth::clients::{self, RegisterFailure};
use crate::oauth::identity;
use crate::oauth::issue;
use crate::oauth::registry::{self, LookupError};
use crate::oauth::settings::OAuthSettings;
use crate::oauth::types::SUPPORTED_SCOPES;
use crate::oauth::{revoke, token};
use crate::pages;
use crate::ports::Platform;

const JSON_METHODS: &str = "GET, OPTIONS";
const POST_METHODS: &str = "POST, OPTIONS";

/// RFC 9728 metadata URL for `/internal` (path-inserted form, §3.1).
pub fn resource_metadata_url(settings: &OAuthSettings) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/internal",
        settings.issuer
    )
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub fn authorization_server_metadata(request: &Request, settings: &OAuthSettings) -> Response {
    if let Some(r) = only_get(request) {
        return r;
    }
    let i = &settings.issuer;
    let body = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "registration_endpoint": format!("{i}/register"),
        "revocation_endpoint": format!("{i}/revoke"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": "https://github.com/plausible-mcp/plausible-mcp#readme",
    });
    guard::with_cors(Response::json(200, &body), JSON_METHODS)
}

/// `GET /.well-known/oauth-protected-resource[/internal]` (RFC 9728 §3).
pub fn protected_resource_metadata(request: &Request, settings: &OAuthSettings) -> Response {
    if let Some(r) = only_get(request) {
        return r;
    }
    let body = json!({
        "resource": settings.resource,
        "authorization_servers": [settings.issuer],
        "scopes_supported": SUPPORTED_SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": "Plausible Analytics (internal)",
    });
    guard::with_cors(Response::json(200, &body), JSON_METHODS)
}

fn only_get(request: &Request) -> Option<Response> {
    match request.method {
        Method::Get | Method::Head => None,
        Method::Options => Some(guard::preflight(JSON_METHODS)),
        _ => Some(super::method_not_allowed("GET, HEAD, OPTIONS")),
    }
}

fn only_post(request: &Request) -> Option<Response> {
    match request.method {
        Method::Post => None,
        Method::Options => Some(guard::preflight(POST_METHODS)),
        _ => Some(super::method_not_allowed("POST, OPTIONS")),
    }
}

fn temporarily_unavailable() -> Response {
    Response::json(
        503,
        &json!({"error": "temporarily_unavailable", "error_description": "The server could not complete the request; retry shortly."}),
    )
    .with_header("retry-after", "5")
}

/// `POST /register` (RFC 7591 §3).
pub async fn register<P: Platform>(platform: &P, request: &Request) -> Response {
    if let Some(r) = only_post(request) {
        return r;
    }
    let response = if request
        .headers
        .get("content-type")
        .map(media_type)
        .as_deref()
        != Some("application/json")
    {
        Response::json(
            400,
            &json!({"error": "invalid_client_metadata", "error_description": "the body must be application/json client metadata"}),
        )
    } else {
        match clients::parse_registration(&request.body) {
            Err(e) => Response::json(
                400,
                &json!({"error": e.code(), "error_description": e.description()}),
            ),
            Ok(registration) => {
                match clients::register(platform, registration, platform.now()).await {
                    Ok((record, secret)) => Response::json(
                        201,
                        &clients::registration_response(&record, secret.as_ref()),
                    ),
                    Err(RegisterFailure::Entropy | RegisterFailure::Storage(_)) => {
                        temporarily_unavailable()
                    }
                }
            }
        }
    };
    guard::with_cors(response, POST_METHODS)
}

/// `POST /token` (RFC 6749 §3.2).
pub async fn token<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if let Some(r) = only_post(request) {
        return r;
    }
    let response = match token::exchange(platform, settings, &request.headers, &request.body).await
    {
        Ok(issued) => issued.response(),
        Err(e) => e.response(),
    };
    guard::with_cors(response, POST_METHODS)
}

/// `POST /revoke` (RFC 7009 §2).
pub async fn revoke<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if let Some(r) = only_post(request) {
        return r;
    }
    let response = match revoke::revoke(platform, settings, &request.headers, &request.body).await {
        Ok(()) => Response::new(200),
        Err(e) => {
            platform.warn(&format!("revocation refused: {}", e.log_line()));
            e.response()
        }
    };
    guard::with_cors(response, POST_METHODS)
}

/// The header the test-only identity hook reads (see
/// `OAuthSettings::test_identity_hook`).
pub const TEST_IDENTITY_HEADER: &str = "x-test-identity";

/// `GET /authorize` (RFC 6749 §4.1.1).
pub async fn authorize<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Get | Method::Head) {
        return super::method_not_allowed("GET, HEAD");
    }
    let bad = |e: PageError| {
        pages::error_page(
            400,
            "This sign-in request cannot be completed",
            &e.message(),
        )
    };
    let params = match authorize::single_params(request.url.query().unwrap_or("")) {
        Ok(p) => p,
        Err(name) => return bad(PageError::DuplicateParameter(name)),
    };
    let client_id = match authorize::client_id_of(&params) {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let client = match registry::find(platform, settings, &client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return bad(PageError::UnknownClient),
        Err(LookupError::Metadata(reason)) => return bad(PageError::ClientMetadata(reason)),
        Err(LookupError::Storage(e)) => {
            platform.warn(&format!("authorize: client lookup failed: {}", e.0));
            return pages::error_page(
                503,
                "Temporarily unavailable",
                "The server could not look up this application. Try again shortly.",
            );
        }
    };
    let auth_request = match authorize::validate(&params, &client, &settings.resource) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => return bad(e),
        Err(AuthorizeError::Redirect(e)) => {
            return Response::redirect(&e.location(&settings.issuer));
        }
    };
    let Some(keys) = &settings.keys else {
        return pages::error_page(
            500,
            "Server misconfigured",
            "COOKIE_SECRET is missing or shorter than 32 characters, so this server cannot sign anyone in.",
        );
    };
    let redirect_error = |code: RedirectErrorCode, description: &str| {
        Response::redirect(
            &auth_request
                .error(code, description)
                .location(&settings.issuer),
        )
    };

    // Test-only identity hook: only ever on a loopback host, never in a
    // deployed worker (see `OAuthSettings::load`).
    if settings.test_identity_hook
        && let Some(email) = request.headers.get(TEST_IDENTITY_HEADER)
    {
        let identity = match identity::admit(email, Some(true), &settings.allowed_email_domains) {
            Ok(i) => i,
            Err(_) => {
                return redirect_error(
                    RedirectErrorCode::AccessDenied,
                    "this account is not allowed to use this server",
                );
            }
        };
        return match issue::issue_code(platform, settings, keys, &auth_request, &identity).await {
            Ok(location) => Response::redirect(&location),
            Err(_) => redirect_error(
                RedirectErrorCode::TemporarilyUnavailable,
                "the server could not record the authorization; try again",
            ),
        };
    }

    pages::error_page(
        503,
        "Sign-in is not configured",
        "This server has no upstream identity provider configured (ACCESS_ISSUER, ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET).",
    )
}
