//! The statistics behind `find_anomalies` and `measure_change`.
//!
//! Distributions come from `statrs`; the formulas are written out with
//! their sources. Known-answer vectors computed with SciPy and statsmodels
//! (`scripts/stats-vectors.py`, versions in `tests/fixtures/stats-vectors.json`)
//! are checked at the bottom of this file.

use statrs::distribution::{ContinuousCDF, DiscreteCDF, Normal, Poisson, StudentsT};

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
    v.sort_by(f64::total_cmp);
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
    Poisson,
}

impl BandMethod {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BandMethod::Mad => "median ± 3 × 1.4826 × MAD",
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

/// The band for a baseline: median ± 3 × 1.4826 × MAD, or, where the
/// median is below 30, the central 99% of Poisson(median).
pub(crate) fn anomaly_band(baseline: &[f64]) -> Band {
    let m = median(baseline);
    if m < SMALL_COUNT {
        let tail = (1.0 - POISSON_LEVEL) / 2.0;
        Band {
            expected: m,
            low: poisson_quantile(tail, m),
            high: poisson_quantile(1.0 - tail, m),
            method: BandMethod::Poisson,
        }
    } else {
        let half = MAD_BAND * MAD_SCALE * mad(baseline);
        Band {
            expected: m,
            low: m - half,
            high: m + half,
            method: BandMethod::Mad,
        }
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
        for c in v["newcombe"].as_array().unwrap() {
            let f = |k: &str| c[k].as_f64().unwrap();
            let t = newcombe(f("x1"), f("n1"), f("x2"), f("n2")).unwrap();
            close(t.low, f("low"), "newcombe low");
            close(t.high, f("high"), "newcombe high");
            close(t.p, f("p"), "two-proportion p");
        }
    }

    #[test]
    fn bands_switch_to_poisson_for_small_counts() {
        let big = anomaly_band(&[100.0, 110.0, 90.0, 105.0, 95.0, 100.0]);
        assert_eq!(big.method, BandMethod::Mad);
        assert_eq!(big.expected, 100.0);
        close(big.high - big.expected, 3.0 * 1.4826 * 5.0, "mad band");
        let small = anomaly_band(&[4.0, 5.0, 6.0, 5.0, 4.0, 6.0]);
        assert_eq!(small.method, BandMethod::Poisson);
        assert!(small.contains(5.0) && !small.contains(20.0));
        assert_eq!(anomaly_band(&[0.0; 6]).high, 0.0);
        assert!(welch(&[1.0], &[2.0, 3.0]).is_none());
        assert!(newcombe(5.0, 0.0, 1.0, 10.0).is_none());
    }
}
