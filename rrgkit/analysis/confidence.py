"""Average confidence of a generated report, split by true and false positives (Lu et al. 2023, Eq. 4, Fig. 5).

AC(Y) = mean over generated tokens of p(y_t | C, y_<t). For each observation, a generated report
that states it (label 1 after labelling the generated text) is a true positive when the reference
labels it positive and a false positive (a hallucination) otherwise. If AC separated the two,
a reader could be warned; the paper finds overlapping distributions. We add the number that
summarises "overlap": the AUROC of AC for telling TP from FP (0.5 = no signal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from rrgkit.labels import CHEXPERT_OBSERVATIONS


def average_confidence(token_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 4 per report; a report with no generated token gets NaN."""
    return np.array([float(np.mean(p)) if len(p) else np.nan for p in token_probs])


def positive_outcomes(ac: np.ndarray, predicted: np.ndarray, reference: np.ndarray, observations: Sequence[str] = CHEXPERT_OBSERVATIONS[1:]) -> pd.DataFrame:
    """One row per (report, observation) the generated report calls positive: its AC and TP/FP outcome."""
    ac, predicted, reference = np.asarray(ac, float), np.asarray(predicted, float), np.asarray(reference, float)
    if not len(ac) == len(predicted) == len(reference):
        raise ValueError(f"positive_outcomes: {len(ac)} confidences, {len(predicted)} predicted and {len(reference)} reference label rows")
    rows = []
    for name in observations:
        j = CHEXPERT_OBSERVATIONS.index(name)
        for i in np.flatnonzero(predicted[:, j] == 1):
            rows.append({"report": int(i), "observation": name, "AC": ac[i], "outcome": "TP" if reference[i, j] == 1 else "FP"})
    return pd.DataFrame(rows, columns=["report", "observation", "AC", "outcome"])


def separability(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per observation: counts of TP and FP, mean AC of each, and the AUROC of AC for TP vs FP (NaN if one is empty)."""
    rows = []
    for name, group in [("all", outcomes), *outcomes.groupby("observation")]:
        tp, fp = group[group.outcome == "TP"].AC, group[group.outcome == "FP"].AC
        auc = roc_auc_score(group.outcome == "TP", group.AC) if len(tp) and len(fp) else np.nan
        rows.append({"observation": name, "n_TP": len(tp), "n_FP": len(fp), "AC_TP": tp.mean(), "AC_FP": fp.mean(), "AUROC": auc})
    return pd.DataFrame(rows)
