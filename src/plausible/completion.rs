//! Argument completion (MCP `completion/complete`) for the prompts and
//! the resource template.
//!
//! Site names come from the caller's site list as `list_sites` reads it,
//! through the edge cache with a floor on its lifetime, so a user typing
//! into a site field costs at most one Plausible request however many
//! keystrokes it takes (a key without the Sites API costs one refusal,
//! remembered for an hour, then none).

use std::time::Duration;

use super::context::ToolContext;
use super::prompts::{Completes, Prompt};
use super::resources::Template;
use super::upstream::Upstream;
use crate::ports::{Clock, EdgeCache, Outbound};

/// At most this many values per answer (MCP completion: "maximum 100").
pub(crate) const MAX_VALUES: usize = 100;
/// The shortest time a site list is reused for completions, even when the
/// deployment caches Stats API answers for less (or not at all).
const SITE_LIST_FLOOR: Duration = Duration::from_secs(300);

/// What a completion refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Prompt(Prompt),
    Template(Template),
}

impl Target {
    /// What `argument` of this target completes to, `None` when it has no
    /// such argument: the one lookup that both completion and the scope
    /// table (`mcp::scopes`) use, so what is answered and what it needs
    /// cannot disagree. A default site changes only whether `site` is
    /// required and how it is described, never which arguments there are
    /// or what they complete to (a test below holds it to that).
    pub(crate) fn completes(self, argument: &str) -> Option<Completes> {
        match self {
            Target::Prompt(p) => p
                .arguments(false)
                .into_iter()
                .find(|a| a.name == argument)
                .map(|a| a.completes),
            Target::Template(t) => t
                .variables()
                .contains(&argument)
                .then_some(Completes::Sites),
        }
    }
}

/// Values for one argument, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) values: Vec<String>,
    /// How many matched in all (`values` holds at most [`MAX_VALUES`]).
    pub(crate) total: usize,
}

/// Why a completion was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompleteError {
    /// The target has no argument of this name.
    UnknownArgument(String),
}

/// Completes `argument` of `target` from what has been typed (`value`).
pub(crate) async fn complete<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    target: Target,
    argument: &str,
    value: &str,
) -> Result<Completion, CompleteError> {
    let kind = target
        .completes(argument)
        .ok_or_else(|| CompleteError::UnknownArgument(argument.to_owned()))?;
    let candidates: Vec<String> = match kind {
        Completes::Sites => site_names(platform, ctx).await,
        Completes::Choices(list) => list.iter().map(|s| (*s).to_owned()).collect(),
        Completes::Nothing => Vec::new(),
    };
    Ok(rank(candidates, value))
}

/// The caller's sites: the Sites API listing (cached), else the configured
/// list, else the default site; only those the caller may query.
async fn site_names<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
) -> Vec<String> {
    let mut cached = ctx.clone();
    cached.cache_ttl = ctx.cache_ttl.max(SITE_LIST_FLOOR);
    let listed: Vec<String> = match Upstream::new(platform, &cached).sites().await {
        Ok(sites) => sites.into_iter().map(|s| s.domain).collect(),
        // A grant limited to chosen sites knows them without a listing.
        Err(_) if ctx.allowed_sites.listed().is_some() => ctx
            .allowed_sites
            .listed()
            .unwrap_or_default()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        Err(_) if !ctx.configured_sites.is_empty() => ctx
            .configured_sites
            .iter()
            .map(|s| s.domain.as_str().to_owned())
            .collect(),
        Err(_) => ctx
            .default_site
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
    };
    listed
        .into_iter()
        .filter(|name| ctx.allowed_sites.allows(name))
        .collect()
}

/// Prefix matches first, then other matches (case-insensitive), each in
/// the candidates' order; at most [`MAX_VALUES`].
fn rank(candidates: Vec<String>, typed: &str) -> Completion {
    let typed = typed.trim().to_lowercase();
    let (mut prefix, mut inner) = (Vec::new(), Vec::new());
    for c in candidates {
        let lower = c.to_lowercase();
        if lower.starts_with(&typed) {
            prefix.push(c);
        } else if lower.contains(&typed) {
            inner.push(c);
        }
    }
    prefix.append(&mut inner);
    prefix.dedup();
    let total = prefix.len();
    prefix.truncate(MAX_VALUES);
    Completion {
        values: prefix,
        total,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plausible::sites::parse_list;
    use crate::plausible::tools::tests::{ctx, respond, varied_platform};
    use crate::testing::{FakePlatform, block_on};

    /// [`Target::completes`] asks without the default site: it may, as
    /// long as a default site changes no argument's name or completion.
    #[test]
    fn a_default_site_changes_no_argument_or_what_it_completes() {
        for p in Prompt::ALL {
            let kinds = |has_default| {
                p.arguments(has_default)
                    .into_iter()
                    .map(|a| (a.name, a.completes))
                    .collect::<Vec<_>>()
            };
            assert_eq!(kinds(true), kinds(false), "{p:?}");
            for (name, completes) in kinds(true) {
                assert_eq!(Target::Prompt(p).completes(name), Some(completes));
            }
            assert_eq!(Target::Prompt(p).completes("nope"), None);
        }
    }

    /// A key with the Sites API: 150 sites over two pages.
    fn sites_api() -> FakePlatform {
        let p = FakePlatform::new();
        p.respond_with(|req| {
            let page2 = req.url.query().is_some_and(|q| q.contains("after=p2"));
            let (start, end) = if page2 { (100, 150) } else { (0, 100) };
            let sites: Vec<_> = (start..end)
                .map(|i| json!({"domain": format!("site{i:03}.example"), "timezone": "UTC"}))
                .collect();
            let after = if page2 { json!(null) } else { json!("p2") };
            respond(200, json!({"sites": sites, "meta": {"after": after}}))
        });
        p
    }

    fn sites(p: &FakePlatform, c: &ToolContext, typed: &str) -> Completion {
        block_on(complete(
            p,
            c,
            Target::Prompt(Prompt::WeeklyReport),
            "site",
            typed,
        ))
        .unwrap()
    }

    #[test]
    fn many_keystrokes_cost_one_listing_even_without_an_edge_cache_ttl() {
        let p = sites_api();
        let mut c = ctx(None);
        c.cache_ttl = Duration::ZERO;
        for typed in ["", "s", "si", "site", "site1", "site14", "site149"] {
            sites(&p, &c, typed);
        }
        // One listing: two pages of 100.
        assert_eq!(p.sent_count(), 2);
        let got = sites(&p, &c, "site14");
        assert_eq!(got.total, 10);
        assert_eq!(
            got.values.first().map(String::as_str),
            Some("site140.example")
        );
        let all = sites(&p, &c, "");
        assert_eq!((all.values.len(), all.total), (MAX_VALUES, 150));
        assert_eq!(p.sent_count(), 2);
    }

    #[test]
    fn without_the_sites_api_one_refusal_then_the_configured_list() {
        let p = varied_platform();
        let mut c = ctx(Some("default.example"));
        c.configured_sites =
            parse_list("PLAUSIBLE_SITES", "shop.example.com, blog.example.com").unwrap();
        for typed in ["", "b", "bl", "blo", "blog"] {
            sites(&p, &c, typed);
        }
        assert_eq!(p.sent_count(), 1);
        assert_eq!(
            sites(&p, &c, "EXAMPLE").values,
            ["shop.example.com", "blog.example.com"]
        );
        assert_eq!(sites(&p, &c, "blog").values, ["blog.example.com"]);
        // Nothing configured: the default site.
        let only_default = ctx(Some("default.example"));
        assert_eq!(sites(&p, &only_default, "").values, ["default.example"]);
    }

    /// Issue 15: a grant limited to chosen sites completes only those,
    /// from the listing or, when the key cannot list, from the grant.
    #[test]
    fn a_limited_grant_completes_only_its_sites() {
        use crate::plausible::sites::AllowedSites;
        let only = |sites: &[&str]| {
            AllowedSites::of_grant(Some(
                &sites.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            ))
        };
        let listed = ctx(None).restricted_to(only(&["site007.example", "gone.example"]));
        assert_eq!(sites(&sites_api(), &listed, "").values, ["site007.example"]);
        let unlisted =
            ctx(Some("default.example")).restricted_to(only(&["a.example", "b.example"]));
        assert_eq!(
            sites(&varied_platform(), &unlisted, "").values,
            ["a.example", "b.example"]
        );
    }

    #[test]
    fn choices_templates_and_unknown_arguments() {
        let p = varied_platform();
        let c = ctx(Some("default.example"));
        let window = block_on(complete(
            &p,
            &c,
            Target::Prompt(Prompt::TrafficDropCheck),
            "window",
            "2",
        ))
        .unwrap();
        assert_eq!(window.values, ["28d", "24h"]);
        let moment = block_on(complete(
            &p,
            &c,
            Target::Prompt(Prompt::LaunchImpact),
            "moment",
            "",
        ))
        .unwrap();
        assert!(moment.values.is_empty());
        let template = block_on(complete(
            &p,
            &c,
            Target::Template(Template::SiteGoals),
            "site_id",
            "def",
        ))
        .unwrap();
        assert_eq!(template.values, ["default.example"]);
        assert_eq!(
            block_on(complete(
                &p,
                &c,
                Target::Prompt(Prompt::WeeklyReport),
                "window",
                ""
            )),
            Err(CompleteError::UnknownArgument("window".into()))
        );
    }
}
