"""The CheXpert observation vocabulary shared by datasets, the labeler and the metrics.

Label values follow CheXpert: 1 positive, 0 negative (explicitly stated absent),
-1 uncertain, and NaN (blank) for "not mentioned".
"""

from __future__ import annotations

CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 observations in CheXpert's column order."""

PATHOLOGIES: tuple[str, ...] = CHEXPERT_OBSERVATIONS[1:]
"""The 13 observations that can be present in an image (everything but No Finding)."""

FIVE_OBSERVATIONS: tuple[str, ...] = (
    "Cardiomegaly",
    "Edema",
    "Consolidation",
    "Atelectasis",
    "Pleural Effusion",
)
"""The five observations that RRG papers report as F1-CXB-5."""

LABEL_VALUES: tuple[float, ...] = (1.0, 0.0, -1.0)
"""Allowed non-blank label values."""
