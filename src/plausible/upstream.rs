//! One tool call's line to Plausible: the edge cache in front, the
//! request count behind, and the Sites API reads.
//!
//! Cache design: the key is SHA-256 over a version tag, SHA-256 of the
//! credential, the base URL, the endpoint and the canonical request, so
//! two credentials never share an entry and a stored entry reveals no key.
//! Lookups happen only here, after the tool has validated its arguments
//! and checked the site against what the caller may query. Only 2xx
//! answers are stored; realtime queries are never cached.

use std::cell::Cell;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::args::SiteId;
use super::client::{self, Endpoint, PlausibleError, Row};
use super::context::ToolContext;
use super::query::Query;
use crate::ports::{Clock, EdgeCache, Outbound};

/// How long a "this key cannot use the Sites API" answer is remembered,
/// so `list_sites` and `list_goals` stop asking.
const NO_SITES_API_TTL: Duration = Duration::from_secs(3600);
/// At most this many Sites API pages (100 entries each) per listing.
pub(crate) const MAX_PAGES: u32 = 10;

/// A Stats API answer: rows, and `meta` (imports, total_rows, labels).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct QueryAnswer {
    pub(crate) rows: Vec<Row>,
    pub(crate) meta: Map<String, Value>,
}

#[derive(Deserialize)]
struct QueryBody {
    results: Vec<Row>,
    #[serde(default)]
    meta: Map<String, Value>,
}

/// A site from `GET /api/v1/sites`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct SiteInfo {
    pub(crate) domain: String,
    #[serde(default)]
    pub(crate) timezone: Option<String>,
}

/// A goal from `GET /api/v1/sites/goals`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct GoalInfo {
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) goal_type: Option<String>,
    #[serde(default)]
    pub(crate) event_name: Option<String>,
    #[serde(default)]
    pub(crate) page_path: Option<String>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(alias = "sites", alias = "goals")]
    entries: Vec<T>,
    #[serde(default)]
    meta: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default)]
    after: Option<String>,
}

/// Why the Sites API gave nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SitesError {
    /// 401/402/403/404: this key (or this Plausible) has no Sites API.
    NotAvailable(u16),
    /// Known from an earlier answer: not asked again.
    RememberedNotAvailable,
    Plausible(PlausibleError),
}

/// The edge-cache entry: when it was stored, and Plausible's body.
#[derive(serde::Serialize, Deserialize)]
struct Entry {
    stored_ms: u64,
    body: String,
}

pub(crate) struct Upstream<'a, P> {
    platform: &'a P,
    ctx: &'a ToolContext,
    sent: Cell<u32>,
    hits: Cell<u32>,
    oldest_hit_ms: Cell<Option<u64>>,
}

impl<'a, P: Outbound + Clock + EdgeCache> Upstream<'a, P> {
    pub(crate) fn new(platform: &'a P, ctx: &'a ToolContext) -> Self {
        Self {
            platform,
            ctx,
            sent: Cell::new(0),
            hits: Cell::new(0),
            oldest_hit_ms: Cell::new(None),
        }
    }

    pub(crate) fn now(&self) -> crate::ports::UnixMillis {
        self.platform.now()
    }

    /// How this call was served: `{requests, from_cache, cache_age_seconds}`.
    pub(crate) fn report(&self) -> Value {
        let age = self
            .oldest_hit_ms
            .get()
            .map(|stored| self.platform.now().0.saturating_sub(stored) / 1000);
        json!({
            "requests": self.sent.get(),
            "from_cache": self.hits.get(),
            "cache_age_seconds": age,
        })
    }

    /// A sentence for the text result when anything came from the cache.
    pub(crate) fn cache_note(&self) -> Option<String> {
        let stored = self.oldest_hit_ms.get()?;
        let age = self.platform.now().0.saturating_sub(stored) / 1000;
        Some(format!(
            "({} of the answers came from the edge cache, at most {age} s old.)",
            self.hits.get()
        ))
    }

    fn key(&self, endpoint: Endpoint, canonical: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"pmcp-edge-v1\n");
        h.update(Sha256::digest(self.ctx.key.secret().as_bytes()));
        h.update(b"\n");
        h.update(self.ctx.base_url.as_str().as_bytes());
        h.update(b"\n");
        h.update(endpoint.path().as_bytes());
        h.update(b"\n");
        h.update(canonical.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn cached(&self, key: &str) -> Option<String> {
        if self.ctx.cache_ttl.is_zero() {
            return None;
        }
        let bytes = self.platform.lookup(key).await?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        // The Cache API may keep an entry past its max-age; we do not.
        let ttl_ms = u64::try_from(self.ctx.cache_ttl.as_millis()).unwrap_or(u64::MAX);
        if self.platform.now().0.saturating_sub(entry.stored_ms) >= ttl_ms {
            return None;
        }
        self.hits.set(self.hits.get() + 1);
        let oldest = self
            .oldest_hit_ms
            .get()
            .map_or(entry.stored_ms, |o| o.min(entry.stored_ms));
        self.oldest_hit_ms.set(Some(oldest));
        Some(entry.body)
    }

    async fn remember(&self, key: &str, body: &str, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let entry = Entry {
            stored_ms: self.platform.now().0,
            body: body.to_owned(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            self.platform.store(key, &bytes, ttl).await;
        }
    }

    /// A GET or POST through the cache: the body of a 2xx answer.
    async fn fetch(
        &self,
        endpoint: Endpoint,
        params: &[(&str, &str)],
        body: Vec<u8>,
        canonical: &str,
        cacheable: bool,
    ) -> Result<String, PlausibleError> {
        let key = self.key(endpoint, canonical);
        if cacheable && let Some(hit) = self.cached(&key).await {
            return Ok(hit);
        }
        let bytes = client::send(
            self.platform,
            &self.ctx.base_url,
            &self.ctx.key,
            endpoint,
            params,
            body,
            &self.sent,
        )
        .await?;
        let text = String::from_utf8(bytes).map_err(|_| PlausibleError::BadResponse)?;
        if cacheable {
            self.remember(&key, &text, self.ctx.cache_ttl).await;
        }
        Ok(text)
    }

    /// One Stats API query.
    pub(crate) async fn query(&self, query: &Query) -> Result<QueryAnswer, PlausibleError> {
        let now = self.platform.now();
        let body = serde_json::to_vec(&query.body(now)).map_err(|_| PlausibleError::BadResponse)?;
        let text = self
            .fetch(
                Endpoint::Query,
                &[],
                body,
                &query.canonical(now),
                !query.is_realtime(),
            )
            .await?;
        let parsed: QueryBody =
            serde_json::from_str(&text).map_err(|_| PlausibleError::BadResponse)?;
        Ok(QueryAnswer {
            rows: parsed.results,
            meta: parsed.meta,
        })
    }

    fn no_sites_key(&self) -> String {
        self.key(Endpoint::Sites, "no-sites-api")
    }

    /// Every page of a Sites API listing, or why there is none.
    async fn listing<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: Endpoint,
        site: Option<&SiteId>,
    ) -> Result<Vec<T>, SitesError> {
        if self.platform.lookup(&self.no_sites_key()).await.is_some() {
            return Err(SitesError::RememberedNotAvailable);
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params: Vec<(&str, &str)> = vec![("limit", "100")];
            if let Some(site) = site {
                params.push(("site_id", site.as_str()));
            }
            if let Some(cursor) = after.as_deref() {
                params.push(("after", cursor));
            }
            let canonical = serde_json::to_string(&params).unwrap_or_default();
            let text = match self
                .fetch(endpoint, &params, Vec::new(), &canonical, true)
                .await
            {
                Ok(text) => text,
                Err(PlausibleError::Unauthorized(status)) => {
                    return Err(self.not_available(status).await);
                }
                Err(PlausibleError::PaymentRequired) => return Err(self.not_available(402).await),
                Err(PlausibleError::NotFound) => return Err(self.not_available(404).await),
                Err(e) => return Err(SitesError::Plausible(e)),
            };
            let page: Page<T> = serde_json::from_str(&text)
                .map_err(|_| SitesError::Plausible(PlausibleError::BadResponse))?;
            out.extend(page.entries);
            match page.meta.after {
                Some(next) if !next.is_empty() => after = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn not_available(&self, status: u16) -> SitesError {
        self.platform
            .store(&self.no_sites_key(), b"1", NO_SITES_API_TTL)
            .await;
        SitesError::NotAvailable(status)
    }

    /// `GET /api/v1/sites`, all pages (up to [`MAX_PAGES`]).
    pub(crate) async fn sites(&self) -> Result<Vec<SiteInfo>, SitesError> {
        self.listing(Endpoint::Sites, None).await
    }

    /// `GET /api/v1/sites/goals?site_id=`, all pages.
    pub(crate) async fn goals(&self, site: &SiteId) -> Result<Vec<GoalInfo>, SitesError> {
        self.listing(Endpoint::Goals, Some(site)).await
    }
}
