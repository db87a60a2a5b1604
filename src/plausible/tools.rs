//! The four Plausible tools: their MCP definitions and their execution.
//!
//! Names, argument names, enums and defaults follow the established
//! plausible-mcp tool contract, so prompts written for it work unchanged.

use serde_json::{Map, Value, json};

use super::args::{self, ArgReader, DATE_RANGE_FORMS, DateRange, InputError, SiteId};
use super::client::{self, PlausibleBaseUrl, PlausibleError, Row};
use super::query::{self, Granularity, Grouping, Query};
use super::render;
use super::vocabulary::{BUILTIN_DIMENSIONS, Dimension, DimensionError, Metric};
use crate::ports::{Clock, Outbound};
use crate::secret::PlausibleKey;

/// What a tool call needs besides its arguments.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub base_url: PlausibleBaseUrl,
    pub key: PlausibleKey,
    pub default_site: Option<SiteId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Timeseries,
    Breakdown,
    Conversions,
    ComparePeriods,
}

impl Tool {
    pub const ALL: [Tool; 4] = [
        Tool::Timeseries,
        Tool::Breakdown,
        Tool::Conversions,
        Tool::ComparePeriods,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Timeseries => "get_timeseries",
            Tool::Breakdown => "get_breakdown",
            Tool::Conversions => "get_conversions",
            Tool::ComparePeriods => "compare_periods",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn title(self) -> &'static str {
        match self {
            Tool::Timeseries => "Get Timeseries",
            Tool::Breakdown => "Get Breakdown",
            Tool::Conversions => "Get Conversions",
            Tool::ComparePeriods => "Compare Periods",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Tool::Timeseries => {
                "Get metrics over time (one row per day, week or month) for a site, optionally for one page, goal or filtered segment. Use it to spot trends and changes around deploys or campaigns."
            }
            Tool::Breakdown => {
                "Break down metrics by a dimension (top pages, sources, channels, countries, devices, UTM tags, or a custom property via event:props:<name>), ordered by the first metric, most first."
            }
            Tool::Conversions => {
                "Get goal conversion counts and rates (visitors, events, conversion_rate) per goal, optionally for one goal or page, or broken down by page."
            }
            Tool::ComparePeriods => {
                "Compare totals between two date ranges (period_a, then period_b) and get the change for each metric, absolute and in percent. Use it for before/after questions such as the effect of a deploy."
            }
        }
    }

    /// The MCP tool definition (`tools/list` entry).
    pub fn definition(self, has_default_site: bool) -> Value {
        json!({
            "name": self.name(),
            "title": self.title(),
            "description": self.description(),
            "inputSchema": self.input_schema(has_default_site),
            "outputSchema": self.output_schema(),
            "annotations": {
                "title": self.title(),
                "readOnlyHint": true,
                "destructiveHint": false,
                "idempotentHint": true,
                "openWorldHint": true,
            },
        })
    }

    fn input_schema(self, has_default_site: bool) -> Value {
        let mut props = Map::new();
        let mut required: Vec<&str> = Vec::new();
        props.insert(
            "site_id".into(),
            json!({
                "type": "string",
                "description": if has_default_site {
                    "Site domain as registered in Plausible, e.g. \"example.com\". Optional: defaults to this server's configured site."
                } else {
                    "Site domain as registered in Plausible, e.g. \"example.com\"."
                },
            }),
        );
        if !has_default_site {
            required.push("site_id");
        }
        let range = |what: &str| {
            json!({
                "type": "string",
                "pattern": r"^(\d+h|\d+d|\d+mo|day|month|year|all|\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2})$",
                "description": format!("{what}: {DATE_RANGE_FORMS}. Nd = last N full days (today excluded), Nmo = last N full months, day/month/year = the current one, dates are inclusive."),
            })
        };
        if self == Tool::ComparePeriods {
            props.insert("period_a".into(), range("The earlier period"));
            props.insert("period_b".into(), range("The later period"));
            required.extend(["period_a", "period_b"]);
        } else {
            props.insert("date_range".into(), range("Period to report on"));
            required.push("date_range");
        }
        props.insert(
            "page".into(),
            json!({"type": "string", "maxLength": 1024, "description": "Only count this page path, e.g. \"/pricing\". End with * to match every path that starts with the prefix, e.g. \"/blog*\"."}),
        );
        if self != Tool::Breakdown {
            props.insert(
                "goal".into(),
                json!({"type": "string", "maxLength": 1024, "description": "Only count visitors who completed this goal (exact goal name, e.g. \"Signup\")."}),
            );
        }
        if self != Tool::Conversions {
            props.insert(
                "metrics".into(),
                json!({
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": true,
                    "items": {"type": "string", "enum": Metric::ALL.map(Metric::as_str)},
                    "description": match self {
                        Tool::Breakdown => "Metrics to return. Default: visitors, pageviews, bounce_rate (visitors, pageviews, events for an event:props dimension).",
                        _ => "Metrics to return. Default: visitors, pageviews, bounce_rate, visit_duration.",
                    },
                }),
            );
        }
        props.insert("property_filters".into(), property_filters_schema());
        match self {
            Tool::Timeseries => {
                props.insert(
                    "granularity".into(),
                    json!({"type": "string", "enum": ["day", "week", "month"], "default": "day", "description": "One row per day, week (starting Monday) or month."}),
                );
            }
            Tool::Breakdown => {
                props.insert(
                    "dimension".into(),
                    json!({
                        "description": "What to break down by: a built-in dimension or a custom property as event:props:<name>. Prefer visit:country_name / visit:region_name / visit:city_name for readable geography.",
                        "anyOf": [
                            {"type": "string", "enum": BUILTIN_DIMENSIONS},
                            {"type": "string", "pattern": "^event:props:.+", "maxLength": 312},
                        ],
                    }),
                );
                props.insert(
                    "limit".into(),
                    json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 20, "description": "Number of rows to return."}),
                );
                required.push("dimension");
            }
            Tool::Conversions => {
                props.insert(
                    "breakdown_by_page".into(),
                    json!({"type": "boolean", "default": false, "description": "Also break conversions down by page."}),
                );
            }
            Tool::ComparePeriods => {}
        }
        json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    }

    fn output_schema(self) -> Value {
        match self {
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
}

fn property_filters_schema() -> Value {
    json!({
        "type": "array",
        "maxItems": 20,
        "description": "Extra filters, all of which must hold (AND). property is a built-in dimension (e.g. visit:channel, visit:country_name, event:page) or a custom property (event:props:<name>, or just <name>). event:goal filters allow only is/contains.",
        "items": {
            "type": "object",
            "properties": {
                "property": {"type": "string", "minLength": 1, "maxLength": 312},
                "operator": {"type": "string", "enum": ["is", "is_not", "contains", "contains_not"], "default": "is"},
                "values": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
            "required": ["property", "values"],
            "additionalProperties": false,
        },
    })
}

const DEFAULT_METRICS: [Metric; 4] = [
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

/// The result of a tool call, before it becomes an MCP `CallToolResult`.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Success {
        text: String,
        structured: Value,
    },
    /// Reported to the model with `isError: true`.
    Failure(String),
}

/// A call that failed before or during the query.
enum CallError {
    Input(InputError),
    Plausible(PlausibleError, SiteId),
}

impl From<InputError> for CallError {
    fn from(e: InputError) -> Self {
        CallError::Input(e)
    }
}

/// Runs a tool. Every failure becomes an [`Outcome::Failure`] with a
/// specific message; nothing here panics or leaks the key.
pub async fn call<P: Outbound + Clock>(
    platform: &P,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Outcome {
    let result = match tool {
        Tool::ComparePeriods => compare_periods(platform, ctx, arguments).await,
        _ => single_query(platform, ctx, tool, arguments).await,
    };
    match result {
        Ok(outcome) => outcome,
        Err(CallError::Input(e)) => Outcome::Failure(e.to_string()),
        Err(CallError::Plausible(e, site)) => Outcome::Failure(e.message(site.as_str())),
    }
}

/// Parses the arguments of the three single-query tools into a query.
pub fn build_query(
    tool: Tool,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Query, InputError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    let range = required_range(&mut a, "date_range")?;
    let page = args::page(&mut a)?;
    let filters = args::property_filters(&mut a)?;
    let query = match tool {
        Tool::Timeseries => {
            let goal = args::goal(&mut a)?;
            let metrics = args::metrics(&mut a, &DEFAULT_METRICS)?;
            let granularity = match a.opt_str("granularity")? {
                None => Granularity::Day,
                Some(g) => Granularity::parse(&g).ok_or_else(|| {
                    InputError::new(
                        "granularity",
                        format!("must be day, week or month; got {g:?}"),
                    )
                })?,
            };
            args::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
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
            let dimension = breakdown_dimension(&mut a)?;
            let defaults: &[Metric] = match dimension {
                Dimension::CustomProperty(_) => &PROPERTY_BREAKDOWN_METRICS,
                Dimension::Builtin(_) => &BREAKDOWN_METRICS,
            };
            let metrics = args::metrics(&mut a, defaults)?;
            let limit = match a.opt_int("limit")? {
                None => 20,
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| InputError::new("limit", "must be between 1 and 1000"))?,
            };
            args::no_shortcut_overlap(page.as_ref(), None, &filters)?;
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
            args::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
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
        Tool::ComparePeriods => {
            return Err(InputError::new("name", "compare_periods runs two queries"));
        }
    };
    a.finish()?;
    Ok(query)
}

fn required_range(a: &mut ArgReader, field: &'static str) -> Result<DateRange, InputError> {
    let raw = a
        .opt_str(field)?
        .ok_or_else(|| InputError::new(field, format!("is required: {DATE_RANGE_FORMS}")))?;
    DateRange::parse(field, &raw)
}

fn breakdown_dimension(a: &mut ArgReader) -> Result<Dimension, InputError> {
    let raw = a.opt_str("dimension")?.ok_or_else(|| {
        InputError::new(
            "dimension",
            "is required, e.g. \"event:page\" or \"visit:source\"",
        )
    })?;
    Dimension::parse_qualified(&raw).map_err(|e| {
        InputError::new(
            "dimension",
            match e {
                DimensionError::Unknown => format!(
                    "{raw:?} is not a dimension; use a built-in one (e.g. event:page, visit:source, visit:country_name) or event:props:<name>"
                ),
                DimensionError::EmptyPropertyName => {
                    "a custom property dimension must look like \"event:props:<name>\"".to_owned()
                }
                DimensionError::PropertyNameTooLong => {
                    "custom property names are at most 300 characters".to_owned()
                }
            },
        )
    })
}

async fn single_query<P: Outbound + Clock>(
    platform: &P,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let query = build_query(tool, ctx, arguments)?;
    let rows = client::run(platform, &ctx.base_url, &ctx.key, &query)
        .await
        .map_err(|e| CallError::Plausible(e, query.site_id.clone()))?;
    Ok(tabular_outcome(tool, &query, rows))
}

fn tabular_outcome(tool: Tool, query: &Query, rows: Vec<Row>) -> Outcome {
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
    Outcome::Success {
        text: format!("{heading}\n\n{body}"),
        structured: json!({
            "site_id": query.site_id.as_str(),
            "date_range": query.date_range.label(),
            "metrics": metric_names,
            "dimensions": dimension_names,
            "results": rows.iter().map(|r| json!({"dimensions": r.dimensions, "metrics": r.metrics})).collect::<Vec<_>>(),
        }),
    }
}

async fn compare_periods<P: Outbound + Clock>(
    platform: &P,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    let period_a = required_range(&mut a, "period_a")?;
    let period_b = required_range(&mut a, "period_b")?;
    let page = args::page(&mut a)?;
    let goal = args::goal(&mut a)?;
    let metrics = args::metrics(&mut a, &DEFAULT_METRICS)?;
    let filters = args::property_filters(&mut a)?;
    a.finish()?;
    args::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
    let filters = query::filters(page, goal, filters, false);
    let qa = Query::new(
        site.clone(),
        metrics.clone(),
        period_a,
        vec![],
        filters.clone(),
        None,
    )?;
    let qb = Query::new(
        site.clone(),
        metrics.clone(),
        period_b,
        vec![],
        filters,
        None,
    )?;
    let (ra, rb) = futures_util::future::join(
        client::run(platform, &ctx.base_url, &ctx.key, &qa),
        client::run(platform, &ctx.base_url, &ctx.key, &qb),
    )
    .await;
    let ra = ra.map_err(|e| CallError::Plausible(e, site.clone()))?;
    let rb = rb.map_err(|e| CallError::Plausible(e, site.clone()))?;
    Ok(comparison(&site, &qa, &qb, &metrics, &ra, &rb))
}

/// The first row's metrics by name; an empty result has none.
fn totals(metrics: &[Metric], rows: &[Row]) -> Map<String, Value> {
    let Some(first) = rows.first() else {
        return Map::new();
    };
    metrics
        .iter()
        .zip(&first.metrics)
        .map(|(m, v)| (m.as_str().to_owned(), v.clone()))
        .collect()
}

/// Rounds to 2 decimals, halves up (as JavaScript's `Math.round`, which
/// the established contract used).
fn round2(x: f64) -> f64 {
    (x * 100.0 + 0.5).floor() / 100.0
}

/// `(absolute, percent)` change from `a` to `b`: `b − a`, and
/// `(b − a) / a × 100` when `a ≠ 0`. `None` where undefined (a missing or
/// non-numeric value, or a zero base for the percentage).
pub fn delta(a: Option<&Value>, b: Option<&Value>) -> (Option<f64>, Option<f64>) {
    match (a.and_then(Value::as_f64), b.and_then(Value::as_f64)) {
        (Some(a), Some(b)) => {
            let absolute = round2(b - a);
            let percent = (a != 0.0).then(|| round2((b - a) / a * 100.0));
            (Some(absolute), percent)
        }
        _ => (None, None),
    }
}

fn comparison(
    site: &SiteId,
    qa: &Query,
    qb: &Query,
    metrics: &[Metric],
    ra: &[Row],
    rb: &[Row],
) -> Outcome {
    let ta = totals(metrics, ra);
    let tb = totals(metrics, rb);
    let mut deltas = Map::new();
    let mut rows = Vec::new();
    for m in metrics {
        let name = m.as_str();
        let (absolute, percent) = delta(ta.get(name), tb.get(name));
        deltas.insert(
            name.to_owned(),
            json!({"absolute": absolute, "percent": percent}),
        );
        rows.push(vec![
            Value::from(name),
            ta.get(name).cloned().unwrap_or(Value::Null),
            tb.get(name).cloned().unwrap_or(Value::Null),
            absolute
                .map(|v| Value::from(signed(v)))
                .unwrap_or(Value::Null),
            percent
                .map(|v| Value::from(format!("{}%", signed(v))))
                .unwrap_or(Value::Null),
        ]);
    }
    let (la, lb) = (qa.date_range.label(), qb.date_range.label());
    let text = format!(
        "Compare Periods for {}\nperiod_a = {la}\nperiod_b = {lb}\n\n{}",
        site.as_str(),
        render::table(
            &[
                "metric".into(),
                "period_a".into(),
                "period_b".into(),
                "change".into(),
                "change %".into()
            ],
            &rows,
        )
    );
    Outcome::Success {
        text,
        structured: json!({
            "site_id": site.as_str(),
            "period_a": {"range": la, "metrics": ta},
            "period_b": {"range": lb, "metrics": tb},
            "deltas": deltas,
        }),
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{v}")
    } else {
        format!("{v}")
    }
}

/// The server's `instructions`: what a model must know to call the tools
/// right the first time.
pub fn instructions(default_site: Option<&SiteId>) -> String {
    let site = match default_site {
        Some(s) => format!("SITE: site_id defaults to \"{}\"; pass site_id to query another site.", s.as_str()),
        None => "SITE: every call needs site_id, the site's domain exactly as registered in Plausible (e.g. \"example.com\").".to_owned(),
    };
    format!(
        "Plausible Analytics tools: traffic, sources, pages and goal conversions for websites tracked with Plausible.

DATES: date_range (and compare_periods' period_a/period_b) is one of: \"Nh\" (last N hours, e.g. \"24h\"), \"Nd\" (last N full days, today excluded, e.g. \"7d\", \"30d\"), \"Nmo\" (last N full months, e.g. \"6mo\"), \"day\" (today), \"month\" (this month), \"year\" (this year), \"all\", or an inclusive \"YYYY-MM-DD,YYYY-MM-DD\" range (earlier date first, real calendar dates). Do not ask for future dates. For before/after questions use compare_periods with two absolute ranges of equal length.

METRICS: visitors, visits, pageviews, views_per_visit, bounce_rate (integer percent), visit_duration (seconds), events, scroll_depth, percentage, conversion_rate, group_conversion_rate, average_revenue, total_revenue, time_on_page.

DIMENSIONS (get_breakdown): event:page, event:goal, event:hostname, visit:entry_page, visit:exit_page, visit:source, visit:referrer, visit:channel, visit:utm_medium, visit:utm_source, visit:utm_campaign, visit:utm_content, visit:utm_term, visit:device, visit:browser, visit:browser_version, visit:os, visit:os_version, visit:country, visit:region, visit:city, visit:country_name, visit:region_name, visit:city_name. Prefer the *_name geography dimensions: they return readable names instead of codes.

FILTERS: page filters one path (\"/pricing\") or a prefix (\"/blog*\"). goal keeps only visitors who completed that goal. property_filters is a list of {{property, operator, values}} entries, all of which must hold; operator is is (default), is_not, contains or contains_not; values is a non-empty list (any value matches). property is any built-in dimension above (e.g. {{\"property\": \"visit:channel\", \"values\": [\"Organic Search\"]}}) or a custom property. event:goal filters allow only is and contains. visit:country takes 2-letter codes; use visit:country_name for names. Do not combine page with an event:page entry, or goal with an event:goal entry: express the whole condition once.

CUSTOM PROPERTIES: break down by \"event:props:<name>\" (e.g. event:props:plan); filter with property \"<name>\" or \"event:props:<name>\". Property names may contain spaces.

COMBINATION RULES (Plausible rejects these; the tools refuse them before querying): Session metrics (bounce_rate, visit_duration, views_per_visit) cannot be broken down by event:goal, event:hostname or event:props:<name> (event:page alone is fine); use visitors, visits, pageviews or events there. conversion_rate and group_conversion_rate need a goal (goal argument, an event:goal filter, or get_conversions). scroll_depth and time_on_page need a page (page argument, an event:page filter, or an event:page breakdown). views_per_visit works only as a total in compare_periods and never with a page filter. pageviews, events and scroll_depth cannot be broken down by visit:entry_page or visit:exit_page. For goal conversions use get_conversions.

{site}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::ports::{OutboundError, OutboundRequest, OutboundResponse};
    use crate::testing::{FakePlatform, block_on};

    fn ctx(default_site: Option<&str>) -> ToolContext {
        ToolContext {
            base_url: PlausibleBaseUrl::parse("https://plausible.io").unwrap(),
            key: PlausibleKey::new("KEY-SECRET-1"),
            default_site: default_site.map(|s| SiteId::parse("x", s).unwrap()),
        }
    }

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
                json!({"date_range": "7d", "granularity": "hour"}),
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
        let schema = Tool::Timeseries.definition(false);
        assert!(
            schema["inputSchema"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("site_id"))
        );
        let schema = Tool::Timeseries.definition(true);
        assert!(
            !schema["inputSchema"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("site_id"))
        );
    }

    #[test]
    fn deltas_round_and_go_null_where_undefined() {
        let cases = [
            (json!(100), json!(150), (Some(50.0), Some(50.0))),
            (json!(150), json!(100), (Some(-50.0), Some(-33.33))),
            (json!(33.33), json!(50), (Some(16.67), Some(50.02))),
            (json!(0), json!(10), (Some(10.0), None)),
            (json!(0), json!(0), (Some(0.0), None)),
            (Value::Null, json!(10), (None, None)),
            (json!(10), json!({"value": 1}), (None, None)),
        ];
        for (a, b, expected) in cases {
            assert_eq!(delta(Some(&a), Some(&b)), expected, "{a} -> {b}");
        }
        assert_eq!(delta(None, Some(&json!(1))), (None, None));
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
    fn compare_periods_queries_both_ranges_and_reports_deltas() {
        let p = FakePlatform::new();
        p.respond_with(|req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let visitors = if body["date_range"] == json!(["2024-03-01", "2024-03-07"]) {
                200
            } else {
                250
            };
            Ok(OutboundResponse {
                status: 200,
                headers: Headers::new(),
                body: json!({"results": [{"dimensions": [], "metrics": [visitors, null]}]})
                    .to_string()
                    .into_bytes(),
            })
        });
        let args = json!({"site_id": "example.com", "period_a": "2024-03-01,2024-03-07", "period_b": "2024-03-08,2024-03-14", "metrics": ["visitors", "visit_duration"], "page": "/pricing"});
        let out = block_on(call(
            &p,
            &ctx(None),
            Tool::ComparePeriods,
            args.as_object().cloned(),
        ));
        let Outcome::Success { text, structured } = out else {
            panic!("{out:?}")
        };
        assert_eq!(p.sent_count(), 2);
        for req in p.sent.borrow().iter() {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["filters"], json!([["is", "event:page", ["/pricing"]]]));
            assert!(body.get("dimensions").is_none());
        }
        assert_eq!(
            structured["period_a"],
            json!({"range": "2024-03-01,2024-03-07", "metrics": {"visitors": 200, "visit_duration": null}})
        );
        assert_eq!(
            structured["deltas"]["visitors"],
            json!({"absolute": 50.0, "percent": 25.0})
        );
        assert_eq!(
            structured["deltas"]["visit_duration"],
            json!({"absolute": null, "percent": null})
        );
        assert!(text.contains("+25%"), "{text}");
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

    #[test]
    fn definitions_carry_schemas_and_annotations() {
        for tool in Tool::ALL {
            let d = tool.definition(false);
            assert_eq!(d["name"], tool.name());
            assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert_eq!(d["inputSchema"]["type"], "object");
            assert_eq!(d["inputSchema"]["additionalProperties"], false);
            assert_eq!(d["outputSchema"]["type"], "object");
            assert_eq!(d["annotations"]["readOnlyHint"], true);
            assert_eq!(d["annotations"]["idempotentHint"], true);
            assert_eq!(d["annotations"]["openWorldHint"], true);
        }
        let text = instructions(None);
        for needle in [
            "date_range",
            "Session metrics",
            "event:props:<name>",
            "visit:country_name",
            "get_conversions",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
