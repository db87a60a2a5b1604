//! The statistics behind `find_anomalies` and `measure_change`.
//!
//! Distributions come from `statrs`; the formulas are written out with
//! their sources. Known-answer vectors computed with SciPy and statsmodels
//! (`scripts/stats-vectors.py`, versions in `tests/fixtures/stats-vectors.json`)
//! are checked at the bottom of this file.

use statrs::distribution::{ChiSquared, ContinuousCDF, DiscreteCDF, Normal, Poisson, StudentsT};

/// 1.4826 × MAD estimates a normal standard deviation (Rousseeuw & Croux
/// 1993: 1 / Φ⁻¹(3/4)).
pub(crate) const MAD_SCALE: f64 = 1.4826;
/// Anomalies lie outside median ± 3 scaled MADs.
pub(crate) const MAD_BAND: f64 = 3.0;
/// Below this baseline median, counts are small enough that the exact
/// Poisson interval is the better yardstick.
pub(crate) const SMALL_COUNT: f64 = 30.0;
/// The two-sided level of the small-count interval (99%).
pub(crate) const POISSON_LEVEL: f64 = 0.99;
/// The significance level of `measure_change`.
pub(crate) const ALPHA: f64 = 0.05;

pub(crate) fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1).
pub(crate) fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0)
}

pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    match (v.get(n / 2), n.checked_sub(1).and_then(|i| v.get(i / 2))) {
        (Some(hi), Some(lo)) if n.is_multiple_of(2) => (hi + lo) / 2.0,
        (Some(mid), _) => *mid,
        _ => f64::NAN,
    }
}

/// Median absolute deviation from the median (unscaled).
pub(crate) fn mad(xs: &[f64]) -> f64 {
    let m = median(xs);
    median(&xs.iter().map(|x| (x - m).abs()).collect::<Vec<_>>())
}

/// The smallest k with P(X ≤ k) ≥ q for X ~ Poisson(mean): SciPy's
/// `poisson.ppf`.
pub(crate) fn poisson_quantile(q: f64, mean: f64) -> f64 {
    let Ok(dist) = Poisson::new(mean) else {
        return 0.0;
    };
    let mut k: u64 = 0;
    while dist.cdf(k) < q && k < 1_000_000 {
        k += 1;
    }
    k as f64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BandMethod {
    Mad,
    /// The MAD band was narrower than the counts' own noise: the
    /// quasi-Poisson floor set the width instead.
    CountFloor,
    Poisson,
}

impl BandMethod {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BandMethod::Mad => "median ± 3 × 1.4826 × MAD",
            BandMethod::CountFloor => {
                "median ± 3 × √(φ × median × (1 + π/2n)) (quasi-Poisson floor; the MAD band was narrower)"
            }
            BandMethod::Poisson => "exact Poisson 99% interval",
        }
    }
}

/// The range a period's value is expected in, from its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Band {
    pub(crate) expected: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) method: BandMethod,
}

impl Band {
    pub(crate) fn contains(&self, x: f64) -> bool {
        x >= self.low && x <= self.high
    }
}

/// The quasi-Poisson dispersion φ of seasonal counts, robustly: for each
/// slot (a weekday, or a weekday and hour) Pearson's X² about the slot's
/// mean over its n − 1 degrees of freedom (McCullagh & Nelder 1989, the
/// moment estimator X²/(n − p)), divided by the median of χ²(n − 1)/(n − 1)
/// so that it is median-unbiased (X² ≈ φ χ²(n − 1) under the model); φ is
/// the median of these over the slots. A median, not a pooled sum: one
/// slot holding an earlier incident (a drop, a spike) would otherwise
/// inflate φ for the whole series and hide the next incident. Slots whose
/// mean is 0 say nothing about the spread and are left out. φ is at
/// least 1: counts are never less variable than Poisson.
pub(crate) fn seasonal_dispersion(slots: &[Vec<f64>]) -> f64 {
    let per_slot: Vec<f64> = slots
        .iter()
        .filter_map(|slot| {
            let m = mean(slot);
            let df = slot.len() as f64 - 1.0;
            if df < 1.0 || !m.is_finite() || m <= 0.0 {
                return None;
            }
            let chi2: f64 = slot.iter().map(|x| (x - m).powi(2) / m).sum();
            let centre = ChiSquared::new(df).ok()?.inverse_cdf(0.5) / df;
            Some(chi2 / df / centre)
        })
        .collect();
    let phi = median(&per_slot);
    if phi.is_finite() { phi.max(1.0) } else { 1.0 }
}

/// The band for a baseline (issue 13's rule): median ± 3 × 1.4826 × MAD,
/// or, where the median is below 30, the central 99% of Poisson(median).
///
/// One refinement, because the MAD of six values is an unstable scale
/// (37% efficiency at the normal, Rousseeuw & Croux 1993): for six normal
/// values 1.4826 × MAD averages 0.84 σ and is below σ/2 for one baseline
/// in five (`mad_small_sample` in the vectors file, 200,000 draws), so a
/// run of six quiet weeks makes the band far narrower than the series'
/// day-to-day noise and flags an ordinary day. The MAD band is therefore never narrower than what
/// counts with dispersion φ show for a new value around a median of n
/// values: ± 3 × √(φ × median × (1 + π/2n)), where φ × median is the
/// quasi-Poisson variance of one count and π/2n × that variance the
/// large-sample variance of a sample median (Laplace; e.g. Stuart & Ord,
/// Kendall's Advanced Theory of Statistics, vol. 1). φ comes from many
/// more values than the baseline ([`seasonal_dispersion`] over every
/// slot of the weeks before the window). The floor only ever widens the band,
/// so what the issue's rule does not flag stays unflagged.
pub(crate) fn anomaly_band(baseline: &[f64], dispersion: f64) -> Band {
    let m = median(baseline);
    if m < SMALL_COUNT {
        let tail = (1.0 - POISSON_LEVEL) / 2.0;
        return Band {
            expected: m,
            low: poisson_quantile(tail, m),
            high: poisson_quantile(1.0 - tail, m),
            method: BandMethod::Poisson,
        };
    }
    let mad_half = MAD_BAND * MAD_SCALE * mad(baseline);
    let phi = if dispersion.is_finite() {
        dispersion.max(1.0)
    } else {
        1.0
    };
    let n = baseline.len().max(1) as f64;
    let floor_half = MAD_BAND * (phi * m * (1.0 + std::f64::consts::PI / (2.0 * n))).sqrt();
    let (half, method) = if floor_half > mad_half {
        (floor_half, BandMethod::CountFloor)
    } else {
        (mad_half, BandMethod::Mad)
    };
    Band {
        expected: m,
        low: m - half,
        high: m + half,
        method,
    }
}

/// A two-sample comparison: `after − before` (or their ratio), its
/// interval at 1 − α, and the two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Test {
    pub(crate) estimate: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) statistic: f64,
    pub(crate) df: f64,
    pub(crate) p: f64,
}

/// Welch's unequal-variance t-test of `after` against `before` (Welch
/// 1947; Satterthwaite degrees of freedom), with the 95% interval of the
/// difference in means.
pub(crate) fn welch(before: &[f64], after: &[f64]) -> Option<Test> {
    let (n1, n2) = (before.len() as f64, after.len() as f64);
    if n1 < 2.0 || n2 < 2.0 {
        return None;
    }
    let (v1, v2) = (variance(before) / n1, variance(after) / n2);
    let se = (v1 + v2).sqrt();
    let diff = mean(after) - mean(before);
    if se.is_nan() || se <= 0.0 {
        return None;
    }
    let df = (v1 + v2).powi(2) / (v1.powi(2) / (n1 - 1.0) + v2.powi(2) / (n2 - 1.0));
    let t = diff / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    let q = dist.inverse_cdf(1.0 - ALPHA / 2.0);
    Some(Test {
        estimate: diff,
        low: diff - q * se,
        high: diff + q * se,
        statistic: t,
        df,
        p,
    })
}

/// A quasi-Poisson test of the rate ratio Σafter / Σbefore, with the
/// dispersion φ = Pearson χ² / (n − 1) of the before-window (McCullagh &
/// Nelder 1989, §6.2; φ at least 1): a Wald test on the log ratio with
/// standard error √(φ (1/Σbefore + 1/Σafter)). `df` carries φ.
pub(crate) fn quasi_poisson(before: &[f64], after: &[f64]) -> Option<Test> {
    let (a, b): (f64, f64) = (before.iter().sum(), after.iter().sum());
    let n = before.len() as f64;
    if a <= 0.0 || b <= 0.0 || n < 2.0 || before.len() != after.len() {
        return None;
    }
    let m = mean(before);
    let chi2: f64 = before.iter().map(|x| (x - m).powi(2) / m).sum();
    let phi = (chi2 / (n - 1.0)).max(1.0);
    let log_ratio = (b / a).ln();
    let se = (phi * (1.0 / a + 1.0 / b)).sqrt();
    let z = log_ratio / se;
    let normal = Normal::new(0.0, 1.0).ok()?;
    let q = normal.inverse_cdf(1.0 - ALPHA / 2.0);
    Some(Test {
        estimate: b / a,
        low: (log_ratio - q * se).exp(),
        high: (log_ratio + q * se).exp(),
        statistic: z,
        df: phi,
        p: 2.0 * (1.0 - normal.cdf(z.abs())),
    })
}

/// Wilson's score interval for x / n (Wilson 1927).
fn wilson(x: f64, n: f64, z: f64) -> (f64, f64) {
    let p = x / n;
    let centre = p + z * z / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z * z / n;
    ((centre - half) / denom, (centre + half) / denom)
}

/// The difference of two proportions p2 − p1 with Newcombe's hybrid
/// score interval (Newcombe 1998, method 10), and a pooled two-proportion
/// z-test for the p-value.
pub(crate) fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64) -> Option<Test> {
    if n1 <= 0.0 || n2 <= 0.0 || x1 < 0.0 || x2 < 0.0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let normal = Normal::new(0.0, 1.0).ok()?;
    let z = normal.inverse_cdf(1.0 - ALPHA / 2.0);
    let (p1, p2) = (x1 / n1, x2 / n2);
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let d = p2 - p1;
    let low = d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt();
    let high = d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt();
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let stat = if se > 0.0 { d / se } else { 0.0 };
    Some(Test {
        estimate: d,
        low,
        high,
        statistic: stat,
        df: f64::INFINITY,
        p: 2.0 * (1.0 - normal.cdf(stat.abs())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Vectors from `scripts/stats-vectors.py` (SciPy, statsmodels).
    const VECTORS: &str = include_str!("../../tests/fixtures/stats-vectors.json");

    fn close(a: f64, b: f64, what: &str) {
        let tol = 1e-6 * b.abs().max(1.0);
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
    }

    fn nums(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn known_answers_from_scipy_and_statsmodels() {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        for c in v["median_mad"].as_array().unwrap() {
            let xs = nums(&c["x"]);
            close(median(&xs), c["median"].as_f64().unwrap(), "median");
            close(mad(&xs), c["mad"].as_f64().unwrap(), "mad");
        }
        for c in v["poisson_interval"].as_array().unwrap() {
            let m = c["mean"].as_f64().unwrap();
            close(
                poisson_quantile(0.005, m),
                c["low"].as_f64().unwrap(),
                "poisson low",
            );
            close(
                poisson_quantile(0.995, m),
                c["high"].as_f64().unwrap(),
                "poisson high",
            );
        }
        for c in v["welch"].as_array().unwrap() {
            let t = welch(&nums(&c["before"]), &nums(&c["after"])).unwrap();
            for (got, key) in [
                (t.statistic, "t"),
                (t.df, "df"),
                (t.p, "p"),
                (t.low, "low"),
                (t.high, "high"),
            ] {
                close(got, c[key].as_f64().unwrap(), &format!("welch {key}"));
            }
        }
        for c in v["quasi_poisson"].as_array().unwrap() {
            let t = quasi_poisson(&nums(&c["before"]), &nums(&c["after"])).unwrap();
            for (got, key) in [
                (t.estimate, "ratio"),
                (t.df, "phi"),
                (t.p, "p"),
                (t.low, "low"),
                (t.high, "high"),
            ] {
                close(
                    got,
                    c[key].as_f64().unwrap(),
                    &format!("quasi-poisson {key}"),
                );
            }
        }
        for c in v["seasonal_dispersion"].as_array().unwrap() {
            let slots: Vec<Vec<f64>> = c["slots"].as_array().unwrap().iter().map(nums).collect();
            close(
                seasonal_dispersion(&slots),
                c["phi"].as_f64().unwrap(),
                "seasonal dispersion",
            );
        }
        for c in v["anomaly_band"].as_array().unwrap() {
            let b = anomaly_band(&nums(&c["baseline"]), c["phi"].as_f64().unwrap());
            close(b.expected, c["expected"].as_f64().unwrap(), "band expected");
            close(b.low, c["low"].as_f64().unwrap(), "band low");
            close(b.high, c["high"].as_f64().unwrap(), "band high");
            let method = match b.method {
                BandMethod::Mad => "mad",
                BandMethod::CountFloor => "count_floor",
                BandMethod::Poisson => "poisson",
            };
            assert_eq!(method, c["method"], "{}", c["baseline"]);
        }
        for c in v["newcombe"].as_array().unwrap() {
            let f = |k: &str| c[k].as_f64().unwrap();
            let t = newcombe(f("x1"), f("n1"), f("x2"), f("n2")).unwrap();
            close(t.low, f("low"), "newcombe low");
            close(t.high, f("high"), "newcombe high");
            close(t.p, f("p"), "two-proportion p");
        }
    }

    /// A band case: name, baseline, φ, method, values inside, values outside.
    type BandCase<'a> = (&'a str, &'a [f64], f64, BandMethod, &'a [f64], &'a [f64]);

    /// The band rule as a table: a baseline, the dispersion of its series,
    /// and what must and must not fall inside.
    #[test]
    fn band_rule_table() {
        // 2024-04-22 in the stand-in's data: six Mondays whose MAD (15) is
        // half the series' spread; the Mondays of the year have φ ≈ 5.6.
        let tight = [423.0, 381.0, 337.0, 411.0, 395.0, 384.0];
        let cases: [BandCase; 8] = [
            (
                "tight MAD, Poisson only: the issue's band",
                &tight,
                1.0,
                BandMethod::Mad,
                &[389.5, 456.0],
                &[457.0, 487.0],
            ),
            (
                "tight MAD, overdispersed series: the floor widens it",
                &tight,
                5.0,
                BandMethod::CountFloor,
                &[487.0, 538.0, 241.0],
                &[539.0, 240.0, 180.0, 658.0],
            ),
            (
                "wide MAD: the issue's band, floor unused",
                &[100.0, 150.0, 60.0, 130.0, 70.0, 100.0],
                1.0,
                BandMethod::Mad,
                &[-33.0, 233.0],
                &[234.0],
            ),
            (
                "dispersion below 1 counts as Poisson",
                &tight,
                0.2,
                BandMethod::Mad,
                &[456.0],
                &[457.0],
            ),
            (
                "a NaN dispersion counts as Poisson",
                &tight,
                f64::NAN,
                BandMethod::Mad,
                &[456.0],
                &[457.0],
            ),
            (
                "zero MAD: the floor alone",
                &[400.0; 6],
                1.0,
                BandMethod::CountFloor,
                &[400.0, 467.0, 333.0],
                &[468.0, 332.0],
            ),
            (
                "small counts: exact Poisson, dispersion unused",
                &[4.0, 5.0, 6.0, 5.0, 4.0, 6.0],
                50.0,
                BandMethod::Poisson,
                &[0.0, 5.0, 12.0],
                &[13.0, 20.0],
            ),
            (
                "nothing before: only 0 is expected",
                &[0.0; 6],
                1.0,
                BandMethod::Poisson,
                &[0.0],
                &[1.0],
            ),
        ];
        for (name, baseline, phi, method, inside, outside) in cases {
            let band = anomaly_band(baseline, phi);
            assert_eq!(band.method, method, "{name}");
            assert_eq!(band.expected, median(baseline), "{name}");
            for x in inside {
                assert!(band.contains(*x), "{name}: {x} in {band:?}");
            }
            for x in outside {
                assert!(!band.contains(*x), "{name}: {x} out of {band:?}");
            }
        }
    }

    #[test]
    fn the_floor_only_ever_widens_the_issue_band() {
        let baselines: [&[f64]; 4] = [
            &[423.0, 381.0, 337.0, 411.0, 395.0, 384.0],
            &[100.0, 150.0, 60.0, 130.0, 70.0, 100.0],
            &[31.0, 30.0, 30.0, 29.0, 33.0, 28.0],
            &[5000.0, 5100.0, 4900.0, 5050.0, 4950.0, 5000.0],
        ];
        for b in baselines {
            let issue = MAD_BAND * MAD_SCALE * mad(b);
            for phi in [1.0, 2.0, 10.0] {
                let band = anomaly_band(b, phi);
                assert!(band.high - band.expected >= issue - 1e-9, "{b:?} φ={phi}");
                assert!(band.expected - band.low >= issue - 1e-9, "{b:?} φ={phi}");
            }
        }
    }

    #[test]
    fn dispersion_is_a_robust_median_over_slots() {
        assert_eq!(seasonal_dispersion(&[]), 1.0);
        assert_eq!(seasonal_dispersion(&[vec![0.0; 6], vec![7.0]]), 1.0);
        // Under-dispersed (constant) counts are still at least Poisson.
        assert_eq!(seasonal_dispersion(&[vec![10.0; 6]]), 1.0);
        // One slot: X²/df over the median of χ²(3)/3 (2.365974/3, SciPy
        // chi2.median(3)).
        let one = vec![10.0, 30.0, 20.0, 40.0];
        close(
            seasonal_dispersion(std::slice::from_ref(&one)),
            (225.0 + 25.0 + 25.0 + 225.0) / 25.0 / 3.0 / (2.365_973_884_375_731 / 3.0),
            "one slot",
        );
        // An empty slot is left out; an incident in one slot of three
        // does not move the estimate past the quiet slots'.
        let quiet = [
            vec![400.0, 420.0, 380.0, 410.0, 390.0, 400.0],
            vec![300.0, 310.0, 290.0, 305.0, 295.0, 300.0],
        ];
        let mut with_incident = quiet.to_vec();
        with_incident.push(vec![400.0, 410.0, 100.0, 390.0, 405.0, 395.0]);
        with_incident.push(vec![0.0; 6]);
        let calm = seasonal_dispersion(&quiet);
        let robust = seasonal_dispersion(&with_incident);
        assert!(
            robust <= calm.max(seasonal_dispersion(&quiet[..1])) + 1e-9,
            "{calm} {robust}"
        );
        assert!(robust < 2.0, "{robust}");
    }

    #[test]
    fn small_sample_inputs_are_refused_or_safe() {
        assert!(welch(&[1.0], &[2.0, 3.0]).is_none());
        assert!(newcombe(5.0, 0.0, 1.0, 10.0).is_none());
    }
}
