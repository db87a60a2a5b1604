//! What both MCP endpoints read from configuration: the hostnames and
//! origins they serve, Plausible's base URL, the default site, and the
//! shared key of `/internal`.

use super::names;
use super::source::{Source, non_empty, split_list};
use std::time::Duration;

use crate::plausible::args::{InputError, SiteId};
use crate::plausible::client::{BaseUrlError, PlausibleBaseUrl};
use crate::plausible::context::ToolContext;
use crate::plausible::sites::{self, AllowedSites, SiteEntry};
use crate::secret::PlausibleKey;

/// Identical Stats API answers within this time come from the edge cache.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
const MAX_CACHE_TTL_SECS: u64 = 3600;

#[derive(Clone, Debug)]
pub struct McpSettings {
    /// Hostnames this worker answers MCP on (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Browser origins `/internal` accepts.
    pub allowed_origins: Vec<String>,
    pub base_url: Result<PlausibleBaseUrl, BaseUrlError>,
    pub default_site: Result<Option<SiteId>, InputError>,
    /// `PLAUSIBLE_SITES`, parsed (empty when unset). A bad value is
    /// reported where it matters, by `/internal` alone.
    pub configured_sites: Result<Vec<SiteEntry>, Misconfigured>,
    /// `PLAUSIBLE_CACHE_TTL`, parsed.
    pub cache_ttl: Result<Duration, Misconfigured>,
}

/// A setting the MCP endpoints cannot work without is missing or wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misconfigured {
    /// `PLAUSIBLE_BASE_URL` is not https (or loopback http).
    BaseUrl,
    /// `PLAUSIBLE_DEFAULT_SITE_ID` is not a site domain.
    DefaultSite,
    /// `PLAUSIBLE_API_KEY` is unset (needed by `/internal`).
    SharedKey,
    /// `PLAUSIBLE_CACHE_TTL` is not 0..=3600 seconds.
    CacheTtl,
    /// `PLAUSIBLE_SITES` is not a list of `domain[:timezone]`.
    ConfiguredSites,
}

impl Misconfigured {
    /// The variable at fault, for the answer and the audit line (its
    /// name, never its value).
    pub fn variable(self) -> &'static str {
        match self {
            Misconfigured::BaseUrl => names::PLAUSIBLE_BASE_URL,
            Misconfigured::DefaultSite => names::PLAUSIBLE_DEFAULT_SITE_ID,
            Misconfigured::SharedKey => names::PLAUSIBLE_API_KEY,
            Misconfigured::CacheTtl => names::PLAUSIBLE_CACHE_TTL,
            Misconfigured::ConfiguredSites => names::PLAUSIBLE_SITES,
        }
    }
}

impl McpSettings {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            allowed_hosts: allowed_hosts(source),
            allowed_origins: split_list(source.get(names::MCP_ALLOWED_ORIGIN_HOSTNAMES)),
            base_url: PlausibleBaseUrl::parse(
                &non_empty(source, names::PLAUSIBLE_BASE_URL)
                    .unwrap_or_else(|| PlausibleBaseUrl::DEFAULT.to_owned()),
            ),
            default_site: non_empty(source, names::PLAUSIBLE_DEFAULT_SITE_ID)
                .map(|s| SiteId::parse(names::PLAUSIBLE_DEFAULT_SITE_ID, &s))
                .transpose(),
            configured_sites: non_empty(source, names::PLAUSIBLE_SITES).map_or_else(
                || Ok(Vec::new()),
                |raw| {
                    sites::parse_list(names::PLAUSIBLE_SITES, &raw)
                        .map_err(|_| Misconfigured::ConfiguredSites)
                },
            ),
            cache_ttl: match non_empty(source, names::PLAUSIBLE_CACHE_TTL)
                .as_deref()
                .map(str::parse::<u64>)
            {
                None => Ok(DEFAULT_CACHE_TTL),
                Some(Ok(secs)) if secs <= MAX_CACHE_TTL_SECS => Ok(Duration::from_secs(secs)),
                Some(_) => Err(Misconfigured::CacheTtl),
            },
        }
    }

    /// The tool context for a key: copies of what `load` parsed, nothing
    /// parsed per request.
    pub fn tool_context(&self, key: PlausibleKey) -> Result<ToolContext, Misconfigured> {
        let cache_ttl = self.cache_ttl?;
        Ok(ToolContext {
            base_url: self.base_url.clone().map_err(|_| Misconfigured::BaseUrl)?,
            key,
            default_site: self
                .default_site
                .clone()
                .map_err(|_| Misconfigured::DefaultSite)?,
            cache_ttl,
            configured_sites: Vec::new(),
            allowed_sites: AllowedSites::Any,
            granted: false,
        })
    }

    /// `/internal` only: the deployment's `PLAUSIBLE_SITES`, for keys that
    /// cannot list sites themselves.
    pub fn with_configured_sites(
        &self,
        mut ctx: ToolContext,
    ) -> Result<ToolContext, Misconfigured> {
        ctx.configured_sites
            .clone_from(self.configured_sites.as_ref().map_err(|e| *e)?);
        Ok(ctx)
    }
}

/// `MCP_ALLOWED_HOSTNAMES` alone: every route checks it.
pub fn allowed_hosts(source: &dyn Source) -> Vec<String> {
    split_list(source.get(names::MCP_ALLOWED_HOSTNAMES))
}

/// `PLAUSIBLE_API_KEY`, the key `/internal` queries with.
pub fn shared_key(source: &dyn Source) -> Option<PlausibleKey> {
    non_empty(source, names::PLAUSIBLE_API_KEY).map(PlausibleKey::new)
}
