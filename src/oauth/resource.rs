//! The resource server's check of a bearer token on `/internal`
//! (RFC 6750, RFC 9728 §5.1): one KV read on the hot path.

use super::ledger::{self, AccessRecord, Subject};
use super::types::DEFAULT_SCOPE;
use crate::crypto;
use crate::http::{Request, Response};
use crate::ports::{Clock, KeyValue, StorageError};
use serde_json::json;

/// Why a request to `/internal` is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No bearer token: a bare challenge starts discovery (RFC 6750 §3.1).
    NoToken,
    /// Unknown, expired, revoked, or issued for another resource.
    InvalidToken,
    /// The token lacks the scope this call needs (→ 403).
    InsufficientScope,
    Unavailable(StorageError),
}

/// Who made an authorised call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub subject: Subject,
    pub grant_id: String,
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers
        .credentials("bearer")
        .filter(|v| !v.is_empty())
}

/// Checks the bearer token against the access record, the resource it
/// was issued for (RFC 8707; MCP: tokens for other resources MUST be
/// refused), its expiry and its scope.
pub async fn authorize<P: KeyValue + Clock>(
    platform: &P,
    request: &Request,
    resource: &str,
) -> Result<Caller, Denied> {
    let token = bearer(request).ok_or(Denied::NoToken)?;
    let key = ledger::access_key(&crypto::token_hash(token));
    let bytes = platform
        .get(&key)
        .await
        .map_err(Denied::Unavailable)?
        .ok_or(Denied::InvalidToken)?;
    let record: AccessRecord = serde_json::from_slice(&bytes).map_err(|_| Denied::InvalidToken)?;
    if platform.now().as_secs() >= record.expires_at || record.resource != resource {
        return Err(Denied::InvalidToken);
    }
    if !record.scope.contains(DEFAULT_SCOPE) {
        return Err(Denied::InsufficientScope);
    }
    Ok(Caller {
        subject: record.subject,
        grant_id: record.grant_id,
    })
}

/// The response for a refusal, with the RFC 6750 §3 challenge pointing at
/// our protected resource metadata (RFC 9728 §5.1; required by MCP
/// 2025-06-18, and with `scope` per MCP 2025-11-25).
pub fn challenge(denied: &Denied, metadata_url: &str) -> Response {
    let base = format!(
        "Bearer realm=\"plausible-mcp\", resource_metadata=\"{metadata_url}\", scope=\"{DEFAULT_SCOPE}\""
    );
    let (status, header, body) = match denied {
        Denied::NoToken => (
            401,
            base,
            // RFC 6750 §3.1: no error code when no credentials were sent.
            json!({"error_description": "Authorization required: obtain an access token from this server's OAuth authorization server (see the resource_metadata link)."}),
        ),
        Denied::InvalidToken => (
            401,
            format!(
                "{base}, error=\"invalid_token\", error_description=\"The access token is invalid, expired or revoked\""
            ),
            json!({"error": "invalid_token", "error_description": "The access token is invalid, expired, revoked, or was issued for another resource."}),
        ),
        Denied::InsufficientScope => (
            403,
            format!("{base}, error=\"insufficient_scope\""),
            json!({"error": "insufficient_scope", "error_description": "The access token lacks the mcp scope."}),
        ),
        Denied::Unavailable(_) => {
            return Response::json(503, &json!({"error": "temporarily_unavailable", "error_description": "Token storage is unavailable; retry shortly."}))
                .with_header("retry-after", "5");
        }
    };
    Response::json(status, &body).with_header("www-authenticate", header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::oauth::types::{ClientId, ScopeSet};
    use crate::testing::{FakePlatform, block_on};
    use std::time::Duration;

    const RESOURCE: &str = "https://mcp.example.com/internal";

    fn store(p: &FakePlatform, token: &str, scope: &str, resource: &str, ttl: u64) {
        let record = AccessRecord {
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            grant_id: "g1".into(),
            scope: serde_json::from_value::<ScopeSet>(json!([scope])).unwrap(),
            resource: resource.into(),
            subject: Subject {
                user_key: "u".into(),
                sealed_props: "s".into(),
            },
            expires_at: p.now().as_secs() + ttl,
        };
        block_on(p.put(
            &ledger::access_key(&crypto::token_hash(token)),
            &serde_json::to_vec(&record).unwrap(),
            Duration::from_secs(ttl),
        ))
        .unwrap();
    }

    fn call(p: &FakePlatform, auth: Option<&str>) -> Result<Caller, Denied> {
        let mut r = Request::new(Method::Post, url::Url::parse(RESOURCE).unwrap());
        if let Some(a) = auth {
            r.headers.set("authorization", a);
        }
        block_on(authorize(p, &r, RESOURCE))
    }

    #[test]
    fn bearer_checks() {
        let p = FakePlatform::new();
        store(&p, "pmcp_at_good", "mcp", RESOURCE, 3600);
        store(
            &p,
            "pmcp_at_other_resource",
            "mcp",
            "https://other.example/internal",
            3600,
        );
        store(&p, "pmcp_at_noscope", "other", RESOURCE, 3600);
        assert_eq!(
            call(&p, Some("Bearer pmcp_at_good")).unwrap().grant_id,
            "g1"
        );
        assert_eq!(
            call(&p, Some("bearer  pmcp_at_good ")).unwrap().grant_id,
            "g1"
        );
        let cases = [
            (None, Denied::NoToken),
            (Some("Basic abc"), Denied::NoToken),
            (Some("Bearer "), Denied::NoToken),
            (Some("Bearer pmcp_at_unknown"), Denied::InvalidToken),
            (Some("Bearer pmcp_at_other_resource"), Denied::InvalidToken),
            (Some("Bearer pmcp_at_noscope"), Denied::InsufficientScope),
        ];
        for (auth, expected) in cases {
            assert_eq!(call(&p, auth).unwrap_err(), expected, "{auth:?}");
        }
        p.advance(Duration::from_secs(3600));
        assert_eq!(
            call(&p, Some("Bearer pmcp_at_good")).unwrap_err(),
            Denied::InvalidToken
        );
        p.fail_storage.set(true);
        assert!(matches!(
            call(&p, Some("Bearer pmcp_at_good")),
            Err(Denied::Unavailable(_))
        ));
    }

    #[test]
    fn challenges() {
        let meta = "https://mcp.example.com/.well-known/oauth-protected-resource/internal";
        let r = challenge(&Denied::NoToken, meta);
        assert_eq!(r.status, 401);
        let h = r.headers.get("www-authenticate").unwrap();
        assert!(
            h.starts_with("Bearer ")
                && h.contains(&format!("resource_metadata=\"{meta}\""))
                && h.contains("scope=\"mcp\"")
        );
        assert!(!h.contains("error="));
        let r = challenge(&Denied::InvalidToken, meta);
        assert!(
            r.headers
                .get("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let r = challenge(&Denied::InsufficientScope, meta);
        assert_eq!(r.status, 403);
        assert!(
            r.headers
                .get("www-authenticate")
                .unwrap()
                .contains("error=\"insufficient_scope\"")
        );
        assert_eq!(
            challenge(&Denied::Unavailable(StorageError("x".into())), meta).status,
            503
        );
    }
}
