//! The MCP endpoints. `/mcp` authenticates with the caller's own
//! Plausible key; `/internal` (see `oauth`) with our access tokens.

use serde_json::json;

use crate::config::McpSettings;
use crate::guard::{self, OriginPolicy};
use crate::http::{Method, Request, Response};
use crate::mcp;
use crate::oauth::resource;
use crate::oauth::settings::OAuthSettings;
use crate::oidc::access;
use crate::plausible::sites::{self, AllowedSites};
use crate::plausible::tools::ToolContext;
use crate::ports::{Clock, EdgeCache, Outbound, Platform};
use crate::secret::PlausibleKey;

const METHODS: &str = "POST, OPTIONS";

/// Plausible keys are long random strings; anything shorter than this is
/// a paste error, refused before it reaches Plausible.
const MIN_KEY_LEN: usize = 8;
const MAX_KEY_LEN: usize = 512;

/// Why `/mcp` refused the credentials (RFC 6750 §3.1 error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A bearer value that cannot be a Plausible key.
    Malformed,
    /// One of our own OAuth tokens: it belongs to `/internal` and must
    /// never be forwarded to Plausible (MCP: no token passthrough).
    OurToken,
}

/// The caller's Plausible key from `Authorization: Bearer <key>`. The
/// scheme is case-insensitive (RFC 9110 §11.1).
pub fn plausible_key(request: &Request) -> Result<PlausibleKey, KeyError> {
    let key = request
        .headers
        .credentials("bearer")
        .ok_or(KeyError::Missing)?;
    if key.starts_with("pmcp_") {
        return Err(KeyError::OurToken);
    }
    let well_formed = (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(PlausibleKey::new(key))
    } else {
        Err(KeyError::Malformed)
    }
}

fn unauthorized(error: KeyError) -> Response {
    let (code, description) = match error {
        KeyError::Missing => (
            "invalid_request",
            "Missing or malformed Authorization header. Pass your Plausible API key as `Authorization: Bearer <key>` (create one under Account settings → API keys in Plausible).",
        ),
        KeyError::OurToken => (
            "invalid_token",
            "That is an access token of this server's OAuth flow: use it on /internal. /mcp takes your own Plausible API key as `Authorization: Bearer <key>`.",
        ),
        KeyError::Malformed => (
            "invalid_token",
            "That bearer value cannot be a Plausible API key (expected 8 to 512 visible ASCII characters). Pass your Plausible API key as `Authorization: Bearer <key>`.",
        ),
    };
    Response::json(
        401,
        &json!({"error": code, "error_description": description}),
    )
    .with_header(
        "www-authenticate",
        format!("Bearer realm=\"plausible-mcp\", error=\"{code}\""),
    )
}

/// `/mcp`: bring your own key.
pub async fn byok<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    settings: &McpSettings,
    request: &Request,
) -> Response {
    if let Err(denied) = guard::check(
        request,
        &settings.allowed_hosts,
        OriginPolicy::AnyWellFormed,
    ) {
        return guard::with_cors(denied, METHODS);
    }
    if request.method == Method::Options {
        return guard::preflight(METHODS);
    }
    let response = match plausible_key(request) {
        Err(e) => unauthorized(e),
        Ok(key) => match settings.tool_context(key) {
            Ok(ctx) => mcp::serve(platform, &ctx, request).await,
            Err(misconfigured) => misconfigured,
        },
    };
    guard::with_cors(response, METHODS)
}

/// `/internal`: our OAuth access tokens; queries use the shared key.
pub async fn internal<P: Platform>(
    platform: &P,
    settings: &McpSettings,
    oauth: &OAuthSettings,
    shared_key: Option<PlausibleKey>,
    request: &Request,
) -> Response {
    let origins = OriginPolicy::Hostnames(&settings.allowed_origins);
    if let Err(denied) = guard::check(request, &settings.allowed_hosts, origins) {
        return guard::with_cors(denied, METHODS);
    }
    if request.method == Method::Options {
        return guard::preflight(METHODS);
    }
    // Cloudflare Access in front: its signed assertion admits the caller.
    if let (Some(app), Some(assertion)) = (
        &oauth.access_app,
        request.headers.get(access::ASSERTION_HEADER),
    ) {
        let response = match access::verify(platform, app, assertion, &oauth.allowed_email_domains)
            .await
        {
            Ok(_identity) => serve_shared(platform, settings, shared_key, request).await,
            Err(refused) => {
                platform.warn(&format!("internal: Access assertion refused: {refused:?}"));
                Response::json(
                    403,
                    &json!({"error": "forbidden", "error_description": "A valid Cloudflare Access identity from an allowed email domain is required."}),
                )
            }
        };
        return guard::with_cors(response, METHODS);
    }
    let response = match resource::authorize(platform, request, &oauth.resource).await {
        Err(denied) => {
            if let resource::Denied::Unavailable(e) = &denied {
                platform.warn(&format!("internal: token lookup failed: {}", e.0));
            }
            resource::challenge(&denied, &super::oauth::resource_metadata_url(oauth))
        }
        Ok(_caller) => serve_shared(platform, settings, shared_key, request).await,
    };
    guard::with_cors(response, METHODS)
}

/// MCP with the deployment's shared Plausible key.
async fn serve_shared<P: Platform>(
    platform: &P,
    settings: &McpSettings,
    shared_key: Option<PlausibleKey>,
    request: &Request,
) -> Response {
    match shared_key {
        None => Response::json(
            500,
            &json!({"error": "server_misconfigured", "error_description": "PLAUSIBLE_API_KEY is not set for /internal."}),
        ),
        Some(key) => match settings
            .tool_context(key)
            .and_then(|ctx| settings.with_configured_sites(ctx))
        {
            Ok(ctx) => mcp::serve(platform, &ctx, request).await,
            Err(misconfigured) => misconfigured,
        },
    }
}

impl McpSettings {
    /// The tool context for a key, or a 500 naming the bad setting.
    pub fn tool_context(&self, key: PlausibleKey) -> Result<ToolContext, Response> {
        let base_url = self.base_url.clone().map_err(|_| {
            Response::json(
                500,
                &json!({"error": "server_misconfigured", "error_description": "PLAUSIBLE_BASE_URL must be an https URL (http only for loopback)."}),
            )
        })?;
        let default_site = self.default_site.clone().map_err(|_| {
            Response::json(
                500,
                &json!({"error": "server_misconfigured", "error_description": "PLAUSIBLE_DEFAULT_SITE_ID is not a valid site domain."}),
            )
        })?;
        let cache_ttl = match self.cache_ttl.as_deref().map(str::parse::<u64>) {
            None => DEFAULT_CACHE_TTL,
            Some(Ok(secs)) if secs <= MAX_CACHE_TTL_SECS => std::time::Duration::from_secs(secs),
            Some(_) => {
                return Err(Response::json(
                    500,
                    &json!({"error": "server_misconfigured", "error_description": "PLAUSIBLE_CACHE_TTL must be a whole number of seconds from 0 to 3600."}),
                ));
            }
        };
        Ok(ToolContext {
            base_url,
            key,
            default_site,
            cache_ttl,
            configured_sites: Vec::new(),
            allowed_sites: AllowedSites::Any,
        })
    }

    /// `/internal` only: the deployment's `PLAUSIBLE_SITES`, for keys that
    /// cannot list sites themselves.
    fn with_configured_sites(&self, mut ctx: ToolContext) -> Result<ToolContext, Response> {
        if let Some(raw) = &self.configured_sites {
            ctx.configured_sites = sites::parse_list("PLAUSIBLE_SITES", raw).map_err(|_| {
                Response::json(
                    500,
                    &json!({"error": "server_misconfigured", "error_description": "PLAUSIBLE_SITES must be a comma-separated list of site domains, each optionally followed by :timezone."}),
                )
            })?;
        }
        Ok(ctx)
    }
}

/// Identical Stats API answers within this time come from the edge cache.
const DEFAULT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const MAX_CACHE_TTL_SECS: u64 = 3600;

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

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

    #[test]
    fn challenges_say_how_to_pass_the_key() {
        let r = unauthorized(KeyError::Missing);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers.get("www-authenticate"),
            Some("Bearer realm=\"plausible-mcp\", error=\"invalid_request\"")
        );
        assert!(
            r.json_body()["error_description"]
                .as_str()
                .unwrap()
                .contains("Bearer <key>")
        );
        assert!(
            unauthorized(KeyError::Malformed)
                .headers
                .get("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
    }
}
