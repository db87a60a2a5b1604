//! The authorization server's endpoints: metadata, registration, the
//! browser flow (authorize, callback, consent), token and revocation.

use super::reply::{Refusal, refusal};
use crate::audit;
use crate::config::deployment::Deployment;
use crate::config::oauth::OAuthSettings;
use crate::guard;
use crate::http::{Method, Request, Response};
use crate::oauth::clients::register;
use crate::oauth::flow::browser::{self, Reply};
use crate::oauth::flow::error::FlowError;
use crate::oauth::flow::key_form;
#[cfg(feature = "test-hooks")]
use crate::oauth::listing::probe;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::Audience;
use crate::oauth::{revoke, token};
#[cfg(feature = "test-hooks")]
use crate::oidc::kat;
use crate::ports::{Clock, Log};

const JSON_METHODS: &str = "GET, OPTIONS";
const POST_METHODS: &str = "POST, OPTIONS";

fn only_get(request: &Request) -> Option<Response> {
    match request.method {
        Method::Get | Method::Head => None,
        Method::Options => Some(guard::preflight(JSON_METHODS)),
        _ => Some(refusal(Refusal::MethodNotAllowed("GET, HEAD, OPTIONS"))),
    }
}

fn only_post(request: &Request) -> Option<Response> {
    match request.method {
        Method::Post => None,
        Method::Options => Some(guard::preflight(POST_METHODS)),
        _ => Some(refusal(Refusal::MethodNotAllowed("POST, OPTIONS"))),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub fn authorization_server_metadata(request: &Request, settings: &OAuthSettings) -> Response {
    if let Some(r) = only_get(request) {
        return r;
    }
    let body = AuthServer::new(settings, request).authorization_server_metadata();
    guard::with_cors(Response::json(200, &body), JSON_METHODS)
}

/// `GET /.well-known/oauth-protected-resource[/internal]` and
/// `…/mcp` (RFC 9728 §3).
pub fn protected_resource_metadata(
    request: &Request,
    settings: &OAuthSettings,
    audience: Audience,
) -> Response {
    if let Some(r) = only_get(request) {
        return r;
    }
    let body = AuthServer::new(settings, request).protected_resource_metadata_for(audience);
    guard::with_cors(Response::json(200, &body), JSON_METHODS)
}

/// `POST /register` (RFC 7591 §3).
pub async fn register<P: Platform>(platform: &P, request: &Request) -> Response {
    if let Some(r) = only_post(request) {
        return r;
    }
    let registered = match register::parse(&request.headers, &request.body) {
        Ok(metadata) => register::register(platform, metadata, platform.now()).await,
        Err(e) => Err(e),
    };
    let response = match registered {
        Ok((record, secret)) => register::response(&record, secret.as_ref()),
        Err(e) => e.response(),
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
    let server = AuthServer::new(settings, request);
    let response = match token::exchange(platform, &server, &request.headers, &request.body).await {
        Ok(issued) => issued.response(),
        Err(e) => {
            if let Some(variable) = e.misconfigured() {
                audit::misconfiguration(platform, &server.audit, variable);
            }
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
    let server = AuthServer::new(settings, request);
    let response = match revoke::revoke(platform, &server, &request.headers, &request.body).await {
        Ok(()) => Response::new(200),
        Err(e) => {
            if let Some(variable) = e.misconfigured() {
                audit::misconfiguration(platform, &server.audit, variable);
            }
            platform.warn(&format!("revocation refused: {}", e.log_line()));
            e.response()
        }
    };
    guard::with_cors(response, POST_METHODS)
}

/// `/__test/listings`: the end-to-end tests' probe (see
/// `oauth::listing::probe`); the test build only, and a 404 wherever
/// the test hook is off.
#[cfg(feature = "test-hooks")]
pub async fn test_listings<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    let server = AuthServer::new(settings, request);
    match probe::probe(platform, &server, request).await {
        Ok(body) => Response::json(200, &body),
        Err(e) => {
            if let Some(line) = e.log_line() {
                platform.warn(&line);
            }
            e.response().unwrap_or_else(|| refusal(Refusal::NotFound))
        }
    }
}

/// `/__test/kat`: the RS256 known-answer vectors (`oidc::kat`) through
/// this runtime's signature check, WebCrypto inside workerd. With
/// `?repeat=N` (at most 10,000) it also verifies the fixture ID token N
/// more times, so a caller can time verification from outside (workerd's
/// clock does not advance while a request computes). The test build only;
/// a 404 wherever the test hook is off.
#[cfg(feature = "test-hooks")]
pub async fn test_kat<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !AuthServer::new(settings, request).test_identity_hook() {
        return refusal(Refusal::NotFound);
    }
    let repeat = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "repeat")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(0)
        .min(10_000);
    let mut report = kat::rs256(platform).await;
    if let Some(o) = report.as_object_mut() {
        o.insert(
            "repeated".into(),
            kat::repeat(platform, repeat).await.into(),
        );
    }
    Response::json(200, &report)
}

/// Maps a browser-flow step's outcome, logging what the operator should
/// know.
fn flow_reply<P: Log + Clock>(
    platform: &P,
    server: &AuthServer<'_>,
    outcome: Result<Reply, FlowError>,
) -> Response {
    match outcome {
        Ok(reply) => reply.response(),
        Err(e) => {
            if let Some(variable) = e.misconfigured() {
                audit::misconfiguration(platform, &server.audit, variable);
            }
            if let Some(line) = e.log_line() {
                platform.warn(&line);
            }
            e.response()
        }
    }
}

/// `GET /authorize` (RFC 6749 §4.1.1).
pub async fn authorize<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Get | Method::Head) {
        return refusal(Refusal::MethodNotAllowed("GET, HEAD"));
    }
    let server = AuthServer::new(settings, request);
    flow_reply(
        platform,
        &server,
        browser::authorize(platform, &server, request).await,
    )
}

/// `POST /authorize/key`: the `/mcp` key form (issue 15).
pub async fn authorize_key<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
) -> Response {
    if request.method != Method::Post {
        return refusal(Refusal::MethodNotAllowed("POST"));
    }
    let server = AuthServer::new(&deployment.oauth, request);
    let outcome = match browser::keys(&server) {
        Ok(keys) => key_form::submit(platform, &server, keys, &deployment.mcp, request).await,
        Err(e) => Err(e),
    };
    flow_reply(platform, &server, outcome)
}

/// `GET /callback`: the upstream provider's redirect back to us. The
/// consent page it may show offers the sites of the shared key (issue
/// 15), so it reads the deployment's Plausible settings too.
pub async fn callback<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
) -> Response {
    if !matches!(request.method, Method::Get) {
        return refusal(Refusal::MethodNotAllowed("GET"));
    }
    let server = AuthServer::new(&deployment.oauth, request);
    let directory = deployment.shared_tool_context();
    flow_reply(
        platform,
        &server,
        browser::callback(platform, &server, directory.as_ref(), request).await,
    )
}

/// `POST /consent`: the user's Approve or Deny.
pub async fn consent<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    request: &Request,
) -> Response {
    if request.method != Method::Post {
        return refusal(Refusal::MethodNotAllowed("POST"));
    }
    let server = AuthServer::new(settings, request);
    flow_reply(
        platform,
        &server,
        browser::consent(platform, &server, request).await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::clients::metadata::ClientMetadata;
    use crate::oauth::clients::record::AuthMethod;
    use crate::oauth::types::RedirectUri;
    use crate::ports::Clock;
    use crate::testing::{FakePlatform, block_on, source};

    #[test]
    fn token_refusals_are_logged_with_their_reason_and_no_secret() {
        let p = FakePlatform::new();
        let (client, _) = block_on(register::register(
            &p,
            ClientMetadata {
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
        let settings = OAuthSettings::load(&source(&[]));
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

    /// Issue 10 (RFC 9700 §4.11.2): an error after the redirect URI
    /// matched is a page with a link back, never a redirect.
    #[test]
    fn authorize_errors_after_the_redirect_matched_are_pages_with_a_link() {
        let p = FakePlatform::new();
        let (client, _) = block_on(register::register(
            &p,
            ClientMetadata {
                client_name: Some("Example App".into()),
                client_uri: None,
                redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
                auth_method: AuthMethod::None,
            },
            p.now(),
        ))
        .unwrap();
        let settings = OAuthSettings::load(&source(&[]));
        let url = url::Url::parse_with_params(
            "https://mcp.example.com/authorize",
            [
                ("response_type", "code"),
                ("client_id", client.client_id.as_str()),
                ("redirect_uri", "https://app.example/cb"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
                ("scope", "admin"),
                ("state", "s&t"),
            ],
        )
        .unwrap();
        let response = block_on(authorize(&p, &settings, &Request::new(Method::Get, url)));
        assert_eq!(response.status, 400);
        assert_eq!(response.headers.get("location"), None);
        let page = String::from_utf8(response.body).unwrap();
        assert!(page.contains("<meta name=\"error\" content=\"invalid_scope\">"));
        assert!(
            page.contains("<bdi>Example App</bdi>") && page.contains("<code>app.example</code>")
        );
        assert!(
            page.contains(
                "href=\"https://app.example/cb?error=invalid_scope&amp;error_description="
            )
        );
        assert!(
            page.contains("&amp;state=s%26t&amp;iss=https%3A%2F%2Fmcp.example.com\""),
            "{page}"
        );
        assert!(
            p.logs.borrow().is_empty(),
            "a bad request is not the operator's problem"
        );
    }

    #[test]
    fn storage_failures_in_the_browser_flow_are_logged() {
        let p = FakePlatform::new();
        let settings = OAuthSettings::load(&source(&[
            ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ACCESS_ISSUER", "https://idp.example.com"),
            ("ACCESS_CLIENT_ID", "c"),
            ("ACCESS_CLIENT_SECRET", "s"),
        ]));
        p.fail_storage.set(true);
        let request = Request::new(
            Method::Get,
            url::Url::parse("https://mcp.example.com/authorize?client_id=pmcp_client_A").unwrap(),
        );
        let response = block_on(authorize(&p, &settings, &request));
        assert_eq!(response.status, 503);
        let page = String::from_utf8(response.body).unwrap();
        assert!(page.contains("<meta name=\"error\" content=\"temporarily_unavailable\">"));
        assert_eq!(p.logs.borrow().len(), 1, "{:?}", p.logs.borrow());
    }
}
