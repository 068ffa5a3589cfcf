"""Average confidence of a generated report, split by true and false positives (Lu et al. 2023, Eq. 4, Fig. 5).

AC(Y) = mean over generated tokens of p(y_t | C, y_<t). For each observation, a generated report
that states it is a true positive when the reference has it and a false positive (a hallucination)
otherwise. "States" and "has" follow one uncertain policy (:func:`rrgkit.evaluation.clinical.binarize`):
with ``uncertain="positive"``, the headline F1-CXP-14's convention, a -1 counts as positive on
both sides, so a hedged finding the reference also hedges is a true positive, as it is in the F1.

If AC separated the two, a reader could be warned; the paper finds overlapping distributions. The
number that summarises "overlap" is the AUROC of AC for telling TP from FP (0.5 = no signal). A
report states several findings, and they share its one AC, so rows are not independent: the
interval resamples *reports* (:func:`auroc_statistic` makes the AUROC a bootstrappable
:class:`~rrgkit.evaluation.stats.SumStatistic` of per-report row memberships).
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings

import numpy as np
import pandas as pd

from rrgkit.evaluation.clinical import binarize
from rrgkit.evaluation.stats import SumStatistic, bootstrap_ci, hierarchical_bootstrap, hierarchical_paired_bootstrap
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES

AUROC_MARGIN = 0.10
"""How far from 0.5 an AUROC may lie and still count as "does not separate" (claim C6).

The verdict rule's default margin is 1 F1 point; an AUROC needs its own. Below 0.6 a score is
conventionally said to fail at discrimination (the bands 0.5-0.6 fail, 0.6-0.7 poor, 0.7-0.8 fair,
...), which is what "extremely challenging to signal potential mistakes" claims for AC.
"""


def average_confidence(token_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 4 per report; a report with no generated token gets NaN."""
    return np.array([float(np.mean(p)) if len(p) else np.nan for p in token_probs])


def positive_outcomes(ac: np.ndarray, predicted: np.ndarray, reference: np.ndarray,
                      observations: Sequence[str] = PATHOLOGIES, uncertain: str = "positive") -> pd.DataFrame:
    """One row per (report, observation) the generated report states: its AC and TP/FP outcome.

    A report "states" an observation, and the reference "has" it, by :func:`binarize` under
    ``uncertain`` (default: as the headline F1 counts them).
    """
    ac, predicted, reference = np.asarray(ac, float), np.asarray(predicted, float), np.asarray(reference, float)
    if not len(ac) == len(predicted) == len(reference):
        raise ValueError(f"positive_outcomes: {len(ac)} confidences, {len(predicted)} predicted and {len(reference)} reference label rows")
    stated, present = binarize(predicted, uncertain), binarize(reference, uncertain)
    rows = []
    for name in observations:
        j = CHEXPERT_OBSERVATIONS.index(name)
        for i in np.flatnonzero(stated[:, j]):
            rows.append({"report": int(i), "observation": name, "AC": ac[i], "outcome": "TP" if present[i, j] else "FP"})
    return pd.DataFrame(rows, columns=["report", "observation", "AC", "outcome"])


def _weighted_auroc(tp: np.ndarray, fp: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """AUROC from row weights (..., m_TP), (..., m_FP) and the win matrix (1 / 0.5 / 0 per TP-FP pair)."""
    num = np.einsum("...i,ij,...j->...", tp, wins, fp)
    den = tp.sum(-1) * fp.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def auroc_statistic(outcomes: pd.DataFrame, n_reports: int, score: str = "AC") -> SumStatistic:
    """AUROC of ``score`` for TP vs FP as a statistic whose sampling unit is the report.

    The per-report statistic is the report's membership of each row (an (n_reports, rows) 0/1
    matrix), so a resample's row weights are ``weights @ membership`` and its AUROC the weighted
    Mann-Whitney statistic: each TP-FP pair counts 1 when the TP scores higher, 1/2 on a tie. NaN
    where the rows lack a TP or an FP. Rows with a NaN score are dropped.
    """
    rows = outcomes[np.isfinite(outcomes[score].to_numpy(dtype=float))]
    reports = rows["report"].to_numpy(dtype=int)
    if len(reports) and (reports.min() < 0 or reports.max() >= n_reports):
        raise ValueError(f"auroc_statistic: report indices must lie in [0, {n_reports}); got {reports.min()}..{reports.max()}")
    membership = np.zeros((n_reports, len(rows)))
    membership[reports, np.arange(len(rows))] = 1.0
    is_tp = (rows["outcome"] == "TP").to_numpy()
    values = rows[score].to_numpy(dtype=float)
    s_tp, s_fp = values[is_tp], values[~is_tp]
    wins = (s_tp[:, None] > s_fp[None, :]) + 0.5 * (s_tp[:, None] == s_fp[None, :])
    return SumStatistic(membership, lambda s: _weighted_auroc(s[..., is_tp], s[..., ~is_tp], wins))


def separability(outcomes: pd.DataFrame, n_reports: int, score: str = "AC", n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """Per observation and over all ("all"): TP and FP counts, their mean score, and the AUROC with a report-bootstrap CI."""
    rows = []
    for name, group in [("all", outcomes), *outcomes.groupby("observation", sort=False)]:
        tp, fp = group[group.outcome == "TP"][score], group[group.outcome == "FP"][score]
        auc = {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
        if len(tp) and len(fp):
            auc = bootstrap_ci(auroc_statistic(group, n_reports, score), n_reports, n_boot=n_boot, seed=seed)
        rows.append({"observation": name, "n_TP": len(tp), "n_FP": len(fp), f"{score}_TP": tp.mean(),
                     f"{score}_FP": fp.mean(), "AUROC": auc["value"], "ci_low": auc["ci_low"], "ci_high": auc["ci_high"]})
    return pd.DataFrame(rows)


def _by_seed(outcomes: pd.DataFrame, scores: Sequence[str]) -> list[list[SumStatistic]]:
    """Per seed with a defined AUROC for every score: its statistics (rows where all scores are finite)."""
    kept = []
    for _, rows in outcomes.groupby("seed", sort=True):
        n_reports = int(rows["n_reports"].iloc[0])
        rows = rows[np.isfinite(rows[list(scores)].to_numpy(dtype=float)).all(axis=1)]
        stats = [auroc_statistic(rows, n_reports, score) for score in scores]
        if all(np.isfinite(s.value()) for s in stats):
            kept.append(stats)
    return kept


def _quiet(fn, *args, **kwargs) -> dict:
    """A hierarchical bootstrap whose replicates may all be undefined for a drawn seed (no FP among its drawn
    reports); numpy warns on such an all-NaN mean, and the interval leaves those replicates out anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return fn(*args, **kwargs)


def pooled_auroc(outcomes: pd.DataFrame, score: str = "AC", n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean over seeds of the per-seed AUROC (TP vs FP), with a seeds-then-reports 95 % interval.

    ``outcomes`` holds :func:`positive_outcomes` rows of several runs, with columns ``seed`` and
    ``n_reports`` (the run's test reports). Pooling rows across seeds would count one study's reports
    by different models as independent; averaging per-seed AUROCs and resampling seeds, then each
    seed's reports (:func:`rrgkit.evaluation.stats.hierarchical_bootstrap`), does not. Seeds without a
    TP or an FP are left out (``n_seeds`` says how many count); with none, everything is NaN.
    """
    kept = _by_seed(outcomes, [score])
    if not kept:
        return {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_seeds": 0, "sd_seeds": np.nan, "per_seed": []}
    return _quiet(hierarchical_bootstrap, [k[0] for k in kept], n_boot=n_boot, seed=seed)


def pooled_auroc_difference(outcomes: pd.DataFrame, score_a: str, score_b: str, n_boot: int = 2000,
                            seed: int = 0) -> dict:
    """AUROC of ``score_a`` minus that of ``score_b`` on the same rows, paired per seed and resample (see :func:`pooled_auroc`)."""
    kept = _by_seed(outcomes, [score_a, score_b])
    if not kept:
        return {"diff": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_seeds": 0, "sd_seeds": np.nan, "per_seed": []}
    return _quiet(hierarchical_paired_bootstrap, [(a, b) for a, b in kept], n_boot=n_boot, seed=seed)
