//! What a tool call needs besides its arguments: where Plausible is, the
//! key to query with, and which sites this caller may name.

use super::args::SiteId;
use super::client::PlausibleBaseUrl;
use super::sites::{AllowedSites, SiteEntry};
use crate::secret::PlausibleKey;

/// What a tool call needs besides its arguments.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub(crate) base_url: PlausibleBaseUrl,
    pub(crate) key: PlausibleKey,
    pub(crate) default_site: Option<SiteId>,
    /// How long identical Stats API answers come from the edge cache
    /// (zero: never).
    pub(crate) cache_ttl: std::time::Duration,
    /// `PLAUSIBLE_SITES` on `/internal`: what `list_sites` shows when the
    /// key cannot use the Sites API. Empty on `/mcp`.
    pub(crate) configured_sites: Vec<SiteEntry>,
    /// The sites this caller may query (issue 15's seam).
    pub(crate) allowed_sites: AllowedSites,
    /// The key came from an OAuth grant of `/mcp` (issue 15): when
    /// Plausible stops accepting it, the person must reconnect.
    pub(crate) granted: bool,
}

impl ToolContext {
    /// Narrows the context to a grant's sites (issue 15). The default
    /// site stays the deployment's even when the grant does not allow it
    /// (a call that relies on it is refused naming the allowed sites):
    /// the tool list and the instructions depend on it, and they are
    /// built once per deployment and marked `cacheScope: public`
    /// (`mcp::shared`), so nothing in them may vary by grant.
    pub(crate) fn restricted_to(mut self, allowed: AllowedSites) -> Self {
        self.allowed_sites = allowed;
        self
    }
}
