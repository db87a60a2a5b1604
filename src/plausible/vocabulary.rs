//! The Stats API v2 metrics and dimensions the tools accept.
//!
//! Source: Plausible's request schema (`priv/json-schemas/query-api-schema.json`)
//! and the established plausible-mcp tool contract, which exposes a subset.

/// Metrics (Stats API v2 `metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    Events,
    ScrollDepth,
    Percentage,
    ConversionRate,
    GroupConversionRate,
    AverageRevenue,
    TotalRevenue,
    TimeOnPage,
}

impl Metric {
    pub(crate) const ALL: [Metric; 14] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::Events,
        Metric::ScrollDepth,
        Metric::Percentage,
        Metric::ConversionRate,
        Metric::GroupConversionRate,
        Metric::AverageRevenue,
        Metric::TotalRevenue,
        Metric::TimeOnPage,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::Events => "events",
            Metric::ScrollDepth => "scroll_depth",
            Metric::Percentage => "percentage",
            Metric::ConversionRate => "conversion_rate",
            Metric::GroupConversionRate => "group_conversion_rate",
            Metric::AverageRevenue => "average_revenue",
            Metric::TotalRevenue => "total_revenue",
            Metric::TimeOnPage => "time_on_page",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The unit a model needs to read the value right, where the name
    /// does not say it.
    pub(crate) fn unit(self) -> Option<&'static str> {
        match self {
            Metric::BounceRate => Some("integer percent"),
            Metric::VisitDuration => Some("seconds"),
            _ => None,
        }
    }

    /// Session metrics cannot be combined with event-only dimensions other
    /// than `event:page` alone (Plausible `TableDecider`).
    pub(crate) fn is_session_metric(self) -> bool {
        matches!(
            self,
            Metric::BounceRate | Metric::VisitDuration | Metric::ViewsPerVisit
        )
    }
}

/// Built-in dimensions (everything but `event:props:<name>` and time).
pub(crate) const BUILTIN_DIMENSIONS: [&str; 26] = [
    "event:page",
    "event:goal",
    "event:hostname",
    "visit:entry_page",
    "visit:exit_page",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
    "visit:source",
    "visit:referrer",
    "visit:channel",
    "visit:utm_medium",
    "visit:utm_source",
    "visit:utm_campaign",
    "visit:utm_content",
    "visit:utm_term",
    "visit:device",
    "visit:browser",
    "visit:browser_version",
    "visit:os",
    "visit:os_version",
    "visit:country",
    "visit:region",
    "visit:city",
    "visit:country_name",
    "visit:region_name",
    "visit:city_name",
];

pub(crate) const CUSTOM_PROPERTY_PREFIX: &str = "event:props:";
/// Plausible's limit on custom property names.
pub(crate) const MAX_PROPERTY_NAME: usize = 300;

/// A dimension to break down or filter by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dimension {
    Builtin(&'static str),
    /// `event:props:<name>`.
    CustomProperty(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DimensionError {
    /// Contains `:` but is neither built in nor `event:props:<name>`
    /// (a typo like `visit:chanel`).
    Unknown,
    /// `event:props:` with no name.
    EmptyPropertyName,
    PropertyNameTooLong,
}

impl Dimension {
    pub(crate) fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Dimension::Builtin(s) => std::borrow::Cow::Borrowed(s),
            Dimension::CustomProperty(name) => {
                std::borrow::Cow::Owned(format!("{CUSTOM_PROPERTY_PREFIX}{name}"))
            }
        }
    }

    /// A breakdown dimension: built in or `event:props:<name>`.
    pub(crate) fn parse_qualified(s: &str) -> Result<Self, DimensionError> {
        if let Some(b) = BUILTIN_DIMENSIONS.iter().find(|b| **b == s) {
            return Ok(Dimension::Builtin(b));
        }
        match s.strip_prefix(CUSTOM_PROPERTY_PREFIX) {
            Some("") => Err(DimensionError::EmptyPropertyName),
            Some(name) if name.chars().count() > MAX_PROPERTY_NAME => {
                Err(DimensionError::PropertyNameTooLong)
            }
            Some(name) => Ok(Dimension::CustomProperty(name.to_owned())),
            None => Err(DimensionError::Unknown),
        }
    }

    /// A filter property: a qualified dimension, or a bare name meaning a
    /// custom property (`plan` is `event:props:plan`).
    pub(crate) fn parse_property(s: &str) -> Result<Self, DimensionError> {
        if s.contains(':') {
            return Self::parse_qualified(s);
        }
        if s.is_empty() {
            return Err(DimensionError::EmptyPropertyName);
        }
        if s.chars().count() > MAX_PROPERTY_NAME {
            return Err(DimensionError::PropertyNameTooLong);
        }
        Ok(Dimension::CustomProperty(s.to_owned()))
    }

    /// Event-only dimensions; session metrics cannot be broken down by
    /// them (except `event:page` alone).
    pub(crate) fn is_event_dimension(&self) -> bool {
        match self {
            Dimension::Builtin(s) => s.starts_with("event:"),
            Dimension::CustomProperty(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        assert_eq!(Metric::parse("visitor"), None);
    }

    #[test]
    fn dimension_parsing() {
        use DimensionError::*;
        let long = "x".repeat(MAX_PROPERTY_NAME);
        let too_long = "x".repeat(MAX_PROPERTY_NAME + 1);
        let qualified: Vec<(String, Result<Dimension, DimensionError>)> = vec![
            (
                "visit:channel".into(),
                Ok(Dimension::Builtin("visit:channel")),
            ),
            (
                "event:props:plan".into(),
                Ok(Dimension::CustomProperty("plan".into())),
            ),
            (
                "event:props: leading".into(),
                Ok(Dimension::CustomProperty(" leading".into())),
            ),
            (
                format!("event:props:{long}"),
                Ok(Dimension::CustomProperty(long.clone())),
            ),
            (format!("event:props:{too_long}"), Err(PropertyNameTooLong)),
            ("event:props:".into(), Err(EmptyPropertyName)),
            ("visit:chanel".into(), Err(Unknown)),
            ("plan".into(), Err(Unknown)),
            ("time:day".into(), Err(Unknown)),
        ];
        for (input, expected) in qualified {
            assert_eq!(Dimension::parse_qualified(&input), expected, "{input}");
        }
        let property: Vec<(String, Result<Dimension, DimensionError>)> = vec![
            ("plan".into(), Ok(Dimension::CustomProperty("plan".into()))),
            (
                "visit:channel".into(),
                Ok(Dimension::Builtin("visit:channel")),
            ),
            ("visit:chanel".into(), Err(Unknown)),
            (long.clone(), Ok(Dimension::CustomProperty(long.clone()))),
            (too_long.clone(), Err(PropertyNameTooLong)),
            ("".into(), Err(EmptyPropertyName)),
        ];
        for (input, expected) in property {
            assert_eq!(Dimension::parse_property(&input), expected, "{input}");
        }
    }
}
