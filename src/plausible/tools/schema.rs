//! The generator of `definitions.json`: each tool's title, description,
//! `inputSchema`, `outputSchema` and annotations.
//!
//! Every enum and limit here comes from the vocabulary and the argument
//! rules that enforce it, so the schema a model reads, the validator and
//! the instructions cannot disagree. It runs in native tests only: the
//! worker serves the text it wrote (see [`super::DEFINITIONS`]), and
//! [`tests::definitions_are_generated_from_the_rules`] fails when the two
//! differ.

use serde_json::{Map, Value, json};

use super::shaped::{BREAKDOWN_LIMIT, DEFAULT_BREAKDOWN_LIMIT};
use super::{SITE_ID_DEFAULTED, SITE_ID_REQUIRED, Tool};
use super::{anomalies, change, raw, realtime};
use crate::plausible::args::{DATE_RANGE_FORMS, DATE_RANGE_PATTERN, MAX_TEXT};
use crate::plausible::filters::{MAX_FILTER_VALUES, MAX_FILTERS, Operator, VisitMatch};
use crate::plausible::query::Granularity;
use crate::plausible::ui;
use crate::plausible::vocabulary::{
    BUILTIN_DIMENSIONS, CUSTOM_PROPERTY_PREFIX, MAX_PROPERTY_NAME, Metric,
};

/// The longest qualified property name: `event:props:` and a name.
const MAX_QUALIFIED_PROPERTY: usize = CUSTOM_PROPERTY_PREFIX.len() + MAX_PROPERTY_NAME;

fn site_id(has_default_site: bool) -> Value {
    json!({
            "type": "string",
            "description": if has_default_site { SITE_ID_DEFAULTED } else { SITE_ID_REQUIRED },
    })
}

/// What each tool is for, as the model reads it.
trait Describe {
    fn description(self) -> &'static str;
}

impl Describe for Tool {
    fn description(self) -> &'static str {
        match self {
            Tool::Timeseries => {
                "Get metrics over time (one row per hour, day, week or month) for a site, optionally for one page, goal or filtered segment. Use it to spot trends and changes around deploys or campaigns. Call list_sites first if you do not know the site_id."
            }
            Tool::Breakdown => {
                "Break down metrics by a dimension (top pages, sources, channels, countries, devices, UTM tags, or a custom property via event:props:<name>), ordered by the first metric, most first. Call list_sites first if you do not know the site_id."
            }
            Tool::Conversions => {
                "Get goal conversion counts and rates (visitors, events, conversion_rate) per goal, optionally for one goal or page, or broken down by page. Call list_goals for the goal names and list_sites if you do not know the site_id."
            }
            Tool::ComparePeriods => {
                "Compare totals between two date ranges (period_a, then period_b) and get the change for each metric, absolute and in percent, without a significance test. For the effect of a deploy or launch with statistical care use measure_change. Call list_sites first if you do not know the site_id."
            }
            Tool::ListSites => {
                "List the Plausible sites this connection may query (domain and timezone). Call it first when you do not know the site_id."
            }
            Tool::RealtimeVisitors => {
                "How many people are on the site right now: unique visitors and pageviews in the last N minutes (default 5, at most 60), with the top pages and sources in that time. Never cached."
            }
            Tool::ListGoals => {
                "List a site's goals (the names get_conversions, goal and event:goal filters take). From Plausible's Sites API when the key allows it, otherwise from the goals that converted in the last 12 months; the result says which."
            }
            Tool::QueryStats => {
                "Run one raw Plausible Stats API v2 query (metrics, date_range, dimensions, filters, order_by, include, pagination) for questions the other tools do not cover. Checked against the same rules before it is sent; Plausible's validation errors come back naming the field."
            }
            Tool::FindAnomalies => {
                "Find unusual days (or hours, within the last 48 h) in a site's traffic: each period is compared with the same weekday (and hour) over the 6 weeks before, flagged outside median ± 3 × 1.4826 × MAD, never narrower than the series' own count noise (or the exact Poisson 99% interval for small counts), with the sources, pages and countries that explain each flagged period. Says so when nothing is unusual."
            }
            Tool::MeasureChange => {
                "Did a deploy, launch or campaign change traffic? Compares equal, weekday-aligned windows of whole days before and after a date (at least 7 days a side, the day itself left out) with a significance test (Welch's t-test on daily values; Newcombe–Wilson interval for conversion rates), reports intervals and says plainly when the change is not significant."
            }
        }
    }
}

/// Tools whose results the chart view draws (MCP Apps).
fn charted(tool: Tool) -> bool {
    matches!(
        tool,
        Tool::Timeseries | Tool::ComparePeriods | Tool::FindAnomalies
    )
}

/// The MCP tool definition (`tools/list` entry).
pub(super) fn definition(tool: Tool, has_default_site: bool) -> Value {
    let mut definition = json!({
        "name": tool.name(),
        "title": tool.title(),
        "description": tool.description(),
        "inputSchema": input(tool, has_default_site),
        "outputSchema": output(tool),
        "annotations": {
            "title": tool.title(),
            "readOnlyHint": true,
            "destructiveHint": false,
            // Realtime answers change from one call to the next.
            "idempotentHint": tool != Tool::RealtimeVisitors,
            "openWorldHint": true,
        },
    });
    if charted(tool)
        && let Value::Object(obj) = &mut definition
    {
        obj.insert("_meta".into(), ui::tool_meta());
    }
    definition
}

fn object(props: Map<String, Value>, required: Vec<&str>) -> Value {
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// Schemas of the tools added after the four established ones.
fn new_tool_input(tool: Tool, has_default_site: bool) -> Value {
    let mut props = Map::new();
    let mut required: Vec<&str> = Vec::new();
    if tool != Tool::ListSites {
        props.insert("site_id".into(), site_id(has_default_site));
        if !has_default_site {
            required.push("site_id");
        }
    }
    let page = json!({"type": "string", "maxLength": MAX_TEXT, "description": "Only count this page path, e.g. \"/pricing\", or a prefix ending in *."});
    match tool {
        Tool::RealtimeVisitors => {
            props.insert("minutes".into(), json!({"type": "integer", "minimum": realtime::MINUTES.start(), "maximum": realtime::MINUTES.end(), "default": realtime::DEFAULT_MINUTES, "description": "How many minutes back \"now\" reaches."}));
        }
        Tool::QueryStats => {
            props.insert("metrics".into(), json!({"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "string", "enum": Metric::ALL.map(Metric::as_str)}}));
            props.insert("date_range".into(), json!({"type": "string", "pattern": DATE_RANGE_PATTERN, "description": format!("{DATE_RANGE_FORMS}.")}));
            props.insert("dimensions".into(), json!({"type": "array", "uniqueItems": true, "items": {"anyOf": [
                {"type": "string", "enum": BUILTIN_DIMENSIONS},
                {"type": "string", "enum": Granularity::ALL.map(|g| g.dimension())},
                {"type": "string", "pattern": format!("^{CUSTOM_PROPERTY_PREFIX}.+"), "maxLength": MAX_QUALIFIED_PROPERTY},
            ]}, "description": "Group by these: built-in dimensions, event:props:<name>, time:hour/day/week/month."}));
            props.insert("filters".into(), json!({"type": "array", "maxItems": MAX_FILTERS, "items": {"type": "array"}, "description": "Stats API v2 filters: [op, dimension, [values]] with op is/is_not/contains/contains_not/matches/matches_not and an optional {\"case_sensitive\": false} on is/contains; [\"and\"|\"or\", [filters]]; [\"not\", filter]; [\"has_done\"|\"has_not_done\", filter on an event dimension] for visits in which an event did (not) happen."}));
            props.insert("order_by".into(), json!({"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}, "description": "[[metric or dimension, \"asc\"|\"desc\"], …]"}));
            props.insert("include".into(), json!({"type": "object", "properties": {"imports": {"type": "boolean"}, "time_labels": {"type": "boolean"}, "total_rows": {"type": "boolean"}}, "additionalProperties": false}));
            props.insert("pagination".into(), json!({"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": raw::MAX_ROWS}, "offset": {"type": "integer", "minimum": 0}}, "additionalProperties": false}));
            required.extend(["metrics", "date_range"]);
        }
        Tool::FindAnomalies => {
            props.insert("window".into(), json!({"type": "string", "description": format!("The periods to check: \"Nd\" (last N full days, 1 to {}), two past dates \"YYYY-MM-DD,YYYY-MM-DD\" at most {} days apart, or \"Nh\" (last N whole hours, 1 to {}).", anomalies::MAX_DAYS, anomalies::MAX_DAYS, anomalies::MAX_HOURS)}));
            props.insert("metric".into(), json!({"type": "string", "enum": anomalies::METRICS.map(Metric::as_str), "default": "visitors"}));
            props.insert("page".into(), page);
            required.push("window");
        }
        Tool::MeasureChange => {
            props.insert("date".into(), json!({"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "The day of the deploy, launch or campaign (left out of both windows)."}));
            props.insert("days".into(), json!({"type": "integer", "minimum": change::MIN_DAYS, "maximum": change::MAX_DAYS, "multipleOf": 7, "default": change::DEFAULT_DAYS, "description": "Days per side, whole weeks."}));
            props.insert(
                "metric".into(),
                json!({"type": "string", "enum": change::METRICS, "default": "visitors"}),
            );
            props.insert("page".into(), page);
            props.insert("goal".into(), json!({"type": "string", "maxLength": MAX_TEXT, "description": "A goal name: required for conversion_rate; for visitors/pageviews, counts only converting visitors."}));
            required.push("date");
        }
        _ => {}
    }
    object(props, required)
}

pub(super) fn input(tool: Tool, has_default_site: bool) -> Value {
    if !matches!(
        tool,
        Tool::Timeseries | Tool::Breakdown | Tool::Conversions | Tool::ComparePeriods
    ) {
        return new_tool_input(tool, has_default_site);
    }
    let mut props = Map::new();
    let mut required: Vec<&str> = Vec::new();
    props.insert("site_id".into(), site_id(has_default_site));
    if !has_default_site {
        required.push("site_id");
    }
    let range = |what: &str| {
        json!({
            "type": "string",
            "pattern": DATE_RANGE_PATTERN,
            "description": format!("{what}: {DATE_RANGE_FORMS}. Nd = last N full days (today excluded), Nmo = last N full months, day/month/year = the current one, dates are inclusive."),
        })
    };
    if tool == Tool::ComparePeriods {
        props.insert("period_a".into(), range("The earlier period"));
        props.insert("period_b".into(), range("The later period"));
        required.extend(["period_a", "period_b"]);
    } else {
        props.insert("date_range".into(), range("Period to report on"));
        required.push("date_range");
    }
    props.insert(
        "page".into(),
        json!({"type": "string", "maxLength": MAX_TEXT, "description": "Only count this page path, e.g. \"/pricing\". End with * to match every path that starts with the prefix, e.g. \"/blog*\"."}),
    );
    if tool != Tool::Breakdown {
        props.insert(
            "goal".into(),
            json!({"type": "string", "maxLength": MAX_TEXT, "description": "Only count visitors who completed this goal (exact goal name, e.g. \"Signup\")."}),
        );
    }
    if tool != Tool::Conversions {
        props.insert(
            "metrics".into(),
            json!({
                "type": "array",
                "minItems": 1,
                "uniqueItems": true,
                "items": {"type": "string", "enum": Metric::ALL.map(Metric::as_str)},
                "description": match tool {
                    Tool::Breakdown => "Metrics to return. Default: visitors, pageviews, bounce_rate (visitors, pageviews, events for an event:props dimension).",
                    _ => "Metrics to return. Default: visitors, pageviews, bounce_rate, visit_duration.",
                },
            }),
        );
    }
    props.insert("property_filters".into(), property_filters());
    if tool != Tool::ComparePeriods {
        props.insert(
            "include_imported".into(),
            json!({"type": "boolean", "default": false, "description": "Also count data imported into Plausible (Google Analytics, CSV); the result says whether it could be included."}),
        );
    }
    match tool {
        Tool::Timeseries => {
            props.insert(
                "granularity".into(),
                json!({"type": "string", "enum": Granularity::ALL.map(Granularity::as_str), "description": "One row per hour, day, week (starting Monday) or month. Default: hour for Nh and day (today), otherwise day. hour needs a range of at most 7 days."}),
            );
        }
        Tool::Breakdown => {
            props.insert(
                "dimension".into(),
                json!({
                    "description": "What to break down by: a built-in dimension or a custom property as event:props:<name>. Prefer visit:country_name / visit:region_name / visit:city_name for readable geography.",
                    "anyOf": [
                        {"type": "string", "enum": BUILTIN_DIMENSIONS},
                        {"type": "string", "pattern": format!("^{CUSTOM_PROPERTY_PREFIX}.+"), "maxLength": MAX_QUALIFIED_PROPERTY},
                    ],
                }),
            );
            props.insert(
                "limit".into(),
                json!({"type": "integer", "minimum": BREAKDOWN_LIMIT.start(), "maximum": BREAKDOWN_LIMIT.end(), "default": DEFAULT_BREAKDOWN_LIMIT, "description": "Number of rows to return."}),
            );
            props.insert(
                "offset".into(),
                json!({"type": "integer", "minimum": 0, "description": "Skip this many rows (paging); the result then says how many rows there are in all."}),
            );
            required.push("dimension");
        }
        Tool::Conversions => {
            props.insert(
                "breakdown_by_page".into(),
                json!({"type": "boolean", "default": false, "description": "Also break conversions down by page."}),
            );
        }
        _ => {}
    }
    object(props, required)
}

fn property_filters() -> Value {
    json!({
        "type": "array",
        "maxItems": MAX_FILTERS,
        "description": "Extra filters, all of which must hold (AND). property is a built-in dimension (e.g. visit:channel, visit:country_name, event:page) or a custom property (event:props:<name>, or just <name>). event:goal filters allow only is/contains.",
        "items": {
            "type": "object",
            "properties": {
                "property": {"type": "string", "minLength": 1, "maxLength": MAX_QUALIFIED_PROPERTY},
                "operator": {"type": "string", "enum": Operator::ALL.map(Operator::as_str), "default": Operator::Is.as_str()},
                "values": {"type": "array", "minItems": 1, "maxItems": MAX_FILTER_VALUES, "items": {"type": "string", "maxLength": MAX_TEXT}},
                "case_sensitive": {"type": "boolean", "default": true, "description": "false matches ignoring case (is and contains only)."},
                "visit": {"type": "string", "enum": VisitMatch::ALL.map(VisitMatch::as_str), "description": "has_done keeps whole visits in which some event matched; has_not_done those in which none did (event properties only)."},
            },
            "required": ["property", "values"],
            "additionalProperties": false,
        },
    })
}

/// `structuredContent.upstream`, which every successful call carries.
fn upstream() -> Value {
    json!({
        "type": "object",
        "description": "What this call cost: requests sent to Plausible, answers from the edge cache and the age of the oldest.",
        "properties": {
            "requests": {"type": "integer", "minimum": 0},
            "from_cache": {"type": "integer", "minimum": 0},
            "cache_age_seconds": {"type": ["integer", "null"], "minimum": 0},
        },
        "required": ["requests", "from_cache", "cache_age_seconds"],
    })
}

fn closed(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

pub(super) fn output(tool: Tool) -> Value {
    let mut schema = output_without_upstream(tool);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("upstream".into(), upstream());
    }
    schema
}

fn output_without_upstream(tool: Tool) -> Value {
    let number = json!({"type": "number"});
    let nullable_number = json!({"type": ["number", "null"]});
    let nullable_string = json!({"type": ["string", "null"]});
    let window = closed(
        json!({"from": {"type": "string"}, "to": {"type": "string"}}),
        &["from", "to"],
    );
    match tool {
        Tool::ListSites => closed(
            json!({
                "source": {"type": "string", "enum": ["sites_api", "configured", "default_site", "grant", "none"]},
                "sites": {"type": "array", "items": closed(json!({"site_id": {"type": "string"}, "timezone": nullable_string}), &["site_id", "timezone"])},
                "message": nullable_string,
            }),
            &["source", "sites", "message"],
        ),
        Tool::ListGoals => closed(
            json!({
                "site_id": {"type": "string"},
                "source": {"type": "string", "enum": ["sites_api", "event_breakdown"]},
                "goals": {"type": "array", "items": closed(json!({
                    "name": {"type": ["string", "null"]},
                    "type": nullable_string,
                    "event_name": nullable_string,
                    "page_path": nullable_string,
                    "visitors": nullable_number,
                    "events": nullable_number,
                }), &["name"])},
            }),
            &["site_id", "source", "goals"],
        ),
        Tool::RealtimeVisitors => {
            let top = |key: &str| json!({"type": "array", "items": closed(json!({key: {"type": ["string", "null"]}, "visitors": nullable_number}), &[key, "visitors"])});
            closed(
                json!({
                    "site_id": {"type": "string"},
                    "minutes": {"type": "integer"},
                    "visitors": number,
                    "pageviews": number,
                    "top_pages": top("page"),
                    "top_sources": top("source"),
                }),
                &[
                    "site_id",
                    "minutes",
                    "visitors",
                    "pageviews",
                    "top_pages",
                    "top_sources",
                ],
            )
        }
        Tool::FindAnomalies => {
            let driver = closed(
                json!({
                    "dimension": {"type": "string"},
                    "value": {"type": "string"},
                    "actual": number,
                    "expected": number,
                    "change": number,
                    "share_percent": number,
                }),
                &[
                    "dimension",
                    "value",
                    "actual",
                    "expected",
                    "change",
                    "share_percent",
                ],
            );
            let anomaly = closed(
                json!({
                    "period": {"type": "string"},
                    "actual": number,
                    "expected": number,
                    "low": number,
                    "high": number,
                    "deviation": number,
                    "deviation_percent": nullable_number,
                    "method": {"type": "string"},
                    "drivers": {"type": "array", "items": driver},
                }),
                &[
                    "period",
                    "actual",
                    "expected",
                    "low",
                    "high",
                    "deviation",
                    "deviation_percent",
                    "method",
                    "drivers",
                ],
            );
            closed(
                json!({
                    "site_id": {"type": "string"},
                    "metric": {"type": "string"},
                    "granularity": {"type": "string", "enum": ["day", "hour"]},
                    "window": window,
                    "periods_checked": {"type": "integer"},
                    "dispersion": {"type": "number", "minimum": 1, "description": "The series' quasi-Poisson dispersion φ (1 = Poisson), from the 6 weeks before the window."},
                    "anomalies": {"type": "array", "items": anomaly},
                }),
                &[
                    "site_id",
                    "metric",
                    "granularity",
                    "window",
                    "periods_checked",
                    "dispersion",
                    "anomalies",
                ],
            )
        }
        Tool::MeasureChange => closed(
            json!({
                "site_id": {"type": "string"},
                "date": {"type": "string"},
                "metric": {"type": "string", "enum": change::METRICS},
                "days_per_side": {"type": "integer"},
                "before": window,
                "after": window,
                "test": {"type": "string"},
                "estimate": number,
                "interval": closed(json!({"low": number, "high": number, "level": number}), &["low", "high", "level"]),
                "p_value": number,
                "significant": {"type": "boolean"},
                "quasi_poisson": {"type": ["object", "null"]},
                "contributors": {"type": "array", "items": {"type": "object"}},
                "note": nullable_string,
            }),
            &[
                "site_id",
                "date",
                "metric",
                "days_per_side",
                "before",
                "after",
                "test",
                "estimate",
                "interval",
                "p_value",
                "significant",
            ],
        ),
        Tool::ComparePeriods => {
            let period = json!({
                "type": "object",
                "properties": {
                    "range": {"type": "string"},
                    "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                },
                "required": ["range", "metrics"],
            });
            json!({
                "type": "object",
                "properties": {
                    "site_id": {"type": "string"},
                    "period_a": period,
                    "period_b": period,
                    "deltas": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "absolute": {"type": ["number", "null"]},
                                "percent": {"type": ["number", "null"]},
                            },
                            "required": ["absolute", "percent"],
                        },
                    },
                },
                "required": ["period_a", "period_b", "deltas"],
            })
        }
        _ => json!({
            "type": "object",
            "properties": {
                "site_id": {"type": "string"},
                "date_range": {"type": "string"},
                "metrics": {"type": "array", "items": {"type": "string"}},
                "dimensions": {"type": "array", "items": {"type": "string"}},
                "meta": {"type": "object"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "dimensions": {"type": "array", "items": {"type": ["string", "number"]}},
                            "metrics": {"type": "array", "items": {"type": ["number", "string", "null", "object"]}},
                        },
                        "required": ["dimensions", "metrics"],
                    },
                },
            },
            "required": ["metrics", "dimensions", "results"],
        }),
    }
}

/// `definitions.json` as this generator writes it: one tool a line.
fn generated() -> String {
    let lines: Vec<String> = Tool::ALL
        .iter()
        .map(|t| definition(*t, false).to_string())
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::super::{DEFINITIONS, definitions};
    use super::*;

    /// The served text is what the rules generate, with and without a
    /// default site; `UPDATE_DEFINITIONS=1` rewrites the file instead.
    #[test]
    fn definitions_are_generated_from_the_rules() {
        let text = generated();
        if std::env::var_os("UPDATE_DEFINITIONS").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/plausible/tools/definitions.json"
            );
            std::fs::write(path, &text).unwrap();
            return;
        }
        assert!(
            DEFINITIONS == text,
            "src/plausible/tools/definitions.json is stale: run UPDATE_DEFINITIONS=1 cargo test definitions_are_generated"
        );
        for has_default in [false, true] {
            let expected: Vec<Value> = Tool::ALL
                .iter()
                .map(|t| definition(*t, has_default))
                .collect();
            assert_eq!(
                definitions(has_default),
                expected,
                "default site: {has_default}"
            );
        }
    }

    #[test]
    fn site_id_is_required_only_without_a_default() {
        let required = |has_default| input(Tool::Timeseries, has_default)["required"].clone();
        assert!(
            required(false)
                .as_array()
                .unwrap()
                .contains(&json!("site_id"))
        );
        assert!(
            !required(true)
                .as_array()
                .unwrap()
                .contains(&json!("site_id"))
        );
    }

    /// The schema's limits are the validator's: a value at each limit is
    /// accepted by the argument rules, one past it refused.
    #[test]
    fn limits_come_from_the_argument_rules() {
        let breakdown = input(Tool::Breakdown, false);
        let limit = &breakdown["properties"]["limit"];
        assert_eq!(limit["minimum"], 1);
        assert_eq!(limit["maximum"], 1000);
        assert_eq!(limit["default"], 20);
        let filters = &breakdown["properties"]["property_filters"];
        assert_eq!(filters["maxItems"], 20);
        assert_eq!(filters["items"]["properties"]["property"]["maxLength"], 312);
        assert_eq!(
            filters["items"]["properties"]["operator"]["enum"],
            json!(["is", "is_not", "contains", "contains_not"])
        );
        assert_eq!(breakdown["properties"]["page"]["maxLength"], 1024);
        let timeseries = input(Tool::Timeseries, false);
        assert_eq!(
            timeseries["properties"]["granularity"]["enum"],
            json!(["hour", "day", "week", "month"])
        );
        assert_eq!(
            timeseries["properties"]["metrics"]["items"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            Metric::ALL.len()
        );
    }
}
