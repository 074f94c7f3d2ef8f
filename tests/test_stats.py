"""The statistics against scipy (and hand-computed values) on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ragharness.analysis.stats import bootstrap_ci, holm, mcnemar_exact, minimum_detectable_effect, paired


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs() -> None:
    a = [True] * 30 + [True] * 12 + [False] * 3 + [False] * 15
    b = [True] * 30 + [False] * 12 + [True] * 3 + [False] * 15
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (12, 3)
    assert p == pytest.approx(stats.binomtest(12, 15, 0.5).pvalue)
    assert p == pytest.approx(0.03515625)  # 2 * P(X <= 3), X ~ Bin(15, 1/2)
    assert mcnemar_exact([True, False], [True, False])[2] == 1.0


def test_holm_matches_hand_computation() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_bootstrap_ci_equals_scipy_with_the_same_generator() -> None:
    d = [0, 1, 0, 0, -1, 1, 1, 0, 1, 0, 1, 1, 0, -1, 1] * 4
    ours = bootstrap_ci(d, seed=7)
    ref = stats.bootstrap(
        (np.asarray(d, dtype=float),),
        np.mean,
        confidence_level=0.95,
        n_resamples=2000,
        method="BCa",
        random_state=np.random.default_rng(7),
    ).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high))
    assert ours[0] < np.mean(d) < ours[1]
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)


def test_minimum_detectable_effect_formula() -> None:
    d = [1, 0, -1, 0, 1, 0, 0, 1] * 10
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert minimum_detectable_effect(d) == pytest.approx(z * np.std(d, ddof=1) / math.sqrt(len(d)))
    assert minimum_detectable_effect([0] * 50) == pytest.approx(z * 0.5 / math.sqrt(50))


def test_paired_counts_and_means() -> None:
    a = [1.0, 1.0, 0.0, 0.5, 1.0]
    b = [1.0, 0.0, 1.0, 1.0, 0.0]
    r = paired(a, b, [x == 1 for x in a], [x == 1 for x in b])
    assert (r.wins, r.losses, r.ties) == (2, 2, 1)
    assert r.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert (r.discordant_a, r.discordant_b) == (2, 2)
