//! The one mapping from a handler's own refusals (wrong method, no such
//! path, a misconfigured deployment; and `/mcp`'s credential refusals,
//! which need its metadata URL: [`key_refused`]) to their
//! JSON answers. Core errors map themselves (`TokenError::response`,
//! `FlowError::response`, …).

use serde_json::json;

use crate::config::mcp::Misconfigured;
use crate::http::Response;
use crate::limits;

pub use crate::limits::{MAX_FORM_BODY_BYTES, Surface};

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

/// What a handler refuses by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 405 with `Allow` (RFC 9110 §15.5.6).
    MethodNotAllowed(&'static str),
    /// A JSON 404 that does not echo the path.
    NotFound,
    /// 500 naming the setting to fix.
    Misconfigured(Misconfigured),
    /// 500: `COOKIE_SECRET` is missing, so a grant's sealed key cannot be
    /// opened (`/mcp` with one of our tokens).
    NoServerKey,
    /// 413: the body passed the route's ceiling (declared or counted).
    TooLarge(Surface),
    /// 429 with `Retry-After` (RFC 6585 §4; RFC 9110 §10.2.3): a rate
    /// limit held. OAuth routes answer `temporarily_unavailable`, the
    /// registered OAuth code for a transient refusal (RFC 6749
    /// §4.1.2.1), so a client that knows only RFC codes retries later
    /// rather than starting over; 429 and `Retry-After` say why and when.
    Limited {
        surface: Surface,
        retry_after_secs: u64,
    },
}

pub fn refusal(refusal: Refusal) -> Response {
    match refusal {
        Refusal::TooLarge(surface) => limits::too_large(surface),
        Refusal::Limited {
            surface,
            retry_after_secs,
        } => limits::limited(surface, retry_after_secs),
        Refusal::MethodNotAllowed(allow) => Response::json(
            405,
            &json!({
                "error": "method_not_allowed",
                "error_description": format!("This path accepts {allow}."),
            }),
        )
        .with_header("allow", allow),
        Refusal::NotFound => Response::json(
            404,
            &json!({
                "error": "not_found",
                "error_description": "Nothing is served at this path.",
            }),
        ),
        Refusal::NoServerKey => Response::json(
            500,
            &json!({"error": "server_misconfigured", "error_description": format!("{} is missing or shorter than 32 characters.", crate::config::names::COOKIE_SECRET)}),
        ),
        Refusal::Misconfigured(what) => {
            let description = match what {
                Misconfigured::BaseUrl => {
                    "PLAUSIBLE_BASE_URL must be an https URL (http only for loopback)."
                }
                Misconfigured::DefaultSite => {
                    "PLAUSIBLE_DEFAULT_SITE_ID is not a valid site domain."
                }
                Misconfigured::SharedKey => "PLAUSIBLE_API_KEY is not set for /internal.",
                Misconfigured::CacheTtl => {
                    "PLAUSIBLE_CACHE_TTL must be a whole number of seconds from 0 to 3600."
                }
                Misconfigured::ConfiguredSites => {
                    "PLAUSIBLE_SITES must be a comma-separated list of site domains, each optionally followed by :timezone."
                }
            };
            Response::json(
                500,
                &json!({"error": "server_misconfigured", "error_description": description}),
            )
        }
    }
}

/// `/mcp`'s Bearer challenge (RFC 6750 §3), always naming `/mcp`'s
/// protected resource metadata (RFC 9728 §5.1: every 401 of a protected
/// resource carries it, so a client that sent a bad value still finds the
/// authorization server and the key form).
fn key_challenge(metadata_url: &str, error: Option<&str>) -> String {
    let base = format!(
        "Bearer realm=\"plausible-mcp\", resource_metadata=\"{metadata_url}\", scope=\"mcp\""
    );
    match error {
        Some(code) => format!("{base}, error=\"{code}\""),
        None => base,
    }
}

/// `/mcp` without credentials (RFC 6750 §3.1: no error code, since the
/// caller may not know authentication is needed): a Bearer challenge
/// naming `/mcp`'s protected resource metadata (RFC 9728 §5.1), so an
/// OAuth client finds the key form, and a body saying both ways in.
pub fn key_missing(metadata_url: &str) -> Response {
    Response::json(
        401,
        &json!({
            "error_description": "Authorization required. Pass your Plausible API key as `Authorization: Bearer <key>` (create one under Account settings → API keys in Plausible), or connect through OAuth: this server's authorization server asks for the key once (see resource_metadata in WWW-Authenticate).",
        }),
    )
    .with_header("www-authenticate", key_challenge(metadata_url, None))
}

/// `/mcp` refusing the bearer value it was sent: 401 naming the problem
/// (RFC 6750 §3.1 codes) and, as every 401 of `/mcp`, its metadata.
pub fn key_refused(error: KeyError, metadata_url: &str) -> Response {
    let (code, description) = match error {
        KeyError::Missing => return key_missing(metadata_url),
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
    .with_header("www-authenticate", key_challenge(metadata_url, Some(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_challenge_names_the_metadata() {
        let meta = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let base =
            format!("Bearer realm=\"plausible-mcp\", resource_metadata=\"{meta}\", scope=\"mcp\"");
        for (error, header) in [
            (KeyError::Missing, base.clone()),
            (
                KeyError::Malformed,
                format!("{base}, error=\"invalid_token\""),
            ),
            (
                KeyError::OurToken,
                format!("{base}, error=\"invalid_token\""),
            ),
        ] {
            let r = key_refused(error, meta);
            assert_eq!(r.status, 401);
            assert_eq!(r.headers.get("www-authenticate"), Some(header.as_str()));
            assert!(
                r.json_body()["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("Bearer <key>"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn each_surface_gets_its_own_413() {
        let mcp = refusal(Refusal::TooLarge(Surface::Mcp));
        assert_eq!(mcp.status, 413);
        assert_eq!(mcp.json_body()["error"]["code"], -32600);
        let api = refusal(Refusal::TooLarge(Surface::Api));
        assert_eq!(api.status, 413);
        assert_eq!(api.json_body()["error"], "invalid_request");
        let page = refusal(Refusal::TooLarge(Surface::Browser));
        assert_eq!(page.status, 413);
        assert!(
            page.headers
                .get("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }

    #[test]
    fn each_surface_gets_its_own_429_with_retry_after() {
        let limited = |surface| {
            refusal(Refusal::Limited {
                surface,
                retry_after_secs: 60,
            })
        };
        for surface in [Surface::Mcp, Surface::Api, Surface::Browser] {
            let r = limited(surface);
            assert_eq!(r.status, 429, "{surface:?}");
            assert_eq!(r.headers.get("retry-after"), Some("60"), "{surface:?}");
        }
        let mcp = limited(Surface::Mcp).json_body();
        assert_eq!(mcp["jsonrpc"], "2.0");
        assert_eq!(mcp["id"], serde_json::Value::Null);
        assert_eq!(mcp["error"]["code"], -32600);
        assert_eq!(mcp["error"]["data"]["retryAfter"], 60);
        assert_eq!(
            limited(Surface::Api).json_body()["error"],
            "temporarily_unavailable"
        );
        let page = String::from_utf8(limited(Surface::Browser).body).unwrap();
        assert!(page.contains("<meta name=\"error\" content=\"temporarily_unavailable\">"));
        assert!(page.contains("Wait 60 seconds"));
    }

    #[test]
    fn misconfiguration_names_the_setting() {
        let r = refusal(Refusal::Misconfigured(Misconfigured::SharedKey));
        assert_eq!(r.status, 500);
        assert_eq!(r.json_body()["error"], "server_misconfigured");
        assert!(
            r.json_body()["error_description"]
                .as_str()
                .unwrap()
                .contains("PLAUSIBLE_API_KEY")
        );
    }
}
