//! What a consent page may offer to limit a grant to (issue 15): apart
//! from `sites`, which `context` and `upstream` import, because this asks
//! Plausible through them.

use super::args::SiteId;
use super::context::ToolContext;
use super::upstream::Upstream;
use crate::ports::{Clock, EdgeCache, Outbound};

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
    use crate::plausible::sites::parse_list;

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
