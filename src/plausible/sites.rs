//! Which sites a caller may name: the deployment's configured list
//! (`PLAUSIBLE_SITES`) and a grant's own restriction (issue 15).

use super::args::{InputError, SiteId};
use super::context::ToolContext;
use super::upstream::Upstream;
use crate::ports::{Clock, EdgeCache, Outbound};

/// One configured site: `domain` or `domain:timezone`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SiteEntry {
    pub(crate) domain: SiteId,
    pub(crate) timezone: Option<String>,
}

/// Parses `PLAUSIBLE_SITES`: `example.com, shop.example.com:Europe/Berlin`.
pub(crate) fn parse_list(field: &str, raw: &str) -> Result<Vec<SiteEntry>, InputError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (domain, timezone) = match item.split_once(':') {
                Some((d, tz)) if !tz.trim().is_empty() => (d, Some(tz.trim().to_owned())),
                Some((d, _)) => (d, None),
                None => (item, None),
            };
            Ok(SiteEntry {
                domain: SiteId::parse(field, domain)?,
                timezone,
            })
        })
        .collect()
}

/// The sites this caller may query: every site its key can read, or
/// only those its grant names (issue 15). Every tool, prompt, resource
/// and completion asks before any request or cache lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum AllowedSites {
    #[default]
    Any,
    /// The sites chosen on the consent page, in the order chosen.
    Only(Vec<SiteId>),
}

impl AllowedSites {
    /// What a grant's stored `sites` allow (`None`: every site). An entry
    /// that no longer parses allows nothing rather than everything.
    pub(crate) fn of_grant(sites: Option<&[String]>) -> Self {
        match sites {
            None => AllowedSites::Any,
            Some(list) => AllowedSites::Only(
                list.iter()
                    .filter_map(|s| SiteId::parse("site_id", s).ok())
                    .collect(),
            ),
        }
    }

    /// The granted sites, or `None` when every site is allowed.
    pub(crate) fn listed(&self) -> Option<&[SiteId]> {
        match self {
            AllowedSites::Any => None,
            AllowedSites::Only(list) => Some(list),
        }
    }

    /// Whether `site` may be named. Plausible's domains are lower case;
    /// the comparison ignores ASCII case so a model's capitalisation is
    /// no way around the grant, nor a reason for a refusal.
    pub(crate) fn allows(&self, site: &str) -> bool {
        match self {
            AllowedSites::Any => true,
            AllowedSites::Only(list) => list.iter().any(|s| s.as_str().eq_ignore_ascii_case(site)),
        }
    }

    /// A tool error naming the allowed sites when `site` is not one.
    pub(crate) fn check(&self, site: &SiteId) -> Result<(), InputError> {
        if self.allows(site.as_str()) {
            return Ok(());
        }
        let names = self
            .listed()
            .unwrap_or_default()
            .iter()
            .map(|s| format!("\"{}\"", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let names = if names.is_empty() {
            "no site".to_owned()
        } else {
            format!("only {names}")
        };
        Err(InputError::new(
            "site_id",
            format!(
                "\"{}\" is not a site this connection may read; it may read {names}. To read another site, the user reconnects and chooses it on the consent page.",
                site.as_str().escape_default()
            ),
        ))
    }
}

/// The sites a consent page may offer for a context's key (issue 15):
/// the deployment's `PLAUSIBLE_SITES` when set, else one Sites API
/// listing (edge-cached like `list_sites`); `None` when neither can say
/// (a Stats API key, Plausible down), so only "all sites" is offered.
pub(crate) async fn offerable<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
) -> Option<Vec<String>> {
    if !ctx.configured_sites.is_empty() {
        return Some(
            ctx.configured_sites
                .iter()
                .map(|s| s.domain.as_str().to_owned())
                .collect(),
        );
    }
    let listed = Upstream::new(platform, ctx).sites().await.ok()?;
    Some(
        listed
            .into_iter()
            .filter(|s| SiteId::parse("site_id", &s.domain).is_ok())
            .map(|s| s.domain)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_sites_parse_with_optional_timezones() {
        let sites = parse_list("PLAUSIBLE_SITES", " a.com, b.example:Europe/Berlin ,,").unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].domain.as_str(), "a.com");
        assert_eq!(sites[0].timezone, None);
        assert_eq!(sites[1].timezone.as_deref(), Some("Europe/Berlin"));
        assert!(parse_list("PLAUSIBLE_SITES", "a b.com").is_err());
        assert!(parse_list("PLAUSIBLE_SITES", "").unwrap().is_empty());
    }

    fn site(s: &str) -> SiteId {
        SiteId::parse("site_id", s).unwrap()
    }

    #[test]
    fn a_grant_allows_its_sites_and_names_them_when_refusing() {
        let any = AllowedSites::of_grant(None);
        assert_eq!(any, AllowedSites::Any);
        assert!(any.check(&site("anything.example")).is_ok());
        let granted = vec!["example.com".to_owned(), "shop.example.com".to_owned()];
        let only = AllowedSites::of_grant(Some(&granted));
        assert!(only.check(&site("example.com")).is_ok());
        assert!(only.check(&site("Shop.Example.com")).is_ok(), "case");
        let refused = only.check(&site("trends.example.com")).unwrap_err();
        assert_eq!(refused.field, "site_id");
        assert_eq!(
            refused.message,
            "\"trends.example.com\" is not a site this connection may read; it may read only \"example.com\", \"shop.example.com\". To read another site, the user reconnects and chooses it on the consent page."
        );
        // Nothing stored that no longer parses widens the grant.
        let broken = AllowedSites::of_grant(Some(&["a b".to_owned()]));
        assert_eq!(broken, AllowedSites::Only(vec![]));
        assert!(broken.check(&site("a")).is_err());
    }

    /// What the consent page offers: `PLAUSIBLE_SITES` without asking
    /// Plausible, else the Sites API listing, else nothing to list.
    #[test]
    fn the_offer_comes_from_the_configuration_or_one_listing() {
        use crate::plausible::tools::tests::{ctx, respond, varied_platform};
        use crate::testing::{FakePlatform, block_on};
        let mut configured = ctx(None);
        configured.configured_sites =
            parse_list("PLAUSIBLE_SITES", "a.example:UTC, b.example").unwrap();
        let p = FakePlatform::new();
        assert_eq!(
            block_on(offerable(&p, &configured)),
            Some(vec!["a.example".to_owned(), "b.example".to_owned()])
        );
        assert_eq!(p.sent_count(), 0);
        p.respond_with(|_| {
            respond(
                200,
                serde_json::json!({"sites": [{"domain": "x.example", "timezone": "UTC"}, {"domain": "bad domain"}], "meta": {"after": null}}),
            )
        });
        assert_eq!(
            block_on(offerable(&p, &ctx(None))),
            Some(vec!["x.example".to_owned()])
        );
        assert_eq!(p.sent_count(), 1);
        // A Stats API key: the Sites API refuses, nothing to offer.
        assert_eq!(block_on(offerable(&varied_platform(), &ctx(None))), None);
    }
}
