"""Paired statistics for comparing two answer sets on the same gold items (scipy underneath).

- difference of means with a paired bootstrap confidence interval (BCa, percentile when BCa is undefined);
- McNemar's exact test on a binary outcome (correct / not, grounded / not): a two-sided binomial test on the
  discordant pairs;
- Holm's step-down correction across the tests of one family;
- the minimum detectable effect for the sample size (two-sided alpha, power 0.8, normal approximation of the
  paired difference);
- win / loss / tie counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from scipy import stats


class PairedResult(BaseModel):
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    discordant_a: int
    discordant_b: int
    p_value: float
    p_holm: float = 1.0
    mde: float
    significant: bool = False


def bootstrap_ci(
    diffs: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return (0.0, 0.0)
    if np.allclose(d, d[0]):
        return (float(d[0]), float(d[0]))
    rng = np.random.default_rng(seed)
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(
            (d,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method, random_state=rng
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            return (low, high)
    return (float(d.mean()), float(d.mean()))


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """(only A succeeds, only B succeeds, two-sided exact p-value)."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(diffs: Sequence[float], *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference detectable with this many pairs (sd of the observed paired differences,
    or 0.5 when they do not vary, the binary worst case)."""
    n = len(diffs)
    if n < 2:
        return float("inf")
    sd = float(np.std(np.asarray(diffs, dtype=float), ddof=1)) or 0.5
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * sd / math.sqrt(n))


def paired(
    a: Sequence[float], b: Sequence[float], a_ok: Sequence[bool], b_ok: Sequence[bool], *, seed: int = 0
) -> PairedResult:
    """Compare paired values (a[i], b[i]) and their binary outcomes (a_ok[i], b_ok[i])."""
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    low, high = bootstrap_ci(diffs, seed=seed)
    only_a, only_b, p = mcnemar_exact(a_ok, b_ok)
    n = len(diffs)
    return PairedResult(
        n=n,
        mean_a=float(np.mean(a)) if n else 0.0,
        mean_b=float(np.mean(b)) if n else 0.0,
        diff=float(np.mean(diffs)) if n else 0.0,
        ci_low=low,
        ci_high=high,
        wins=sum(1 for d in diffs if d > 0),
        losses=sum(1 for d in diffs if d < 0),
        ties=sum(1 for d in diffs if d == 0),
        discordant_a=only_a,
        discordant_b=only_b,
        p_value=p,
        mde=minimum_detectable_effect(diffs),
    )
