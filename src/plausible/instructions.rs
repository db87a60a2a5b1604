//! The server's `instructions`: what a model must know to call the tools
//! right the first time.
//!
//! The lists (metrics, dimensions, operators, date forms, session metrics)
//! are generated from the vocabulary and the argument rules, so adding a
//! metric or an operator cannot leave the prose behind.

use super::args::{SiteId, one_of};
use super::filters::Operator;
use super::vocabulary::{BUILTIN_DIMENSIONS, Metric};

/// The full instructions, ending with what to do about `site_id`.
pub(crate) fn text(default_site: Option<&SiteId>) -> String {
    let site = match default_site {
        Some(s) => format!(
            "SITE: site_id defaults to \"{}\"; pass site_id to query another site.",
            s.as_str()
        ),
        None => "SITE: every call needs site_id, the site's domain exactly as registered in Plausible (e.g. \"example.com\").".to_owned(),
    };
    let metrics = Metric::ALL
        .iter()
        .map(|m| match m.unit() {
            Some(unit) => format!("{} ({unit})", m.as_str()),
            None => m.as_str().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let dimensions = BUILTIN_DIMENSIONS.join(", ");
    let operators = Operator::ALL.map(Operator::as_str);
    let (default_operator, other_operators) = operators.split_first().unwrap_or((&"is", &[]));
    let session = Metric::ALL
        .into_iter()
        .filter(|m| m.is_session_metric())
        .map(Metric::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Plausible Analytics tools: traffic, sources, pages and goal conversions for websites tracked with Plausible.

DATES: date_range (and compare_periods' period_a/period_b) is one of: \"Nh\" (last N hours, e.g. \"24h\"), \"Nd\" (last N full days, today excluded, e.g. \"7d\", \"30d\"), \"Nmo\" (last N full months, e.g. \"6mo\"), \"day\" (today), \"month\" (this month), \"year\" (this year), \"all\", or an inclusive \"YYYY-MM-DD,YYYY-MM-DD\" range (earlier date first, real calendar dates). Do not ask for future dates. For \"did this deploy/launch/campaign change traffic?\" use measure_change with the day of the change; compare_periods compares two ranges of equal length without a significance test.

TOOLS: list_sites when you do not know site_id (or the site's timezone). list_goals for the goal names goal filters take. get_realtime_visitors for \"who is on the site right now\" (last N minutes, never cached). query_stats runs one raw Stats API v2 query when no shaped tool fits. find_anomalies answers \"was anything unusual?\": window \"Nd\" or two past dates for days, \"Nh\" (at most 48) for hours; each period is compared with the same weekday (and hour) of the 6 weeks before, and each flagged one names the sources, pages and countries that explain it. measure_change compares equal, weekday-aligned windows of whole days before and after a date with a significance test (at least 7 days a side, so the date must be at least a week ago) and says plainly when a change is not significant: report that rather than a difference.

METRICS: {metrics}.

DIMENSIONS (get_breakdown): {dimensions}. Prefer the *_name geography dimensions: they return readable names instead of codes.

FILTERS: page filters one path (\"/pricing\") or a prefix (\"/blog*\"). goal keeps only visitors who completed that goal. property_filters is a list of {{property, operator, values}} entries, all of which must hold; operator is {default_operator} (default), {others}; values is a non-empty list (any value matches). property is any built-in dimension above (e.g. {{\"property\": \"visit:channel\", \"values\": [\"Organic Search\"]}}) or a custom property. event:goal filters allow only is and contains. visit:country takes 2-letter codes; use visit:country_name for names. Do not combine page with an event:page entry, or goal with an event:goal entry: express the whole condition once.

CUSTOM PROPERTIES: break down by \"event:props:<name>\" (e.g. event:props:plan); filter with property \"<name>\" or \"event:props:<name>\". Property names may contain spaces.

COMBINATION RULES (Plausible rejects these; the tools refuse them before querying): Session metrics ({session}) cannot be broken down by event:goal, event:hostname or event:props:<name> (event:page alone is fine); use visitors, visits, pageviews or events there. conversion_rate and group_conversion_rate need a goal (goal argument, an event:goal filter, or get_conversions). scroll_depth and time_on_page need a page (page argument, an event:page filter, or an event:page breakdown). views_per_visit works only as a total in compare_periods and never with a page filter. pageviews, events and scroll_depth cannot be broken down by visit:entry_page or visit:exit_page. For goal conversions use get_conversions.

{site}",
        others = one_of(other_operators),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_metric_dimension_and_operator() {
        let text = text(None);
        for needle in [
            "date_range",
            "Session metrics (views_per_visit, bounce_rate, visit_duration)",
            "event:props:<name>",
            "visit:country_name",
            "get_conversions",
            "list_sites",
            "find_anomalies",
            "measure_change",
            "not significant",
            "bounce_rate (integer percent)",
            "visit_duration (seconds)",
            "operator is is (default), is_not, contains or contains_not;",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        for m in Metric::ALL {
            assert!(text.contains(m.as_str()), "{}", m.as_str());
        }
        for d in BUILTIN_DIMENSIONS {
            assert!(text.contains(d), "{d}");
        }
        assert!(text.ends_with("(e.g. \"example.com\")."));
        let site = SiteId::parse("x", "a.example").unwrap();
        assert!(
            super::text(Some(&site))
                .ends_with("defaults to \"a.example\"; pass site_id to query another site.")
        );
    }
}
