//! The MCP endpoints. `/mcp` authenticates with the caller's own
//! Plausible key; `/internal` (see `oauth`) with our access tokens.

use super::reply::{KeyError, Refusal, refusal};
use crate::config::deployment::Deployment;
use crate::config::mcp::{McpSettings, Misconfigured};
use crate::guard::{self, OriginPolicy};
use crate::http::{Method, Request, Response};
use crate::mcp;
use crate::oauth::ids::TokenKind;
use crate::oauth::resource;
use crate::oauth::server::{AuthServer, Platform};
use crate::ports::{Clock, EdgeCache, Outbound};
use crate::secret::PlausibleKey;

const METHODS: &str = "POST, OPTIONS";

/// Plausible keys are long random strings; anything shorter than this is
/// a paste error, refused before it reaches Plausible.
const MIN_KEY_LEN: usize = 8;
const MAX_KEY_LEN: usize = 512;

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
    let well_formed = (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(PlausibleKey::new(key))
    } else {
        Err(KeyError::Malformed)
    }
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
        Err(e) => refusal(Refusal::Key(e)),
        Ok(key) => match settings.tool_context(key) {
            Ok(ctx) => mcp::serve(platform, &ctx, request).await,
            Err(misconfigured) => refusal(Refusal::Misconfigured(misconfigured)),
        },
    };
    guard::with_cors(response, METHODS)
}

/// `/internal`: our OAuth access tokens (or Cloudflare Access in
/// front); queries use the shared key.
pub async fn internal<P: Platform>(
    platform: &P,
    deployment: &Deployment,
    request: &Request,
) -> Response {
    let settings = &deployment.mcp;
    let origins = OriginPolicy::Hostnames(&settings.allowed_origins);
    if let Err(denied) = guard::check(request, &settings.allowed_hosts, origins) {
        return guard::with_cors(denied, METHODS);
    }
    if request.method == Method::Options {
        return guard::preflight(METHODS);
    }
    let server = AuthServer::new(&deployment.oauth, request);
    let response = match resource::admit(platform, &server, request).await {
        Err(denied) => {
            if let Some(line) = denied.log_line() {
                platform.warn(&line);
            }
            resource::challenge(&denied, &server.resource_metadata_url())
        }
        Ok(()) => {
            let context = deployment
                .shared_key
                .clone()
                .ok_or(Misconfigured::SharedKey)
                .and_then(|key| settings.tool_context(key))
                .and_then(|ctx| settings.with_configured_sites(ctx));
            match context {
                Ok(ctx) => mcp::serve(platform, &ctx, request).await,
                Err(misconfigured) => refusal(Refusal::Misconfigured(misconfigured)),
            }
        }
    };
    guard::with_cors(response, METHODS)
}

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
}
