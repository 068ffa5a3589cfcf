"""Cosine similarity of soft visual prompts and the paper's Delta (Lu et al. 2023, Eq. 3, Appendix B).

Each prompt (K tokens of width D) is flattened to one vector of length K*D. Delta compares the mean
similarity of *positive* pairs (same label) with that of *negative* pairs (different labels):
Delta = mean_pos / mean_neg - 1. A larger Delta means the prompts keep images of one class
together relative to other classes, which the paper reads as better-preserved visual features.
The ratio needs a positive different-class mean (soft prompts share a large common component,
so in practice it is); :func:`delta` refuses otherwise.

The paper sorts single-label test samples by class. CheXpert labels are multi-label and may be
uncertain (-1), so the class of a sample is assigned by one stated rule (:func:`label_classes`):

* a pathology is *positive* when its label is 1, or -1 under ``uncertain="positive"`` (the policy of
  the headline F1-CXP-14, and the default); under ``uncertain="negative"`` a -1 is not positive;
  0 and blank are never positive;
* the class is the set of positive pathologies joined by '+'; a sample with none is "No Finding"
  (so a study whose only labels are uncertain is "No Finding" under ``"negative"`` and carries its
  uncertain findings under ``"positive"``);
* Eq. 3 uses only samples with at most one positive pathology (:func:`single_label_subset`), so that
  "same label" has the paper's meaning; pairs of a sample with itself are excluded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrgkit.evaluation.clinical import binarize
from rrgkit.labels import PATHOLOGIES


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


def label_classes(labels: np.ndarray, uncertain: str = "positive") -> list[str]:
    """A class name per sample (14 CheXpert columns): its positive pathologies joined by '+', or 'No Finding'.

    ``uncertain`` says whether a -1 is positive (see the module docstring).
    """
    positive = binarize(np.asarray(labels, dtype=float)[:, 1:], uncertain)
    return ["+".join(n for n, p in zip(PATHOLOGIES, row, strict=True) if p) or "No Finding" for row in positive]


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


def single_label_subset(labels: np.ndarray, uncertain: str = "positive") -> np.ndarray:
    """Indices of samples with at most one positive pathology under ``uncertain`` (the paper's single-label view)."""
    positives = binarize(np.asarray(labels, dtype=float)[:, 1:], uncertain).sum(axis=1)
    return np.flatnonzero(positives <= 1)


def mean_similarity(similarity: np.ndarray) -> float:
    """Mean cosine over distinct pairs (the off-diagonal): the paper's "smaller cosine similarity on average"."""
    if len(similarity) < 2:
        raise ValueError("mean_similarity needs at least two samples")
    return float(similarity[~np.eye(len(similarity), dtype=bool)].mean())


def prompt_map(prompts: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """(n, 2) UMAP of flattened prompts, after removing their mean and scaling to unit mean squared norm.

    Soft prompts share a large common component and may differ by tiny amounts; centring and scaling
    keep the map about how they differ, whatever their size. Prompts that differ by less than a millionth
    of their size (float rounding) are refused. Initialised from PCA (no spectral
    step, which warns on a disconnected neighbour graph) and single-threaded, so a seed repeats it.
    """
    import umap

    flat = np.asarray(prompts, dtype=np.float64).reshape(len(prompts), -1)
    if len(flat) < 3:
        raise ValueError(f"prompt_map needs at least three prompts, got {len(flat)}")
    centred = flat - flat.mean(axis=0)
    size = float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
    if size <= 1e-6 * float(np.sqrt(np.mean(np.sum(flat**2, axis=1)))):  # below that, differences are float rounding
        raise ValueError("prompt_map: every soft prompt is the same (to a millionth of its size); there is nothing to map")
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(flat) - 1), init="pca", random_state=seed, n_jobs=1)
    return reducer.fit_transform(centred / size)
