"""Cosine similarity of soft visual prompts and the paper's Delta (Lu et al. 2023, Eq. 3, Appendix B).

Each prompt (K tokens of width D) is flattened to one vector of length K*D. Delta compares the mean
similarity of *positive* pairs (same label) with that of *negative* pairs (different labels):
Delta = mean_pos / mean_neg - 1. A larger Delta means the prompts keep images of one class
together relative to other classes, which the paper reads as better-preserved visual features.
The ratio needs a positive different-class mean (soft prompts share a large common component,
so in practice it is); :func:`delta` refuses otherwise.

The paper sorts single-label test samples by class. CheXpert labels are multi-label, so a
sample's *class* here is the set of its positive observations (1 only; 0, -1 and blank are not
positive); by default only samples with at most one positive pathology are used, so that "same
label" has the paper's meaning, and pairs of a sample with itself are excluded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrgkit.labels import CHEXPERT_OBSERVATIONS


def cosine_matrix(prompts: np.ndarray) -> np.ndarray:
    """(n, n) cosine similarity of flattened prompts; ``prompts`` is (n, K, D) or (n, K*D)."""
    flat = np.asarray(prompts, dtype=np.float64).reshape(len(prompts), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("cosine_matrix: a soft prompt is all zeros; cosine similarity is undefined for it")
    unit = flat / norms
    return unit @ unit.T


def image_dependent_share(prompts: np.ndarray) -> float:
    """Share of the prompts' mean squared norm that varies between images: trace(Cov) / mean ||p||^2.

    Cosine similarity alone cannot tell "prompts differ a little in a meaningful way" from "every
    image gets the same prompt"; this share is 0 exactly when the language model receives one
    prompt for all images (it cannot see), and 1 when the prompts have no common component.
    """
    flat = np.asarray(prompts, dtype=np.float64).reshape(len(prompts), -1)
    if len(flat) < 2:
        raise ValueError("image_dependent_share needs at least two prompts")
    total = float(np.mean(np.sum(flat**2, axis=1)))
    if total == 0:
        raise ValueError("image_dependent_share: every soft prompt is all zeros")
    return float(np.sum(flat.var(axis=0)) / total)


def label_classes(labels: np.ndarray) -> list[str]:
    """A class name per sample: its positive pathologies joined by '+', or 'No Finding' when none."""
    names = CHEXPERT_OBSERVATIONS[1:]
    positive = np.asarray(labels, dtype=float)[:, 1:] == 1
    return ["+".join(n for n, p in zip(names, row, strict=True) if p) or "No Finding" for row in positive]


def delta(similarity: np.ndarray, classes: Sequence[str]) -> float:
    """Eq. 3: mean cosine over same-class pairs divided by that over different-class pairs, minus 1."""
    classes = np.asarray(classes)
    if similarity.shape != (len(classes), len(classes)):
        raise ValueError(f"delta: similarity is {similarity.shape} but there are {len(classes)} classes")
    same = classes[:, None] == classes[None, :]
    off_diagonal = ~np.eye(len(classes), dtype=bool)
    positive, negative = similarity[same & off_diagonal], similarity[~same]
    if positive.size == 0 or negative.size == 0:
        raise ValueError("delta: need at least two samples of one class and two different classes")
    if negative.mean() <= 0:
        raise ValueError(f"delta: mean different-class cosine is {negative.mean():.3f} <= 0, where Eq. 3's ratio has no meaning; "
                         "report the two means instead")
    return float(positive.mean() / negative.mean() - 1.0)


def single_label_subset(labels: np.ndarray) -> np.ndarray:
    """Indices of samples with at most one positive pathology (the paper's single-label view)."""
    positives = (np.asarray(labels, dtype=float)[:, 1:] == 1).sum(axis=1)
    return np.flatnonzero(positives <= 1)
