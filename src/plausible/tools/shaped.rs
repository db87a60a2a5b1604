//! The single-query tools (`get_timeseries`, `get_breakdown`,
//! `get_conversions`): arguments to one Stats API query, its rows to one
//! table.

use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

use super::{CallError, Outcome, Tool, ToolContext};
use crate::plausible::args::{self, ArgReader, InputError};

use crate::plausible::args::DateRange;
use crate::plausible::filters;
use crate::plausible::query::{self, Granularity, Grouping, Query};
use crate::plausible::render;
use crate::plausible::upstream::{QueryAnswer, Upstream};
use crate::plausible::vocabulary::{Dimension, Metric};
use crate::ports::{Clock, EdgeCache, Outbound};

/// `get_breakdown`'s `limit`: rows per answer.
pub(super) const BREAKDOWN_LIMIT: RangeInclusive<u32> = 1..=1000;
pub(super) const DEFAULT_BREAKDOWN_LIMIT: u32 = 20;

pub(super) const DEFAULT_METRICS: [Metric; 4] = [
    Metric::Visitors,
    Metric::Pageviews,
    Metric::BounceRate,
    Metric::VisitDuration,
];
const BREAKDOWN_METRICS: [Metric; 3] = [Metric::Visitors, Metric::Pageviews, Metric::BounceRate];
/// Session metrics cannot be combined with a custom property dimension.
const PROPERTY_BREAKDOWN_METRICS: [Metric; 3] =
    [Metric::Visitors, Metric::Pageviews, Metric::Events];
const CONVERSION_METRICS: [Metric; 3] = [Metric::Visitors, Metric::Events, Metric::ConversionRate];

/// Parses the arguments of the three single-query tools into a query.
pub(super) fn build_query(
    tool: Tool,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Query, InputError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    ctx.allowed_sites.check(&site)?;
    let range = args::required_range(&mut a, "date_range")?;
    let page = args::page(&mut a)?;
    let filters = filters::property_filters(&mut a)?;
    let imports = a.opt_bool("include_imported")?.unwrap_or(false);
    let mut offset = None;
    let mut query = match tool {
        Tool::Timeseries => {
            let goal = args::goal(&mut a)?;
            let metrics = args::metrics(&mut a, &DEFAULT_METRICS)?;
            let granularity = match a.opt_str("granularity")? {
                None if matches!(range, DateRange::Hours(_) | DateRange::Day) => Granularity::Hour,
                None => Granularity::Day,
                Some(g) => Granularity::parse(&g).ok_or_else(|| {
                    InputError::new(
                        "granularity",
                        format!(
                            "must be {}; got {g:?}",
                            args::one_of(&Granularity::ALL.map(Granularity::as_str))
                        ),
                    )
                })?,
            };
            if granularity == Granularity::Hour && !short_range(&range) {
                return Err(InputError::new(
                    "granularity",
                    "hour needs a range of at most 7 days (Nh up to 168h, day, 1d to 7d, or two dates at most 7 days apart)",
                ));
            }
            filters::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
            Query::new(
                site,
                metrics,
                range,
                vec![Grouping::Time(granularity)],
                query::filters(page, goal, filters, false),
                None,
            )?
        }
        Tool::Breakdown => {
            let dimension = args::dimension(&mut a, "dimension")?;
            let defaults: &[Metric] = match dimension {
                Dimension::CustomProperty(_) => &PROPERTY_BREAKDOWN_METRICS,
                Dimension::Builtin(_) => &BREAKDOWN_METRICS,
            };
            let metrics = args::metrics(&mut a, defaults)?;
            let limit = match a.opt_int("limit")? {
                None => DEFAULT_BREAKDOWN_LIMIT,
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| BREAKDOWN_LIMIT.contains(n))
                    .ok_or_else(|| {
                        InputError::new(
                            "limit",
                            format!(
                                "must be between {} and {}",
                                BREAKDOWN_LIMIT.start(),
                                BREAKDOWN_LIMIT.end()
                            ),
                        )
                    })?,
            };
            offset = match a.opt_int("offset")? {
                None => None,
                Some(n) => Some(
                    u32::try_from(n)
                        .map_err(|_| InputError::new("offset", "must be a whole number from 0"))?,
                ),
            };
            filters::no_shortcut_overlap(page.as_ref(), None, &filters)?;
            Query::new(
                site,
                metrics,
                range,
                vec![Grouping::Dimension(dimension)],
                query::filters(page, None, filters, false),
                Some(limit),
            )?
        }
        Tool::Conversions => {
            let goal = args::goal(&mut a)?;
            let by_page = a.opt_bool("breakdown_by_page")?.unwrap_or(false);
            filters::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
            let mut groupings = vec![Grouping::Dimension(Dimension::Builtin("event:goal"))];
            if by_page {
                groupings.push(Grouping::Dimension(Dimension::Builtin("event:page")));
            }
            Query::new(
                site,
                CONVERSION_METRICS.to_vec(),
                range,
                groupings,
                query::filters(page, goal, filters, true),
                None,
            )?
        }
        _ => {
            return Err(InputError::new(
                "name",
                "this tool is not a single-query tool",
            ));
        }
    };
    a.finish()?;
    query.extras.imports = imports;
    // Paging asks Plausible how many rows there are in all.
    query.extras.offset = offset;
    query.extras.total_rows = offset.is_some();
    Ok(query)
}

/// Ranges short enough for hourly rows: at most a week.
fn short_range(range: &DateRange) -> bool {
    match range {
        DateRange::Hours(n) => *n <= 168,
        DateRange::Day => true,
        DateRange::Days(n) => *n <= 7,
        DateRange::Between(a, b) => (*b - *a).whole_days() < 7,
        _ => false,
    }
}

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let query = build_query(tool, ctx, arguments)?;
    let answer = up
        .query(&query)
        .await
        .map_err(|e| CallError::Plausible(e, query.site_id.clone()))?;
    Ok(tabular_outcome(tool, &query, answer))
}

/// What `meta` says about imported data, when it was asked for
/// (`include.imports`): included or not, and why not.
pub(super) fn imports_note(query: &Query, meta: &Map<String, Value>) -> Option<(Value, String)> {
    if !query.extras.imports {
        return None;
    }
    let included = meta
        .get("imports_included")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reason = meta
        .get("imports_warning")
        .or_else(|| meta.get("imports_skip_reason"))
        .or_else(|| meta.get("warning"))
        .and_then(Value::as_str);
    let text = match (included, reason) {
        (true, _) => "Imported data is included.".to_owned(),
        (false, Some(r)) => format!("Imported data is not included: {r}."),
        (false, None) => "Imported data is not included.".to_owned(),
    };
    Some((
        json!({"included": included, "skip_reason": meta.get("imports_skip_reason"), "warning": meta.get("imports_warning").or_else(|| meta.get("warning"))}),
        text,
    ))
}

fn tabular_outcome(tool: Tool, query: &Query, answer: QueryAnswer) -> Outcome {
    let QueryAnswer { rows, meta } = answer;
    let metric_names: Vec<&str> = query.metrics.iter().map(|m| m.as_str()).collect();
    let dimension_names: Vec<String> = query
        .groupings
        .iter()
        .map(|g| match g {
            Grouping::Time(g) => g.dimension().to_owned(),
            Grouping::Dimension(d) => d.as_str().into_owned(),
        })
        .collect();
    let headers: Vec<String> = dimension_names
        .iter()
        .cloned()
        .chain(metric_names.iter().map(|m| (*m).to_owned()))
        .collect();
    let table_rows: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            r.dimensions
                .iter()
                .chain(r.metrics.iter())
                .cloned()
                .collect()
        })
        .collect();
    let heading = format!(
        "{} for {} over {} ({} row{})",
        tool.title(),
        query.site_id.as_str(),
        query.date_range.label(),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    let body = if rows.is_empty() {
        "No data for this period and filters.".to_owned()
    } else {
        render::table(&headers, &table_rows)
    };
    let mut text = format!("{heading}\n\n{body}");
    let mut structured = json!({
        "site_id": query.site_id.as_str(),
        "date_range": query.date_range.label(),
        "metrics": metric_names,
        "dimensions": dimension_names,
        "results": rows.iter().map(|r| json!({"dimensions": r.dimensions, "metrics": r.metrics})).collect::<Vec<_>>(),
    });
    if let Some((imports, note)) = imports_note(query, &meta) {
        if let Value::Object(obj) = &mut structured {
            obj.insert("imports".into(), imports);
        }
        text.push_str(&format!("\n\n{note}"));
    }
    if query.extras.total_rows
        && let Some(total) = meta.get("total_rows").and_then(Value::as_u64)
    {
        let from = query.extras.offset.unwrap_or(0);
        if let Value::Object(obj) = &mut structured {
            obj.insert("total_rows".into(), json!(total));
        }
        text.push_str(&format!(
            "\n\nRows {} to {} of {total}.",
            u64::from(from) + u64::from(!rows.is_empty()),
            u64::from(from) + rows.len() as u64
        ));
    }
    Outcome::Success { text, structured }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::plausible::tools::call;
    use crate::plausible::tools::tests::ctx;
    use crate::ports::{OutboundError, OutboundRequest, OutboundResponse};
    use crate::testing::{FakePlatform, block_on};

    fn body_for(tool: Tool, args: Value) -> Result<Value, InputError> {
        build_query(
            tool,
            &ctx(Some("default.example")),
            args.as_object().cloned(),
        )
        .map(|q| q.body(crate::ports::UnixMillis(1_773_576_000_000)))
    }

    #[test]
    fn request_bodies_per_tool() {
        let cases = [
            (
                Tool::Timeseries,
                json!({"site_id": "example.com", "date_range": "30d"}),
                json!({"site_id": "example.com", "metrics": ["visitors", "pageviews", "bounce_rate", "visit_duration"], "date_range": "30d", "dimensions": ["time:day"]}),
            ),
            (
                Tool::Timeseries,
                json!({"date_range": "6mo", "granularity": "week", "page": "/blog*", "goal": "Signup", "metrics": ["visitors"], "property_filters": [{"property": "plan", "values": ["pro"]}]}),
                json!({"site_id": "default.example", "metrics": ["visitors"], "date_range": "6mo", "dimensions": ["time:week"], "filters": [["contains", "event:page", ["/blog"]], ["is", "event:goal", ["Signup"]], ["is", "event:props:plan", ["pro"]]]}),
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "month", "dimension": "event:page"}),
                json!({"site_id": "default.example", "metrics": ["visitors", "pageviews", "bounce_rate"], "date_range": "month", "dimensions": ["event:page"], "pagination": {"limit": 20}}),
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:props:destination_host", "limit": 50}),
                json!({"site_id": "default.example", "metrics": ["visitors", "pageviews", "events"], "date_range": "7d", "dimensions": ["event:props:destination_host"], "pagination": {"limit": 50}}),
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "property_filters": [{"property": "visit:channel", "values": ["Organic Search"]}]}),
                json!({"site_id": "default.example", "metrics": ["visitors", "pageviews", "bounce_rate"], "date_range": "7d", "dimensions": ["event:page"], "filters": [["is", "visit:channel", ["Organic Search"]]], "pagination": {"limit": 20}}),
            ),
            (
                Tool::Conversions,
                json!({"date_range": "30d", "goal": "Signup", "page": "/pricing", "breakdown_by_page": true}),
                json!({"site_id": "default.example", "metrics": ["visitors", "events", "conversion_rate"], "date_range": "30d", "dimensions": ["event:goal", "event:page"], "filters": [["is", "event:goal", ["Signup"]], ["is", "event:page", ["/pricing"]]]}),
            ),
            (
                Tool::Conversions,
                json!({"date_range": "2024-03-01,2024-03-31"}),
                json!({"site_id": "default.example", "metrics": ["visitors", "events", "conversion_rate"], "date_range": ["2024-03-01", "2024-03-31"], "dimensions": ["event:goal"]}),
            ),
        ];
        for (tool, args, expected) in cases {
            assert_eq!(
                body_for(tool, args.clone()).unwrap(),
                expected,
                "{tool:?} {args}"
            );
        }
    }

    #[test]
    fn invalid_arguments_name_the_field() {
        let cases = [
            (Tool::Timeseries, json!({}), "date_range"),
            (
                Tool::Timeseries,
                json!({"date_range": "30d", "granularity": "hour"}),
                "granularity",
            ),
            (
                Tool::Timeseries,
                json!({"date_range": "7d", "granularity": "minute"}),
                "granularity",
            ),
            (
                Tool::Timeseries,
                json!({"date_range": "7d", "dimension": "event:page"}),
                "dimension",
            ),
            (Tool::Breakdown, json!({"date_range": "7d"}), "dimension"),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "visit:chanel"}),
                "dimension",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:props:"}),
                "dimension",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "limit": 0}),
                "limit",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "limit": 1001}),
                "limit",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "limit": 2.5}),
                "limit",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "goal": "Signup"}),
                "goal",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:page", "page": "/a", "property_filters": [{"property": "event:page", "values": ["/b"]}]}),
                "property_filters",
            ),
            (
                Tool::Breakdown,
                json!({"date_range": "7d", "dimension": "event:props:plan", "metrics": ["bounce_rate"]}),
                "metrics",
            ),
            (
                Tool::Conversions,
                json!({"date_range": "7d", "goal": "Signup", "property_filters": [{"property": "event:goal", "values": ["Purchase"]}]}),
                "property_filters",
            ),
            (
                Tool::Conversions,
                json!({"date_range": "7d", "metrics": ["visitors"]}),
                "metrics",
            ),
            (
                Tool::Conversions,
                json!({"date_range": "7d", "breakdown_by_page": "yes"}),
                "breakdown_by_page",
            ),
        ];
        for (tool, args, field) in cases {
            let err = body_for(tool, args.clone()).expect_err(&args.to_string());
            assert_eq!(err.field, field, "{tool:?} {args}: {err}");
        }
    }

    #[test]
    fn site_id_is_required_without_a_default() {
        let err = build_query(
            Tool::Timeseries,
            &ctx(None),
            json!({"date_range": "7d"}).as_object().cloned(),
        )
        .unwrap_err();
        assert_eq!(err.field, "site_id");
    }

    fn plausible_answer(
        rows: Value,
    ) -> impl Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        move |_| {
            Ok(OutboundResponse {
                status: 200,
                headers: Headers::new(),
                body: json!({"results": rows, "meta": {}, "query": {}})
                    .to_string()
                    .into_bytes(),
            })
        }
    }

    #[test]
    fn results_become_structured_content_and_a_table() {
        let p = FakePlatform::new();
        p.respond_with(plausible_answer(json!([
            {"dimensions": ["/"], "metrics": [1200, 3400, 45]},
            {"dimensions": ["/pricing"], "metrics": [300, 500, 30]},
        ])));
        let args = json!({"site_id": "example.com", "date_range": "7d", "dimension": "event:page"});
        let Outcome::Success { text, structured } = block_on(call(
            &p,
            &ctx(None),
            Tool::Breakdown,
            args.as_object().cloned(),
        )) else {
            panic!()
        };
        assert_eq!(
            structured["metrics"],
            json!(["visitors", "pageviews", "bounce_rate"])
        );
        assert_eq!(structured["dimensions"], json!(["event:page"]));
        assert_eq!(
            structured["results"][1],
            json!({"dimensions": ["/pricing"], "metrics": [300, 500, 30]})
        );
        assert!(
            text.contains("event:page  visitors  pageviews  bounce_rate"),
            "{text}"
        );
        assert!(
            text.contains("/pricing         300        500           30"),
            "{text}"
        );
    }

    #[test]
    fn failures_are_specific_and_never_query_on_bad_input() {
        let p = FakePlatform::new();
        p.respond_with(|_| {
            Ok(OutboundResponse {
                status: 401,
                headers: Headers::new(),
                body: b"STUB-UPSTREAM-BODY".to_vec(),
            })
        });
        let bad = json!({"site_id": "example.com", "date_range": "7d", "page": "/a", "property_filters": [{"property": "event:page", "values": ["/b"]}]});
        let Outcome::Failure(msg) = block_on(call(
            &p,
            &ctx(None),
            Tool::Timeseries,
            bad.as_object().cloned(),
        )) else {
            panic!()
        };
        assert!(
            msg.contains("property_filters") && msg.contains("Drop \"page\""),
            "{msg}"
        );
        assert_eq!(p.sent_count(), 0);
        let good = json!({"site_id": "example.com", "date_range": "7d"});
        let Outcome::Failure(msg) = block_on(call(
            &p,
            &ctx(None),
            Tool::Timeseries,
            good.as_object().cloned(),
        )) else {
            panic!()
        };
        assert!(msg.contains("401") && msg.contains("example.com"), "{msg}");
        assert!(!msg.contains("KEY-SECRET-1") && !msg.contains("STUB-UPSTREAM-BODY"));
    }
}
