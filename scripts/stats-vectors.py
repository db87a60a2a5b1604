#!/usr/bin/env python3
"""Known-answer vectors for src/plausible/stats.rs, from independent
implementations: SciPy (medians, MAD, Poisson quantiles, Welch's t-test,
normal distribution) and statsmodels (Newcombe's hybrid score interval,
the Pearson dispersion of Poisson GLMs).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install scipy==1.16.3 statsmodels==0.14.5
    /tmp/v/bin/python scripts/stats-vectors.py > tests/fixtures/stats-vectors.json

The output is committed, so `npm test` needs no Python.
"""
import json
import math
import warnings

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.stats.proportion import confint_proportions_2indep

rng = np.random.default_rng(20240301)
ALPHA = 0.05


def median_mad(x):
    return {"x": x, "median": float(np.median(x)), "mad": float(stats.median_abs_deviation(x))}


def poisson_interval(m):
    return {"mean": m, "low": float(stats.poisson.ppf(0.005, m)), "high": float(stats.poisson.ppf(0.995, m))}


def welch(before, after):
    r = stats.ttest_ind(after, before, equal_var=False)
    ci = r.confidence_interval(confidence_level=1 - ALPHA)
    return {"before": before, "after": after, "t": float(r.statistic), "df": float(r.df),
            "p": float(r.pvalue), "low": float(ci.low), "high": float(ci.high)}


def quasi_poisson(before, after):
    # The formula of stats.rs, evaluated with NumPy/SciPy's normal distribution.
    a, b = sum(before), sum(after)
    m = np.mean(before)
    phi = max(1.0, float(np.sum((np.array(before) - m) ** 2 / m) / (len(before) - 1)))
    lr = math.log(b / a)
    se = math.sqrt(phi * (1 / a + 1 / b))
    z = lr / se
    q = stats.norm.ppf(1 - ALPHA / 2)
    return {"before": before, "after": after, "ratio": b / a, "phi": phi, "p": float(2 * stats.norm.sf(abs(z))),
            "low": math.exp(lr - q * se), "high": math.exp(lr + q * se)}


def newcombe(x1, n1, x2, n2):
    # statsmodels compares the first sample minus the second: pass (after, before).
    low, high = confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", compare="diff", alpha=ALPHA)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    return {"x1": x1, "n1": n1, "x2": x2, "n2": n2, "low": float(low), "high": float(high),
            "p": float(2 * stats.norm.sf(abs(z)))}


def seasonal_dispersion(slots):
    # Per slot, an intercept-only Poisson GLM: Pearson X^2 / df_resid is the
    # moment estimator of the dispersion; divided by the median of
    # chi2(df)/df it is median-unbiased. phi is the median over the slots.
    # Slots with no counts carry no information (and make the GLM
    # degenerate), so they are left out, as in stats.rs.
    per_slot = []
    for s in slots:
        if len(s) < 2 or np.mean(s) <= 0:
            continue
        y = np.array(s, dtype=float)
        with warnings.catch_warnings():
            # A constant slot fits perfectly; statsmodels warns, the estimate stands.
            warnings.simplefilter("ignore")
            res = GLM(y, np.ones((len(y), 1)), family=families.Poisson()).fit()
        df = res.df_resid
        per_slot.append(res.pearson_chi2 / df / (stats.chi2.median(df) / df))
    phi = float(np.median(per_slot)) if per_slot else 1.0
    return {"slots": slots, "phi": max(1.0, phi)}


def band(baseline, phi):
    # The rule of stats.rs::anomaly_band, evaluated with NumPy/SciPy.
    m = float(np.median(baseline))
    if m < 30:
        return {"baseline": baseline, "phi": phi, "expected": m, "low": float(stats.poisson.ppf(0.005, m)),
                "high": float(stats.poisson.ppf(0.995, m)), "method": "poisson"}
    mad_half = 3 * 1.4826 * float(stats.median_abs_deviation(baseline))
    floor_half = 3 * math.sqrt(max(phi, 1.0) * m * (1 + math.pi / (2 * len(baseline))))
    half, method = (floor_half, "count_floor") if floor_half > mad_half else (mad_half, "mad")
    return {"baseline": baseline, "phi": phi, "expected": m, "low": m - half, "high": m + half, "method": method}


def mad_small_sample(n, draws):
    # How 1.4826 x MAD of n standard normal values scatters around sigma = 1.
    x = np.random.default_rng(6).standard_normal((draws, n))
    est = 1.4826 * stats.median_abs_deviation(x, axis=1)
    return {"n": n, "draws": draws, "mean": round(float(np.mean(est)), 3),
            "share_below_half_sigma": round(float(np.mean(est < 0.5)), 3)}


def daily(mu, n, cv):
    lam = mu * rng.gamma(1 / cv**2, cv**2, n)
    return [float(v) for v in rng.poisson(lam)]


out = {
    "generated_by": "scripts/stats-vectors.py",
    "versions": {"python": ".".join(map(str, __import__("sys").version_info[:3])), "numpy": np.__version__,
                 "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
    "median_mad": [median_mad(x) for x in ([1, 2, 3, 4, 100], [380, 412, 395, 401, 420, 377], [5, 5, 5, 5, 5, 6],
                                           [0.5, 2.25, 7.0, 1.0])],
    "poisson_interval": [poisson_interval(m) for m in (0.5, 1, 3, 7.5, 12, 20, 29.5)],
    "welch": [welch(daily(400, 14, 0.1), daily(400, 14, 0.1)), welch(daily(400, 14, 0.1), daily(460, 14, 0.1)),
              welch(daily(50, 7, 0.2), daily(80, 7, 0.3)), welch([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0])],
    "quasi_poisson": [quasi_poisson(daily(50000, 14, 0.1), daily(51000, 14, 0.1)),
                      quasi_poisson(daily(400, 14, 0.1), daily(460, 14, 0.1)),
                      quasi_poisson([10.0, 12.0, 9.0, 11.0, 10.0, 10.0, 11.0], [13.0, 12.0, 14.0, 12.0, 13.0, 15.0, 12.0])],
    "seasonal_dispersion": [seasonal_dispersion(s) for s in (
        [[417, 421, 410, 431, 433, 389], [381, 337, 411, 395, 384, 344], [239, 292, 226, 191, 241, 245]],
        [[5, 3, 4, 6, 2, 4], [0, 0, 0, 0, 0, 0], [20, 31, 18, 25, 40, 22]],
        [[10, 10, 10, 10, 10, 10]],
        [[417, 421, 410, 431, 433, 180], [381, 337, 411, 395, 384, 344], [239, 292, 226, 191, 241, 245],
         [404, 430, 436, 418, 479, 353]],  # one slot holds an incident
        [daily(400, 6, 0.1) for _ in range(7)],
    )],
    "anomaly_band": [band(b, phi) for b, phi in (
        ([423, 381, 337, 411, 395, 384], 5.0),   # a tight MAD: the floor decides
        ([423, 381, 337, 411, 395, 384], 1.0),   # Poisson spread only
        ([100, 110, 90, 105, 95, 100], 1.0),     # a wide MAD: the rule decides
        ([100, 150, 60, 130, 70, 100], 1.0),     # a volatile slot: the MAD band is wider than the floor
        ([31, 30, 30, 29, 33, 28], 1.0),         # just above the small-count threshold
        ([4, 5, 6, 5, 4, 6], 2.0),               # small counts: exact Poisson, phi unused
        ([0, 0, 0, 0, 0, 0], 1.0),
    )],
    "mad_small_sample": mad_small_sample(6, 200_000),
    "newcombe": [newcombe(168, 5600, 252, 5600), newcombe(56, 70, 48, 80), newcombe(0, 10, 3, 10),
                 newcombe(200, 5000, 205, 5000)],
}
print(json.dumps(out, indent=1))
