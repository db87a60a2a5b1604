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

/// How far before the window's baselines the hourly range starts: room
/// for a half-hour UTC offset and a daylight-saving change in six weeks.
const LABEL_MARGIN: i64 = 2 * 3600;
/// The hourly range ends 14:59 into the current UTC hour: on every UTC
/// offset (whole, :30 or :45) that instant falls in the local hour whose
/// label, minus the UTC hour, is the offset rounded down.
const RANGE_END_PAST_HOUR: i64 = 899;

/// A label as seconds of a naive (zone-less) clock: `YYYY-MM-DD` or
/// `YYYY-MM-DD HH:00:00`, read as if it were UTC.
fn naive_secs(label: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| label.get(r)?.parse::<u16>().ok();
    let date = Date::from_calendar_date(
        i32::from(n(0..4)?),
        time::Month::try_from(u8::try_from(n(5..7)?).ok()?).ok()?,
        u8::try_from(n(8..10)?).ok()?,
    )
    .ok()?;
    let hour = if label.len() > 10 {
        u8::try_from(n(11..13)?).ok()?
    } else {
        0
    };
    let time = time::Time::from_hms(hour, 0, 0).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// The window's hours in the site's own clock. Plausible labels hours in
/// the site's timezone, so the last whole UTC hours are not the labels to
/// look up: for a site west of UTC those labels lie in its future, read
/// as zero visitors and flag as drops. `meta.time_labels` lists the
/// site's hours; the last one contains the range's end (`range_end`, UTC,
/// 14:59 into an hour), which gives the site's current offset rounded
/// down to the hour: a :30 or :45 zone errs towards leaving out an hour
/// that has just ended, never towards one still in progress. The window is the last `hours` labels that ended
/// by `now`; baselines then step back 7 days on the site's clock, the
/// same weekday and hour across a daylight-saving change. None when
/// Plausible sent no labels: the UTC window stands.
fn local_hours(
    meta: &Map<String, Value>,
    hours: i64,
    range_end: i64,
    now: i64,
) -> Option<(i64, i64)> {
    let labels: Vec<i64> = meta
        .get("time_labels")?
        .as_array()?
        .iter()
        .filter_map(|l| naive_secs(l.as_str()?))
        .collect();
    let offset = labels.iter().max()? - (range_end - range_end.rem_euclid(3600));
    let mut done: Vec<i64> = labels
        .into_iter()
        .filter(|l| l + 3600 - offset <= now)
        .collect();
    done.sort_unstable();
    let last = *done.last()?;
    let count = usize::try_from(hours).ok()?;
    let first = *done.get(done.len().saturating_sub(count))?;
    Some((first, last))
}

/// A period's label as Plausible writes it for this granularity.
fn label(g: Granularity, secs: i64) -> String {
    let dt = args::utc_datetime(secs);
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
    let (g, step, mut first, mut last) = match window {
        Window::Days(s, e) => {
            let secs = |d: Date| d.midnight().assume_utc().unix_timestamp();
            (Granularity::Day, 86_400, secs(s), secs(e))
        }
        Window::Hours(s, e) => (Granularity::Hour, 3600, s, e),
    };
    let week = 7 * 86_400;
    let from = first - BASELINE_WEEKS * week;
    // Hours: into the current hour, with a margin before, so the range
    // holds the window's hours and their baselines whatever the site's UTC
    // offset (see `local_hours`).
    let range_end = last + 3600 + RANGE_END_PAST_HOUR;
    let range = match g {
        Granularity::Hour => DateRange::Instants(from - LABEL_MARGIN, range_end),
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
    let mut totals_query = q(None)?;
    totals_query.extras.time_labels = g == Granularity::Hour;
    let totals = up.query(&totals_query).await.map_err(fail)?;
    if g == Granularity::Hour
        && let Some((f, l)) = local_hours(&totals.meta, (last - first) / 3600 + 1, range_end, now)
    {
        (first, last) = (f, l);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::tools::Tool;
    use crate::plausible::tools::tests::{ctx, respond, run_tool, synthetic, synthetic_in_zone};
    use crate::testing::FakePlatform;

    /// Daily visitors of the stand-in's trends.example.com from 2024-02-26
    /// (a Monday) to 2024-05-05 (`devstack/plausible-data.json`): the
    /// planted drop on 04-17 (180), the spike on 04-24 (658, of which 260
    /// from news.ycombinator.com), and 04-22 (487), an ordinary Monday
    /// that the bare MAD band flagged.
    #[rustfmt::skip]
    const TRENDS: [f64; 70] = [
        392.0, 448.0, 330.0, 481.0, 377.0, 222.0, 277.0,
        344.0, 464.0, 389.0, 479.0, 392.0, 245.0, 227.0,
        384.0, 426.0, 433.0, 418.0, 408.0, 241.0, 217.0,
        395.0, 442.0, 431.0, 436.0, 349.0, 191.0, 251.0,
        411.0, 478.0, 410.0, 430.0, 431.0, 226.0, 242.0,
        337.0, 348.0, 421.0, 404.0, 368.0, 292.0, 314.0,
        381.0, 388.0, 417.0, 363.0, 427.0, 239.0, 296.0,
        423.0, 409.0, 180.0, 353.0, 310.0, 281.0, 260.0,
        487.0, 504.0, 658.0, 339.0, 396.0, 222.0, 251.0,
        366.0, 380.0, 387.0, 304.0, 405.0, 256.0, 254.0,
    ];
    const SPIKE_DAY: &str = "2024-04-24";
    const SPIKE: f64 = 260.0;

    fn trends(period: &str, dimension: Option<&str>) -> Vec<(Value, f64)> {
        let start = Date::from_calendar_date(2024, time::Month::February, 26).unwrap();
        let Some(total) = (0..70)
            .find(|i| (start + Days::days(*i)).to_string() == period)
            .and_then(|i| TRENDS.get(usize::try_from(i).unwrap()).copied())
        else {
            return Vec::new();
        };
        match dimension {
            None => vec![(Value::Null, total)],
            Some("visit:source") => {
                let spike = if period == SPIKE_DAY { SPIKE } else { 0.0 };
                let rest = total - spike;
                vec![
                    (json!("Google"), (rest * 0.6).round()),
                    (json!("Direct / None"), (rest * 0.3).round()),
                    (json!("news.ycombinator.com"), (rest * 0.1).round() + spike),
                ]
            }
            Some(_) => vec![(json!("(all)"), total)],
        }
    }

    /// 2024-06-01T12:00:00Z: the trends windows lie in the past.
    fn june_2024() -> FakePlatform {
        let p = FakePlatform::new();
        p.now.set(1_717_243_200_000);
        p.respond_with(synthetic(trends));
        p
    }

    fn anomalies(p: &FakePlatform, args: Value) -> (String, Value) {
        match run_tool(p, &ctx(None), Tool::FindAnomalies, args) {
            Ok(Outcome::Success { text, structured }) => (text, structured),
            Ok(other) => panic!("{other:?}"),
            Err(_) => panic!("refused"),
        }
    }

    fn periods(s: &Value) -> Vec<&str> {
        s["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["period"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn finds_exactly_the_planted_days_with_their_drivers() {
        let p = june_2024();
        let (text, s) = anomalies(
            &p,
            json!({"site_id": "trends.example.com", "window": "2024-04-08,2024-05-05"}),
        );
        assert_eq!(periods(&s), ["2024-04-17", SPIKE_DAY], "{text}");
        assert_eq!(s["periods_checked"], 28);
        let drop = &s["anomalies"][0];
        assert!(drop["actual"].as_f64() < drop["low"].as_f64(), "{drop}");
        let spike = &s["anomalies"][1];
        assert!(spike["actual"].as_f64() > spike["high"].as_f64(), "{spike}");
        assert_eq!(spike["drivers"][0]["dimension"], "visit:source");
        assert_eq!(spike["drivers"][0]["value"], "news.ycombinator.com");
        assert!(text.contains("2 of 28 days unusual"), "{text}");
        // One time-dimension query, then one per driver dimension.
        assert_eq!(p.sent_count(), 4);
        let first: Value = serde_json::from_slice(&p.sent.borrow()[0].body).unwrap();
        assert_eq!(first["date_range"], json!(["2024-02-26", "2024-05-05"]));
        assert_eq!(first["dimensions"], json!(["time:day"]));
        let dims: Vec<Value> = p.sent.borrow()[1..]
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["dimensions"][1].clone())
            .collect();
        assert_eq!(
            dims,
            [
                json!("visit:source"),
                json!("event:page"),
                json!("visit:country_name")
            ]
        );
    }

    /// The regression: six Mondays with a MAD of 15 put the bare band at
    /// ±67 around 389.5, so 487 was flagged; the series' own noise
    /// (φ from the weeks before) says it is an ordinary Monday.
    #[test]
    fn an_ordinary_day_under_a_tight_mad_is_not_flagged() {
        let tight = [423.0, 381.0, 337.0, 411.0, 395.0, 384.0];
        assert!(!stats::anomaly_band(&tight, 1.0).contains(487.0));
        let p = june_2024();
        let (text, s) = anomalies(
            &p,
            json!({"site_id": "trends.example.com", "window": "2024-04-22,2024-04-22"}),
        );
        assert_eq!(periods(&s), Vec::<&str>::new(), "{text}");
        assert!(s["dispersion"].as_f64().unwrap() > 2.0, "{s}");
        assert!(text.contains("Nothing unusual"), "{text}");
        assert_eq!(p.sent_count(), 1);
    }

    #[test]
    fn a_quiet_window_costs_one_request() {
        let p = june_2024();
        let (text, s) = anomalies(
            &p,
            json!({"site_id": "trends.example.com", "window": "2024-04-08,2024-04-16", "metric": "pageviews"}),
        );
        assert_eq!(periods(&s), Vec::<&str>::new(), "{text}");
        assert_eq!(s["metric"], "pageviews");
        assert_eq!(p.sent_count(), 1);
    }

    /// Hourly: counts by weekday and hour (strongly seasonal, so a
    /// baseline of the wrong weekday or hour flags everything), with
    /// bounded noise below the band's floor, and 400 extra visits from
    /// github.com in the `planted` hour (a label on the site's clock).
    fn hourly(period: &str, dimension: Option<&str>, planted: &str) -> Vec<(Value, f64)> {
        let t = naive_secs(period).unwrap();
        let hour = f64::from(u8::try_from(t.rem_euclid(86_400) / 3600).unwrap());
        // 1970-01-01 was a Thursday.
        let weekday = f64::from(u8::try_from((t.div_euclid(86_400) + 3).rem_euclid(7)).unwrap());
        let level = (100.0 + 20.0 * hour) * (1.0 + 0.4 * weekday);
        // FNV-1a of the label: deterministic noise in ±1.5 √level.
        let h = period.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let noise = (f64::from(h) / f64::from(u32::MAX) * 2.0 - 1.0) * 1.5 * level.sqrt();
        let base = (level + noise).round();
        let spike = if period == planted { 400.0 } else { 0.0 };
        match dimension {
            None => vec![(Value::Null, base + spike)],
            Some("visit:source") => vec![
                (json!("Google"), base - 5.0),
                (json!("github.com"), 5.0 + spike),
            ],
            Some(_) => vec![(json!("(all)"), base + spike)],
        }
    }

    /// A naive-clock instant as Plausible's hour label.
    fn hour_label(t: i64) -> String {
        label(Granularity::Hour, t)
    }

    /// "6h" at 2026-03-15T12:00:00Z (FakePlatform's clock, a Sunday) on
    /// sites in several timezones: the window is the site's last six whole
    /// hours, by its own labels, and only the planted hour is flagged (the
    /// hours after now on a western site's clock are not read as drops).
    #[test]
    fn hours_compare_with_the_same_weekday_and_hour_on_the_sites_clock() {
        for (zone, offset) in [
            ("UTC", 0_i64),
            ("New York (EST)", -5 * 3600),
            ("Berlin (CET)", 3600),
            ("India", 5 * 3600 + 1800),
            ("Nepal", 5 * 3600 + 2700),
            ("Newfoundland (NST)", -(3 * 3600 + 1800)),
        ] {
            let now_local: i64 = 1_773_576_000 + offset;
            let last = now_local - now_local.rem_euclid(3600) - 3600;
            let planted = hour_label(last - 2 * 3600);
            let p = FakePlatform::new();
            let plant = planted.clone();
            p.respond_with(synthetic_in_zone(offset, move |period, dim| {
                hourly(period, dim, &plant)
            }));
            let (text, s) = anomalies(&p, json!({"site_id": "example.com", "window": "6h"}));
            assert_eq!(s["granularity"], "hour");
            assert_eq!(
                s["window"],
                json!({"from": hour_label(last - 5 * 3600), "to": hour_label(last)}),
                "{zone}"
            );
            assert_eq!(s["periods_checked"], 6, "{zone}");
            assert_eq!(periods(&s), [planted.as_str()], "{zone}: {text}");
            let a = &s["anomalies"][0];
            let t = last - 2 * 3600;
            let same_hour_weeks_before: Vec<f64> = (1..=6)
                .map(|k| hourly(&hour_label(t - k * 7 * 86_400), None, &planted)[0].1)
                .collect();
            assert_eq!(
                a["expected"].as_f64(),
                Some(stats::median(&same_hour_weeks_before)),
                "{zone}"
            );
            assert_eq!(a["drivers"][0]["value"], "github.com", "{zone}");
            assert_eq!(p.sent_count(), 4, "{zone}");
            let first: Value = serde_json::from_slice(&p.sent.borrow()[0].body).unwrap();
            // Six weeks and two hours before the last six UTC hours, to 14:59
            // into the current one; only the totals ask for the labels.
            assert_eq!(
                first["date_range"],
                json!(["2026-02-01T04:00:00Z", "2026-03-15T12:14:59Z"])
            );
            assert_eq!(first["dimensions"], json!(["time:hour"]));
            assert_eq!(first["include"], json!({"time_labels": true}));
        }
    }

    /// Without `meta.time_labels` (an older Plausible) the window is the
    /// last whole UTC hours.
    #[test]
    fn hours_fall_back_to_utc_without_time_labels() {
        let p = FakePlatform::new();
        p.respond_with(|req| {
            let answer = synthetic(|period, dim| hourly(period, dim, "2026-03-15 09:00:00"))(req)?;
            let mut body: Value = serde_json::from_slice(&answer.body).unwrap();
            body["meta"] = json!({});
            respond(200, body)
        });
        let (text, s) = anomalies(&p, json!({"site_id": "example.com", "window": "6h"}));
        assert_eq!(
            s["window"],
            json!({"from": "2026-03-15 06:00:00", "to": "2026-03-15 11:00:00"})
        );
        assert_eq!(periods(&s), ["2026-03-15 09:00:00"], "{text}");
    }
}

#[cfg(test)]
mod argument_tests {
    use serde_json::json;

    use crate::plausible::tools::Tool;
    use crate::plausible::tools::tests::{argument_table, ctx, varied_platform};

    /// Today is 2026-03-15 (FakePlatform's clock).
    #[test]
    fn good_and_bad_arguments() {
        let p = varied_platform();
        argument_table(
            &p,
            &ctx(None),
            Tool::FindAnomalies,
            json!({"site_id": "example.com", "window": "28d"}),
            &[
                ("one day", json!({"window": "1d"})),
                ("31 days", json!({"window": "31d"})),
                ("one hour", json!({"window": "1h"})),
                ("48 hours", json!({"window": "48h"})),
                ("31 past dates", json!({"window": "2026-02-12,2026-03-14"})),
                (
                    "yesterday alone",
                    json!({"window": "2026-03-14,2026-03-14"}),
                ),
                ("visits", json!({"metric": "visits"})),
                ("pageviews", json!({"metric": "pageviews"})),
                ("events", json!({"metric": "events"})),
                ("one page", json!({"page": "/pricing"})),
                ("a page prefix", json!({"page": "/blog*"})),
                ("an empty page is no filter", json!({"page": ""})),
            ],
            &[
                ("no site", json!({"site_id": null}), "site_id"),
                (
                    "a site that is no domain",
                    json!({"site_id": "not a domain"}),
                    "site_id",
                ),
                ("no window", json!({"window": null}), "window"),
                ("a number", json!({"window": 7}), "window"),
                ("zero days", json!({"window": "0d"}), "window"),
                ("32 days", json!({"window": "32d"}), "window"),
                ("zero hours", json!({"window": "0h"}), "window"),
                ("49 hours", json!({"window": "49h"}), "window"),
                (
                    "32 past dates",
                    json!({"window": "2026-02-11,2026-03-14"}),
                    "window",
                ),
                (
                    "today is not over",
                    json!({"window": "2026-03-15,2026-03-15"}),
                    "window",
                ),
                (
                    "the future",
                    json!({"window": "2026-03-14,2026-03-16"}),
                    "window",
                ),
                ("months", json!({"window": "6mo"}), "window"),
                ("a named range", json!({"window": "month"}), "window"),
                ("weeks", json!({"window": "4w"}), "window"),
                (
                    "an impossible date",
                    json!({"window": "2026-02-30,2026-03-01"}),
                    "window",
                ),
                ("a rate metric", json!({"metric": "bounce_rate"}), "metric"),
                (
                    "conversion rate",
                    json!({"metric": "conversion_rate"}),
                    "metric",
                ),
                ("an unknown metric", json!({"metric": "visitor"}), "metric"),
                ("a bare star", json!({"page": "*"}), "page"),
                ("a page that is no string", json!({"page": 1}), "page"),
                (
                    "an argument of another tool",
                    json!({"date_range": "7d"}),
                    "date_range",
                ),
            ],
        );
    }
}
