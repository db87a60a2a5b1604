//! Tool arguments, parsed into validated values ("parse, don't validate").
//!
//! Every error names the argument and says what is wrong, so a model can
//! fix its call without guessing.

use serde_json::{Map, Value};
use time::{Date, Month};

use super::vocabulary::{Dimension, DimensionError, MAX_PROPERTY_NAME, Metric};

/// An invalid tool argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub(crate) field: String,
    pub(crate) message: String,
}

impl InputError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invalid argument `{}`: {}", self.field, self.message)
    }
}

/// Reads a tool's `arguments` object field by field, then refuses any
/// field it was not asked for (a misspelt argument is an error, not a
/// silent no-op).
pub(crate) struct ArgReader {
    args: Map<String, Value>,
    read: Vec<&'static str>,
}

impl ArgReader {
    pub(crate) fn new(args: Option<Map<String, Value>>) -> Self {
        Self {
            args: args.unwrap_or_default(),
            read: Vec::new(),
        }
    }

    fn take(&mut self, field: &'static str) -> Option<&Value> {
        self.read.push(field);
        match self.args.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn opt_str(&mut self, field: &'static str) -> Result<Option<String>, InputError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(InputError::new(field, "must be a string")),
        }
    }

    pub(crate) fn opt_bool(&mut self, field: &'static str) -> Result<Option<bool>, InputError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(InputError::new(field, "must be true or false")),
        }
    }

    pub(crate) fn opt_int(&mut self, field: &'static str) -> Result<Option<i64>, InputError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(InputError::new(field, "must be a whole number")),
            },
            Some(_) => Err(InputError::new(field, "must be a whole number")),
        }
    }

    pub(crate) fn opt_array(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<Value>>, InputError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(InputError::new(field, "must be an array")),
        }
    }

    pub(crate) fn opt_object(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Map<String, Value>>, InputError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(_) => Err(InputError::new(field, "must be an object")),
        }
    }

    /// Fails on the first argument that no read asked for.
    pub(crate) fn finish(self) -> Result<(), InputError> {
        let mut unknown: Vec<&String> = self
            .args
            .keys()
            .filter(|k| !self.read.contains(&k.as_str()))
            .collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(()),
            Some(first) => {
                let mut expected = self.read.clone();
                expected.sort_unstable();
                expected.dedup();
                Err(InputError::new(
                    first.as_str(),
                    format!(
                        "is not an argument of this tool (expected one of: {})",
                        expected.join(", ")
                    ),
                ))
            }
        }
    }
}

/// Longest page, goal or filter value accepted.
pub(crate) const MAX_TEXT: usize = 1024;

/// A Plausible site, identified by its domain (`site_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteId(String);

impl SiteId {
    pub(crate) fn parse(field: &str, raw: &str) -> Result<Self, InputError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InputError::new(field, "must not be empty"));
        }
        if s.len() > 256 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(
                field,
                "must be a site domain as shown in Plausible, e.g. \"example.com\"",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads `site_id`, falling back to the deployment's default site.
pub(crate) fn site_id(
    args: &mut ArgReader,
    default: Option<&SiteId>,
) -> Result<SiteId, InputError> {
    match (args.opt_str("site_id")?, default) {
        (Some(raw), _) => SiteId::parse("site_id", &raw),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(InputError::new(
            "site_id",
            "is required (no default site is configured on this server); pass the site's domain, e.g. \"example.com\"",
        )),
    }
}

/// A reporting period (`date_range`, `period_a`, `period_b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DateRange {
    /// The last N hours up to now.
    Hours(u32),
    /// The last N full days, today excluded (Plausible `Nd`).
    Days(u32),
    /// The last N full months, this month excluded (Plausible `Nmo`).
    Months(u32),
    Day,
    Month,
    Year,
    All,
    /// Both ends inclusive.
    Between(Date, Date),
    /// The last N minutes up to now (realtime; never parsed from input).
    Minutes(u32),
    /// From one UTC instant to another, in Unix seconds (never parsed
    /// from input: the anomaly tool's hourly windows).
    Instants(i64, i64),
}

pub(crate) const DATE_RANGE_FORMS: &str =
    "\"Nh\", \"Nd\", \"Nmo\", \"day\", \"month\", \"year\", \"all\", or \"YYYY-MM-DD,YYYY-MM-DD\"";
/// The same forms as a JSON Schema `pattern`; [`DateRange::parse`] also
/// checks the counts and that dates are real. Written into the generated
/// tool definitions (`tools/definitions.json`).
#[cfg(test)]
pub(crate) const DATE_RANGE_PATTERN: &str =
    r"^(\d+h|\d+d|\d+mo|day|month|year|all|\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2})$";

/// Plausible accepts `Nd` for 1..=5000 and `Nmo` for 1..=100
/// (`api_query_parser.ex`); hours become an explicit datetime range, which
/// we bound at one year.
const MAX_HOURS: u32 = 8784;
const MAX_DAYS: u32 = 5000;
const MAX_MONTHS: u32 = 100;

impl DateRange {
    pub(crate) fn parse(field: &str, raw: &str) -> Result<Self, InputError> {
        let s = raw.trim();
        let bad_form = || InputError::new(field, format!("must be {DATE_RANGE_FORMS}; got {s:?}"));
        match s {
            "day" => return Ok(DateRange::Day),
            "month" => return Ok(DateRange::Month),
            "year" => return Ok(DateRange::Year),
            "all" => return Ok(DateRange::All),
            _ => {}
        }
        if let Some((a, b)) = s.split_once(',') {
            let start = parse_date(field, a.trim()).ok_or_else(bad_form)??;
            let end = parse_date(field, b.trim()).ok_or_else(bad_form)??;
            if start > end {
                return Err(InputError::new(
                    field,
                    format!("starts {start} after it ends {end}; put the earlier date first"),
                ));
            }
            return Ok(DateRange::Between(start, end));
        }
        let (count, unit, max, ctor): (&str, &str, u32, fn(u32) -> DateRange) =
            if let Some(n) = s.strip_suffix("mo") {
                (n, "months", MAX_MONTHS, DateRange::Months)
            } else if let Some(n) = s.strip_suffix('d') {
                (n, "days", MAX_DAYS, DateRange::Days)
            } else if let Some(n) = s.strip_suffix('h') {
                (n, "hours", MAX_HOURS, DateRange::Hours)
            } else {
                return Err(bad_form());
            };
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_form());
        }
        match count.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(ctor(n)),
            _ => Err(InputError::new(
                field,
                format!("{s:?} must count between 1 and {max} {unit}"),
            )),
        }
    }

    /// The label shown to people and echoed in results.
    pub(crate) fn label(&self) -> String {
        match self {
            DateRange::Hours(n) => format!("{n}h"),
            DateRange::Days(n) => format!("{n}d"),
            DateRange::Months(n) => format!("{n}mo"),
            DateRange::Day => "day".into(),
            DateRange::Month => "month".into(),
            DateRange::Year => "year".into(),
            DateRange::All => "all".into(),
            DateRange::Between(a, b) => format!("{a},{b}"),
            DateRange::Minutes(n) => format!("last {n} min"),
            DateRange::Instants(a, b) => format!("{},{}", utc_datetime(*a), utc_datetime(*b)),
        }
    }
}

/// `Some(Err)` for a well-formed but impossible date (2023-02-29),
/// `None` when it does not look like `YYYY-MM-DD` at all.
/// An instant as the Stats API writes date-times: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn utc_datetime(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_date(field: &str, s: &str) -> Option<Result<Date, InputError>> {
    let bytes = s.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    let date = Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, day).ok());
    Some(date.ok_or_else(|| InputError::new(field, format!("{s} is not a real calendar date"))))
}

/// The `page` shortcut: exact, or a prefix when it ends in `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PageFilter {
    Exact(String),
    Prefix(String),
}

pub(crate) fn page(args: &mut ArgReader) -> Result<Option<PageFilter>, InputError> {
    let Some(raw) = args.opt_str("page")? else {
        return Ok(None);
    };
    // An empty page means "no page filter", as in the established contract.
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > MAX_TEXT {
        return Err(InputError::new(
            "page",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    match raw.strip_suffix('*') {
        Some("") => Err(InputError::new(
            "page",
            "\"*\" alone matches every page; omit `page` instead",
        )),
        Some(prefix) => Ok(Some(PageFilter::Prefix(prefix.to_owned()))),
        None => Ok(Some(PageFilter::Exact(raw))),
    }
}

/// The `goal` shortcut: one goal name, matched exactly.
pub(crate) fn goal(args: &mut ArgReader) -> Result<Option<String>, InputError> {
    let Some(raw) = args.opt_str("goal")? else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > MAX_TEXT {
        return Err(InputError::new(
            "goal",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(Some(raw))
}

/// `metrics`, or `defaults` when absent.
pub(crate) fn metrics(
    args: &mut ArgReader,
    defaults: &[Metric],
) -> Result<Vec<Metric>, InputError> {
    let Some(list) = args.opt_array("metrics")? else {
        return Ok(defaults.to_vec());
    };
    if list.is_empty() {
        return Err(InputError::new(
            "metrics",
            "must list at least one metric; omit it to use the defaults",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in &list {
        let name = item
            .as_str()
            .ok_or_else(|| InputError::new("metrics", "must be an array of metric names"))?;
        let metric = Metric::parse(name).ok_or_else(|| {
            InputError::new(
                "metrics",
                format!(
                    "{name:?} is not a metric; use one of: {}",
                    Metric::ALL.map(Metric::as_str).join(", ")
                ),
            )
        })?;
        if out.contains(&metric) {
            return Err(InputError::new("metrics", format!("lists {name:?} twice")));
        }
        out.push(metric);
    }
    Ok(out)
}

/// A required date range (`date_range`, `period_a`, `period_b`).
pub(crate) fn required_range(
    a: &mut ArgReader,
    field: &'static str,
) -> Result<DateRange, InputError> {
    let raw = a
        .opt_str(field)?
        .ok_or_else(|| InputError::new(field, format!("is required: {DATE_RANGE_FORMS}")))?;
    DateRange::parse(field, &raw)
}

/// A required breakdown dimension: built in or `event:props:<name>`.
pub(crate) fn dimension(a: &mut ArgReader, field: &'static str) -> Result<Dimension, InputError> {
    let raw = a.opt_str(field)?.ok_or_else(|| {
        InputError::new(
            field,
            "is required, e.g. \"event:page\" or \"visit:source\"",
        )
    })?;
    Dimension::parse_qualified(&raw).map_err(|e| {
        InputError::new(
            field,
            match e {
                DimensionError::Unknown => format!(
                    "{raw:?} is not a dimension; use a built-in one (e.g. event:page, visit:source, visit:country_name) or event:props:<name>"
                ),
                DimensionError::EmptyPropertyName => {
                    "a custom property dimension must look like \"event:props:<name>\"".to_owned()
                }
                DimensionError::PropertyNameTooLong => {
                    format!("custom property names are at most {MAX_PROPERTY_NAME} characters")
                }
            },
        )
    })
}

/// "a, b or c": a list of choices as a sentence.
pub(crate) fn one_of(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader(v: Value) -> ArgReader {
        ArgReader::new(v.as_object().cloned())
    }

    fn date(y: i32, m: u8, d: u8) -> Date {
        Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap()
    }

    #[test]
    fn date_ranges_accept_every_documented_form() {
        let cases = [
            ("24h", DateRange::Hours(24)),
            ("1h", DateRange::Hours(1)),
            ("7d", DateRange::Days(7)),
            ("5000d", DateRange::Days(5000)),
            ("6mo", DateRange::Months(6)),
            ("day", DateRange::Day),
            ("month", DateRange::Month),
            ("year", DateRange::Year),
            ("all", DateRange::All),
            (
                "2024-02-29,2024-03-01",
                DateRange::Between(date(2024, 2, 29), date(2024, 3, 1)),
            ),
            (
                "2024-03-01,2024-03-01",
                DateRange::Between(date(2024, 3, 1), date(2024, 3, 1)),
            ),
            (
                " 2024-03-01 , 2024-03-05 ",
                DateRange::Between(date(2024, 3, 1), date(2024, 3, 5)),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(DateRange::parse("date_range", raw), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn date_ranges_reject_bad_forms_with_a_reason() {
        let cases = [
            ("", "must be"),
            ("7", "must be"),
            ("d", "must be"),
            ("-1d", "must be"),
            ("1.5d", "must be"),
            ("7w", "must be"),
            ("0d", "between 1 and 5000"),
            ("5001d", "between 1 and 5000"),
            ("101mo", "between 1 and 100"),
            ("0h", "between 1 and 8784"),
            ("99999999999d", "between 1 and 5000"),
            ("today", "must be"),
            (
                "2024-02-30,2024-03-01",
                "2024-02-30 is not a real calendar date",
            ),
            (
                "2023-02-29,2023-03-01",
                "2023-02-29 is not a real calendar date",
            ),
            ("2024-13-01,2024-12-01", "is not a real calendar date"),
            ("2024-3-1,2024-3-5", "must be"),
            (
                "2024-03-05,2024-03-01",
                "starts 2024-03-05 after it ends 2024-03-01",
            ),
            ("2024-03-01", "must be"),
            ("2024-03-01,", "must be"),
        ];
        for (raw, needle) in cases {
            let err = DateRange::parse("period_a", raw).expect_err(raw);
            assert_eq!(err.field, "period_a");
            assert!(err.message.contains(needle), "{raw}: {}", err.message);
        }
    }

    #[test]
    fn unknown_arguments_are_refused_by_name() {
        let mut r = reader(json!({"site_id": "a.com", "dimensions": "visit:source"}));
        r.opt_str("site_id").unwrap();
        let err = r.finish().unwrap_err();
        assert_eq!(err.field, "dimensions");
        assert!(err.message.contains("site_id"));
    }

    #[test]
    fn site_id_falls_back_to_the_default_only_when_absent() {
        let default = SiteId::parse("x", "default.com").unwrap();
        let mut r = reader(json!({}));
        assert_eq!(site_id(&mut r, Some(&default)).unwrap(), default);
        let mut r = reader(json!({}));
        assert_eq!(site_id(&mut r, None).unwrap_err().field, "site_id");
        let mut r = reader(json!({"site_id": "given.com"}));
        assert_eq!(
            site_id(&mut r, Some(&default)).unwrap().as_str(),
            "given.com"
        );
        for bad in [json!(""), json!("a b.com"), json!(5)] {
            let mut r = reader(json!({ "site_id": bad }));
            assert!(site_id(&mut r, Some(&default)).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_shortcut_forms() {
        let cases = [
            (
                json!({"page": "/pricing"}),
                Ok(Some(PageFilter::Exact("/pricing".into()))),
            ),
            (
                json!({"page": "/blog*"}),
                Ok(Some(PageFilter::Prefix("/blog".into()))),
            ),
            (json!({"page": ""}), Ok(None)),
            (json!({}), Ok(None)),
        ];
        for (input, expected) in cases {
            let mut r = reader(input.clone());
            assert_eq!(page(&mut r).map_err(|e| e.field), expected, "{input}");
        }
        for bad in [
            json!({"page": "*"}),
            json!({"page": 3}),
            json!({"page": "x".repeat(1025)}),
        ] {
            assert!(page(&mut reader(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn metrics_default_validate_and_refuse_duplicates() {
        let defaults = [Metric::Visitors];
        assert_eq!(
            metrics(&mut reader(json!({})), &defaults).unwrap(),
            defaults
        );
        assert_eq!(
            metrics(
                &mut reader(json!({"metrics": ["events", "visits"]})),
                &defaults
            )
            .unwrap(),
            vec![Metric::Events, Metric::Visits]
        );
        for (bad, needle) in [
            (json!({"metrics": []}), "at least one"),
            (json!({"metrics": ["visitor"]}), "is not a metric"),
            (json!({"metrics": ["visits", "visits"]}), "twice"),
            (json!({"metrics": [1]}), "metric names"),
            (json!({"metrics": "visits"}), "array"),
        ] {
            let err = metrics(&mut reader(bad.clone()), &defaults).unwrap_err();
            assert!(err.message.contains(needle), "{bad}: {err}");
        }
    }
}
