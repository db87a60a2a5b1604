//! What both MCP endpoints read from configuration: the hostnames and
//! origins they serve, Plausible's base URL, the default site, and the
//! shared key of `/internal`.

use super::names;
use super::source::{Source, non_empty, split_list};
use crate::plausible::args::{InputError, SiteId};
use crate::plausible::client::{BaseUrlError, PlausibleBaseUrl};
use crate::plausible::tools::ToolContext;
use crate::secret::PlausibleKey;

#[derive(Clone, Debug)]
pub struct McpSettings {
    /// Hostnames this worker answers MCP on (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Browser origins `/internal` accepts.
    pub allowed_origins: Vec<String>,
    pub base_url: Result<PlausibleBaseUrl, BaseUrlError>,
    pub default_site: Result<Option<SiteId>, InputError>,
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
        }
    }

    /// The tool context for a key.
    pub fn tool_context(&self, key: PlausibleKey) -> Result<ToolContext, Misconfigured> {
        Ok(ToolContext {
            base_url: self.base_url.clone().map_err(|_| Misconfigured::BaseUrl)?,
            key,
            default_site: self
                .default_site
                .clone()
                .map_err(|_| Misconfigured::DefaultSite)?,
        })
    }
}

/// `PLAUSIBLE_API_KEY`, the key `/internal` queries with.
pub fn shared_key(source: &dyn Source) -> Option<PlausibleKey> {
    non_empty(source, names::PLAUSIBLE_API_KEY).map(PlausibleKey::new)
}
