//! The resources a client can attach as context (MCP `resources/list`,
//! `resources/read`, `resources/templates/list`).
//!
//! One registry: [`Resource`] lists the fixed URIs, [`Template`] the
//! parameterised ones, and [`read`] resolves a URI to its contents. A new
//! resource (such as an MCP App's `ui://` document) is one more variant
//! with its metadata and one more arm in [`read`].
//!
//! Whatever depends on the credential (sites, goals) is read through the
//! same tools, so it passes the same [`AllowedSites`](super::sites::AllowedSites)
//! check and edge cache, and is marked `private` for caches.

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use super::args::SiteId;
use super::context::ToolContext;
use super::tools::{self, Outcome, Tool};
use super::{ui, vocabulary_doc};
use crate::ports::{Clock, EdgeCache, Outbound};

/// Who may reuse a cached answer (MCP 2026-07-28 caching, `cacheScope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheScope {
    /// The same for every caller of this deployment.
    Public,
    /// Depends on the caller's credential.
    Private,
}

impl CacheScope {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        }
    }
}

/// How long a document that changes only on deploy may be cached.
const DOCUMENT_TTL_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    Sites,
    Vocabulary,
    /// The MCP Apps view that charts timeseries, comparisons and anomalies.
    Chart,
}

impl Resource {
    pub(crate) const ALL: [Resource; 3] = [Resource::Sites, Resource::Vocabulary, Resource::Chart];

    pub(crate) fn uri(self) -> &'static str {
        match self {
            Resource::Sites => "plausible://sites",
            Resource::Vocabulary => "plausible://vocabulary",
            Resource::Chart => ui::CHART_URI,
        }
    }

    pub(crate) fn parse(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.uri() == uri)
    }

    fn name(self) -> &'static str {
        match self {
            Resource::Sites => "sites",
            Resource::Vocabulary => "vocabulary",
            Resource::Chart => "chart",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Resource::Sites => "Plausible sites",
            Resource::Vocabulary => "Plausible vocabulary",
            Resource::Chart => "Plausible chart",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Resource::Sites => {
                "The sites this connection may query, with their timezones: what the list_sites tool returns, as JSON."
            }
            Resource::Vocabulary => {
                "The metrics, dimensions, filter operators, date ranges and combination rules the tools accept, as Markdown."
            }
            Resource::Chart => {
                "An MCP App view that draws get_timeseries, compare_periods and find_anomalies results as a line chart."
            }
        }
    }

    fn mime_type(self) -> &'static str {
        match self {
            Resource::Sites => "application/json",
            Resource::Vocabulary => "text/markdown",
            Resource::Chart => ui::MIME_TYPE,
        }
    }

    /// The `resources/list` entry.
    pub(crate) fn definition(self) -> Value {
        json!({
            "uri": self.uri(),
            "name": self.name(),
            "title": self.title(),
            "description": self.description(),
            "mimeType": self.mime_type(),
        })
    }
}

/// Parameterised resources (RFC 6570 level 1 templates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Template {
    SiteGoals,
}

impl Template {
    pub(crate) const ALL: [Template; 1] = [Template::SiteGoals];

    pub(crate) fn uri_template(self) -> &'static str {
        match self {
            Template::SiteGoals => "plausible://sites/{site_id}/goals",
        }
    }

    pub(crate) fn parse(uri_template: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.uri_template() == uri_template)
    }

    /// The template's variables, in order.
    pub(crate) fn variables(self) -> &'static [&'static str] {
        match self {
            Template::SiteGoals => &["site_id"],
        }
    }

    /// The `resources/templates/list` entry.
    pub(crate) fn definition(self) -> Value {
        match self {
            Template::SiteGoals => json!({
                "uriTemplate": self.uri_template(),
                "name": "site_goals",
                "title": "Goals of a site",
                "description": "A site's goals (the names goal filters and get_conversions take): what the list_goals tool returns, as JSON.",
                "mimeType": "application/json",
            }),
        }
    }
}

/// A read resource.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Contents {
    pub(crate) uri: String,
    pub(crate) mime_type: &'static str,
    pub(crate) text: String,
    /// The content's own `_meta` (an MCP App's `ui` preferences).
    pub(crate) meta: Option<Value>,
    pub(crate) scope: CacheScope,
    pub(crate) ttl_ms: u64,
}

/// Why a URI could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// No resource has this URI, or this caller may not read it
    /// (MCP resources, "Error Handling": resource not found).
    NotFound(String),
    /// The resource exists but Plausible could not supply it; the
    /// message is the tool's, written for the model.
    Upstream(String),
}

/// Resolves `uri` to its contents.
pub(crate) async fn read<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    uri: &str,
) -> Result<Contents, ReadError> {
    let credential_ttl = u64::try_from(ctx.cache_ttl.as_millis()).unwrap_or(u64::MAX);
    match Resource::parse(uri) {
        Some(Resource::Vocabulary) => Ok(Contents {
            uri: uri.to_owned(),
            mime_type: Resource::Vocabulary.mime_type(),
            text: vocabulary_doc::markdown(),
            meta: None,
            scope: CacheScope::Public,
            ttl_ms: DOCUMENT_TTL_MS,
        }),
        Some(Resource::Sites) => Ok(Contents {
            uri: uri.to_owned(),
            mime_type: Resource::Sites.mime_type(),
            text: tool_json(platform, ctx, Tool::ListSites, Map::new()).await?,
            meta: None,
            scope: CacheScope::Private,
            ttl_ms: credential_ttl,
        }),
        Some(Resource::Chart) => Ok(Contents {
            uri: uri.to_owned(),
            mime_type: ui::MIME_TYPE,
            text: ui::CHART_HTML.to_owned(),
            meta: Some(ui::content_meta()),
            scope: CacheScope::Public,
            ttl_ms: DOCUMENT_TTL_MS,
        }),
        None => {
            let site = goals_site(uri)?;
            ctx.allowed_sites
                .check(&site)
                .map_err(|_| ReadError::NotFound(format!("{uri} is not readable here")))?;
            let mut args = Map::new();
            args.insert("site_id".into(), json!(site.as_str()));
            Ok(Contents {
                uri: uri.to_owned(),
                mime_type: "application/json",
                text: tool_json(platform, ctx, Tool::ListGoals, args).await?,
                meta: None,
                scope: CacheScope::Private,
                ttl_ms: credential_ttl,
            })
        }
    }
}

/// The site of `plausible://sites/{site_id}/goals`, percent-decoded.
pub(crate) fn goals_site(uri: &str) -> Result<SiteId, ReadError> {
    let not_found =
        || ReadError::NotFound(format!("no resource has the URI {}", uri.escape_default()));
    let url = url::Url::parse(uri).map_err(|_| not_found())?;
    if url.scheme() != "plausible"
        || url.host_str() != Some("sites")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(not_found());
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let [raw, "goals"] = segments.as_slice() else {
        return Err(not_found());
    };
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| not_found())?;
    SiteId::parse("site_id", &decoded).map_err(|e| {
        ReadError::NotFound(format!(
            "{} does not name a site: {}",
            uri.escape_default(),
            e.message
        ))
    })
}

/// A tool's structured result as the resource's JSON text, without the
/// per-call `upstream` report.
async fn tool_json<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    tool: Tool,
    args: Map<String, Value>,
) -> Result<String, ReadError> {
    match tools::call(platform, ctx, tool, Some(args)).await {
        Outcome::Success { mut structured, .. } => {
            if let Value::Object(obj) = &mut structured {
                obj.remove("upstream");
            }
            serde_json::to_string_pretty(&structured)
                .map_err(|_| ReadError::Upstream("the result could not be encoded".into()))
        }
        Outcome::Failure(message) => Err(ReadError::Upstream(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::tools::tests::{ctx, varied_platform};
    use crate::testing::block_on;

    #[test]
    fn reads_each_resource_with_its_scope() {
        let p = varied_platform();
        let c = ctx(Some("default.example"));
        let vocab = block_on(read(&p, &c, "plausible://vocabulary")).unwrap();
        assert_eq!(vocab.mime_type, "text/markdown");
        assert_eq!(vocab.scope, CacheScope::Public);
        assert!(vocab.text.starts_with("# Plausible vocabulary"));
        assert_eq!(p.sent_count(), 0);

        let sites = block_on(read(&p, &c, "plausible://sites")).unwrap();
        assert_eq!(sites.scope, CacheScope::Private);
        assert_eq!(sites.ttl_ms, 60_000);
        let body: Value = serde_json::from_str(&sites.text).unwrap();
        assert_eq!(body["sites"][0]["site_id"], "default.example");
        assert!(body.get("upstream").is_none());

        let goals = block_on(read(&p, &c, "plausible://sites/shop.example.com/goals")).unwrap();
        assert_eq!(goals.scope, CacheScope::Private);
        let body: Value = serde_json::from_str(&goals.text).unwrap();
        assert_eq!(body["site_id"], "shop.example.com");
        assert_eq!(goals.uri, "plausible://sites/shop.example.com/goals");
    }

    /// Issue 15: the goals of a site the grant does not allow are not
    /// found, before any request; the sites resource lists the grant's.
    #[test]
    fn a_limited_grant_reads_only_its_sites() {
        let p = varied_platform();
        let c = ctx(None).restricted_to(crate::plausible::sites::AllowedSites::of_grant(Some(&[
            "shop.example.com".to_owned(),
        ])));
        let got = block_on(read(&p, &c, "plausible://sites/example.com/goals"));
        assert!(matches!(got, Err(ReadError::NotFound(_))), "{got:?}");
        assert_eq!(p.sent_count(), 0);
        assert!(block_on(read(&p, &c, "plausible://sites/shop.example.com/goals")).is_ok());
        let sites = block_on(read(&p, &c, "plausible://sites")).unwrap();
        let body: Value = serde_json::from_str(&sites.text).unwrap();
        assert_eq!(
            body["sites"],
            serde_json::json!([{"site_id": "shop.example.com", "timezone": null}])
        );
    }

    #[test]
    fn unknown_or_malformed_uris_are_not_found_before_any_request() {
        let p = varied_platform();
        for uri in [
            "plausible://nothing",
            "plausible://sites/",
            "plausible://sites/a.com",
            "plausible://sites/a.com/goals/x",
            "plausible://sites/a.com/goals?x=1",
            "plausible://sites/a%20b.com/goals",
            "plausible://sites/%FF/goals",
            "https://sites/a.com/goals",
            "other://sites/a.com/goals",
            "not a uri",
            "",
        ] {
            let got = block_on(read(&p, &ctx(None), uri));
            assert!(matches!(got, Err(ReadError::NotFound(_))), "{uri}: {got:?}");
        }
        assert_eq!(p.sent_count(), 0);
    }

    #[test]
    fn registry_entries_are_complete_and_distinct() {
        let uris: Vec<&str> = Resource::ALL.iter().map(|r| r.uri()).collect();
        let mut unique = uris.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), uris.len());
        for r in Resource::ALL {
            let d = r.definition();
            for field in ["uri", "name", "title", "description", "mimeType"] {
                assert!(
                    d[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{r:?} {field}"
                );
            }
        }
        for t in Template::ALL {
            assert_eq!(Template::parse(t.uri_template()), Some(t));
            for v in t.variables() {
                assert!(t.uri_template().contains(&format!("{{{v}}}")));
            }
        }
    }
}
