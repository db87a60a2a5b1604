//! The authorization server's endpoints: metadata, registration,
//! authorization, token and revocation.

use serde_json::json;

use crate::crypto::Keys;
use crate::guard;
use crate::http::{Method, Request, Response, media_type};
use crate::oauth::authorize::{
    self, AuthorizationRequest, AuthorizeError, PageError, RedirectErrorCode,
};
use crate::oauth::clients::{self, RegisterFailure};
use crate::oauth::consent::{self, Decision};
use crate::oauth::identity;
use crate::oauth::identity::Identity;
use crate::oauth::issue;
use crate::oauth::ledger::{ConsentRecord, LedgerOp, LedgerReply};
use crate::oauth::registry::{self, LookupError};
use crate::oauth::settings::OAuthSettings;
use crate::oauth::types::SUPPORTED_SCOPES;
use crate::oauth::{revoke, token};
use crate::oidc::login::{self, Finished, LOGIN_LIFETIME, LoginError};
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
        Err(e) => {
            platform.warn(&format!("token endpoint refused: {}", e.log_line()));
            e.response()
        }
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

    let Some(upstream) = &settings.upstream else {
        return pages::error_page(
            503,
            "Sign-in is not configured",
            "This server has no upstream identity provider configured (ACCESS_ISSUER, ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET).",
        );
    };
    let callback = callback_url(settings);
    match login::begin(
        platform,
        keys,
        upstream,
        settings.fetch_policy,
        &callback,
        auth_request,
    )
    .await
    {
        Ok(start) => {
            Response::redirect(&start.location).with_header("set-cookie", start.set_cookie)
        }
        Err(e) => {
            platform.warn(&format!(
                "authorize: cannot start the upstream login: {e:?}"
            ));
            pages::error_page(e.status(), "Sign-in is unavailable", e.message())
        }
    }
}

fn callback_url(settings: &OAuthSettings) -> String {
    format!("{}/callback", settings.issuer)
}

/// Issues the code for an approved request, or redirects an error.
async fn complete<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    keys: &Keys,
    request: &AuthorizationRequest,
    identity: &Identity,
) -> Response {
    match issue::issue_code(platform, settings, keys, request, identity).await {
        Ok(location) => Response::redirect(&location),
        Err(e) => {
            platform.warn(&format!("could not issue a code: {e:?}"));
            Response::redirect(
                &request
                    .error(
                        RedirectErrorCode::TemporarilyUnavailable,
                        "the server could not record the authorization; try again",
                    )
                    .location(&settings.issuer),
            )
        }
    }
}

/// `GET /callback`: the upstream provider's redirect back to us.
pub async fn callback<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Get) {
        return super::method_not_allowed("GET");
    }
    let (Some(keys), Some(upstream)) = (&settings.keys, &settings.upstream) else {
        return pages::error_page(
            503,
            "Sign-in is not configured",
            "This server has no upstream identity provider configured.",
        );
    };
    let params = match authorize::single_params(request.url.query().unwrap_or("")) {
        Ok(p) => p,
        Err(_) => return pages::error_page(400, "Sign-in failed", LoginError::BadState.message()),
    };
    let finished = login::finish(
        platform,
        keys,
        upstream,
        settings.fetch_policy,
        &callback_url(settings),
        &settings.allowed_email_domains,
        &params,
        &request.headers,
    )
    .await;
    let Finished {
        request: auth_request,
        identity,
        cookie_name,
        cookie_value,
    } = match finished {
        Ok(f) => f,
        Err(e) => {
            platform.warn(&format!("callback refused: {e:?}"));
            return pages::error_page(e.status(), "Sign-in failed", e.message());
        }
    };
    // Consent once per user and client, again when the redirect URI or
    // scopes change.
    let consent = platform
        .ledger(
            &auth_request.client_id,
            LedgerOp::GetConsent {
                user_key: identity.user_key(),
            },
        )
        .await;
    match consent {
        Ok(LedgerReply::Consent { record: Some(r) }) if r.covers(&auth_request) => {
            return complete(platform, settings, keys, &auth_request, &identity)
                .await
                .with_header("set-cookie", login::clear_cookie(&cookie_name));
        }
        Ok(LedgerReply::Consent { .. }) => {}
        _ => {
            return pages::error_page(
                503,
                "Temporarily unavailable",
                LoginError::Unavailable.message(),
            );
        }
    }
    let client = match registry::find(platform, settings, &auth_request.client_id).await {
        Ok(Some(c)) => c,
        _ => return pages::error_page(400, "Sign-in failed", &PageError::UnknownClient.message()),
    };
    let expires_at = platform.now().plus(LOGIN_LIFETIME).as_secs();
    let Ok(ticket) = consent::seal(
        keys,
        platform,
        auth_request.clone(),
        &identity,
        &cookie_name,
        &cookie_value,
        expires_at,
    ) else {
        return pages::error_page(
            503,
            "Temporarily unavailable",
            LoginError::Unavailable.message(),
        );
    };
    let csrf = consent::csrf_token(keys, &ticket, &cookie_value);
    consent::page(&client, &auth_request, &identity, &ticket, &csrf)
}

/// `POST /consent`: the user's Approve or Deny.
pub async fn consent<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if request.method != Method::Post {
        return super::method_not_allowed("POST");
    }
    let Some(keys) = &settings.keys else {
        return pages::error_page(
            503,
            "Sign-in is not configured",
            "COOKIE_SECRET is not set.",
        );
    };
    // A form post from any other origin is refused outright (CSRF
    // defence in depth, beside the token).
    if request
        .headers
        .get("origin")
        .is_some_and(|o| o != settings.issuer)
    {
        return pages::error_page(
            403,
            "Approval refused",
            "This form must be submitted from this server's own page.",
        );
    }
    let form = match token::form(&request.headers, &request.body) {
        Ok(f) => f,
        Err(_) => {
            return pages::error_page(
                400,
                "Approval failed",
                consent::ConsentError::BadTicket.message(),
            );
        }
    };
    let now = platform.now().as_secs();
    let checked = match consent::check(
        keys,
        &form,
        &request.headers,
        now,
        &settings.allowed_email_domains,
    ) {
        Ok(c) => c,
        Err(e) => {
            platform.warn(&format!("consent refused: {e:?}"));
            return pages::error_page(400, "Approval failed", e.message());
        }
    };
    let ticket = &checked.ticket;
    let client_id = &ticket.request.client_id;
    match platform
        .ledger(
            client_id,
            LedgerOp::ConsumeNonce {
                nonce: ticket.id.clone(),
                expires_at: ticket.expires_at,
            },
        )
        .await
    {
        Ok(LedgerReply::Done) => {}
        Ok(_) => {
            return pages::error_page(
                400,
                "Approval failed",
                "This approval form was already used.",
            );
        }
        Err(_) => {
            return pages::error_page(
                503,
                "Temporarily unavailable",
                LoginError::Unavailable.message(),
            );
        }
    }
    let clear_cookie = login::clear_cookie(&ticket.cookie_name);
    let response = match checked.decision {
        Decision::Deny => Response::redirect(
            &ticket
                .request
                .error(RedirectErrorCode::AccessDenied, "the user denied access")
                .location(&settings.issuer),
        ),
        Decision::Approve => {
            let record = ConsentRecord {
                redirect_uri: ticket.request.redirect_uri.as_str().to_owned(),
                scope: ticket.request.scope.clone(),
                approved_at: now,
            };
            let recorded = platform
                .ledger(
                    client_id,
                    LedgerOp::RecordConsent {
                        user_key: checked.identity.user_key(),
                        record,
                    },
                )
                .await;
            if recorded.is_err() {
                return pages::error_page(
                    503,
                    "Temporarily unavailable",
                    LoginError::Unavailable.message(),
                );
            }
            complete(platform, settings, keys, &ticket.request, &checked.identity).await
        }
    };
    response.with_header("set-cookie", clear_cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::clients::{AuthMethod, Registration};
    use crate::oauth::types::RedirectUri;
    use crate::ports::Clock;
    use crate::testing::{FakePlatform, block_on};

    #[test]
    fn token_refusals_are_logged_with_their_reason_and_no_secret() {
        let p = FakePlatform::new();
        let (client, _) = block_on(clients::register(
            &p,
            Registration {
                client_name: None,
                client_uri: None,
                redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
                auth_method: AuthMethod::None,
            },
            p.now(),
        ))
        .unwrap();
        let mut request = Request::new(
            Method::Post,
            url::Url::parse("https://mcp.example.com/token").unwrap(),
        );
        request
            .headers
            .set("content-type", "application/x-www-form-urlencoded");
        request.body = format!(
            "grant_type=authorization_code&code=pmcp_ac_SECRETCODE&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={}&client_id={}",
            "v".repeat(43),
            client.client_id.as_str()
        )
        .into_bytes();
        let settings = OAuthSettings::load(&std::collections::HashMap::new(), &request);
        let response = block_on(token(&p, &settings, &request));
        assert_eq!(response.status, 400);
        let logs = p.logs.borrow();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].contains("invalid_grant: unknown code"),
            "{}",
            logs[0]
        );
        assert!(!logs[0].contains("SECRETCODE"));
        assert!(
            !String::from_utf8_lossy(&response.body).contains("unknown code"),
            "the reason stays in the log"
        );
    }
}
