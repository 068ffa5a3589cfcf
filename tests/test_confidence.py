"""Eq. 4, the TP/FP split under each uncertain policy, report-level AUROC intervals, calibration: hand-computable cases."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rrgkit.analysis.calibration import expected_calibration_error, fit_temperature, reliability_table, scaled_probability
from rrgkit.analysis.confidence import (auroc_statistic, average_confidence, pooled_auroc, pooled_auroc_difference,
                                        positive_outcomes, separability)
from rrgkit.labels import CHEXPERT_OBSERVATIONS

CARDIO, EDEMA = CHEXPERT_OBSERVATIONS.index("Cardiomegaly"), CHEXPERT_OBSERVATIONS.index("Edema")


def test_average_confidence_is_the_mean_token_probability():
    ac = average_confidence([np.array([0.9, 0.8, 0.7]), np.array([0.25, 0.75]), np.array([])])
    assert ac[:2] == pytest.approx([0.8, 0.5]) and np.isnan(ac[2])


def _labels(entries):
    out = np.full((3, 14), np.nan)
    for (i, j), v in entries.items():
        out[i, j] = v
    return out


def test_uncertain_findings_follow_the_policy_on_both_sides():
    predicted = _labels({(0, CARDIO): 1, (1, EDEMA): -1, (2, CARDIO): 1})
    reference = _labels({(0, CARDIO): -1, (1, EDEMA): -1, (2, CARDIO): 0})
    ac = np.array([0.9, 0.6, 0.3])
    upos = positive_outcomes(ac, predicted, reference, uncertain="positive")
    assert list(zip(upos.report, upos.observation, upos.outcome)) == [
        (0, "Cardiomegaly", "TP"), (2, "Cardiomegaly", "FP"), (1, "Edema", "TP")]  # -1 is positive on both sides
    uneg = positive_outcomes(ac, predicted, reference, uncertain="negative")
    assert list(zip(uneg.report, uneg.observation, uneg.outcome)) == [
        (0, "Cardiomegaly", "FP"), (2, "Cardiomegaly", "FP")]  # the hedged edema is not stated; a hedged reference is not a positive
    assert upos.AC.tolist() == [0.9, 0.3, 0.6]
    with pytest.raises(ValueError, match="uncertain"):
        positive_outcomes(ac, predicted, reference, uncertain="maybe")


def _outcomes():
    # report 0 states a TP and an FP with the same AC (one report, two rows); report 1 an FP; report 2 a TP
    return pd.DataFrame({"report": [0, 0, 1, 2], "observation": ["Cardiomegaly", "Edema", "Cardiomegaly", "Cardiomegaly"],
                         "AC": [0.9, 0.9, 0.5, 0.7], "outcome": ["TP", "FP", "FP", "TP"]})


def test_auroc_counts_ties_as_half_and_resamples_reports_not_rows():
    outcomes = _outcomes()
    stat = auroc_statistic(outcomes, n_reports=4)  # report 3 states nothing but is still a sampling unit
    assert stat.value() == pytest.approx(2.5 / 4)  # pairs: tie, win, loss, win
    assert stat.value() == pytest.approx(roc_auc_score(outcomes.outcome == "TP", outcomes.AC))
    # report 0 drawn twice, report 1 once, reports 2 and 3 not: both of report 0's rows count twice
    assert stat.on_weights(np.array([[2.0, 1.0, 0.0, 0.0]]))[0] == pytest.approx((0.5 * 2 * 2 + 1 * 2 * 1) / (2 * 3))
    assert np.isnan(stat.on_weights(np.array([[0.0, 1.0, 0.0, 1.0]]))[0])  # no TP drawn: undefined
    with pytest.raises(ValueError, match="report indices"):
        auroc_statistic(outcomes, n_reports=2)


def test_separability_gives_intervals_that_contain_the_estimate():
    rng = np.random.default_rng(0)
    n = 200
    tp = rng.uniform(size=n) < 0.6
    outcomes = pd.DataFrame({"report": np.arange(n), "observation": np.where(np.arange(n) % 2, "Edema", "Cardiomegaly"),
                             "AC": np.where(tp, rng.normal(0.7, 0.1, n), rng.normal(0.6, 0.1, n)),
                             "outcome": np.where(tp, "TP", "FP")})
    table = separability(outcomes, n, n_boot=300).set_index("observation")
    assert list(table.index) == ["all", "Cardiomegaly", "Edema"]
    row = table.loc["all"]
    assert row.n_TP + row.n_FP == n and row.ci_low < row.AUROC < row.ci_high
    assert 0.6 < row.AUROC < 0.85


def test_pooled_auroc_averages_seeds_and_skips_seeds_without_both_outcomes():
    one = _outcomes().assign(seed=0, n_reports=4)
    other = _outcomes().assign(seed=1, n_reports=4, AC=[0.9, 0.1, 0.2, 0.8])  # perfect separation
    no_fp = _outcomes().query("outcome == 'TP'").assign(seed=2, n_reports=4)
    result = pooled_auroc(pd.concat([one, other, no_fp]), n_boot=200)
    assert result["n_seeds"] == 2 and result["per_seed"] == pytest.approx([0.625, 1.0])
    assert result["value"] == pytest.approx(0.8125)
    assert result["ci_low"] <= result["value"] <= result["ci_high"]
    assert np.isnan(pooled_auroc(no_fp, n_boot=50)["value"])
    same = pooled_auroc_difference(pd.concat([one, other]).assign(copy=lambda t: t.AC), "copy", "AC", n_boot=100)
    assert same["diff"] == 0 and same["ci_low"] == 0 == same["ci_high"]


def test_ece_is_zero_when_calibrated_and_the_gap_when_not():
    truth = np.array([1] * 9 + [0])
    assert expected_calibration_error(np.full(10, 0.9), truth) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(10, 0.9), np.array([1, 0] * 5)) == pytest.approx(0.4)
    p = np.array([0.2] * 5 + [0.8] * 5)
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0)
    table = reliability_table(p, y, n_bins=10)
    assert list(table.n) == [5, 5] and table.frequency.tolist() == pytest.approx([0.2, 0.8])
    # half the cases at 0.3 with frequency 0.5, half at 0.7 with frequency 1: (0.2 + 0.3) / 2
    assert expected_calibration_error([0.3, 0.3, 0.7, 0.7], [1, 0, 1, 1]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="0 or 1"):
        expected_calibration_error([0.5], [2])


def test_temperature_scaling_recovers_an_overconfident_scale():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = (rng.uniform(size=z.size) < scaled_probability(z)).astype(float)
    assert fit_temperature(3 * z, y) == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(scaled_probability(3 * z), y)
    after = expected_calibration_error(scaled_probability(3 * z, fit_temperature(3 * z, y)), y)
    assert after < before / 3
    with pytest.raises(ValueError, match="temperature"):
        scaled_probability(z, 0.0)
