//! `compare_periods`: the same totals query over two date ranges, and the
//! change between them.

use serde_json::{Map, Value, json};

use super::shaped::DEFAULT_METRICS;
use super::{CallError, Outcome, ToolContext};
use crate::plausible::args::{self, ArgReader, SiteId};
use crate::plausible::client::Row;
use crate::plausible::filters;
use crate::plausible::query::{self, Query};
use crate::plausible::render;
use crate::plausible::upstream::Upstream;
use crate::plausible::vocabulary::Metric;
use crate::ports::{Clock, EdgeCache, Outbound};

pub(super) async fn run<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    ctx.allowed_sites.check(&site)?;
    let period_a = args::required_range(&mut a, "period_a")?;
    let period_b = args::required_range(&mut a, "period_b")?;
    let page = args::page(&mut a)?;
    let goal = args::goal(&mut a)?;
    let metrics = args::metrics(&mut a, &DEFAULT_METRICS)?;
    let filters = filters::property_filters(&mut a)?;
    a.finish()?;
    filters::no_shortcut_overlap(page.as_ref(), goal.as_deref(), &filters)?;
    let filters = query::filters(page, goal, filters, false);
    let qa = Query::new(
        site.clone(),
        metrics.clone(),
        period_a,
        vec![],
        filters.clone(),
        None,
    )?;
    let qb = Query::new(
        site.clone(),
        metrics.clone(),
        period_b,
        vec![],
        filters,
        None,
    )?;
    let (ra, rb) = futures_util::future::join(up.query(&qa), up.query(&qb)).await;
    let ra = ra.map_err(|e| CallError::Plausible(e, site.clone()))?.rows;
    let rb = rb.map_err(|e| CallError::Plausible(e, site.clone()))?.rows;
    Ok(comparison(&site, &qa, &qb, &metrics, &ra, &rb))
}

/// The first row's metrics by name; an empty result has none.
fn totals(metrics: &[Metric], rows: &[Row]) -> Map<String, Value> {
    let Some(first) = rows.first() else {
        return Map::new();
    };
    metrics
        .iter()
        .zip(&first.metrics)
        .map(|(m, v)| (m.as_str().to_owned(), v.clone()))
        .collect()
}

/// Rounds to 2 decimals, halves up (as JavaScript's `Math.round`, which
/// the established contract used).
fn round2(x: f64) -> f64 {
    (x * 100.0 + 0.5).floor() / 100.0
}

/// `(absolute, percent)` change from `a` to `b`: `b − a`, and
/// `(b − a) / a × 100` when `a ≠ 0`. `None` where undefined (a missing or
/// non-numeric value, or a zero base for the percentage).
fn delta(a: Option<&Value>, b: Option<&Value>) -> (Option<f64>, Option<f64>) {
    match (a.and_then(Value::as_f64), b.and_then(Value::as_f64)) {
        (Some(a), Some(b)) => {
            let absolute = round2(b - a);
            let percent = (a != 0.0).then(|| round2((b - a) / a * 100.0));
            (Some(absolute), percent)
        }
        _ => (None, None),
    }
}

fn comparison(
    site: &SiteId,
    qa: &Query,
    qb: &Query,
    metrics: &[Metric],
    ra: &[Row],
    rb: &[Row],
) -> Outcome {
    let ta = totals(metrics, ra);
    let tb = totals(metrics, rb);
    let mut deltas = Map::new();
    let mut rows = Vec::new();
    for m in metrics {
        let name = m.as_str();
        let (absolute, percent) = delta(ta.get(name), tb.get(name));
        deltas.insert(
            name.to_owned(),
            json!({"absolute": absolute, "percent": percent}),
        );
        rows.push(vec![
            Value::from(name),
            ta.get(name).cloned().unwrap_or(Value::Null),
            tb.get(name).cloned().unwrap_or(Value::Null),
            absolute
                .map(|v| Value::from(signed(v)))
                .unwrap_or(Value::Null),
            percent
                .map(|v| Value::from(format!("{}%", signed(v))))
                .unwrap_or(Value::Null),
        ]);
    }
    let (la, lb) = (qa.date_range.label(), qb.date_range.label());
    let text = format!(
        "Compare Periods for {}\nperiod_a = {la}\nperiod_b = {lb}\n\n{}",
        site.as_str(),
        render::table(
            &[
                "metric".into(),
                "period_a".into(),
                "period_b".into(),
                "change".into(),
                "change %".into()
            ],
            &rows,
        )
    );
    Outcome::Success {
        text,
        structured: json!({
            "site_id": site.as_str(),
            "period_a": {"range": la, "metrics": ta},
            "period_b": {"range": lb, "metrics": tb},
            "deltas": deltas,
        }),
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{v}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::plausible::tools::tests::ctx;
    use crate::plausible::tools::{Tool, call};
    use crate::ports::OutboundResponse;
    use crate::testing::{FakePlatform, block_on};

    #[test]
    fn deltas_round_and_go_null_where_undefined() {
        let cases = [
            (json!(100), json!(150), (Some(50.0), Some(50.0))),
            (json!(150), json!(100), (Some(-50.0), Some(-33.33))),
            (json!(33.33), json!(50), (Some(16.67), Some(50.02))),
            (json!(0), json!(10), (Some(10.0), None)),
            (json!(0), json!(0), (Some(0.0), None)),
            (Value::Null, json!(10), (None, None)),
            (json!(10), json!({"value": 1}), (None, None)),
        ];
        for (a, b, expected) in cases {
            assert_eq!(delta(Some(&a), Some(&b)), expected, "{a} -> {b}");
        }
        assert_eq!(delta(None, Some(&json!(1))), (None, None));
    }

    #[test]
    fn compare_periods_queries_both_ranges_and_reports_deltas() {
        let p = FakePlatform::new();
        p.respond_with(|req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let visitors = if body["date_range"] == json!(["2024-03-01", "2024-03-07"]) {
                200
            } else {
                250
            };
            Ok(OutboundResponse {
                status: 200,
                headers: Headers::new(),
                body: json!({"results": [{"dimensions": [], "metrics": [visitors, null]}]})
                    .to_string()
                    .into_bytes(),
            })
        });
        let args = json!({"site_id": "example.com", "period_a": "2024-03-01,2024-03-07", "period_b": "2024-03-08,2024-03-14", "metrics": ["visitors", "visit_duration"], "page": "/pricing"});
        let out = block_on(call(
            &p,
            &ctx(None),
            Tool::ComparePeriods,
            args.as_object().cloned(),
        ));
        let Outcome::Success { text, structured } = out else {
            panic!("{out:?}")
        };
        assert_eq!(p.sent_count(), 2);
        for req in p.sent.borrow().iter() {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["filters"], json!([["is", "event:page", ["/pricing"]]]));
            assert!(body.get("dimensions").is_none());
        }
        assert_eq!(
            structured["period_a"],
            json!({"range": "2024-03-01,2024-03-07", "metrics": {"visitors": 200, "visit_duration": null}})
        );
        assert_eq!(
            structured["deltas"]["visitors"],
            json!({"absolute": 50.0, "percent": 25.0})
        );
        assert_eq!(
            structured["deltas"]["visit_duration"],
            json!({"absolute": null, "percent": null})
        );
        assert!(text.contains("+25%"), "{text}");
    }
}
