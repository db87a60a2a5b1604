//! `get_realtime_visitors`: the last N minutes, as a date-time range
//! (the Stats API has no minute dimension and v2 no realtime endpoint).

use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

use super::{CallError, Outcome, ToolContext};
use crate::plausible::args::{self, ArgReader, DateRange, InputError};
use crate::plausible::query::{Grouping, Query};
use crate::plausible::render;
use crate::plausible::upstream::Upstream;
use crate::plausible::vocabulary::{Dimension, Metric};
use crate::ports::{Clock, EdgeCache, Outbound};

pub(super) const MINUTES: RangeInclusive<u32> = 1..=60;
pub(super) const DEFAULT_MINUTES: u32 = 5;
const TOP: u32 = 5;

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    let minutes = match a.opt_int("minutes")? {
        None => DEFAULT_MINUTES,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| MINUTES.contains(n))
            .ok_or_else(|| {
                InputError::new(
                    "minutes",
                    format!("must be between {} and {}", MINUTES.start(), MINUTES.end()),
                )
            })?,
    };
    a.finish()?;
    ctx.allowed_sites.check(&site)?;
    let range = DateRange::Minutes(minutes);
    let totals = Query::new(
        site.clone(),
        vec![Metric::Visitors, Metric::Pageviews],
        range.clone(),
        Vec::new(),
        Vec::new(),
        None,
    )?;
    let top = |dimension: &'static str| {
        Query::new(
            site.clone(),
            vec![Metric::Visitors],
            range.clone(),
            vec![Grouping::Dimension(Dimension::Builtin(dimension))],
            Vec::new(),
            Some(TOP),
        )
    };
    let (pages, sources) = (top("event:page")?, top("visit:source")?);
    let (t, p, s) =
        futures_util::future::join3(up.query(&totals), up.query(&pages), up.query(&sources)).await;
    let fail = |e| CallError::Plausible(e, site.clone());
    let (t, p, s) = (t.map_err(fail)?, p.map_err(fail)?, s.map_err(fail)?);
    let first = |i: usize| {
        t.rows
            .first()
            .and_then(|r| r.metrics.get(i))
            .cloned()
            .unwrap_or(json!(0))
    };
    let (visitors, pageviews) = (first(0), first(1));
    let list = |rows: &[crate::plausible::client::Row], key: &str| -> Vec<Value> {
        rows.iter()
            .map(|r| json!({ key: r.dimensions.first(), "visitors": r.metrics.first() }))
            .collect()
    };
    let top_pages = list(&p.rows, "page");
    let top_sources = list(&s.rows, "source");
    let table = |rows: &[crate::plausible::client::Row], name: &str| {
        if rows.is_empty() {
            format!("No {name}s in this time.")
        } else {
            render::table(
                &[name.to_owned(), "visitors".into()],
                &rows
                    .iter()
                    .map(|r| {
                        r.dimensions
                            .iter()
                            .chain(r.metrics.iter())
                            .cloned()
                            .collect()
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let text = format!(
        "Realtime for {} (last {minutes} min): {} visitors, {} pageviews\n\nTop pages\n{}\n\nTop sources\n{}",
        site.as_str(),
        visitors,
        pageviews,
        table(&p.rows, "page"),
        table(&s.rows, "source"),
    );
    Ok(Outcome::Success {
        text,
        structured: json!({
            "site_id": site.as_str(),
            "minutes": minutes,
            "visitors": visitors,
            "pageviews": pageviews,
            "top_pages": top_pages,
            "top_sources": top_sources,
        }),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::plausible::tools::Tool;
    use crate::plausible::tools::tests::{argument_table, ctx, run_tool, varied_platform};

    #[test]
    fn good_and_bad_arguments() {
        let p = varied_platform();
        argument_table(
            &p,
            &ctx(None),
            Tool::RealtimeVisitors,
            json!({"site_id": "example.com"}),
            &[
                ("one minute", json!({"minutes": 1})),
                ("an hour", json!({"minutes": 60})),
                ("the default, said", json!({"minutes": 5})),
            ],
            &[
                ("no site", json!({"site_id": null}), "site_id"),
                (
                    "a site that is no domain",
                    json!({"site_id": "a b"}),
                    "site_id",
                ),
                ("zero minutes", json!({"minutes": 0}), "minutes"),
                ("over an hour", json!({"minutes": 61}), "minutes"),
                ("negative", json!({"minutes": -5}), "minutes"),
                ("a fraction", json!({"minutes": 2.5}), "minutes"),
                ("a string", json!({"minutes": "5"}), "minutes"),
                ("a date range", json!({"date_range": "day"}), "date_range"),
            ],
        );
    }

    /// Three requests (totals, pages, sources) over the last N minutes as
    /// date-times, each time: realtime is never served from the cache.
    #[test]
    fn three_requests_every_time_over_the_last_minutes() {
        let p = varied_platform();
        for round in 1..=2 {
            let out = run_tool(
                &p,
                &ctx(None),
                Tool::RealtimeVisitors,
                json!({"site_id": "example.com", "minutes": 30}),
            );
            assert!(matches!(out, Ok(Outcome::Success { .. })));
            assert_eq!(p.sent_count(), 3 * round);
        }
        let bodies: Vec<Value> = p
            .sent
            .borrow()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        for b in &bodies {
            // 2026-03-15T12:00:00Z minus 30 minutes.
            assert_eq!(
                b["date_range"],
                json!(["2026-03-15T11:30:00Z", "2026-03-15T12:00:00Z"])
            );
        }
        assert_eq!(bodies[1]["dimensions"], json!(["event:page"]));
        assert_eq!(bodies[2]["dimensions"], json!(["visit:source"]));
    }
}
