//! `query_stats`: one raw Stats API v2 query, checked against the same
//! grammar and combination rules as the shaped tools before it is sent.

use serde_json::{Map, Value, json};

use super::shaped::imports_note;
use super::{CallError, Outcome, ToolContext};
use crate::plausible::args::{self, ArgReader, InputError, MAX_TEXT};
use crate::plausible::client::PlausibleError;
use crate::plausible::filters::MAX_FILTERS;
use crate::plausible::query::{Filter, Granularity, Grouping, Query};
use crate::plausible::render;
use crate::plausible::upstream::Upstream;
use crate::plausible::vocabulary::Dimension;
use crate::ports::{Clock, EdgeCache, Outbound};

/// Stats API `pagination.limit` bounds.
pub(super) const MAX_ROWS: u64 = 10_000;
const MAX_DEPTH: usize = 5;

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let query = build(ctx, arguments)?;
    let answer = match up.query(&query).await {
        Ok(a) => a,
        Err(PlausibleError::RejectedBecause(message)) => {
            return Err(CallError::Input(InputError::new(
                field_of(&message),
                format!("Plausible rejected the query: {message}"),
            )));
        }
        Err(e) => return Err(CallError::Plausible(e, query.site_id.clone())),
    };
    let metrics: Vec<&str> = query.metrics.iter().map(|m| m.as_str()).collect();
    let dims: Vec<String> = query.groupings.iter().map(Grouping::wire).collect();
    let headers: Vec<String> = dims
        .iter()
        .cloned()
        .chain(metrics.iter().map(|m| (*m).to_owned()))
        .collect();
    let rows: Vec<Vec<Value>> = answer
        .rows
        .iter()
        .map(|r| {
            r.dimensions
                .iter()
                .chain(r.metrics.iter())
                .cloned()
                .collect()
        })
        .collect();
    let mut text = format!(
        "Query Stats for {} over {} ({} row{})\n\n{}",
        query.site_id.as_str(),
        query.date_range.label(),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if rows.is_empty() {
            "No data for this query.".to_owned()
        } else {
            render::table(&headers, &rows)
        }
    );
    if let Some((_, note)) = imports_note(&query, &answer.meta) {
        text.push_str(&format!("\n\n{note}"));
    }
    if let Some(note) = up.cache_note() {
        text.push_str(&format!("\n\n{note}"));
    }
    Ok(Outcome::Success {
        text,
        structured: json!({
            "site_id": query.site_id.as_str(),
            "date_range": query.date_range.label(),
            "metrics": metrics,
            "dimensions": dims,
            "results": answer.rows.iter().map(|r| json!({"dimensions": r.dimensions, "metrics": r.metrics})).collect::<Vec<_>>(),
            "meta": answer.meta,
        }),
    })
}

/// Which argument Plausible's message is about.
fn field_of(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    for (needle, field) in [
        ("#/metrics", "metrics"),
        ("#/dimensions", "dimensions"),
        ("#/filters", "filters"),
        ("#/order_by", "order_by"),
        ("#/include", "include"),
        ("#/pagination", "pagination"),
        ("#/date_range", "date_range"),
        ("date_range", "date_range"),
        ("order_by", "order_by"),
        ("invalid filters", "filters"),
        ("filter", "filters"),
        ("include", "include"),
        ("dimension", "dimensions"),
        ("metric", "metrics"),
    ] {
        if m.contains(needle) {
            return field;
        }
    }
    "query"
}

pub(super) fn build(
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Query, InputError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    ctx.allowed_sites.check(&site)?;
    if a.opt_array("metrics")?.is_none() {
        return Err(InputError::new(
            "metrics",
            "is required: a list of metric names",
        ));
    }
    let metrics = {
        let mut again = ArgReader::new(Some(Map::from_iter([(
            "metrics".to_owned(),
            Value::Array(a.opt_array("metrics")?.unwrap_or_default()),
        )])));
        args::metrics(&mut again, &[])?
    };
    let range = args::required_range(&mut a, "date_range")?;
    let mut groupings = Vec::new();
    for (i, d) in a
        .opt_array("dimensions")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = d
            .as_str()
            .ok_or_else(|| InputError::new(format!("dimensions[{i}]"), "must be a string"))?;
        let grouping = match name.strip_prefix("time:").and_then(Granularity::parse) {
            Some(g) => Grouping::Time(g),
            None => Grouping::Dimension(Dimension::parse_qualified(name).map_err(|_| {
                InputError::new(
                    format!("dimensions[{i}]"),
                    format!("{name:?} is not a dimension; use a built-in one, event:props:<name>, or time:hour/day/week/month"),
                )
            })?),
        };
        if groupings.contains(&grouping) {
            return Err(InputError::new(
                "dimensions",
                format!("lists {name:?} twice"),
            ));
        }
        groupings.push(grouping);
    }
    let raw_filters = a.opt_array("filters")?.unwrap_or_default();
    if raw_filters.len() > MAX_FILTERS {
        return Err(InputError::new(
            "filters",
            format!("accepts at most {MAX_FILTERS} entries"),
        ));
    }
    let mut filters = Vec::with_capacity(raw_filters.len());
    for (i, f) in raw_filters.iter().enumerate() {
        let path = format!("filters[{i}]");
        check_filter(&path, f, 0, false)?;
        let top = simple_dimension(f);
        filters.push(Filter::Raw(f.clone(), top));
    }
    let order_by = a.opt_array("order_by")?;
    let include = match a.opt_object("include")? {
        None => Map::new(),
        Some(obj) => obj,
    };
    let pagination = a.opt_object("pagination")?.unwrap_or_default();
    a.finish()?;
    let mut extras = crate::plausible::query::Extras::default();
    for (name, value) in &include {
        let on = value
            .as_bool()
            .ok_or_else(|| InputError::new(format!("include.{name}"), "must be true or false"))?;
        match name.as_str() {
            "imports" => extras.imports = on,
            "total_rows" => extras.total_rows = on,
            "time_labels" => extras.time_labels = on,
            _ => {
                return Err(InputError::new(
                    format!("include.{name}"),
                    "is not an include option (imports, time_labels, total_rows)",
                ));
            }
        }
    }
    if extras.time_labels && !groupings.iter().any(|g| matches!(g, Grouping::Time(_))) {
        return Err(InputError::new(
            "include.time_labels",
            "needs a time dimension",
        ));
    }
    let mut limit = None;
    for (name, value) in &pagination {
        let n = value.as_u64().ok_or_else(|| {
            InputError::new(
                format!("pagination.{name}"),
                "must be a whole number from 0",
            )
        })?;
        match name.as_str() {
            "limit" if (1..=MAX_ROWS).contains(&n) => limit = u32::try_from(n).ok(),
            "limit" => {
                return Err(InputError::new(
                    "pagination.limit",
                    format!("must be between 1 and {MAX_ROWS}"),
                ));
            }
            "offset" => extras.offset = u32::try_from(n).ok(),
            _ => {
                return Err(InputError::new(
                    format!("pagination.{name}"),
                    "is not a pagination option (limit, offset)",
                ));
            }
        }
    }
    if let Some(entries) = order_by {
        let names: Vec<String> = metrics
            .iter()
            .map(|m| m.as_str().to_owned())
            .chain(groupings.iter().map(Grouping::wire))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            let ok = match e.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(d)]) => {
                    names.contains(n) && (d == "asc" || d == "desc")
                }
                _ => false,
            };
            if !ok {
                return Err(InputError::new(
                    format!("order_by[{i}]"),
                    "must be [name, \"asc\" or \"desc\"] with a name from metrics or dimensions",
                ));
            }
        }
        extras.order_by = Some(Value::Array(entries));
    }
    let mut query = Query::new(site, metrics, range, groupings, filters, limit)?;
    query.extras = extras;
    Ok(query)
}

/// The dimension of a plain top-level filter (what the combination rules
/// count as "filtered on"); behavioural and logical trees count for none.
fn simple_dimension(f: &Value) -> Option<String> {
    match f.as_array().map(Vec::as_slice) {
        Some([Value::String(op), Value::String(dim), ..])
            if !matches!(
                op.as_str(),
                "and" | "or" | "not" | "has_done" | "has_not_done"
            ) =>
        {
            Some(dim.clone())
        }
        _ => None,
    }
}

/// The Stats API v2 filter grammar (query-api-schema.json, stats-api.md
/// "filters"): simple filters, and/or/not, behavioural filters (not
/// nested, event dimensions only), `case_sensitive` on is/contains.
fn check_filter(path: &str, f: &Value, depth: usize, in_behaviour: bool) -> Result<(), InputError> {
    let bad = |msg: &str| Err(InputError::new(path.to_owned(), msg.to_owned()));
    if depth > MAX_DEPTH {
        return bad("is nested too deeply");
    }
    let Some(items) = f.as_array() else {
        return bad("must be an array such as [\"is\", \"visit:country_name\", [\"Germany\"]]");
    };
    let Some(op) = items.first().and_then(Value::as_str) else {
        return bad("must start with an operator");
    };
    match (op, items.as_slice()) {
        ("and" | "or", [_, Value::Array(children)]) if !children.is_empty() => {
            for (i, c) in children.iter().enumerate() {
                check_filter(&format!("{path}[1][{i}]"), c, depth + 1, in_behaviour)?;
            }
            Ok(())
        }
        ("and" | "or", _) => bad("and/or take a non-empty list of filters: [\"or\", [f1, f2]]"),
        ("not", [_, child]) => check_filter(&format!("{path}[1]"), child, depth + 1, in_behaviour),
        ("has_done" | "has_not_done", [_, child]) => {
            if in_behaviour {
                return bad("behavioural filters (has_done, has_not_done) cannot be nested");
            }
            check_filter(&format!("{path}[1]"), child, depth + 1, true)
        }
        ("has_done" | "has_not_done" | "not", _) => {
            bad("takes exactly one filter: [\"has_done\", [\"is\", \"event:goal\", [\"Signup\"]]]")
        }
        ("is" | "is_not" | "contains" | "contains_not" | "matches" | "matches_not", rest) => {
            let (dim, clauses, modifiers) = match rest {
                [_, Value::String(d), Value::Array(c)] => (d, c, None),
                [_, Value::String(d), Value::Array(c), m] => (d, c, Some(m)),
                _ => {
                    return bad(
                        "must be [operator, dimension, [values]] with an optional {\"case_sensitive\": false}",
                    );
                }
            };
            let dimension = Dimension::parse_qualified(dim).map_err(|_| {
                InputError::new(
                    format!("{path}[1]"),
                    format!("{dim:?} is not a filterable dimension"),
                )
            })?;
            if dim == "event:goal" && !matches!(op, "is" | "contains") {
                return bad("event:goal filters only support is and contains");
            }
            if in_behaviour && !dimension.is_event_dimension() {
                return bad(
                    "behavioural filters work only on event dimensions (event:page, event:goal, event:hostname, event:props:<name>)",
                );
            }
            if clauses.is_empty()
                || !clauses.iter().all(|c| {
                    c.as_str().is_some_and(|s| s.chars().count() <= MAX_TEXT) || c.is_i64()
                })
            {
                return Err(InputError::new(
                    format!("{path}[2]"),
                    "must be a non-empty list of strings",
                ));
            }
            if let Some(m) = modifiers {
                let ok = matches!(op, "is" | "contains")
                    && m.as_object().is_some_and(|o| {
                        o.iter()
                            .all(|(k, v)| k == "case_sensitive" && v.is_boolean())
                    });
                if !ok {
                    return Err(InputError::new(
                        format!("{path}[3]"),
                        "the only modifier is {\"case_sensitive\": false}, on is and contains",
                    ));
                }
            }
            Ok(())
        }
        _ => bad(
            "unknown operator; use is, is_not, contains, contains_not, matches, matches_not, and, or, not, has_done or has_not_done",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::tools::tests::ctx;

    fn body(args: Value) -> Result<Value, InputError> {
        build(&ctx(Some("default.example")), args.as_object().cloned())
            .map(|q| q.body(crate::ports::UnixMillis(1_773_576_000_000)))
    }

    #[test]
    fn good_raw_queries_pass_through() {
        let q = json!({"metrics": ["visitors", "pageviews"], "date_range": "7d", "dimensions": ["time:hour", "visit:entry_page_hostname"],
            "filters": [["contains", "event:page", ["BLOG"], {"case_sensitive": false}], ["has_done", ["is", "event:goal", ["Signup"]]]],
            "order_by": [["visitors", "desc"]], "include": {"imports": true, "total_rows": true}, "pagination": {"limit": 5, "offset": 10}});
        let b = body(q).unwrap();
        assert_eq!(
            b["dimensions"],
            json!(["time:hour", "visit:entry_page_hostname"])
        );
        assert_eq!(
            b["filters"][1],
            json!(["has_done", ["is", "event:goal", ["Signup"]]])
        );
        assert_eq!(b["include"], json!({"imports": true, "total_rows": true}));
        assert_eq!(b["pagination"], json!({"limit": 5, "offset": 10}));
        assert_eq!(b["order_by"], json!([["visitors", "desc"]]));
    }

    #[test]
    fn bad_raw_queries_name_the_field() {
        let base = json!({"metrics": ["visitors"], "date_range": "7d"});
        let with = |k: &str, v: Value| {
            let mut q = base.clone();
            q[k] = v;
            q
        };
        let cases = [
            (json!({"date_range": "7d"}), "metrics"),
            (with("metrics", json!(["visitor"])), "metrics"),
            (with("date_range", json!("7w")), "date_range"),
            (with("dimensions", json!(["visit:chanel"])), "dimensions[0]"),
            (
                with("filters", json!([["is_not", "event:goal", ["x"]]])),
                "filters[0]",
            ),
            (
                with(
                    "filters",
                    json!([["has_done", ["has_done", ["is", "event:page", ["/"]]]]]),
                ),
                "filters[0][1]",
            ),
            (
                with(
                    "filters",
                    json!([["has_done", ["is", "visit:source", ["Google"]]]]),
                ),
                "filters[0][1]",
            ),
            (
                with(
                    "filters",
                    json!([["contains_not", "event:page", ["x"], {"case_sensitive": false}]]),
                ),
                "filters[0][3]",
            ),
            (with("filters", json!([["or", []]])), "filters[0]"),
            (with("order_by", json!([["events", "desc"]])), "order_by[0]"),
            (
                with("include", json!({"comparisons": true})),
                "include.comparisons",
            ),
            (
                with("include", json!({"time_labels": true})),
                "include.time_labels",
            ),
            (
                with("pagination", json!({"limit": 10001})),
                "pagination.limit",
            ),
            (with("metrics", json!(["conversion_rate"])), "metrics"),
            (with("bogus", json!(1)), "bogus"),
        ];
        for (args, field) in cases {
            let err = body(args.clone()).expect_err(&args.to_string());
            assert_eq!(err.field, field, "{args}: {err}");
        }
    }

    /// Through the tool: good queries run (one request each), bad ones are
    /// refused before any request.
    #[test]
    fn good_and_bad_arguments() {
        use crate::plausible::tools::Tool;
        use crate::plausible::tools::tests::{argument_table, varied_platform};
        let p = varied_platform();
        argument_table(
            &p,
            &ctx(None),
            Tool::QueryStats,
            json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": "2026-03-01,2026-03-07"}),
            &[
                (
                    "hourly rows",
                    json!({"dimensions": ["time:hour"], "date_range": "2026-03-14,2026-03-14"}),
                ),
                (
                    "a breakdown with totals",
                    json!({"dimensions": ["visit:entry_page_hostname"], "include": {"total_rows": true, "imports": true}}),
                ),
                (
                    "a page of it",
                    json!({"dimensions": ["event:page"], "pagination": {"limit": 5, "offset": 5}, "order_by": [["visitors", "asc"]]}),
                ),
                (
                    "case-insensitive contains",
                    json!({"filters": [["contains", "event:page", ["BLOG"], {"case_sensitive": false}]]}),
                ),
                (
                    "visits that converted",
                    json!({"filters": [["has_done", ["is", "event:goal", ["Signup"]]]]}),
                ),
                (
                    "visits that did not",
                    json!({"filters": [["has_not_done", ["is", "event:page", ["/pricing"]]]]}),
                ),
                (
                    "nested logic",
                    json!({"filters": [["or", [["is", "visit:country", ["DE"]], ["not", ["is", "visit:device", ["Mobile"]]]]]]}),
                ),
                (
                    "a rate with a goal",
                    json!({"metrics": ["conversion_rate"], "dimensions": ["event:goal"]}),
                ),
                (
                    "time labels",
                    json!({"dimensions": ["time:day"], "include": {"time_labels": true}}),
                ),
            ],
            &[
                ("no site", json!({"site_id": null}), "site_id"),
                (
                    "a site that is no domain",
                    json!({"site_id": "a b"}),
                    "site_id",
                ),
                ("no metrics", json!({"metrics": null}), "metrics"),
                ("no date range", json!({"date_range": null}), "date_range"),
                (
                    "an unknown metric",
                    json!({"metrics": ["visitor"]}),
                    "metrics",
                ),
                (
                    "an unknown dimension",
                    json!({"dimensions": ["visit:chanel"]}),
                    "dimensions[0]",
                ),
                (
                    "a behavioural filter on a visit dimension",
                    json!({"filters": [["has_done", ["is", "visit:source", ["Google"]]]]}),
                    "filters[0][1]",
                ),
                (
                    "case-insensitive on a negation",
                    json!({"filters": [["contains_not", "event:page", ["x"], {"case_sensitive": false}]]}),
                    "filters[0][3]",
                ),
                (
                    "ordering by what was not asked",
                    json!({"order_by": [["events", "desc"]]}),
                    "order_by[0]",
                ),
                (
                    "an unknown include",
                    json!({"include": {"comparisons": true}}),
                    "include.comparisons",
                ),
                (
                    "time labels without time",
                    json!({"include": {"time_labels": true}}),
                    "include.time_labels",
                ),
                (
                    "too many rows",
                    json!({"pagination": {"limit": 10001}}),
                    "pagination.limit",
                ),
                (
                    "a rate without a goal",
                    json!({"metrics": ["conversion_rate"]}),
                    "metrics",
                ),
                (
                    "an argument of another tool",
                    json!({"window": "7d"}),
                    "window",
                ),
            ],
        );
        // Each good query above cost one request.
        assert_eq!(p.sent_count(), 10);
    }

    #[test]
    fn plausibles_messages_map_to_fields() {
        assert_eq!(field_of("#/metrics/1: Invalid metric \"x\""), "metrics");
        assert_eq!(
            field_of("Invalid filters. The goal `X` is not configured"),
            "filters"
        );
        assert_eq!(field_of("Invalid order_by entry"), "order_by");
        assert_eq!(
            field_of(
                "Metric `scroll_depth` can only be queried with event:page filters or dimensions."
            ),
            "filters"
        );
        assert_eq!(field_of("something else"), "query");
    }
}
