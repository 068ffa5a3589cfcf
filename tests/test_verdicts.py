"""The verdict rule, the detectable effect, the seeds a design needs, and the seeds-then-reports bootstrap."""

import math

import numpy as np
import pytest

from rrgkit.evaluation.stats import hierarchical_bootstrap, hierarchical_paired_bootstrap, mean_statistic, paired_bootstrap
from rrgkit.evaluation.verdicts import detectable_effect, seeds_needed, verdict


@pytest.mark.parametrize(("low", "high", "direction", "expected"), [
    (0.005, 0.030, 1, "replicates"),      # excludes 0 above: a beats b as claimed
    (0.005, 0.030, -1, "contradicts"),    # the claim said a loses to b
    (-0.030, -0.010, 1, "contradicts"),
    (-0.030, -0.010, -1, "replicates"),
    (-0.004, 0.008, 1, "equivalent"),     # straddles 0 but inside ±1 point
    (-0.020, 0.030, 1, "inconclusive"),   # straddles 0 and wider than the margin
    (0.002, 0.008, 1, "replicates"),      # excluding 0 wins over lying inside the margin
    (-0.004, 0.008, 0, "replicates"),     # a claim of no difference: the interval inside ±1 point
    (0.002, 0.030, 0, "contradicts"),     # ... and a clear difference contradicts it
    (-0.020, 0.030, 0, "inconclusive"),
])
def test_verdict_rule(low, high, direction, expected):
    result = verdict((low + high) / 2, low, high, direction)
    assert result.verdict == expected
    assert result.detectable == pytest.approx((1.959964 + 0.841621) * (high - low) / 2 / 1.959964, rel=1e-5)


def test_inconclusive_sentence_names_the_detectable_effect_and_never_says_consistent():
    line = verdict(0.005, -0.02, 0.03, 1).sentence("two-stage beats one-stage")
    assert line.startswith("two-stage beats one-stage: inconclusive (+0.5 points, 95% interval [-2.0, +3.0])")
    assert "detects effects of 3.6 points or more" in line and "consistent" not in line
    assert verdict(0.01, math.nan, math.nan).verdict == "undetermined"
    with pytest.raises(ValueError, match="direction"):
        verdict(0.0, -1.0, 1.0, direction=2)


def test_detectable_effect_and_seeds_needed():
    assert detectable_effect(-1.959964, 1.959964) == pytest.approx(1.959964 + 0.841621, rel=1e-5)  # se = 1
    # (t(.975, n-1) + t(.8, n-1)) * 1.5 / sqrt(n): n = 6 -> 2.14 > 2.0, n = 7 -> 1.90 <= 2.0
    assert seeds_needed(1.5, 2.0) == 7
    assert seeds_needed(0.0, 1.0) == 2
    assert seeds_needed(10.0, 0.1, most=50) == 50


def test_hierarchical_bootstrap_carries_seed_variance():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    per_seed_gap = [0.01, 0.05, 0.09, 0.03, 0.07]
    # per report, a = b + gap exactly: within a seed the difference has no report-level variance at all
    pairs = [(mean_statistic(base + gap), mean_statistic(base)) for gap in per_seed_gap]
    result = hierarchical_paired_bootstrap(pairs, n_boot=2000, seed=1)
    assert result["diff"] == pytest.approx(0.05) and result["n_seeds"] == 5
    assert result["sd_seeds"] == pytest.approx(np.std(per_seed_gap, ddof=1))
    assert 0.01 <= result["ci_low"] < 0.05 < result["ci_high"] <= 0.09  # all of its width comes from the seeds

    noisy = [(mean_statistic(base + rng.normal(0.05, 0.3, 200)), mean_statistic(base)) for _ in range(5)]
    one = paired_bootstrap(*noisy[0], n=200, n_boot=2000, seed=1)
    five = hierarchical_paired_bootstrap(noisy, n_boot=2000, seed=1)
    # report-level noise only: averaging five seeds narrows the interval; resampling both levels counts that noise
    # twice (once in the spread of the seed means, once within each seed), so by about sqrt(5 / 2), not sqrt(5)
    ratio = (one["ci_high"] - one["ci_low"]) / (five["ci_high"] - five["ci_low"])
    assert 1.3 < ratio < 2.0
    single = hierarchical_bootstrap([mean_statistic(base + g) for g in per_seed_gap], n_boot=500)
    assert single["value"] == pytest.approx(base.mean() + 0.05) and single["ci_low"] < single["value"] < single["ci_high"]
    with pytest.raises(ValueError, match="same reports"):
        hierarchical_paired_bootstrap([(mean_statistic(base), mean_statistic(base[:10]))])
