//! Deployment configuration, read once per request into typed values.
//!
//! The names are the ones deployments of the TypeScript plausible-mcp
//! already use, so operators can migrate without renaming secrets.

/// Names of Workers bindings and variables, in one place.
pub mod names {
    /// KV namespace holding clients, grants and tokens.
    pub const OAUTH_KV: &str = "OAUTH_KV";
    /// Durable Object namespace serialising per-client approval state.
    pub const CLIENT_LEDGER: &str = "CLIENT_LEDGER";

    pub const PLAUSIBLE_API_KEY: &str = "PLAUSIBLE_API_KEY";
    pub const PLAUSIBLE_BASE_URL: &str = "PLAUSIBLE_BASE_URL";
    pub const PLAUSIBLE_DEFAULT_SITE_ID: &str = "PLAUSIBLE_DEFAULT_SITE_ID";
    pub const MCP_ALLOWED_HOSTNAMES: &str = "MCP_ALLOWED_HOSTNAMES";
    pub const MCP_ALLOWED_ORIGIN_HOSTNAMES: &str = "MCP_ALLOWED_ORIGIN_HOSTNAMES";
    pub const ALLOWED_EMAIL_DOMAIN: &str = "ALLOWED_EMAIL_DOMAIN";
    pub const ACCESS_ISSUER: &str = "ACCESS_ISSUER";
    pub const ACCESS_CLIENT_ID: &str = "ACCESS_CLIENT_ID";
    pub const ACCESS_CLIENT_SECRET: &str = "ACCESS_CLIENT_SECRET";
    pub const CF_ACCESS_TEAM_DOMAIN: &str = "CF_ACCESS_TEAM_DOMAIN";
    pub const CF_ACCESS_AUD: &str = "CF_ACCESS_AUD";
    pub const COOKIE_SECRET: &str = "COOKIE_SECRET";
    /// Set only by the local development configuration: permits plain-http
    /// loopback targets for client metadata documents and the upstream IdP.
    pub const DEV_ALLOW_LOOPBACK: &str = "DEV_ALLOW_LOOPBACK";
    /// Test-only: lets `/authorize` take the user from an
    /// `X-Test-Identity` header. Honoured only on loopback hosts, which a
    /// deployed worker never is.
    pub const TEST_IDENTITY_HOOK: &str = "TEST_IDENTITY_HOOK";
    /// Sites `/internal` lists when its key cannot use the Sites API:
    /// `domain[:timezone]`, comma-separated.
    pub const PLAUSIBLE_SITES: &str = "PLAUSIBLE_SITES";
    /// Seconds identical Stats API answers are served from the edge
    /// cache (default 60; 0 turns it off).
    pub const PLAUSIBLE_CACHE_TTL: &str = "PLAUSIBLE_CACHE_TTL";
}

use crate::plausible::args::{InputError, SiteId};
use crate::plausible::client::{BaseUrlError, PlausibleBaseUrl};

/// What both MCP endpoints need.
#[derive(Clone, Debug)]
pub struct McpSettings {
    /// Hostnames this worker answers MCP on (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Browser origins `/internal` accepts.
    pub allowed_origins: Vec<String>,
    pub base_url: Result<PlausibleBaseUrl, BaseUrlError>,
    pub default_site: Result<Option<SiteId>, InputError>,
    /// `PLAUSIBLE_SITES`, as written; parsed where it is used.
    pub configured_sites: Option<String>,
    /// `PLAUSIBLE_CACHE_TTL`, as written; parsed where it is used.
    pub cache_ttl: Option<String>,
}

impl McpSettings {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            allowed_hosts: split_list(source.get(names::MCP_ALLOWED_HOSTNAMES)),
            allowed_origins: split_list(source.get(names::MCP_ALLOWED_ORIGIN_HOSTNAMES)),
            base_url: PlausibleBaseUrl::parse(
                &non_empty(source, names::PLAUSIBLE_BASE_URL)
                    .unwrap_or_else(|| PlausibleBaseUrl::DEFAULT.to_owned()),
            ),
            default_site: non_empty(source, names::PLAUSIBLE_DEFAULT_SITE_ID)
                .map(|s| SiteId::parse(names::PLAUSIBLE_DEFAULT_SITE_ID, &s))
                .transpose(),
            configured_sites: non_empty(source, names::PLAUSIBLE_SITES),
            cache_ttl: non_empty(source, names::PLAUSIBLE_CACHE_TTL),
        }
    }
}

/// Where configuration values come from: Workers vars and secrets in
/// production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

impl Source for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// A comma-separated list, trimmed, lowercased, with empties dropped.
pub fn split_list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-empty, trimmed value.
pub fn non_empty(source: &dyn Source, name: &str) -> Option<String> {
    source
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_trimmed_lowercased_and_skip_empties() {
        assert_eq!(
            split_list(Some(" Example.com, ,b.io,".into())),
            vec!["example.com", "b.io"]
        );
        assert!(split_list(None).is_empty());
    }
}
