//! The prompts a user picks from a client's menu (MCP `prompts/list`,
//! `prompts/get`): each one a plan of tool calls and what to report.
//!
//! A prompt's plan is data — the tool, its exact arguments, why it is
//! called — so the tests can run every planned call through the tool's own
//! argument rules: a prompt cannot lead a model into a call the tool would
//! refuse.

use serde_json::{Map, Value, json};
use time::{Date, Duration as Days, OffsetDateTime};

use super::args::{DateRange, InputError, MAX_TEXT, SiteId};
use super::context::ToolContext;
use super::tools::{self, Tool};

/// The window `traffic_drop_check` looks at when none is given.
const DEFAULT_WINDOW: &str = "28d";
/// `measure_change` needs this many whole days after the moment.
const MIN_DAYS_AFTER: i64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prompt {
    WeeklyReport,
    TrafficDropCheck,
    LaunchImpact,
}

/// One declared argument (MCP `PromptArgument`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Argument {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) required: bool,
    /// Whether `completion/complete` offers values for it.
    pub(crate) completes: Completes,
}

/// Which values a completion of an argument offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completes {
    /// The caller's sites (from the cached site list).
    Sites,
    /// Fixed suggestions.
    Choices(&'static [&'static str]),
    Nothing,
}

const SITE: &str = "site";

impl Prompt {
    pub(crate) const ALL: [Prompt; 3] = [
        Prompt::WeeklyReport,
        Prompt::TrafficDropCheck,
        Prompt::LaunchImpact,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Prompt::WeeklyReport => "weekly_report",
            Prompt::TrafficDropCheck => "traffic_drop_check",
            Prompt::LaunchImpact => "launch_impact",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn title(self) -> &'static str {
        match self {
            Prompt::WeeklyReport => "Weekly report",
            Prompt::TrafficDropCheck => "Traffic drop check",
            Prompt::LaunchImpact => "Launch impact",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Prompt::WeeklyReport => {
                "A report on a site's last 7 full days against the week before: headline numbers, channels, sources, top pages, goals and any unusual day."
            }
            Prompt::TrafficDropCheck => {
                "Was there a drop (or a spike)? Looks for unusual days or hours in a window, explains each by source, page and country, and says plainly when nothing is unusual."
            }
            Prompt::LaunchImpact => {
                "Did a launch, deploy or campaign change traffic? Measures before against after with a significance test, optionally for one page or goal."
            }
        }
    }

    /// The declared arguments; `site` is optional when the deployment has
    /// a default site (as `site_id` is for the tools).
    pub(crate) fn arguments(self, has_default_site: bool) -> Vec<Argument> {
        let site = Argument {
            name: SITE,
            description: if has_default_site {
                "The site's domain as registered in Plausible, e.g. \"example.com\" (default: this server's default site)."
            } else {
                "The site's domain as registered in Plausible, e.g. \"example.com\"."
            },
            required: !has_default_site,
            completes: Completes::Sites,
        };
        let mut out = vec![site];
        match self {
            Prompt::WeeklyReport => {}
            Prompt::TrafficDropCheck => out.push(Argument {
                name: "window",
                description: "Where to look: \"Nd\" (the last N full days, default \"28d\"), two past dates \"YYYY-MM-DD,YYYY-MM-DD\", or \"Nh\" (the last N hours, at most 48).",
                required: false,
                completes: Completes::Choices(&["7d", "14d", "28d", "24h", "48h"]),
            }),
            Prompt::LaunchImpact => out.extend([
                Argument {
                    name: "moment",
                    description: "The day of the launch, deploy or campaign start, YYYY-MM-DD.",
                    required: true,
                    completes: Completes::Nothing,
                },
                Argument {
                    name: "page",
                    description: "Optional: one page path to measure, e.g. \"/pricing\" (\"/blog*\" for a prefix). Give a page or a goal, not both.",
                    required: false,
                    completes: Completes::Nothing,
                },
                Argument {
                    name: "goal",
                    description: "Optional: one goal whose conversions to measure, e.g. \"Signup\". Give a page or a goal, not both.",
                    required: false,
                    completes: Completes::Nothing,
                },
            ]),
        }
        out
    }

    /// The `prompts/list` entry.
    pub(crate) fn definition(self, has_default_site: bool) -> Value {
        let arguments: Vec<Value> = self
            .arguments(has_default_site)
            .iter()
            .map(|a| json!({"name": a.name, "description": a.description, "required": a.required}))
            .collect();
        json!({
            "name": self.name(),
            "title": self.title(),
            "description": self.description(),
            "arguments": arguments,
        })
    }

    /// The prompt's text for these arguments, or the first argument that
    /// is wrong. `now_secs` is the server clock (dates are UTC days).
    pub(crate) fn render(
        self,
        ctx: &ToolContext,
        arguments: &Map<String, Value>,
        now_secs: i64,
    ) -> Result<Rendered, InputError> {
        let plan = self.plan(ctx, arguments, now_secs)?;
        Ok(Rendered {
            description: format!("{}: {}", self.title(), plan.subject),
            text: plan.text(),
        })
    }

    fn plan(
        self,
        ctx: &ToolContext,
        arguments: &Map<String, Value>,
        now_secs: i64,
    ) -> Result<Plan, InputError> {
        let mut args = PromptArgs::new(self, arguments, ctx.default_site.is_some())?;
        let site = match args.string(SITE)? {
            Some(raw) => SiteId::parse(SITE, &raw)?,
            None => ctx.default_site.clone().ok_or_else(|| {
                InputError::new(SITE, "is required: the site's domain, e.g. \"example.com\"")
            })?,
        };
        ctx.allowed_sites.check(&site).map_err(|e| InputError {
            field: SITE.to_owned(),
            ..e
        })?;
        let today = OffsetDateTime::from_unix_timestamp(now_secs)
            .map(|t| t.date())
            .map_err(|_| InputError::new(SITE, "the server clock is out of range"))?;
        Ok(match self {
            Prompt::WeeklyReport => weekly_report(&site, today),
            Prompt::TrafficDropCheck => {
                let window = args
                    .string("window")?
                    .unwrap_or_else(|| DEFAULT_WINDOW.to_owned());
                tools::check_window(window.trim(), now_secs)?;
                traffic_drop_check(&site, window.trim())
            }
            Prompt::LaunchImpact => {
                let moment = args.string("moment")?.ok_or_else(|| {
                    InputError::new("moment", "is required: the day of the change, YYYY-MM-DD")
                })?;
                let moment = parse_day("moment", &moment)?;
                if moment > today {
                    return Err(InputError::new(
                        "moment",
                        format!("{moment} is in the future (today is {today}, UTC)"),
                    ));
                }
                let page = args.text("page")?;
                let goal = args.text("goal")?;
                if page.is_some() && goal.is_some() {
                    return Err(InputError::new(
                        "goal",
                        "give a page or a goal, not both: measure one thing at a time",
                    ));
                }
                let focus = match (page, goal) {
                    (Some(p), _) => Focus::Page(p),
                    (_, Some(g)) => Focus::Goal(g),
                    _ => Focus::Site,
                };
                launch_impact(&site, moment, today, &focus)
            }
        })
    }
}

/// A `prompts/get` answer before it becomes wire messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) description: String,
    /// The one user message.
    pub(crate) text: String,
}

/// Prompt arguments are strings (MCP `GetPromptRequest.arguments`); an
/// argument the prompt does not declare is refused by name.
struct PromptArgs<'a> {
    args: &'a Map<String, Value>,
}

impl<'a> PromptArgs<'a> {
    fn new(
        prompt: Prompt,
        args: &'a Map<String, Value>,
        has_default_site: bool,
    ) -> Result<Self, InputError> {
        let declared = prompt.arguments(has_default_site);
        let mut names: Vec<&String> = args.keys().collect();
        names.sort_unstable();
        if let Some(unknown) = names
            .into_iter()
            .find(|n| !declared.iter().any(|d| d.name == n.as_str()))
        {
            let expected: Vec<&str> = declared.iter().map(|d| d.name).collect();
            return Err(InputError::new(
                unknown.as_str(),
                format!(
                    "is not an argument of {} (expected one of: {})",
                    prompt.name(),
                    expected.join(", ")
                ),
            ));
        }
        Ok(Self { args })
    }

    /// A string argument; empty means absent (clients send "" for a
    /// field the user left blank).
    fn string(&mut self, name: &'static str) -> Result<Option<String>, InputError> {
        match self.args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(InputError::new(name, "must be a string")),
        }
    }

    /// A page or goal: at most [`MAX_TEXT`] characters.
    fn text(&mut self, name: &'static str) -> Result<Option<String>, InputError> {
        let value = self.string(name)?.map(|s| s.trim().to_owned());
        if let Some(v) = &value {
            if v.chars().count() > MAX_TEXT {
                return Err(InputError::new(
                    name,
                    format!("must be at most {MAX_TEXT} characters"),
                ));
            }
            if name == "page" && !v.starts_with('/') {
                return Err(InputError::new(
                    name,
                    "must be a path starting with \"/\", e.g. \"/pricing\"",
                ));
            }
        }
        Ok(value)
    }
}

fn parse_day(field: &str, raw: &str) -> Result<Date, InputError> {
    let raw = raw.trim();
    match DateRange::parse(field, &format!("{raw},{raw}")) {
        Ok(DateRange::Between(d, _)) if !raw.contains(',') => Ok(d),
        _ => Err(InputError::new(
            field,
            format!("must be one day as YYYY-MM-DD, e.g. \"2026-03-02\"; got {raw:?}"),
        )),
    }
}

/// What `launch_impact` measures.
enum Focus {
    Site,
    Page(String),
    Goal(String),
}

/// One planned tool call.
struct Step {
    tool: Tool,
    args: Value,
    why: String,
}

struct Plan {
    /// "example.com, last 7 days" — for the result's description.
    subject: String,
    intro: String,
    steps: Vec<Step>,
    report: String,
}

impl Plan {
    fn text(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {} {} — {}", i + 1, s.tool.name(), s.args, s.why))
            .collect();
        format!(
            "{}\n\nCall these tools in order, with exactly these arguments, and use only what they return (never invent a number):\n{}\n\n{}\n\nIf a tool returns an error, say which and why in one line and carry on with the rest.",
            self.intro,
            steps.join("\n"),
            self.report
        )
    }
}

/// A tool call's arguments, all strings here (the object's members sort
/// by name, so their order does not matter). One loop instead of `json!`
/// code per member: smaller in the wasm.
fn call_args(members: &[(&str, &str)]) -> Value {
    Value::Object(
        members
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect(),
    )
}

/// `args` with one more, non-string member.
fn with(mut args: Value, key: &str, value: Value) -> Value {
    if let Value::Object(obj) = &mut args {
        obj.insert(key.to_owned(), value);
    }
    args
}

fn range(a: Date, b: Date) -> String {
    format!("{a},{b}")
}

fn weekly_report(site: &SiteId, today: Date) -> Plan {
    let s = site.as_str();
    let (b_end, b_start) = (today - Days::days(1), today - Days::days(7));
    let (a_end, a_start) = (today - Days::days(8), today - Days::days(14));
    let week = range(b_start, b_end);
    let prior = range(a_start, a_end);
    let breakdown = |dimension: &str, limit: u32, why: &str| Step {
        tool: Tool::Breakdown,
        args: with(
            call_args(&[
                ("site_id", s),
                ("date_range", &week),
                ("dimension", dimension),
            ]),
            "limit",
            limit.into(),
        ),
        why: why.to_owned(),
    };
    Plan {
        subject: format!("{s}, {week}"),
        intro: format!(
            "Write a weekly traffic report for the Plausible site {s}: the last 7 full days ({b_start} to {b_end}) against the 7 days before ({a_start} to {a_end}). Dates are UTC days."
        ),
        steps: vec![
            Step {
                tool: Tool::ComparePeriods,
                args: with(
                    call_args(&[("site_id", s), ("period_a", &prior), ("period_b", &week)]),
                    "metrics",
                    vec!["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"].into(),
                ),
                why: "the headline numbers and their change, week on week.".into(),
            },
            Step {
                tool: Tool::Timeseries,
                args: call_args(&[("site_id", s), ("date_range", &week), ("granularity", "day")]),
                why: "the shape of the week: its best and worst day.".into(),
            },
            breakdown("visit:channel", 10, "which channels brought visitors."),
            breakdown("visit:source", 10, "the top sources."),
            breakdown("event:page", 10, "the most visited pages."),
            Step {
                tool: Tool::ListGoals,
                args: call_args(&[("site_id", s)]),
                why: "the site's goals; skip the next step when there are none.".into(),
            },
            Step {
                tool: Tool::Conversions,
                args: call_args(&[("site_id", s), ("date_range", &week)]),
                why: "how each goal converted this week.".into(),
            },
            Step {
                tool: Tool::FindAnomalies,
                args: call_args(&[("site_id", s), ("window", &week)]),
                why: "any unusual day this week, with what explains it.".into(),
            },
        ],
        report: "Then report, briefly and in this order: (1) visitors, visits and pageviews this week with the change against last week in percent, and bounce rate and visit duration; (2) the best and worst day; (3) the top channels and sources and what moved; (4) the top pages; (5) goal conversions, if any; (6) unusual days with their explanation, or \"nothing unusual\". compare_periods has no significance test: call a change of a few percent on small numbers noise, not a trend. End with one or two things worth looking into.".into(),
    }
}

fn traffic_drop_check(site: &SiteId, window: &str) -> Plan {
    let s = site.as_str();
    let hourly = window.ends_with('h');
    let mut steps = vec![Step {
        tool: Tool::FindAnomalies,
        args: call_args(&[("site_id", s), ("window", window)]),
        why: format!(
            "each {} of the window against the same weekday{} of the 6 weeks before, with the sources, pages and countries that explain each flagged one.",
            if hourly { "hour" } else { "day" },
            if hourly { " and hour" } else { "" }
        ),
    }];
    steps.push(Step {
        tool: Tool::Timeseries,
        args: call_args(&[("site_id", s), ("date_range", window)]),
        why: "the series itself, to describe the drop's shape: sudden or gradual, over or ongoing."
            .into(),
    });
    if !hourly {
        steps.push(Step {
            tool: Tool::Breakdown,
            args: call_args(&[
                ("site_id", s),
                ("date_range", window),
                ("dimension", "visit:channel"),
            ]),
            why: "the channels over the window, to see whether one channel carries the change."
                .into(),
        });
    }
    steps.push(Step {
        tool: Tool::RealtimeVisitors,
        args: call_args(&[("site_id", s)]),
        why: "whether visitors are arriving right now: zero now on a site that usually has traffic points to a broken tracking script rather than a real drop.".into(),
    });
    Plan {
        subject: format!("{s}, {window}"),
        intro: format!(
            "Check whether the Plausible site {s} had a traffic drop (or an unusual spike) in the window \"{window}\"."
        ),
        steps,
        report: "Then report: if find_anomalies flagged nothing, say plainly that nothing was unusual and stop there — do not call ordinary ups and downs a drop. Otherwise, for each flagged period: when, how far from the expected band (in percent), and what explains it (the sources, pages or countries find_anomalies names). Say whether the drop is over or still going on, whether one channel carries it, and whether it looks like a tracking problem (traffic falling to near zero everywhere at once) or a real loss of visitors.".into(),
    }
}

fn launch_impact(site: &SiteId, moment: Date, today: Date, focus: &Focus) -> Plan {
    let s = site.as_str();
    let days_after = (today - moment).whole_days() - 1;
    // The two weeks either side of the moment, up to yesterday.
    let end = (today - Days::days(1)).min(moment + Days::days(14));
    let around = range(moment - Days::days(14), end.max(moment));
    let day = moment.to_string();
    let (what, mut change, series) = match focus {
        Focus::Site => (
            format!("traffic on {s}"),
            call_args(&[("site_id", s), ("date", &day), ("metric", "visitors")]),
            call_args(&[
                ("site_id", s),
                ("date_range", &around),
                ("granularity", "day"),
            ]),
        ),
        Focus::Page(p) => (
            format!("the page {p} on {s}"),
            call_args(&[
                ("site_id", s),
                ("date", &day),
                ("metric", "visitors"),
                ("page", p.as_str()),
            ]),
            call_args(&[
                ("site_id", s),
                ("date_range", &around),
                ("granularity", "day"),
                ("page", p.as_str()),
            ]),
        ),
        Focus::Goal(g) => (
            format!("conversions of the goal \"{g}\" on {s}"),
            call_args(&[
                ("site_id", s),
                ("date", &day),
                ("metric", "conversion_rate"),
                ("goal", g.as_str()),
            ]),
            call_args(&[
                ("site_id", s),
                ("date_range", &around),
                ("granularity", "day"),
                ("goal", g.as_str()),
            ]),
        ),
    };
    let mut steps = Vec::new();
    if let Focus::Goal(_) = focus {
        steps.push(Step {
            tool: Tool::ListGoals,
            args: call_args(&[("site_id", s)]),
            why: "check that the goal exists under exactly this name; if not, stop and ask which goal was meant.".into(),
        });
    }
    let enough = days_after >= MIN_DAYS_AFTER;
    if enough {
        steps.push(Step {
            tool: Tool::MeasureChange,
            args: change.take(),
            why:
                "equal, weekday-aligned windows before and after the day, with a significance test."
                    .into(),
        });
    }
    steps.push(Step {
        tool: Tool::Timeseries,
        args: series,
        why: "the days around the moment, to describe the shape of any change.".into(),
    });
    steps.push(Step {
        tool: Tool::FindAnomalies,
        args: call_args(&[("site_id", s), ("window", &range(moment, moment))]),
        why: "whether the day itself was unusual, and what drove it.".into(),
    });
    let report = if enough {
        "Then report: the before and after values, the change with its interval, and whether measure_change calls it significant. If it is not significant, say so plainly (\"no measurable change\") instead of quoting the difference as an effect. Mention anything else that happened at the same time (an unusual day, a source that spiked) that could explain the change better than the launch. Keep it to a short paragraph and a few numbers."
    } else {
        "Only {days} whole day(s) have passed since the moment: too few for measure_change's significance test, which needs at least 7 on each side. Say so first, then describe what the days so far show, and suggest asking again once a full week has passed."
    };
    Plan {
        subject: format!("{what} since {moment}"),
        intro: format!(
            "Measure whether something that happened on {moment} (a launch, deploy or campaign) changed {what}. Dates are UTC days; today is {today}."
        ),
        steps,
        report: report.replace("{days}", &days_after.max(0).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::tools::tests::{ctx, run_tool, varied_platform};
    use crate::plausible::tools::{CallError, Outcome};

    /// 2026-03-15T12:00:00Z, FakePlatform's clock.
    const NOW: i64 = 1_773_576_000;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// Every planned call passes the tool's own argument rules (and runs
    /// against the synthetic Stats API).
    #[test]
    fn every_planned_call_is_one_the_tool_accepts() {
        let cases = [
            (Prompt::WeeklyReport, json!({"site": "example.com"})),
            (Prompt::TrafficDropCheck, json!({"site": "example.com"})),
            (
                Prompt::TrafficDropCheck,
                json!({"site": "example.com", "window": "48h"}),
            ),
            (
                Prompt::TrafficDropCheck,
                json!({"site": "example.com", "window": "2026-02-01,2026-02-28"}),
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "example.com", "moment": "2026-02-20"}),
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "example.com", "moment": "2026-02-20", "page": "/pricing"}),
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "example.com", "moment": "2026-02-20", "goal": "Signup"}),
            ),
            // Too recent for a significance test: no measure_change step.
            (
                Prompt::LaunchImpact,
                json!({"site": "example.com", "moment": "2026-03-12"}),
            ),
        ];
        for (prompt, a) in cases {
            let plan = prompt.plan(&ctx(None), &args(a.clone()), NOW).unwrap();
            assert!(!plan.steps.is_empty());
            for step in &plan.steps {
                let p = varied_platform();
                let out = run_tool(&p, &ctx(None), step.tool, step.args.clone());
                assert!(
                    matches!(out, Ok(Outcome::Success { .. })),
                    "{prompt:?} {a}: {} {} refused: {:?}",
                    step.tool.name(),
                    step.args,
                    out.err().map(|e| match e {
                        CallError::Input(e) => e.to_string(),
                        CallError::Message(m) => m,
                        CallError::Plausible(e, _) => format!("{e:?}"),
                    })
                );
            }
            let text = plan.text();
            for step in &plan.steps {
                assert!(text.contains(step.tool.name()), "{text}");
            }
        }
    }

    #[test]
    fn plans_name_the_right_tools_and_dates() {
        let tools = |prompt: Prompt, a: Value| -> Vec<&'static str> {
            prompt
                .plan(&ctx(None), &args(a), NOW)
                .unwrap()
                .steps
                .iter()
                .map(|s| s.tool.name())
                .collect()
        };
        let weekly = Prompt::WeeklyReport
            .plan(&ctx(None), &args(json!({"site": "example.com"})), NOW)
            .unwrap();
        assert_eq!(weekly.steps[0].args["period_a"], "2026-03-01,2026-03-07");
        assert_eq!(weekly.steps[0].args["period_b"], "2026-03-08,2026-03-14");
        assert!(
            tools(
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-20"})
            )
            .contains(&"measure_change")
        );
        assert!(
            !tools(
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-03-12"})
            )
            .contains(&"measure_change")
        );
        assert_eq!(
            tools(
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-20", "goal": "Signup"})
            )
            .first(),
            Some(&"list_goals")
        );
        assert!(
            !tools(
                Prompt::TrafficDropCheck,
                json!({"site": "a.com", "window": "24h"})
            )
            .contains(&"get_breakdown")
        );
        let recent = Prompt::LaunchImpact
            .plan(
                &ctx(None),
                &args(json!({"site": "a.com", "moment": "2026-03-12"})),
                NOW,
            )
            .unwrap();
        assert!(
            recent.text().contains("Only 2 whole day(s)"),
            "{}",
            recent.text()
        );
    }

    /// A valid base, one named change per case, the argument named.
    #[test]
    fn bad_arguments_are_refused_by_name() {
        let cases = [
            (Prompt::WeeklyReport, json!({}), "site"),
            (Prompt::WeeklyReport, json!({"site": "a b"}), "site"),
            (Prompt::WeeklyReport, json!({"site": 7}), "site"),
            (
                Prompt::WeeklyReport,
                json!({"site": "a.com", "window": "7d"}),
                "window",
            ),
            (
                Prompt::TrafficDropCheck,
                json!({"site": "a.com", "window": "72h"}),
                "window",
            ),
            (
                Prompt::TrafficDropCheck,
                json!({"site": "a.com", "window": "soon"}),
                "window",
            ),
            (Prompt::LaunchImpact, json!({"site": "a.com"}), "moment"),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-30"}),
                "moment",
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-01,2026-02-02"}),
                "moment",
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-04-01"}),
                "moment",
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-20", "page": "pricing"}),
                "page",
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-20", "page": "/a", "goal": "Signup"}),
                "goal",
            ),
            (
                Prompt::LaunchImpact,
                json!({"site": "a.com", "moment": "2026-02-20", "goal": "x".repeat(MAX_TEXT + 1)}),
                "goal",
            ),
        ];
        for (prompt, a, field) in cases {
            let err = prompt
                .render(&ctx(None), &args(a.clone()), NOW)
                .expect_err(&a.to_string());
            assert_eq!(err.field, field, "{prompt:?} {a}: {err}");
        }
    }

    #[test]
    fn the_default_site_makes_site_optional() {
        let with_default = ctx(Some("default.example"));
        let out = Prompt::WeeklyReport
            .render(&with_default, &Map::new(), NOW)
            .unwrap();
        assert!(out.text.contains("default.example"), "{}", out.text);
        for p in Prompt::ALL {
            assert_eq!(p.definition(true)["arguments"][0]["required"], false);
            assert_eq!(p.definition(false)["arguments"][0]["required"], true);
        }
        // An empty string is a field left blank: the default applies.
        let blank = Prompt::WeeklyReport
            .render(&with_default, &args(json!({"site": ""})), NOW)
            .unwrap();
        assert_eq!(blank, out);
    }

    /// Issue 15: a prompt for a site the grant does not allow is refused
    /// naming the allowed one, the deployment's default site included.
    #[test]
    fn a_limited_grant_prompts_only_for_its_sites() {
        let limited = ctx(Some("default.example")).restricted_to(
            crate::plausible::sites::AllowedSites::of_grant(Some(&["shop.example.com".to_owned()])),
        );
        let refused = Prompt::WeeklyReport
            .render(&limited, &args(json!({"site": "example.com"})), NOW)
            .unwrap_err();
        assert_eq!(refused.field, "site");
        assert!(
            refused.message.contains("\"shop.example.com\""),
            "{}",
            refused.message
        );
        let defaulted = Prompt::WeeklyReport
            .render(&limited, &Map::new(), NOW)
            .unwrap_err();
        assert!(
            defaulted
                .message
                .contains("\"default.example\" is not a site"),
            "{}",
            defaulted.message
        );
        assert!(
            Prompt::WeeklyReport
                .render(&limited, &args(json!({"site": "shop.example.com"})), NOW)
                .is_ok()
        );
    }
}
