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
use super::client::{PlausibleBaseUrl, PlausibleError};
use super::sites::{AllowedSites, SiteEntry};
use super::upstream::Upstream;
use crate::ports::{Clock, EdgeCache, Outbound};
use crate::secret::PlausibleKey;

/// What a tool call needs besides its arguments.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub(crate) base_url: PlausibleBaseUrl,
    pub(crate) key: PlausibleKey,
    pub(crate) default_site: Option<SiteId>,
    /// How long identical Stats API answers come from the edge cache
    /// (zero: never).
    pub(crate) cache_ttl: std::time::Duration,
    /// `PLAUSIBLE_SITES` on `/internal`: what `list_sites` shows when the
    /// key cannot use the Sites API. Empty on `/mcp`.
    pub(crate) configured_sites: Vec<SiteEntry>,
    /// The sites this caller may query (issue 15's seam).
    pub(crate) allowed_sites: AllowedSites,
}

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
    let result = match tool {
        Tool::ComparePeriods => compare::run(&up, ctx, arguments).await,
        Tool::ListSites => sites::list_sites(&up, ctx, arguments).await,
        Tool::ListGoals => sites::list_goals(&up, ctx, arguments).await,
        Tool::RealtimeVisitors => realtime::run(&up, ctx, arguments).await,
        Tool::QueryStats => raw::run(&up, ctx, arguments).await,
        Tool::FindAnomalies => anomalies::run(&up, ctx, arguments).await,
        Tool::MeasureChange => change::run(&up, ctx, arguments).await,
        Tool::Timeseries | Tool::Breakdown | Tool::Conversions => {
            shaped::run(&up, ctx, tool, arguments).await
        }
    };
    match result {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
