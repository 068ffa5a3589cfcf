"""Bootstrap and seed statistics: CIs behave as CIs, vectorised resampling equals the loop."""

import numpy as np
import pytest

from rrgkit.evaluation.stats import (SumStatistic, aggregate_seeds, bootstrap_ci, format_ci, interval_column, mean_statistic,
                                     paired_bootstrap)


def _values(n, seed=0):
    return np.random.default_rng(seed).normal(0.5, 0.2, size=n)


def test_ci_contains_point_estimate_and_shrinks_with_n():
    widths = []
    for n in (50, 200, 800):
        ci = bootstrap_ci(mean_statistic(_values(n)), n, n_boot=500, seed=1)
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
        widths.append(ci["ci_high"] - ci["ci_low"])
    assert widths[0] > widths[1] > widths[2]
    # a mean's 95% bootstrap CI is close to ±1.96 σ/√n
    assert widths[2] == pytest.approx(2 * 1.96 * 0.2 / np.sqrt(800), rel=0.25)


def test_vectorised_equals_callable_on_same_resamples():
    x = _values(60)
    vec = bootstrap_ci(mean_statistic(x), len(x), n_boot=300, seed=7)
    loop = bootstrap_ci(lambda idx: float(x[idx].mean()), len(x), n_boot=300, seed=7)
    assert vec == pytest.approx(loop, abs=1e-12)


def test_same_seed_same_interval_other_seed_differs():
    stat = mean_statistic(_values(100))
    assert bootstrap_ci(stat, 100, seed=3) == bootstrap_ci(stat, 100, seed=3)
    assert bootstrap_ci(stat, 100, seed=3) != bootstrap_ci(stat, 100, seed=4)


def test_ratio_statistic_is_ratio_of_sums():
    stat = SumStatistic(np.array([[1.0, 2.0], [3.0, 2.0]]), lambda s: s[..., 0] / s[..., 1])
    assert stat.value() == pytest.approx(1.0)
    np.testing.assert_allclose(stat.on_weights(np.array([[2.0, 0.0], [0.0, 2.0]])), [0.5, 1.5])


def test_paired_bootstrap_identical_systems_is_centred_at_zero():
    stat = mean_statistic(_values(200))
    out = paired_bootstrap(stat, stat, 200, n_boot=300)
    assert out["diff"] == 0 and out["ci_low"] == 0 and out["ci_high"] == 0
    assert out["p"] == 1.0


def test_paired_bootstrap_detects_a_real_difference_that_unpaired_cis_miss():
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.3, size=300)
    better = base + 0.02 + rng.normal(0, 0.01, size=300)  # same reports, consistently a bit better
    out = paired_bootstrap(mean_statistic(better), mean_statistic(base), 300, n_boot=1000)
    assert out["diff"] == pytest.approx(0.02, abs=0.005)
    assert out["ci_low"] > 0 and out["p"] < 0.01
    a = bootstrap_ci(mean_statistic(better), 300)
    b = bootstrap_ci(mean_statistic(base), 300)
    assert a["ci_low"] < b["ci_high"]  # the marginal intervals overlap


def test_aggregate_seeds_t_interval():
    out = aggregate_seeds([0.30, 0.32, 0.31])
    assert out["mean"] == pytest.approx(0.31)
    assert out["std"] == pytest.approx(0.01)
    half = 4.302652729911275 * 0.01 / np.sqrt(3)  # t(0.975, df=2)
    assert out["ci_low"] == pytest.approx(0.31 - half) and out["ci_high"] == pytest.approx(0.31 + half)
    assert out["n"] == 3
    single = aggregate_seeds([0.3])
    assert single["mean"] == 0.3 and np.isnan(single["ci_low"]) and single["n"] == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: bootstrap_ci(mean_statistic(_values(5)), 5, n_boot=0), "n_boot must be >= 1"),
        (lambda: bootstrap_ci(mean_statistic(_values(5)), 5, alpha=1.5), "alpha must be in"),
        (lambda: bootstrap_ci(mean_statistic(_values(5)), 6), "statistics for 5 reports but n=6"),
        (lambda: aggregate_seeds([]), "need one or more finite values"),
        (lambda: aggregate_seeds([0.1, float("nan")]), "need one or more finite values"),
        (lambda: SumStatistic(np.zeros((0, 2)), np.sum), "non-empty"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_undefined_resamples_are_left_out_and_all_undefined_is_nan():
    # precision of one rare positive: resamples that miss it have 0/0 predicted positives
    rare = SumStatistic(np.array([[1.0, 1.0]] + [[0.0, 0.0]] * 9), lambda s: np.divide(s[..., 0], s[..., 1], out=np.full(s.shape[:-1], np.nan), where=s[..., 1] > 0))
    ci = bootstrap_ci(rare, 10, n_boot=200)
    assert ci == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    never = SumStatistic(np.zeros((10, 2)), lambda s: np.full(s.shape[:-1], np.nan))
    out = bootstrap_ci(never, 10, n_boot=50)
    assert np.isnan(out["ci_low"]) and np.isnan(out["ci_high"])


def test_format_ci_scales_and_rounds():
    ci = {"value": 0.5, "ci_low": 0.25, "ci_high": 0.875}
    assert format_ci(ci) == "50.0 [25.0, 87.5]"
    assert format_ci(ci, scale=1, digits=2) == "0.50 [0.25, 0.88]"
    assert format_ci({"value": 0.5, "ci_low": float("nan"), "ci_high": float("nan")}) == "50.0 [nan, nan]"


def test_interval_column_formats_each_row_as_format_ci_does():
    import pandas as pd

    frame = pd.DataFrame({"diff": [0.012, -0.5], "ci_low": [-0.004, -0.75], "ci_high": [0.03, -0.25]})
    assert interval_column(frame, "diff", signed=True) == ["+1.2 [-0.4, +3.0]", "-50.0 [-75.0, -25.0]"]
    assert interval_column(frame, "diff", scale=1, digits=2) == ["0.01 [-0.00, 0.03]", "-0.50 [-0.75, -0.25]"]
