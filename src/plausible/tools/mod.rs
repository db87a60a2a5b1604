//! The Plausible tools: what each is called and promises (`tools/list`),
//! and running one (`tools/call`).
//!
//! Names, argument names, enums and defaults follow the established
//! plausible-mcp tool contract, so prompts written for it work unchanged.
//! Each tool's schemas live in [`schema`], its execution in one module per
//! kind of answer: [`shaped`] (one query, one table) and [`compare`].

mod anomalies;
mod change;
mod compare;
mod raw;
mod realtime;
mod schema;
mod shaped;
mod sites;

use serde_json::{Map, Value, json};

use super::args::{InputError, SiteId};
use super::client::PlausibleError;
pub(crate) use super::context::ToolContext;
use super::upstream::Upstream;
use crate::ports::{Clock, EdgeCache, Outbound};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    Timeseries,
    Breakdown,
    Conversions,
    ComparePeriods,
    ListSites,
    RealtimeVisitors,
    ListGoals,
    QueryStats,
    FindAnomalies,
    MeasureChange,
}

impl Tool {
    pub(crate) const ALL: [Tool; 10] = [
        Tool::Timeseries,
        Tool::Breakdown,
        Tool::Conversions,
        Tool::ComparePeriods,
        Tool::ListSites,
        Tool::RealtimeVisitors,
        Tool::ListGoals,
        Tool::QueryStats,
        Tool::FindAnomalies,
        Tool::MeasureChange,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Timeseries => "get_timeseries",
            Tool::Breakdown => "get_breakdown",
            Tool::Conversions => "get_conversions",
            Tool::ComparePeriods => "compare_periods",
            Tool::ListSites => "list_sites",
            Tool::RealtimeVisitors => "get_realtime_visitors",
            Tool::ListGoals => "list_goals",
            Tool::QueryStats => "query_stats",
            Tool::FindAnomalies => "find_anomalies",
            Tool::MeasureChange => "measure_change",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn title(self) -> &'static str {
        match self {
            Tool::Timeseries => "Get Timeseries",
            Tool::Breakdown => "Get Breakdown",
            Tool::Conversions => "Get Conversions",
            Tool::ComparePeriods => "Compare Periods",
            Tool::ListSites => "List Sites",
            Tool::RealtimeVisitors => "Get Realtime Visitors",
            Tool::ListGoals => "List Goals",
            Tool::QueryStats => "Query Stats",
            Tool::FindAnomalies => "Find Anomalies",
            Tool::MeasureChange => "Measure Change",
        }
    }

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

    /// The MCP tool definition (`tools/list` entry).
    pub(crate) fn definition(self, has_default_site: bool) -> Value {
        json!({
            "name": self.name(),
            "title": self.title(),
            "description": self.description(),
            "inputSchema": schema::input(self, has_default_site),
            "outputSchema": schema::output(self),
            "annotations": {
                "title": self.title(),
                "readOnlyHint": true,
                "destructiveHint": false,
                // Realtime answers change from one call to the next.
                "idempotentHint": self != Tool::RealtimeVisitors,
                "openWorldHint": true,
            },
        })
    }
}

/// A JSON member, or null: reading a result back never panics.
pub(super) fn field<'v>(value: &'v Value, key: &str) -> &'v Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// The result of a tool call, before it becomes an MCP `CallToolResult`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Success {
        text: String,
        structured: Value,
    },
    /// Reported to the model with `isError: true`.
    Failure(String),
}

/// A call that failed before or during the query.
pub(crate) enum CallError {
    Input(InputError),
    Plausible(PlausibleError, SiteId),
    /// A specific message already written for the model.
    Message(String),
}

impl From<InputError> for CallError {
    fn from(e: InputError) -> Self {
        CallError::Input(e)
    }
}

/// Runs a tool. Every failure becomes an [`Outcome::Failure`] with a
/// specific message; nothing here panics or leaks the key.
pub(crate) async fn call<P: Outbound + Clock + EdgeCache>(
    platform: &P,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Outcome {
    let up = Upstream::new(platform, ctx);
    match run(&up, ctx, tool, arguments).await {
        Ok(Outcome::Success {
            text,
            mut structured,
        }) => {
            if let Value::Object(obj) = &mut structured {
                obj.insert("upstream".into(), up.report());
            }
            Outcome::Success { text, structured }
        }
        Ok(failure) => failure,
        Err(CallError::Input(e)) => Outcome::Failure(e.to_string()),
        Err(CallError::Plausible(e, site)) => Outcome::Failure(e.message(site.as_str())),
        Err(CallError::Message(m)) => Outcome::Failure(m),
    }
}

/// Runs a tool, keeping the typed error (tests assert the variant).
async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    match tool {
        Tool::ComparePeriods => compare::run(up, ctx, arguments).await,
        Tool::ListSites => sites::list_sites(up, ctx, arguments).await,
        Tool::ListGoals => sites::list_goals(up, ctx, arguments).await,
        Tool::RealtimeVisitors => realtime::run(up, ctx, arguments).await,
        Tool::QueryStats => raw::run(up, ctx, arguments).await,
        Tool::FindAnomalies => anomalies::run(up, ctx, arguments).await,
        Tool::MeasureChange => change::run(up, ctx, arguments).await,
        Tool::Timeseries | Tool::Breakdown | Tool::Conversions => {
            shaped::run(up, ctx, tool, arguments).await
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::plausible::client::PlausibleBaseUrl;
    use crate::plausible::sites::AllowedSites;
    use crate::ports::{OutboundError, OutboundRequest, OutboundResponse};
    use crate::secret::PlausibleKey;
    use crate::testing::{FakePlatform, block_on};
    use time::{Date, Duration as Days, PrimitiveDateTime, Time};

    pub(crate) type Answer = Result<OutboundResponse, OutboundError>;

    pub(crate) fn respond(status: u16, body: Value) -> Answer {
        Ok(OutboundResponse {
            status,
            headers: Headers::new(),
            body: body.to_string().into_bytes(),
        })
    }

    /// The periods a `date_range` of dates or date-times covers, labelled
    /// as Plausible labels `time:day` / `time:hour`.
    fn periods(range: &Value, dimension: &str, offset: i64) -> Vec<String> {
        let bounds: Vec<&str> = range
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let [a, b] = bounds.as_slice() else {
            return Vec::new();
        };
        let date = |s: &str| {
            let n = |r: std::ops::Range<usize>| s.get(r).unwrap().parse::<u16>().unwrap();
            let month = time::Month::try_from(u8::try_from(n(5..7)).unwrap()).unwrap();
            Date::from_calendar_date(i32::from(n(0..4)), month, u8::try_from(n(8..10)).unwrap())
                .unwrap()
        };
        // A date-time bound is a UTC instant: on the site's clock it is
        // `offset` seconds later, in the hour that contains it.
        let at = |s: &str, default_hour: u8| {
            if s.len() <= 10 {
                return PrimitiveDateTime::new(
                    date(s),
                    Time::from_hms(default_hour, 0, 0).unwrap(),
                );
            }
            let n = |r: std::ops::Range<usize>| s.get(r).unwrap().parse::<u8>().unwrap();
            let utc = PrimitiveDateTime::new(
                date(s),
                Time::from_hms(n(11..13), n(14..16), n(17..19)).unwrap(),
            );
            let local = utc + Days::seconds(offset);
            PrimitiveDateTime::new(local.date(), Time::from_hms(local.hour(), 0, 0).unwrap())
        };
        let (mut t, end) = (at(a, 0), at(b, 23));
        let mut out = Vec::new();
        while t <= end {
            if dimension == "time:hour" {
                out.push(format!("{} {:02}:00:00", t.date(), t.hour()));
                t += Days::hours(1);
            } else {
                out.push(t.date().to_string());
                t = PrimitiveDateTime::new(t.date() + Days::days(1), Time::MIDNIGHT);
            }
        }
        out
    }

    /// A Stats API for native tests. `value(period, dimension)` lists the
    /// (dimension value, count) rows of one period (period "" without a
    /// time dimension; dimension None without a second one); every metric
    /// asked for gets the count. The Sites API refuses the key (401), as
    /// for a Stats API key.
    pub(crate) fn synthetic(
        value: impl Fn(&str, Option<&str>) -> Vec<(Value, f64)> + 'static,
    ) -> impl Fn(&OutboundRequest) -> Answer {
        synthetic_in_zone(0, value)
    }

    /// [`synthetic`] for a site whose clock is `offset` seconds ahead of
    /// UTC: date-time ranges are read as UTC, hours labelled on the site's
    /// clock, as Plausible does; `include.time_labels` lists them.
    pub(crate) fn synthetic_in_zone(
        offset: i64,
        value: impl Fn(&str, Option<&str>) -> Vec<(Value, f64)> + 'static,
    ) -> impl Fn(&OutboundRequest) -> Answer {
        move |req| {
            if req.url.path() != "/api/v2/query" {
                return respond(401, json!({"error": "Invalid API key."}));
            }
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let metrics = body["metrics"].as_array().map_or(1, Vec::len);
            let dims: Vec<&str> = body["dimensions"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let (time_dim, other) = match dims.first() {
                Some(d) if d.starts_with("time:") => (Some(*d), dims.get(1).copied()),
                first => (None, first.copied()),
            };
            let labels = match time_dim {
                Some(d) => periods(&body["date_range"], d, offset),
                None => vec![String::new()],
            };
            let mut meta = serde_json::Map::new();
            if body["include"]["time_labels"] == json!(true) {
                meta.insert("time_labels".into(), json!(labels));
            }
            let mut rows = Vec::new();
            for label in &labels {
                for (v, x) in value(label, other) {
                    if x == 0.0 && time_dim.is_some() {
                        continue; // Plausible leaves empty buckets out
                    }
                    let mut d = Vec::new();
                    if time_dim.is_some() {
                        d.push(json!(label));
                    }
                    if !v.is_null() {
                        d.push(v);
                    }
                    rows.push(json!({"dimensions": d, "metrics": vec![x; metrics]}));
                }
            }
            respond(200, json!({"results": rows, "meta": meta, "query": body}))
        }
    }

    /// Counts that vary from period to period and value to value (FNV-1a
    /// of the label), for calls whose numbers do not matter.
    pub(crate) fn varied(period: &str, dimension: Option<&str>) -> Vec<(Value, f64)> {
        let n = |s: &str| {
            let h = s.bytes().fold(0x811c_9dc5_u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            f64::from(50 + h % 50)
        };
        match dimension {
            None => vec![(Value::Null, n(period))],
            Some(_) => ["a", "b"]
                .map(|v| (json!(v), n(&format!("{period}{v}"))))
                .to_vec(),
        }
    }

    /// A platform answering every Stats API query with [`varied`] counts.
    pub(crate) fn varied_platform() -> FakePlatform {
        let p = FakePlatform::new();
        p.respond_with(synthetic(varied));
        p
    }

    /// Runs a tool against `p`, keeping the typed outcome.
    pub(crate) fn run_tool(
        p: &FakePlatform,
        ctx: &ToolContext,
        tool: Tool,
        args: Value,
    ) -> Result<Outcome, CallError> {
        let up = Upstream::new(p, ctx);
        block_on(run(&up, ctx, tool, args.as_object().cloned()))
    }

    /// The field a refused call names, or why it was not refused.
    pub(crate) fn refused_field(
        p: &FakePlatform,
        ctx: &ToolContext,
        tool: Tool,
        args: Value,
    ) -> Result<String, String> {
        match run_tool(p, ctx, tool, args) {
            Err(CallError::Input(e)) => Ok(e.field.to_string()),
            Err(CallError::Message(m)) => Err(format!("message: {m}")),
            Err(CallError::Plausible(e, _)) => Err(format!("plausible: {e:?}")),
            Ok(o) => Err(format!("accepted: {o:?}")),
        }
    }

    /// A valid base, one named change per case: good changes must run,
    /// bad ones must be refused naming `field` before any request.
    pub(crate) fn argument_table(
        p: &FakePlatform,
        ctx: &ToolContext,
        tool: Tool,
        base: Value,
        good: &[(&str, Value)],
        bad: &[(&str, Value, &str)],
    ) {
        let with = |change: &Value| {
            let mut args = base.clone();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    args.as_object_mut().unwrap().remove(k);
                } else {
                    args[k] = v.clone();
                }
            }
            args
        };
        for (name, change) in std::iter::once(&("the base", json!({}))).chain(good) {
            let out = run_tool(p, ctx, tool, with(change));
            assert!(
                matches!(out, Ok(Outcome::Success { .. })),
                "{tool:?} {name}: {:?}",
                out.err().map(|e| match e {
                    CallError::Input(e) => e.to_string(),
                    CallError::Message(m) => m,
                    CallError::Plausible(e, _) => format!("{e:?}"),
                })
            );
        }
        for (name, change, field) in bad {
            let before = p.sent_count();
            assert_eq!(
                refused_field(p, ctx, tool, with(change)).as_deref(),
                Ok(*field),
                "{tool:?} {name}"
            );
            assert_eq!(p.sent_count(), before, "{tool:?} {name}: sent a request");
        }
    }

    pub(crate) fn ctx(default_site: Option<&str>) -> ToolContext {
        ToolContext {
            base_url: PlausibleBaseUrl::parse("https://plausible.io").unwrap(),
            key: PlausibleKey::new("KEY-SECRET-1"),
            default_site: default_site.map(|s| SiteId::parse("x", s).unwrap()),
            cache_ttl: std::time::Duration::from_secs(60),
            configured_sites: Vec::new(),
            allowed_sites: AllowedSites::Any,
        }
    }

    /// The "Upstream requests" column of the README's tool table, on a
    /// cold cache with a Stats API key; then the same call again, which
    /// the edge cache answers (realtime excepted).
    #[test]
    fn request_counts_match_the_readme() {
        let site = "example.com";
        let cases = [
            (
                Tool::Timeseries,
                json!({"site_id": site, "date_range": "7d"}),
                1,
                0,
            ),
            (
                Tool::Breakdown,
                json!({"site_id": site, "date_range": "7d", "dimension": "visit:source"}),
                1,
                0,
            ),
            (
                Tool::Conversions,
                json!({"site_id": site, "date_range": "7d"}),
                1,
                0,
            ),
            (
                Tool::ComparePeriods,
                json!({"site_id": site, "period_a": "2026-03-01,2026-03-07", "period_b": "2026-03-08,2026-03-14"}),
                2,
                0,
            ),
            // The Sites API refuses: 1, then remembered.
            (Tool::ListSites, json!({}), 1, 0),
            (Tool::RealtimeVisitors, json!({"site_id": site}), 3, 3),
            // The refusal, then the 12-month breakdown; then both known.
            (Tool::ListGoals, json!({"site_id": site}), 2, 0),
            (
                Tool::QueryStats,
                json!({"site_id": site, "metrics": ["visitors"], "date_range": "7d"}),
                1,
                0,
            ),
            // Nothing flagged (flat counts): one time-dimension query.
            (
                Tool::FindAnomalies,
                json!({"site_id": site, "window": "28d", "metric": "visits"}),
                1,
                0,
            ),
            (
                Tool::FindAnomalies,
                json!({"site_id": site, "window": "48h"}),
                1,
                0,
            ),
            (
                Tool::MeasureChange,
                json!({"site_id": site, "date": "2026-02-01"}),
                3,
                0,
            ),
            (
                Tool::MeasureChange,
                json!({"site_id": site, "date": "2026-02-01", "metric": "pageviews", "days": 28}),
                3,
                0,
            ),
            (
                Tool::MeasureChange,
                json!({"site_id": site, "date": "2026-02-01", "metric": "conversion_rate", "goal": "Signup"}),
                4,
                0,
            ),
        ];
        for (tool, args, cold, warm) in cases {
            let p = FakePlatform::new();
            p.respond_with(synthetic(|period, _| {
                // Flat except for a weekly rhythm: no anomaly, and daily
                // values that vary (a t-test needs that).
                let wobble = period
                    .get(9..10)
                    .map_or(0.0, |d| f64::from(d.as_bytes()[0] % 7));
                vec![(Value::Null, 1000.0 + wobble)]
            }));
            let c = ctx(None);
            for (round, expected) in [(1, cold), (2, warm)] {
                let before = p.sent_count();
                let out = run_tool(&p, &c, tool, args.clone());
                let Ok(Outcome::Success { structured, .. }) = out else {
                    panic!("{tool:?} {args}: {:?}", out.err().map(|_| "refused"));
                };
                assert_eq!(
                    p.sent_count() - before,
                    expected,
                    "{tool:?} {args} call {round}"
                );
                assert_eq!(
                    structured
                        .get("anomalies")
                        .and_then(Value::as_array)
                        .map(Vec::len)
                        .unwrap_or(0),
                    0
                );
            }
        }
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
            assert_eq!(
                d["annotations"]["idempotentHint"],
                tool != Tool::RealtimeVisitors
            );
            assert_eq!(d["annotations"]["destructiveHint"], false);
            assert_eq!(d["annotations"]["openWorldHint"], true);
        }
    }
}
