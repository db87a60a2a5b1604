//! Stats API v2 query bodies (`POST /api/v2/query`).
//!
//! A [`Query`] is only built through [`Query::new`], which applies the
//! metric/dimension rules Plausible enforces (`query_builder.ex`,
//! `table_decider.ex`), so a query we send is one Plausible accepts and the
//! model learns what to change from our message, not from a bare 400.

use serde_json::{Value, json};

use super::args::{DateRange, InputError, PageFilter, SiteId, utc_datetime};
use super::filters::PropertyFilter;
use super::vocabulary::{Dimension, Metric};
use crate::ports::UnixMillis;

/// Granularity of a timeseries (`time:<g>` dimension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub(crate) const ALL: [Granularity; 4] = [Self::Hour, Self::Day, Self::Week, Self::Month];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub(crate) fn dimension(self) -> &'static str {
        match self {
            Self::Hour => "time:hour",
            Self::Day => "time:day",
            Self::Week => "time:week",
            Self::Month => "time:month",
        }
    }
}

/// A grouping in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Grouping {
    Time(Granularity),
    Dimension(Dimension),
}

impl Grouping {
    pub(crate) fn wire(&self) -> String {
        match self {
            Grouping::Time(g) => g.dimension().to_owned(),
            Grouping::Dimension(d) => d.as_str().into_owned(),
        }
    }

    fn is(&self, name: &str) -> bool {
        matches!(self, Grouping::Dimension(Dimension::Builtin(b)) if *b == name)
    }
}

/// One top-level filter, in the order it will be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    Page(PageFilter),
    Goal(String),
    Property(PropertyFilter),
    /// A filter tree already checked against the Stats API grammar
    /// (`query_stats`); its top-level dimension, if any, for the rules.
    Raw(Value, Option<String>),
}

impl Filter {
    fn targets(&self, dimension: &str) -> bool {
        match self {
            Filter::Page(_) => dimension == "event:page",
            Filter::Goal(_) => dimension == "event:goal",
            Filter::Property(p) => !p.behavioural() && p.dimension.as_str() == dimension,
            Filter::Raw(_, top) => top.as_deref() == Some(dimension),
        }
    }

    fn wire(&self) -> Value {
        match self {
            Filter::Page(PageFilter::Exact(p)) => json!(["is", "event:page", [p]]),
            Filter::Page(PageFilter::Prefix(p)) => json!(["contains", "event:page", [p]]),
            Filter::Goal(g) => json!(["is", "event:goal", [g]]),
            Filter::Property(p) => p.wire(),
            Filter::Raw(tree, _) => tree.clone(),
        }
    }
}

/// A validated query, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Query {
    pub(crate) site_id: SiteId,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) date_range: DateRange,
    pub(crate) groupings: Vec<Grouping>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) limit: Option<u32>,
    /// `include`, `pagination.offset` and `order_by`, when asked for.
    pub(crate) extras: Extras,
}

/// The optional parts of a query beyond the shaped tools' needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Extras {
    /// `include.imports`: add imported (Universal Analytics, CSV) data.
    pub(crate) imports: bool,
    /// `include.total_rows`: count every row, for paging.
    pub(crate) total_rows: bool,
    /// `include.time_labels`.
    pub(crate) time_labels: bool,
    pub(crate) offset: Option<u32>,
    /// `[[metric or dimension, "asc"|"desc"], …]`, already checked.
    pub(crate) order_by: Option<Value>,
}

/// Which argument a combination error is best attributed to.
const METRICS: &str = "metrics";

impl Query {
    pub(crate) fn new(
        site_id: SiteId,
        metrics: Vec<Metric>,
        date_range: DateRange,
        groupings: Vec<Grouping>,
        filters: Vec<Filter>,
        limit: Option<u32>,
    ) -> Result<Self, InputError> {
        let query = Self {
            site_id,
            metrics,
            date_range,
            groupings,
            filters,
            limit,
            extras: Extras::default(),
        };
        query.check_combinations()?;
        Ok(query)
    }

    fn has_grouping(&self, name: &str) -> bool {
        self.groupings.iter().any(|g| g.is(name))
    }

    fn has_filter(&self, name: &str) -> bool {
        self.filters.iter().any(|f| f.targets(name))
    }

    /// Plausible's rules, checked in the order it checks them.
    fn check_combinations(&self) -> Result<(), InputError> {
        for metric in &self.metrics {
            match metric {
                // "Metric `conversion_rate` can only be queried with
                // event:goal filters or dimensions."
                Metric::ConversionRate | Metric::GroupConversionRate
                    if !self.has_grouping("event:goal") && !self.has_filter("event:goal") =>
                {
                    return Err(InputError::new(
                        METRICS,
                        format!(
                            "{} needs a goal: pass `goal`, filter on event:goal, or use get_conversions",
                            metric.as_str()
                        ),
                    ));
                }
                // "… can only be queried with event:page filters or dimensions."
                Metric::ScrollDepth | Metric::TimeOnPage
                    if !self.has_grouping("event:page") && !self.has_filter("event:page") =>
                {
                    return Err(InputError::new(
                        METRICS,
                        format!(
                            "{} is a per-page metric: pass `page`, filter on event:page, or break down by event:page",
                            metric.as_str()
                        ),
                    ));
                }
                Metric::ViewsPerVisit if self.has_filter("event:page") => {
                    return Err(InputError::new(
                        METRICS,
                        "views_per_visit cannot be combined with a page filter",
                    ));
                }
                Metric::ViewsPerVisit if !self.groupings.is_empty() => {
                    return Err(InputError::new(
                        METRICS,
                        "views_per_visit can only be queried as a total (compare_periods), not over time or by dimension",
                    ));
                }
                _ => {}
            }
        }

        // Session metrics vs event-only dimensions; `event:page` alone is
        // the documented exception.
        let event_dims: Vec<String> = self
            .groupings
            .iter()
            .filter_map(|g| match g {
                Grouping::Dimension(d) if d.is_event_dimension() => Some(d.as_str().into_owned()),
                _ => None,
            })
            .collect();
        let session: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| m.is_session_metric())
            .map(|m| m.as_str())
            .collect();
        if !session.is_empty() && !event_dims.is_empty() && event_dims != ["event:page"] {
            return Err(InputError::new(
                METRICS,
                format!(
                    "session metrics ({}) cannot be broken down by {}; drop them or use visitors, visits, pageviews, events",
                    session.join(", "),
                    event_dims.join(", ")
                ),
            ));
        }

        // Event metrics vs session-only dimensions.
        let session_dims: Vec<String> = self
            .groupings
            .iter()
            .filter(|g| g.is("visit:entry_page") || g.is("visit:exit_page"))
            .map(Grouping::wire)
            .collect();
        let event: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Metric::Pageviews
                        | Metric::Events
                        | Metric::ScrollDepth
                        | Metric::TotalRevenue
                        | Metric::AverageRevenue
                )
            })
            .map(|m| m.as_str())
            .collect();
        if !event.is_empty() && !session_dims.is_empty() {
            return Err(InputError::new(
                METRICS,
                format!(
                    "event metrics ({}) cannot be broken down by {}; use visitors, visits, bounce_rate or visit_duration",
                    event.join(", "),
                    session_dims.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The JSON body, with only the fields in use.
    pub(crate) fn body(&self, now: UnixMillis) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("site_id".into(), json!(self.site_id.as_str()));
        body.insert(
            "metrics".into(),
            json!(self.metrics.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
        );
        body.insert("date_range".into(), date_range_wire(&self.date_range, now));
        if !self.groupings.is_empty() {
            body.insert(
                "dimensions".into(),
                json!(
                    self.groupings
                        .iter()
                        .map(Grouping::wire)
                        .collect::<Vec<_>>()
                ),
            );
        }
        if !self.filters.is_empty() {
            body.insert(
                "filters".into(),
                Value::Array(self.filters.iter().map(Filter::wire).collect()),
            );
        }
        if let Some(order_by) = &self.extras.order_by {
            body.insert("order_by".into(), order_by.clone());
        }
        let mut include = serde_json::Map::new();
        for (name, on) in [
            ("imports", self.extras.imports),
            ("time_labels", self.extras.time_labels),
            ("total_rows", self.extras.total_rows),
        ] {
            if on {
                include.insert(name.into(), json!(true));
            }
        }
        if !include.is_empty() {
            body.insert("include".into(), Value::Object(include));
        }
        let mut pagination = serde_json::Map::new();
        if let Some(limit) = self.limit {
            pagination.insert("limit".into(), json!(limit));
        }
        if let Some(offset) = self.extras.offset {
            pagination.insert("offset".into(), json!(offset));
        }
        if !pagination.is_empty() {
            body.insert("pagination".into(), Value::Object(pagination));
        }
        Value::Object(body)
    }

    /// The query as a cache key: the body, with a range relative to now
    /// (`24h`) kept in its relative form, so the same question asked a
    /// few seconds later is the same key.
    pub(crate) fn canonical(&self, now: UnixMillis) -> String {
        let mut body = self.body(now);
        if let (DateRange::Hours(_), Value::Object(obj)) = (&self.date_range, &mut body) {
            obj.insert("date_range".into(), json!(self.date_range.label()));
        }
        body.to_string()
    }

    /// Realtime questions are never answered from a cache.
    pub(crate) fn is_realtime(&self) -> bool {
        matches!(self.date_range, DateRange::Minutes(_))
    }
}

/// Stats API v2 `date_range`: shorthands as strings, absolute ranges as a
/// two-element array. Plausible has no general `Nh` shorthand, so hours
/// become an explicit UTC datetime range ending now.
fn date_range_wire(range: &DateRange, now: UnixMillis) -> Value {
    match range {
        DateRange::Hours(n) => {
            let end = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            let start = end.saturating_sub(i64::from(*n) * 3600);
            json!([utc_datetime(start), utc_datetime(end)])
        }
        DateRange::Minutes(n) => {
            let end = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            let start = end.saturating_sub(i64::from(*n) * 60);
            json!([utc_datetime(start), utc_datetime(end)])
        }
        DateRange::Instants(start, end) => json!([utc_datetime(*start), utc_datetime(*end)]),
        DateRange::Between(a, b) => json!([a.to_string(), b.to_string()]),
        other => json!(other.label()),
    }
}

/// Builds the filter list in the established order: `page`, then `goal`,
/// then `property_filters` (get_conversions puts `goal` first).
pub(crate) fn filters(
    page: Option<PageFilter>,
    goal: Option<String>,
    properties: Vec<PropertyFilter>,
    goal_first: bool,
) -> Vec<Filter> {
    let page = page.map(Filter::Page);
    let goal = goal.map(Filter::Goal);
    let (first, second) = if goal_first {
        (goal, page)
    } else {
        (page, goal)
    };
    first
        .into_iter()
        .chain(second)
        .chain(properties.into_iter().map(Filter::Property))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::filters::Operator;
    use crate::plausible::vocabulary::Metric::*;

    fn site() -> SiteId {
        SiteId::parse("site_id", "example.com").unwrap()
    }

    fn q(
        metrics: Vec<Metric>,
        groupings: Vec<Grouping>,
        filters: Vec<Filter>,
    ) -> Result<Query, InputError> {
        Query::new(
            site(),
            metrics,
            DateRange::Days(30),
            groupings,
            filters,
            None,
        )
    }

    fn dim(s: &str) -> Grouping {
        Grouping::Dimension(Dimension::parse_qualified(s).unwrap())
    }

    const NOW: UnixMillis = UnixMillis(1_773_576_000_000); // 2026-03-15T12:00:00Z

    #[test]
    fn bodies_carry_only_the_fields_in_use() {
        let query = q(vec![Visitors], vec![], vec![]).unwrap();
        assert_eq!(
            query.body(NOW),
            json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": "30d"})
        );
        let query = Query::new(
            site(),
            vec![Visitors, Pageviews],
            DateRange::Between(
                time::Date::from_calendar_date(2024, time::Month::March, 1).unwrap(),
                time::Date::from_calendar_date(2024, time::Month::March, 31).unwrap(),
            ),
            vec![dim("visit:source")],
            filters(
                Some(PageFilter::Prefix("/blog".into())),
                None,
                vec![PropertyFilter {
                    dimension: Dimension::CustomProperty("plan".into()),
                    operator: Operator::IsNot,
                    values: vec!["free".into()],
                    ignore_case: false,
                    visit: None,
                }],
                false,
            ),
            Some(50),
        )
        .unwrap();
        assert_eq!(
            query.body(NOW),
            json!({
                "site_id": "example.com",
                "metrics": ["visitors", "pageviews"],
                "date_range": ["2024-03-01", "2024-03-31"],
                "dimensions": ["visit:source"],
                "filters": [["contains", "event:page", ["/blog"]], ["is_not", "event:props:plan", ["free"]]],
                "pagination": {"limit": 50}
            })
        );
    }

    #[test]
    fn hours_become_an_explicit_utc_range_ending_now() {
        let query = Query::new(
            site(),
            vec![Visitors],
            DateRange::Hours(6),
            vec![],
            vec![],
            None,
        )
        .unwrap();
        assert_eq!(
            query.body(NOW)["date_range"],
            json!(["2026-03-15T06:00:00Z", "2026-03-15T12:00:00Z"])
        );
    }

    #[test]
    fn filter_order_follows_the_tool_contract() {
        let page = Some(PageFilter::Exact("/pricing".into()));
        let goal = Some("Signup".to_owned());
        let wire = |fs: Vec<Filter>| fs.iter().map(Filter::wire).collect::<Vec<_>>();
        assert_eq!(
            wire(filters(page.clone(), goal.clone(), vec![], false)),
            vec![
                json!(["is", "event:page", ["/pricing"]]),
                json!(["is", "event:goal", ["Signup"]])
            ]
        );
        assert_eq!(
            wire(filters(page, goal, vec![], true)),
            vec![
                json!(["is", "event:goal", ["Signup"]]),
                json!(["is", "event:page", ["/pricing"]])
            ]
        );
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn combination_rules() {
        let goal = || vec![Filter::Goal("Signup".into())];
        let page = || vec![Filter::Page(PageFilter::Exact("/".into()))];
        let time = || vec![Grouping::Time(Granularity::Day)];
        let ok: Vec<(Vec<Metric>, Vec<Grouping>, Vec<Filter>)> = vec![
            (vec![ConversionRate], vec![], goal()),
            (vec![ConversionRate], vec![dim("event:goal")], vec![]),
            (vec![ScrollDepth], vec![], page()),
            (vec![TimeOnPage], vec![dim("event:page")], vec![]),
            (
                vec![BounceRate, VisitDuration],
                vec![dim("event:page")],
                vec![],
            ),
            (vec![BounceRate], vec![dim("visit:source")], goal()),
            (vec![BounceRate], time(), vec![]),
            (vec![ViewsPerVisit], vec![], vec![]),
            (
                vec![Visitors, Pageviews],
                vec![dim("event:props:plan")],
                vec![],
            ),
            (
                vec![Visitors, BounceRate],
                vec![dim("visit:entry_page")],
                vec![],
            ),
        ];
        for (metrics, groupings, filters) in ok {
            let label = format!("{metrics:?} {groupings:?} {filters:?}");
            assert!(q(metrics, groupings, filters).is_ok(), "{label}");
        }
        let bad: Vec<(Vec<Metric>, Vec<Grouping>, Vec<Filter>, &str)> = vec![
            (vec![ConversionRate], vec![], vec![], "needs a goal"),
            (vec![GroupConversionRate], time(), page(), "needs a goal"),
            (vec![ScrollDepth], vec![], vec![], "per-page"),
            (vec![TimeOnPage], time(), goal(), "per-page"),
            (vec![ViewsPerVisit], vec![], page(), "page filter"),
            (vec![ViewsPerVisit], time(), vec![], "as a total"),
            (
                vec![BounceRate],
                vec![dim("event:props:plan")],
                vec![],
                "session metrics (bounce_rate)",
            ),
            (
                vec![VisitDuration],
                vec![dim("event:goal")],
                vec![],
                "event:goal",
            ),
            (
                vec![BounceRate],
                vec![dim("event:hostname")],
                vec![],
                "event:hostname",
            ),
            (
                vec![Pageviews],
                vec![dim("visit:exit_page")],
                vec![],
                "event metrics (pageviews)",
            ),
        ];
        for (metrics, groupings, filters, needle) in bad {
            let label = format!("{metrics:?} {groupings:?} {filters:?}");
            let err = q(metrics, groupings, filters).expect_err(&label);
            assert_eq!(err.field, "metrics");
            assert!(err.message.contains(needle), "{label}: {}", err.message);
        }
    }
}
