//! The Plausible tools: what each is called and promises (`tools/list`),
//! and running one (`tools/call`).
//!
//! Names, argument names, enums and defaults follow the established
//! plausible-mcp tool contract, so prompts written for it work unchanged.
//! Each tool's schemas live in [`schema`], its execution in one module per
//! kind of answer: [`shaped`] (one query, one table) and [`compare`].

mod compare;
mod schema;
mod shaped;

use serde_json::{Map, Value, json};

use super::args::{InputError, SiteId};
use super::client::{PlausibleBaseUrl, PlausibleError};
use crate::ports::{Clock, Outbound};
use crate::secret::PlausibleKey;

/// What a tool call needs besides its arguments.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub(crate) base_url: PlausibleBaseUrl,
    pub(crate) key: PlausibleKey,
    pub(crate) default_site: Option<SiteId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    Timeseries,
    Breakdown,
    Conversions,
    ComparePeriods,
}

impl Tool {
    pub(crate) const ALL: [Tool; 4] = [
        Tool::Timeseries,
        Tool::Breakdown,
        Tool::Conversions,
        Tool::ComparePeriods,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Timeseries => "get_timeseries",
            Tool::Breakdown => "get_breakdown",
            Tool::Conversions => "get_conversions",
            Tool::ComparePeriods => "compare_periods",
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
                "idempotentHint": true,
                "openWorldHint": true,
            },
        })
    }
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
pub(crate) async fn call<P: Outbound + Clock>(
    platform: &P,
    ctx: &ToolContext,
    tool: Tool,
    arguments: Option<Map<String, Value>>,
) -> Outcome {
    let result = match tool {
        Tool::ComparePeriods => compare::run(platform, ctx, arguments).await,
        _ => shaped::run(platform, ctx, tool, arguments).await,
    };
    match result {
        Ok(outcome) => outcome,
        Err(CallError::Input(e)) => Outcome::Failure(e.to_string()),
        Err(CallError::Plausible(e, site)) => Outcome::Failure(e.message(site.as_str())),
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
            assert_eq!(d["annotations"]["idempotentHint"], true);
            assert_eq!(d["annotations"]["openWorldHint"], true);
        }
    }
}
