//! `find_anomalies`: each day (or hour) of a window against the same
//! weekday (and hour) of the six weeks before, in one time-dimension
//! query; three more only when something is flagged, to name the
//! sources, pages and countries that explain it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use time::{Date, Duration as Days, OffsetDateTime};

use super::{CallError, Outcome, ToolContext, field};
use crate::plausible::args::{self, ArgReader, DateRange, InputError};
use crate::plausible::query::{self, Granularity, Grouping, Query};
use crate::plausible::render;
use crate::plausible::stats::{self, Band};
use crate::plausible::upstream::Upstream;
use crate::plausible::vocabulary::{Dimension, Metric};
use crate::ports::{Clock, EdgeCache, Outbound};

/// Baseline: the same weekday (and hour) this many weeks back.
pub(super) const BASELINE_WEEKS: i64 = 6;
pub(super) const MAX_DAYS: u32 = 31;
pub(super) const MAX_HOURS: u32 = 48;
const DRIVERS: [&str; 3] = ["visit:source", "event:page", "visit:country_name"];
const TOP_DRIVERS: usize = 3;
pub(super) const METRICS: [Metric; 4] = [
    Metric::Visitors,
    Metric::Visits,
    Metric::Pageviews,
    Metric::Events,
];

enum Window {
    Days(Date, Date),
    /// Whole hours: first and last hour start, Unix seconds.
    Hours(i64, i64),
}

fn parse_window(raw: &str, now_secs: i64) -> Result<Window, InputError> {
    let today = OffsetDateTime::from_unix_timestamp(now_secs)
        .map(|t| t.date())
        .map_err(|_| InputError::new("window", "the server clock is out of range"))?;
    match DateRange::parse("window", raw)? {
        DateRange::Days(n) if n <= MAX_DAYS => {
            let end = today - Days::days(1);
            Ok(Window::Days(end - Days::days(i64::from(n) - 1), end))
        }
        DateRange::Between(a, b) if (b - a).whole_days() < i64::from(MAX_DAYS) && b < today => {
            Ok(Window::Days(a, b))
        }
        DateRange::Hours(n) if n <= MAX_HOURS => {
            // The current hour is not over yet: the window ends with the last whole hour.
            let last = now_secs - now_secs.rem_euclid(3600) - 3600;
            Ok(Window::Hours(last - (i64::from(n) - 1) * 3600, last))
        }
        _ => Err(InputError::new(
            "window",
            format!(
                "must be \"Nd\" (1 to {MAX_DAYS} days up to yesterday), two past dates at most {MAX_DAYS} days apart, or \"Nh\" (1 to {MAX_HOURS} hours)"
            ),
        )),
    }
}

/// A period's label as Plausible writes it for this granularity.
fn label(g: Granularity, secs: i64) -> String {
    let dt = query::utc_datetime(secs);
    let day = dt.get(0..10).unwrap_or_default();
    match g {
        Granularity::Hour => format!("{day} {}:00:00", dt.get(11..13).unwrap_or_default()),
        _ => day.to_owned(),
    }
}

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    let raw = a.opt_str("window")?.ok_or_else(|| {
        InputError::new(
            "window",
            "is required, e.g. \"28d\", \"2024-04-01,2024-04-28\" or \"24h\"",
        )
    })?;
    let metric = match a.opt_str("metric")? {
        None => Metric::Visitors,
        Some(m) => Metric::parse(&m)
            .filter(|m| METRICS.contains(m))
            .ok_or_else(|| {
                InputError::new(
                    "metric",
                    format!("must be {}", args::one_of(&METRICS.map(Metric::as_str))),
                )
            })?,
    };
    let page = args::page(&mut a)?;
    a.finish()?;
    ctx.allowed_sites.check(&site)?;
    let now = i64::try_from(up.now().as_secs()).unwrap_or(i64::MAX);
    let window = parse_window(&raw, now)?;
    let (g, step, first, last) = match window {
        Window::Days(s, e) => {
            let secs = |d: Date| d.midnight().assume_utc().unix_timestamp();
            (Granularity::Day, 86_400, secs(s), secs(e))
        }
        Window::Hours(s, e) => (Granularity::Hour, 3600, s, e),
    };
    let week = 7 * 86_400;
    let from = first - BASELINE_WEEKS * week;
    let range = match g {
        Granularity::Hour => DateRange::Instants(from, last + 3599),
        _ => DateRange::Between(day_of(from), day_of(last)),
    };
    let filters = query::filters(page, None, Vec::new(), false);
    let q = |extra: Option<&'static str>| {
        let mut groupings = vec![Grouping::Time(g)];
        if let Some(d) = extra {
            groupings.push(Grouping::Dimension(Dimension::Builtin(d)));
        }
        Query::new(
            site.clone(),
            vec![metric],
            range.clone(),
            groupings,
            filters.clone(),
            Some(10_000),
        )
    };
    let fail = |e| CallError::Plausible(e, site.clone());
    let totals = up.query(&q(None)?).await.map_err(fail)?;
    let series: BTreeMap<String, f64> = totals
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                r.dimensions.first()?.as_str()?.to_owned(),
                r.metrics.first()?.as_f64()?,
            ))
        })
        .collect();
    let value = |map: &BTreeMap<String, f64>, t: i64| map.get(&label(g, t)).copied().unwrap_or(0.0);
    let baseline = |map: &BTreeMap<String, f64>, t: i64| -> Vec<f64> {
        (1..=BASELINE_WEEKS)
            .map(|k| value(map, t - k * week))
            .collect()
    };
    let dispersion = stats::seasonal_dispersion(&slots_before(first, step, |t| value(&series, t)));
    let mut flagged: Vec<(i64, f64, Band)> = Vec::new();
    let mut checked = 0;
    let mut t = first;
    while t <= last {
        checked += 1;
        let band = stats::anomaly_band(&baseline(&series, t), dispersion);
        let actual = value(&series, t);
        if !band.contains(actual) {
            flagged.push((t, actual, band));
        }
        t += step;
    }
    // Drivers: each dimension value against its own baseline.
    let mut drivers: Vec<Vec<Value>> = vec![Vec::new(); flagged.len()];
    if !flagged.is_empty() {
        let qs = [
            q(Some(DRIVERS[0]))?,
            q(Some(DRIVERS[1]))?,
            q(Some(DRIVERS[2]))?,
        ];
        let (s, p, c) =
            futures_util::future::join3(up.query(&qs[0]), up.query(&qs[1]), up.query(&qs[2])).await;
        for (dimension, answer) in DRIVERS.iter().zip([s, p, c]) {
            let answer = answer.map_err(fail)?;
            let mut by_value: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
            for r in &answer.rows {
                let (Some(time), Some(v), Some(x)) = (
                    r.dimensions.first().and_then(Value::as_str),
                    r.dimensions
                        .get(1)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                    r.metrics.first().and_then(Value::as_f64),
                ) else {
                    continue;
                };
                by_value.entry(v).or_default().insert(time.to_owned(), x);
            }
            for (i, (t, actual, band)) in flagged.iter().enumerate() {
                let total_change = actual - band.expected;
                let mut changes: Vec<(String, f64, f64)> = by_value
                    .iter()
                    .map(|(v, m)| (v.clone(), value(m, *t), stats::median(&baseline(m, *t))))
                    .filter(|(_, a, e)| (a - e) * total_change > 0.0)
                    .collect();
                changes.sort_by(|x, y| (y.1 - y.2).abs().total_cmp(&(x.1 - x.2).abs()));
                if let Some(list) = drivers.get_mut(i) {
                    for (v, a, e) in changes.into_iter().take(TOP_DRIVERS) {
                        let share = if total_change != 0.0 {
                            ((a - e) / total_change * 100.0).round()
                        } else {
                            0.0
                        };
                        list.push(json!({"dimension": dimension, "value": v, "actual": a, "expected": e, "change": a - e, "share_percent": share}));
                    }
                }
            }
        }
    }
    let anomalies: Vec<Value> = flagged
        .iter()
        .zip(&drivers)
        .map(|((t, actual, band), drivers)| {
            let deviation = actual - band.expected;
            json!({
                "period": label(g, *t),
                "actual": actual,
                "expected": band.expected,
                "low": band.low,
                "high": band.high,
                "deviation": deviation,
                "deviation_percent": if band.expected > 0.0 { Some((deviation / band.expected * 1000.0).round() / 10.0) } else { None },
                "method": band.method.as_str(),
                "drivers": drivers,
            })
        })
        .collect();
    let unit = if g == Granularity::Hour {
        "hour"
    } else {
        "day"
    };
    let mut text = format!(
        "Find Anomalies for {} ({} by {unit}, {} to {}): {} of {checked} {unit}s unusual against the same {} of the previous {BASELINE_WEEKS} weeks",
        site.as_str(),
        metric.as_str(),
        label(g, first),
        label(g, last),
        anomalies.len(),
        if g == Granularity::Hour {
            "weekday and hour"
        } else {
            "weekday"
        },
    );
    if anomalies.is_empty() {
        text.push_str("\n\nNothing unusual: every period is within its expected range.");
    } else {
        let rows: Vec<Vec<Value>> = anomalies
            .iter()
            .map(|a| {
                vec![
                    field(a, "period").clone(),
                    field(a, "actual").clone(),
                    field(a, "expected").clone(),
                    json!(format!("{}–{}", field(a, "low"), field(a, "high"))),
                    field(a, "deviation_percent")
                        .clone()
                        .as_f64()
                        .map_or(Value::Null, |p| json!(format!("{p:+}%"))),
                ]
            })
            .collect();
        text.push_str("\n\n");
        text.push_str(&render::table(
            &[
                "period".into(),
                "actual".into(),
                "expected".into(),
                "expected range".into(),
                "change".into(),
            ],
            &rows,
        ));
        for a in &anomalies {
            let names: Vec<String> = field(a, "drivers")
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{} {} ({:+}, {}%)",
                        field(d, "dimension").as_str().unwrap_or(""),
                        field(d, "value").as_str().unwrap_or(""),
                        field(d, "change").as_f64().unwrap_or(0.0),
                        field(d, "share_percent")
                    )
                })
                .collect();
            if !names.is_empty() {
                text.push_str(&format!(
                    "\n{}: {}",
                    field(a, "period").as_str().unwrap_or(""),
                    names.join("; ")
                ));
            }
        }
    }
    if let Some(note) = up.cache_note() {
        text.push_str(&format!("\n\n{note}"));
    }
    Ok(Outcome::Success {
        text,
        structured: json!({
            "site_id": site.as_str(),
            "metric": metric.as_str(),
            "granularity": unit,
            "window": {"from": label(g, first), "to": label(g, last)},
            "periods_checked": checked,
            "dispersion": (dispersion * 100.0).round() / 100.0,
            "anomalies": anomalies,
        }),
    })
}

/// The weeks before the window, one slot per weekday (days) or weekday
/// and hour (hours): the values [`stats::seasonal_dispersion`] estimates
/// the series' noise from. They lie before the window, so the periods
/// being judged never widen their own band.
fn slots_before(first: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<Vec<f64>> {
    let week = 7 * 86_400;
    let from = first - BASELINE_WEEKS * week;
    (0..week / step)
        .map(|j| {
            (0..BASELINE_WEEKS)
                .map(|k| value(from + j * step + k * week))
                .collect()
        })
        .collect()
}

fn day_of(secs: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(secs).map_or(Date::MIN, |t| t.date())
}
