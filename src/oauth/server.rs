//! The authorization server as one request reaches it: the deployment's
//! settings plus what the request decides (the issuer and resource from
//! its origin, and whether development switches apply on this host); the
//! ports it uses; and its two metadata documents.

use crate::oauth::clients::cimd_fetch::OwnOrigin;
use serde_json::{Value, json};

use super::ledger::client::Coordinator;
use super::ledger::legacy_consents::LegacyConsentMemory;
use super::listing::client::Listings;
use super::token_cache::TokenMemory;
use super::types::{Audience, Issuer, Resource, SUPPORTED_SCOPES};
use super::used::UsedStateShards;
use crate::audit::{Auditor, Record};
use crate::config::oauth::OAuthSettings;
use crate::http::{Request, is_loopback};
use crate::ports::{
    Clock, EdgeCache, Entropy, IsolateCache, KeyValue, Log, Outbound, SignatureCheck,
};
use crate::ssrf_guard::FetchPolicy;

/// Every port the authorization server touches.
pub trait Platform:
    Clock
    + Entropy
    + KeyValue
    + Outbound
    + Coordinator
    + LegacyConsentMemory
    + Listings
    + UsedStateShards
    + Log
    + EdgeCache
    + IsolateCache
    + TokenMemory
    + SignatureCheck
{
}
impl<
    T: Clock
        + Entropy
        + KeyValue
        + Outbound
        + Coordinator
        + LegacyConsentMemory
        + Listings
        + UsedStateShards
        + Log
        + EdgeCache
        + IsolateCache
        + TokenMemory
        + SignatureCheck,
> Platform for T
{
}

/// The settings and this request's view of the server. Cheap to build:
/// the settings are borrowed, the rest is read from the request URL.
#[derive(Clone, Debug)]
pub struct AuthServer<'a> {
    pub settings: &'a OAuthSettings,
    /// This deployment's origin (RFC 8414 §2).
    pub issuer: Issuer,
    /// `<issuer>/internal` (RFC 8707 §2, RFC 9728 §2).
    pub resource: Resource,
    /// The request reached a loopback host: true under `wrangler dev`, and
    /// never for a deployed worker, whose requests are routed by public
    /// hostname.
    local: bool,
    /// The URL the request reached and every hostname this server
    /// answers on: a client metadata URL there is refused.
    pub reached: OwnOrigin,
    /// This request's audit context (its client's address).
    pub audit: Auditor,
}

impl<'a> AuthServer<'a> {
    pub fn new(settings: &'a OAuthSettings, request: &Request) -> Self {
        let issuer = Issuer::of(request);
        Self {
            settings,
            resource: Resource::of(&issuer),
            issuer,
            local: is_loopback(&request.url),
            reached: OwnOrigin {
                reached: request.url.clone(),
                hosts: settings.allowed_hosts.clone(),
            },
            audit: Auditor::of(settings.audit, &request.headers),
        }
    }

    /// Writes one audit line for this request.
    pub fn audit<P: Log + Clock>(&self, platform: &P, record: Record<'_>) {
        self.audit.emit(platform, record);
    }

    /// Where server-side fetches may go: loopback only when developing
    /// locally with `DEV_ALLOW_LOOPBACK`.
    pub fn fetch_policy(&self) -> FetchPolicy {
        FetchPolicy {
            allow_loopback_http: self.local && self.settings.dev_allow_loopback,
        }
    }

    /// Whether the test-only identity hook is on: the test build,
    /// configured, and only ever on a loopback host.
    #[cfg(feature = "test-hooks")]
    pub fn test_identity_hook(&self) -> bool {
        self.local && self.settings.test_identity_hook
    }

    /// Where the upstream provider sends the browser back.
    pub fn callback_url(&self) -> String {
        self.issuer.endpoint("/callback")
    }

    /// RFC 9728 metadata URL for `/internal` (path-inserted form, §3.1).
    pub fn resource_metadata_url(&self) -> String {
        self.resource_metadata_url_for(Audience::Internal)
    }

    /// RFC 9728 §3.1 metadata URL of either endpoint: the well-known
    /// path with the resource's path appended.
    pub fn resource_metadata_url_for(&self, audience: Audience) -> String {
        self.issuer.endpoint(&format!(
            "/.well-known/oauth-protected-resource{}",
            audience.path()
        ))
    }

    /// The resource URI of either endpoint.
    pub fn resource_for(&self, audience: Audience) -> Resource {
        match audience {
            Audience::Internal => self.resource.clone(),
            Audience::Mcp => Resource::for_audience(&self.issuer, audience),
        }
    }

    /// RFC 8414 §2 authorization server metadata.
    pub fn authorization_server_metadata(&self) -> Value {
        let at = |path| self.issuer.endpoint(path);
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": at("/authorize"),
            "token_endpoint": at("/token"),
            "registration_endpoint": at("/register"),
            "revocation_endpoint": at("/revoke"),
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
        })
    }

    /// RFC 9728 §2 protected resource metadata of either endpoint: one
    /// authorization server for both; the `resource` (which RFC 9728 §3.3
    /// requires to equal the URL the document was fetched for, minus the
    /// well-known part) tells them apart.
    pub fn protected_resource_metadata_for(&self, audience: Audience) -> Value {
        let name = match audience {
            Audience::Internal => "Plausible Analytics (internal)",
            Audience::Mcp => "Plausible Analytics (your own API key)",
        };
        json!({
            "resource": self.resource_for(audience),
            "authorization_servers": [self.issuer],
            "scopes_supported": SUPPORTED_SCOPES,
            "bearer_methods_supported": ["header"],
            "resource_name": name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::names;
    use crate::http::Method;
    use crate::testing::source;

    fn request(url: &str) -> Request {
        Request::new(Method::Get, url::Url::parse(url).unwrap())
    }

    #[test]
    fn development_switches_work_only_on_loopback() {
        let on = OAuthSettings::load(&source(&[(names::DEV_ALLOW_LOOPBACK, "true")]));
        let local = AuthServer::new(&on, &request("http://127.0.0.1:8787/authorize"));
        assert!(local.fetch_policy().allow_loopback_http);
        let deployed = AuthServer::new(&on, &request("https://mcp.example.com/authorize"));
        assert!(!deployed.fetch_policy().allow_loopback_http);
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn the_identity_hook_works_only_on_loopback() {
        let on = OAuthSettings::load(&source(&[(names::TEST_IDENTITY_HOOK, "enabled")]));
        let local = AuthServer::new(&on, &request("http://127.0.0.1:8787/authorize"));
        assert!(local.test_identity_hook());
        let deployed = AuthServer::new(&on, &request("https://mcp.example.com/authorize"));
        assert!(!deployed.test_identity_hook());
        let off = OAuthSettings::load(&source(&[]));
        assert!(
            !AuthServer::new(&off, &request("http://127.0.0.1:8787/authorize"))
                .test_identity_hook()
        );
    }

    #[test]
    fn issuer_and_resource_come_from_the_origin() {
        let settings = OAuthSettings::load(&source(&[]));
        let s = AuthServer::new(&settings, &request("https://mcp.example.com/token?x=1"));
        assert_eq!(s.issuer.as_str(), "https://mcp.example.com");
        assert_eq!(s.resource.as_str(), "https://mcp.example.com/internal");
        assert_eq!(s.callback_url(), "https://mcp.example.com/callback");
        let mcp = s.protected_resource_metadata_for(Audience::Mcp);
        assert_eq!(mcp["resource"], "https://mcp.example.com/mcp");
        assert_eq!(mcp["authorization_servers"][0], "https://mcp.example.com");
        assert_eq!(
            s.resource_metadata_url_for(Audience::Mcp),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            s.protected_resource_metadata_for(Audience::Internal)["resource"],
            "https://mcp.example.com/internal"
        );
        assert_eq!(
            s.authorization_server_metadata()["token_endpoint"],
            "https://mcp.example.com/token"
        );
    }

    /// Issue 15: both metadata documents list the three scopes, the
    /// umbrella first, and never `offline_access` (MCP 2026-07-28).
    #[test]
    fn metadata_lists_the_scopes() {
        let settings = OAuthSettings::load(&source(&[]));
        let s = AuthServer::new(&settings, &request("https://mcp.example.com/internal"));
        let expected = serde_json::json!(["mcp", "sites:read", "stats:read"]);
        assert_eq!(
            s.authorization_server_metadata()["scopes_supported"],
            expected
        );
        assert_eq!(
            s.protected_resource_metadata_for(Audience::Internal)["scopes_supported"],
            expected
        );
    }
}
