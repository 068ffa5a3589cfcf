"""Per-report agreement of generated and reference findings, and a stated rule for picking examples (Fig. 4).

The paper shows three hand-picked reports. Picked by hand, examples show what the author wants
seen; here they are picked by a rule stated in advance (:func:`pick_examples`): among the studies
whose reference has at least one pathology, the worst, the median and the best by the report's own
F1 over the 14 observations, under the headline's uncertain policy.
"""

from __future__ import annotations

import numpy as np

from rrgkit.evaluation.clinical import binarize, confusion_counts
from rrgkit.labels import CHEXPERT_OBSERVATIONS

MARKS = ("agreement", "miss", "hallucination")
"""Stated by both / only by the reference / only by the generated report."""


def finding_marks(predicted: np.ndarray, reference: np.ndarray, uncertain: str = "positive") -> np.ndarray:
    """(n, 14) strings: ``agreement``, ``miss``, ``hallucination``, or ``""`` where neither states the observation."""
    stated, present = binarize(predicted, uncertain), binarize(reference, uncertain)
    marks = np.full(stated.shape, "", dtype=object)
    marks[stated & present] = MARKS[0]
    marks[~stated & present] = MARKS[1]
    marks[stated & ~present] = MARKS[2]
    return marks


def report_f1(predicted: np.ndarray, reference: np.ndarray, uncertain: str = "positive") -> np.ndarray:
    """Each report's F1 over the 14 observations; 1 when neither report states any (the example-F1 convention)."""
    tp, fp, fn = confusion_counts(predicted, reference, CHEXPERT_OBSERVATIONS, uncertain).sum(axis=2).T
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 1.0)


def pick_examples(f1: np.ndarray, reference: np.ndarray, ids: list[str], uncertain: str = "positive") -> dict[str, int]:
    """Indices of the ``worst``, ``median`` and ``best`` report by ``f1`` among studies with a reference pathology.

    Order: F1, then study id (so ties resolve the same way in every build); the median is the
    lower middle. Falls back to all studies when none has a pathology.
    """
    eligible = np.flatnonzero(binarize(reference, uncertain)[:, 1:].any(axis=1))
    if len(eligible) == 0:
        eligible = np.arange(len(f1))
    if len(eligible) == 0:
        raise ValueError("pick_examples: no reports to pick from")
    order = sorted(eligible, key=lambda i: (f1[i], ids[i]))
    return {"worst": int(order[0]), "median": int(order[(len(order) - 1) // 2]), "best": int(order[-1])}
