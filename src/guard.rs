//! Request guards shared by the MCP endpoints: the Host allowlist and
//! Origin validation (DNS-rebinding protection), and CORS for browser
//! clients.

use serde_json::json;
use url::Url;

use crate::http::{Request, Response};

/// Which browser origins an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginPolicy<'a> {
    /// Any well-formed http(s) origin. For `/mcp`, where the credential is
    /// the caller's own key in a header, never ambient, so a rebinding
    /// page gains nothing it did not already hold.
    AnyWellFormed,
    /// Only these hostnames (`MCP_ALLOWED_ORIGIN_HOSTNAMES`).
    Hostnames(&'a [String]),
}

fn forbidden(message: String) -> Response {
    // MCP transports: 403, optionally with a JSON-RPC error without an id.
    Response::json(
        403,
        &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}}),
    )
}

/// Why a request's Host is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRefusal {
    /// `MCP_ALLOWED_HOSTNAMES` is empty: a deployment error.
    Unconfigured,
    /// Not one of `MCP_ALLOWED_HOSTNAMES` (lowercased, brackets removed).
    Foreign(String),
}

impl HostRefusal {
    /// The JSON answer of a non-MCP route: 500 naming the setting, or
    /// 403. The OAuth metadata is derived from the request's origin
    /// (RFC 8414 §3), so a foreign Host must never reach it.
    pub fn response(&self) -> Response {
        match self {
            HostRefusal::Unconfigured => unconfigured(),
            HostRefusal::Foreign(_) => Response::json(
                403,
                &json!({"error": "forbidden_host", "error_description": "This hostname is not served here (MCP_ALLOWED_HOSTNAMES)."}),
            ),
        }
    }
}

fn unconfigured() -> Response {
    Response::json(
        500,
        &json!({"error": "server_misconfigured", "error_description": "MCP_ALLOWED_HOSTNAMES is not set; list the hostnames this worker serves."}),
    )
}

/// Whether the request's Host is one this deployment serves. Every route
/// answers only there: the issuer and resource are the request's origin,
/// so a foreign Host would otherwise be reflected into discovery
/// documents (issue 10) and DNS rebinding would reach every endpoint.
pub fn host_allowed(request: &Request, allowed_hosts: &[String]) -> Result<(), HostRefusal> {
    if allowed_hosts.is_empty() {
        return Err(HostRefusal::Unconfigured);
    }
    let host = request.url.host_str().unwrap_or("").to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if allowed_hosts.iter().any(|h| h == host) {
        Ok(())
    } else {
        Err(HostRefusal::Foreign(host.to_owned()))
    }
}

/// Rejects a request whose Host is not one this deployment serves, or
/// whose Origin is present and not allowed (MCP 2025-11-25 and 2026-07-28
/// Streamable HTTP, "Security": invalid Origin → 403).
pub fn check(
    request: &Request,
    allowed_hosts: &[String],
    origins: OriginPolicy<'_>,
) -> Result<(), Response> {
    match host_allowed(request, allowed_hosts) {
        Ok(()) => {}
        Err(HostRefusal::Unconfigured) => return Err(unconfigured()),
        Err(HostRefusal::Foreign(host)) => {
            return Err(forbidden(format!(
                "Forbidden: host '{}' is not served here",
                host.escape_default()
            )));
        }
    }
    let Some(origin) = request.headers.get("origin") else {
        return Ok(());
    };
    let parsed = Url::parse(origin)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()));
    let Some(origin_host) = parsed else {
        return Err(forbidden(format!(
            "Forbidden: invalid Origin header '{}'",
            origin.escape_default()
        )));
    };
    let allowed = match origins {
        OriginPolicy::AnyWellFormed => true,
        OriginPolicy::Hostnames(list) => list
            .iter()
            .any(|h| h == origin_host.trim_start_matches('[').trim_end_matches(']')),
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(format!(
            "Forbidden: origin '{}' is not allowed",
            origin.escape_default()
        )))
    }
}

/// Headers a browser-based MCP client may send and read.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID";
const EXPOSE_HEADERS: &str = "WWW-Authenticate";

/// CORS for bearer-authenticated JSON endpoints. `*` is safe: nothing
/// here relies on cookies, so a page can only use credentials it holds.
pub fn with_cors(response: Response, methods: &str) -> Response {
    response
        .with_header("access-control-allow-origin", "*")
        .with_header("access-control-allow-methods", methods)
        .with_header("access-control-allow-headers", ALLOW_HEADERS)
        .with_header("access-control-expose-headers", EXPOSE_HEADERS)
        .with_header("access-control-max-age", "86400")
}

/// An answer to a CORS preflight.
pub fn preflight(methods: &str) -> Response {
    with_cors(Response::new(204), methods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn req(url: &str, origin: Option<&str>) -> Request {
        let mut r = Request::new(Method::Post, Url::parse(url).unwrap());
        if let Some(o) = origin {
            r.headers.set("origin", o);
        }
        r
    }

    fn hosts() -> Vec<String> {
        vec![
            "mcp.example.com".into(),
            "127.0.0.1".into(),
            "localhost".into(),
        ]
    }

    #[test]
    fn host_and_origin_table() {
        let allowed = vec!["claude.ai".to_owned(), "localhost".to_owned()];
        let cases: Vec<(&str, Option<&str>, OriginPolicy<'_>, Option<u16>)> = vec![
            (
                "https://mcp.example.com/mcp",
                None,
                OriginPolicy::AnyWellFormed,
                None,
            ),
            (
                "http://127.0.0.1:8787/mcp",
                None,
                OriginPolicy::AnyWellFormed,
                None,
            ),
            (
                "https://MCP.example.com/mcp",
                None,
                OriginPolicy::AnyWellFormed,
                None,
            ),
            (
                "https://evil.example/mcp",
                None,
                OriginPolicy::AnyWellFormed,
                Some(403),
            ),
            (
                "https://mcp.example.com.evil.example/mcp",
                None,
                OriginPolicy::AnyWellFormed,
                Some(403),
            ),
            (
                "https://mcp.example.com/mcp",
                Some("https://anything.example"),
                OriginPolicy::AnyWellFormed,
                None,
            ),
            (
                "https://mcp.example.com/mcp",
                Some("null"),
                OriginPolicy::AnyWellFormed,
                Some(403),
            ),
            (
                "https://mcp.example.com/mcp",
                Some("file:///x"),
                OriginPolicy::AnyWellFormed,
                Some(403),
            ),
            (
                "https://mcp.example.com/internal",
                Some("https://claude.ai"),
                OriginPolicy::Hostnames(&allowed),
                None,
            ),
            (
                "https://mcp.example.com/internal",
                Some("http://localhost:6274"),
                OriginPolicy::Hostnames(&allowed),
                None,
            ),
            (
                "https://mcp.example.com/internal",
                Some("https://evil.claude.ai.example"),
                OriginPolicy::Hostnames(&allowed),
                Some(403),
            ),
            (
                "https://mcp.example.com/internal",
                Some("https://sub.claude.ai"),
                OriginPolicy::Hostnames(&allowed),
                Some(403),
            ),
            (
                "https://mcp.example.com/internal",
                None,
                OriginPolicy::Hostnames(&allowed),
                None,
            ),
        ];
        for (url, origin, policy, expected) in cases {
            let got = check(&req(url, origin), &hosts(), policy)
                .err()
                .map(|r| r.status);
            assert_eq!(got, expected, "{url} origin={origin:?}");
        }
    }

    #[test]
    fn missing_allowlist_is_a_configuration_error() {
        let err = check(
            &req("https://a.example/mcp", None),
            &[],
            OriginPolicy::AnyWellFormed,
        )
        .unwrap_err();
        assert_eq!(err.status, 500);
    }
}
