#!/usr/bin/env python3
"""Known-answer vectors for src/plausible/stats.rs, from independent
implementations: SciPy (medians, MAD, Poisson quantiles, Welch's t-test,
normal distribution) and statsmodels (Newcombe's hybrid score interval).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install scipy==1.16.3 statsmodels==0.14.5
    /tmp/v/bin/python scripts/stats-vectors.py > tests/fixtures/stats-vectors.json

The output is committed, so `npm test` needs no Python.
"""
import json
import math

import numpy as np
import scipy
import statsmodels
from scipy import stats
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
    "newcombe": [newcombe(168, 5600, 252, 5600), newcombe(56, 70, 48, 80), newcombe(0, 10, 3, 10),
                 newcombe(200, 5000, 205, 5000)],
}
print(json.dumps(out, indent=1))
