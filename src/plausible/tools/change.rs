//! `measure_change`: equal, weekday-aligned windows of whole days before
//! and after a moment (its own day left out), and a significance test.
//! Visitors and pageviews compare daily values (Welch's t-test, with a
//! quasi-Poisson rate ratio beside it); conversion rate compares
//! proportions (Newcombe–Wilson interval).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use time::{Date, Duration as Days, OffsetDateTime};

use super::{CallError, Outcome, ToolContext, field};
use crate::plausible::args::{self, ArgReader, DateRange, InputError};
use crate::plausible::query::{self, Granularity, Grouping, Query};
use crate::plausible::render;
use crate::plausible::stats::{self, ALPHA};
use crate::plausible::upstream::Upstream;
use crate::plausible::vocabulary::{Dimension, Metric};
use crate::ports::{Clock, EdgeCache, Outbound};

pub(super) const MIN_DAYS: u32 = 7;
pub(super) const MAX_DAYS: u32 = 56;
pub(super) const DEFAULT_DAYS: u32 = 14;
pub(super) const METRICS: [&str; 3] = ["visitors", "pageviews", "conversion_rate"];
const TOP: usize = 3;

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    let at_raw = a
        .opt_str("date")?
        .ok_or_else(|| InputError::new("date", "is required: the day of the change, YYYY-MM-DD"))?;
    let at = match DateRange::parse("date", &format!("{at_raw},{at_raw}"))? {
        DateRange::Between(d, _) => d,
        _ => return Err(InputError::new("date", "must be YYYY-MM-DD").into()),
    };
    let requested = match a.opt_int("days")? {
        None => DEFAULT_DAYS,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (MIN_DAYS..=MAX_DAYS).contains(n) && n % 7 == 0)
            .ok_or_else(|| {
                InputError::new("days", format!("must be a multiple of 7 from {MIN_DAYS} to {MAX_DAYS} (whole weeks keep the weekdays aligned)"))
            })?,
    };
    let metric = a.opt_str("metric")?.unwrap_or_else(|| "visitors".into());
    if !METRICS.contains(&metric.as_str()) {
        return Err(
            InputError::new("metric", format!("must be {}", args::one_of(&METRICS))).into(),
        );
    }
    let page = args::page(&mut a)?;
    let goal = args::goal(&mut a)?;
    a.finish()?;
    ctx.allowed_sites.check(&site)?;
    if metric == "conversion_rate" && goal.is_none() {
        return Err(InputError::new(
            "goal",
            "is required for conversion_rate: name the goal (list_goals shows them)",
        )
        .into());
    }
    let now = i64::try_from(up.now().as_secs()).unwrap_or(i64::MAX);
    let today = OffsetDateTime::from_unix_timestamp(now).map_or(Date::MIN, |t| t.date());
    let yesterday = today - Days::days(1);
    // Whole days only: the after-window ends yesterday at the latest.
    let available = (yesterday - at).whole_days();
    let days = u32::try_from(available.min(i64::from(requested)) / 7 * 7).unwrap_or(0);
    if days < MIN_DAYS {
        return Err(InputError::new(
            "date",
            format!("{at} leaves {} whole day(s) after it; at least {MIN_DAYS} a side are needed to say anything", available.max(0)),
        )
        .into());
    }
    let d = i64::from(days);
    let before = (at - Days::days(d), at - Days::days(1));
    let after = (at + Days::days(1), at + Days::days(d));
    let fail = |e| CallError::Plausible(e, site.clone());
    let filters = query::filters(
        page.clone(),
        if metric == "conversion_rate" {
            None
        } else {
            goal.clone()
        },
        Vec::new(),
        false,
    );
    let shortened = (days < requested).then(|| {
        format!(
            "(shortened to {days} days a side: only {available} whole days have passed since {at})"
        )
    });

    let (result, test_name, table_rows, drivers) = if metric == "conversion_rate" {
        let goal_filters = query::filters(page.clone(), goal.clone(), Vec::new(), false);
        let total = |(s, e): (Date, Date), f: &Vec<query::Filter>| {
            Query::new(
                site.clone(),
                vec![Metric::Visitors],
                DateRange::Between(s, e),
                Vec::new(),
                f.clone(),
                None,
            )
        };
        let qs = [
            total(before, &filters)?,
            total(after, &filters)?,
            total(before, &goal_filters)?,
            total(after, &goal_filters)?,
        ];
        let (n1, n2, x1, x2) = futures_util::future::join4(
            up.query(&qs[0]),
            up.query(&qs[1]),
            up.query(&qs[2]),
            up.query(&qs[3]),
        )
        .await;
        let first = |r: crate::plausible::upstream::QueryAnswer| {
            r.rows
                .first()
                .and_then(|r| r.metrics.first())
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        };
        let (n1, n2, x1, x2) = (
            first(n1.map_err(fail)?),
            first(n2.map_err(fail)?),
            first(x1.map_err(fail)?),
            first(x2.map_err(fail)?),
        );
        let test = stats::newcombe(x1, n1, x2, n2).ok_or_else(|| {
            CallError::Message(format!(
                "No visitors in one of the windows around {at}: nothing to compare."
            ))
        })?;
        let rate = |x: f64, n: f64| {
            if n > 0.0 {
                json!((x / n * 10000.0).round() / 100.0)
            } else {
                Value::Null
            }
        };
        let rows = vec![
            vec![
                json!("before"),
                json!(format!("{},{}", before.0, before.1)),
                json!(n1),
                json!(x1),
                rate(x1, n1),
            ],
            vec![
                json!("after"),
                json!(format!("{},{}", after.0, after.1)),
                json!(n2),
                json!(x2),
                rate(x2, n2),
            ],
        ];
        (
            test,
            "Newcombe–Wilson 95% interval for the difference in conversion rate (p from a two-proportion z-test)",
            (
                vec!["window", "dates", "visitors", "converted", "rate %"],
                rows,
            ),
            Vec::new(),
        )
    } else {
        let m = if metric == "pageviews" {
            Metric::Pageviews
        } else {
            Metric::Visitors
        };
        let range = DateRange::Between(before.0, after.1);
        let daily = |extra: Option<&'static str>| {
            let mut g = vec![Grouping::Time(Granularity::Day)];
            if let Some(dim) = extra {
                g.push(Grouping::Dimension(Dimension::Builtin(dim)));
            }
            Query::new(
                site.clone(),
                vec![m],
                range.clone(),
                g,
                filters.clone(),
                Some(10_000),
            )
        };
        let (main, src, pages) = futures_util::future::join3(
            up.query(&daily(None)?),
            up.query(&daily(Some("visit:source"))?),
            up.query(&daily(Some("event:page"))?),
        )
        .await;
        let main = main.map_err(fail)?;
        let series: BTreeMap<String, f64> = main
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.dimensions.first()?.as_str()?.to_owned(),
                    r.metrics.first()?.as_f64()?,
                ))
            })
            .collect();
        let values = |(s, e): (Date, Date), map: &BTreeMap<String, f64>| -> Vec<f64> {
            (0..=(e - s).whole_days())
                .map(|i| {
                    map.get(&(s + Days::days(i)).to_string())
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect()
        };
        let (b, af) = (values(before, &series), values(after, &series));
        let welch = stats::welch(&b, &af).ok_or_else(|| {
            CallError::Message(
                "The daily values do not vary at all: a t-test cannot say anything.".into(),
            )
        })?;
        let qp = stats::quasi_poisson(&b, &af);
        let mut drivers = Vec::new();
        for (dimension, answer) in [("visit:source", src), ("event:page", pages)] {
            let answer = answer.map_err(fail)?;
            let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            for r in &answer.rows {
                let (Some(day), Some(v), Some(x)) = (
                    r.dimensions.first().and_then(Value::as_str),
                    r.dimensions.get(1).and_then(Value::as_str),
                    r.metrics.first().and_then(Value::as_f64),
                ) else {
                    continue;
                };
                let entry = sums.entry(v.to_owned()).or_default();
                if (before.0.to_string()..=before.1.to_string()).contains(&day.to_owned()) {
                    entry.0 += x;
                }
                if (after.0.to_string()..=after.1.to_string()).contains(&day.to_owned()) {
                    entry.1 += x;
                }
            }
            let mut list: Vec<(String, f64, f64)> =
                sums.into_iter().map(|(v, (x, y))| (v, x, y)).collect();
            list.sort_by(|p, q| (q.2 - q.1).abs().total_cmp(&(p.2 - p.1).abs()));
            for (v, x, y) in list.into_iter().take(TOP) {
                drivers.push(json!({"dimension": dimension, "value": v, "before_daily_mean": x / d as f64, "after_daily_mean": y / d as f64, "change_daily": (y - x) / d as f64}));
            }
        }
        let rows = vec![
            vec![
                json!("before"),
                json!(format!("{},{}", before.0, before.1)),
                json!(stats::mean(&b).round()),
                json!(b.iter().sum::<f64>()),
            ],
            vec![
                json!("after"),
                json!(format!("{},{}", after.0, after.1)),
                json!(stats::mean(&af).round()),
                json!(af.iter().sum::<f64>()),
            ],
        ];
        let test = welch;
        let qp_json = qp.map(|q| json!({"rate_ratio": q.estimate, "low": q.low, "high": q.high, "p": q.p, "dispersion": q.df}));
        drivers.push(json!({"quasi_poisson": qp_json}));
        (
            test,
            "Welch's t-test on daily values, 95% interval for the difference in daily means",
            (vec!["window", "dates", "daily mean", "total"], rows),
            drivers,
        )
    };
    let (quasi, drivers): (Vec<Value>, Vec<Value>) = drivers
        .into_iter()
        .partition(|d| d.get("quasi_poisson").is_some());
    let significant = result.p < ALPHA && (result.low > 0.0 || result.high < 0.0);
    let verdict = if significant {
        format!("Significant at α = {ALPHA}: the change is unlikely to be noise.")
    } else {
        format!(
            "Not significant at α = {ALPHA}: this difference is within what day-to-day noise produces."
        )
    };
    let pct = |x: f64| {
        if metric == "conversion_rate" {
            format!("{:+.2} points", x * 100.0)
        } else {
            format!("{x:+.1}")
        }
    };
    let mut text = format!(
        "Measure Change for {} around {at} ({metric}{}{}), {days} days a side {}\n\n{}\n\n{verdict}\nChange: {} (95% interval {} to {}), p = {:.4}. Test: {test_name}.",
        site.as_str(),
        page.as_ref().map(|_| ", one page").unwrap_or(""),
        goal.as_ref()
            .map(|g| format!(", goal {g}"))
            .unwrap_or_default(),
        shortened.clone().unwrap_or_default(),
        render::table(
            &table_rows
                .0
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
            &table_rows.1
        ),
        pct(result.estimate),
        pct(result.low),
        pct(result.high),
        result.p,
    );
    let names: Vec<String> = drivers
        .iter()
        .map(|d| {
            format!(
                "{} {} ({:+.1}/day)",
                field(d, "dimension").as_str().unwrap_or(""),
                field(d, "value").as_str().unwrap_or(""),
                field(d, "change_daily").as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    if !names.is_empty() {
        text.push_str(&format!("\nContributed most: {}.", names.join("; ")));
    }
    if let Some(note) = up.cache_note() {
        text.push_str(&format!("\n\n{note}"));
    }
    Ok(Outcome::Success {
        text,
        structured: json!({
            "site_id": site.as_str(),
            "date": at.to_string(),
            "metric": metric,
            "days_per_side": days,
            "before": {"from": before.0.to_string(), "to": before.1.to_string()},
            "after": {"from": after.0.to_string(), "to": after.1.to_string()},
            "test": test_name,
            "estimate": result.estimate,
            "interval": {"low": result.low, "high": result.high, "level": 1.0 - ALPHA},
            "p_value": result.p,
            "significant": significant,
            "quasi_poisson": quasi.first().and_then(|q| q.get("quasi_poisson")).cloned(),
            "contributors": drivers,
            "note": shortened,
        }),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::plausible::tools::Tool;
    use crate::plausible::tools::tests::{argument_table, ctx, varied_platform};

    /// Today is 2026-03-15 (FakePlatform's clock): 2026-02-01 leaves 41
    /// whole days after it.
    #[test]
    fn good_and_bad_arguments() {
        let p = varied_platform();
        argument_table(
            &p,
            &ctx(None),
            Tool::MeasureChange,
            json!({"site_id": "example.com", "date": "2026-02-01"}),
            &[
                ("one week a side", json!({"days": 7})),
                ("four weeks a side", json!({"days": 28})),
                (
                    "eight weeks a side",
                    json!({"date": "2026-01-10", "days": 56}),
                ),
                (
                    "fewer days left than asked: shortened",
                    json!({"date": "2026-03-01", "days": 28}),
                ),
                (
                    "exactly a week left",
                    json!({"date": "2026-03-07", "days": 7}),
                ),
                ("pageviews", json!({"metric": "pageviews"})),
                (
                    "conversion rate of a goal",
                    json!({"metric": "conversion_rate", "goal": "Signup"}),
                ),
                ("converting visitors", json!({"goal": "Signup"})),
                ("one page", json!({"page": "/pricing"})),
            ],
            &[
                ("no site", json!({"site_id": null}), "site_id"),
                ("no date", json!({"date": null}), "date"),
                ("an impossible date", json!({"date": "2026-02-30"}), "date"),
                ("another date format", json!({"date": "01/02/2026"}), "date"),
                ("a range", json!({"date": "2026-02-01,2026-02-02"}), "date"),
                (
                    "too recent to say anything",
                    json!({"date": "2026-03-10"}),
                    "date",
                ),
                ("today", json!({"date": "2026-03-15"}), "date"),
                ("the future", json!({"date": "2026-04-01"}), "date"),
                ("less than a week", json!({"days": 6}), "days"),
                ("not whole weeks", json!({"days": 8}), "days"),
                ("more than eight weeks", json!({"days": 63}), "days"),
                ("zero", json!({"days": 0}), "days"),
                ("a string", json!({"days": "14"}), "days"),
                ("a fraction", json!({"days": 7.5}), "days"),
                ("a rate metric", json!({"metric": "bounce_rate"}), "metric"),
                (
                    "conversion rate without a goal",
                    json!({"metric": "conversion_rate"}),
                    "goal",
                ),
                ("a bare star page", json!({"page": "*"}), "page"),
                (
                    "an argument of another tool",
                    json!({"window": "7d"}),
                    "window",
                ),
            ],
        );
    }
}
