"""Clinical-efficacy scores: F1 between CheXpert labels of generated and reference reports.

Papers call this "F1-CheXbert" (F1-CXB-14 / F1-CXB-5) but differ, mostly
silently, in three choices; every variant here is named by all three:

``F1-CXP-{14|5}-{micro|macro|example}-{upos|uneg}``

* **observations** — ``14``: all 14 CheXpert columns *including No Finding*;
  ``5``: :data:`rrgkit.labels.FIVE_OBSERVATIONS`.
* **average** — ``micro``: TP/FP/FN summed over reports and observations;
  ``macro``: mean of per-observation F1, an observation with no positive in
  either matrix scoring 0; ``example``: mean over reports of each report's F1
  (a report with no positive in either scores 1).
* **uncertain policy** — ``upos``: -1 counts as positive; ``uneg``: as negative.
  Blank (NaN, "not mentioned") is always negative.

The headline ``F1-CXP-14`` / ``F1-CXP-5`` is ``micro-upos``, which is what the
``f1chexbert`` package computes: its ``get_label(mode="rrg")`` maps CheXbert's
classes positive and uncertain to 1 and negative and blank to 0, then takes the
"micro avg" f1 of sklearn's multilabel ``classification_report`` over all 14
``target_names`` (No Finding included) and over the five for F1-CXB-5; its
"macro avg" (zero_division default → 0) is our ``macro-upos``. rrgkit's labels
come from a rule labeler, not CheXbert, hence "CXP" (CheXpert labels) in the
names rather than "CXB".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rrgkit.evaluation.stats import SumStatistic, bootstrap_ci
from rrgkit.labels import CHEXPERT_OBSERVATIONS, FIVE_OBSERVATIONS

UNCERTAIN_POLICIES = {"positive": "upos", "negative": "uneg"}
AVERAGES = ("micro", "macro", "example")
OBSERVATION_SETS: dict[str, tuple[str, ...]] = {"14": CHEXPERT_OBSERVATIONS, "5": FIVE_OBSERVATIONS}
HEADLINE = {"F1-CXP-14": "F1-CXP-14-micro-upos", "F1-CXP-5": "F1-CXP-5-micro-upos"}


def check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Validate an (n, 14) label matrix of 1 / 0 / -1 / NaN in CheXpert column order; returns it as float."""
    arr = np.asarray(labels, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(CHEXPERT_OBSERVATIONS):
        raise ValueError(
            f"{name} labels must have shape (n, {len(CHEXPERT_OBSERVATIONS)}) in CheXpert order "
            f"(rrgkit.labels.CHEXPERT_OBSERVATIONS), got {arr.shape}"
        )
    bad = ~(np.isnan(arr) | np.isin(arr, (1.0, 0.0, -1.0)))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} labels hold {arr[row, col]!r} at row {row}, column {CHEXPERT_OBSERVATIONS[col]!r}; "
            "allowed: 1 (positive), 0 (negative), -1 (uncertain), NaN (not mentioned)"
        )
    return arr


def binarize(labels: np.ndarray, uncertain: str = "positive") -> np.ndarray:
    """Positive mask of a label matrix: 1 → True, -1 → True iff ``uncertain="positive"``, 0 and NaN → False."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {sorted(UNCERTAIN_POLICIES)}, got {uncertain!r}")
    arr = np.asarray(labels, dtype=np.float64)
    return (arr == 1) | ((arr == -1) if uncertain == "positive" else False)


def _columns(observations: Sequence[str]) -> list[int]:
    unknown = [o for o in observations if o not in CHEXPERT_OBSERVATIONS]
    if unknown or not observations:
        raise ValueError(f"observations must be a non-empty subset of rrgkit.labels.CHEXPERT_OBSERVATIONS; unknown: {unknown}")
    return [CHEXPERT_OBSERVATIONS.index(o) for o in observations]


def _pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = check_labels(pred, "predicted"), check_labels(ref, "reference")
    if pred.shape != ref.shape:
        raise ValueError(f"predicted labels {pred.shape} and reference labels {ref.shape} differ in shape; one row per report pair")
    return pred, ref


def confusion_counts(
    pred: np.ndarray, ref: np.ndarray, observations: Sequence[str] = CHEXPERT_OBSERVATIONS, uncertain: str = "positive"
) -> np.ndarray:
    """Per-report TP, FP, FN per observation, shape (n, 3, len(observations))."""
    pred, ref = _pair(pred, ref)
    cols = _columns(observations)
    p, r = binarize(pred[:, cols], uncertain), binarize(ref[:, cols], uncertain)
    return np.stack([p & r, p & ~r, ~p & r], axis=1).astype(np.float64)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, empty: float) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), empty)


def _micro(sums: np.ndarray, m: int) -> np.ndarray:
    c = sums.reshape(*sums.shape[:-1], 3, m).sum(axis=-1)
    return _f1(c[..., 0], c[..., 1], c[..., 2], 0.0)


def _macro(sums: np.ndarray, m: int) -> np.ndarray:
    c = sums.reshape(*sums.shape[:-1], 3, m)
    return _f1(c[..., 0, :], c[..., 1, :], c[..., 2, :], 0.0).mean(axis=-1)


def f1_statistic(
    pred: np.ndarray,
    ref: np.ndarray,
    observations: Sequence[str] = CHEXPERT_OBSERVATIONS,
    uncertain: str = "positive",
    average: str = "micro",
) -> SumStatistic:
    """The F1 variant as a :class:`SumStatistic`, so it can be bootstrapped by one matrix product."""
    counts = confusion_counts(pred, ref, observations, uncertain)
    n, _, m = counts.shape
    if average == "example":
        per_report = _f1(*counts.sum(axis=2).T, 1.0)
        return SumStatistic(np.column_stack([per_report, np.ones(n)]), lambda s: s[..., 0] / s[..., 1])
    if average == "micro":
        return SumStatistic(counts.reshape(n, 3 * m), lambda s: _micro(s, m))
    if average == "macro":
        return SumStatistic(counts.reshape(n, 3 * m), lambda s: _macro(s, m))
    raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")


def f1_scores(
    pred: np.ndarray,
    ref: np.ndarray,
    observations: Sequence[str] = CHEXPERT_OBSERVATIONS,
    uncertain: str = "positive",
    average: str = "micro",
) -> float:
    """F1 of predicted against reference labels under one convention (see the module docstring)."""
    return f1_statistic(pred, ref, observations, uncertain, average).value()


def variant_name(observation_set: str, average: str, uncertain: str) -> str:
    """``F1-CXP-14-micro-upos`` and friends; ``observation_set`` is "14" or "5"."""
    return f"F1-CXP-{observation_set}-{average}-{UNCERTAIN_POLICIES[uncertain]}"


def f1_variants(pred: np.ndarray, ref: np.ndarray) -> dict[str, SumStatistic]:
    """Every named variant: {14, 5} × {micro, macro, example} × {upos, uneg}, plus the headline aliases."""
    out = {
        variant_name(key, average, uncertain): f1_statistic(pred, ref, obs, uncertain, average)
        for key, obs in OBSERVATION_SETS.items()
        for average in AVERAGES
        for uncertain in UNCERTAIN_POLICIES
    }
    out.update({alias: out[name] for alias, name in HEADLINE.items()})
    return out


def per_observation(
    pred: np.ndarray,
    ref: np.ndarray,
    observations: Sequence[str] = CHEXPERT_OBSERVATIONS,
    uncertain: str = "positive",
    n_boot: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Precision, recall, F1, support (reference positives) and predicted positives per observation.

    With ``n_boot > 0`` adds percentile-bootstrap CIs (``f1_ci_low``, ``f1_ci_high``,
    and the same for precision and recall). Undefined ratios (no positives) are NaN here,
    not 0, so a table never hides an empty class.
    """
    counts = confusion_counts(pred, ref, observations, uncertain)
    n, _, m = counts.shape
    tp, fp, fn = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "observation": list(observations),
                "precision": tp / (tp + fp),
                "recall": tp / (tp + fn),
                "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
                "support": (tp + fn).astype(int),
                "predicted": (tp + fp).astype(int),
            }
        )
    if n_boot > 0:
        flat = counts.reshape(n, 3 * m)
        measures = {
            "precision": lambda t, f_p, f_n: t / (t + f_p),
            "recall": lambda t, f_p, f_n: t / (t + f_n),
            "f1": lambda t, f_p, f_n: 2 * t / (2 * t + f_p + f_n),
        }
        for name, fn_ in measures.items():
            lows, highs = [], []
            for j in range(m):
                stat = SumStatistic(flat[:, [j, m + j, 2 * m + j]], lambda s, f=fn_: _nan_ratio(f, s))
                ci = bootstrap_ci(stat, n, n_boot=n_boot, seed=seed, alpha=alpha)
                lows.append(ci["ci_low"])
                highs.append(ci["ci_high"])
            table[f"{name}_ci_low"], table[f"{name}_ci_high"] = lows, highs
    return table


def _nan_ratio(fn, sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return fn(sums[..., 0], sums[..., 1], sums[..., 2])


def auc_per_observation(
    scores: np.ndarray, ref: np.ndarray, observations: Sequence[str] = CHEXPERT_OBSERVATIONS, uncertain: str = "positive"
) -> dict[str, float]:
    """ROC AUC per observation of continuous scores (n, 14) against binarised reference labels.

    NaN for an observation whose reference column has a single class (AUC undefined).
    """
    from sklearn.metrics import roc_auc_score

    ref = check_labels(ref, "reference")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != ref.shape or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be finite with the reference labels' shape {ref.shape}, got {scores.shape}")
    truth = binarize(ref, uncertain)
    out = {}
    for obs, j in zip(observations, _columns(observations)):
        y = truth[:, j]
        out[obs] = float(roc_auc_score(y, scores[:, j])) if 0 < y.sum() < len(y) else float("nan")
    return out
