"""Descriptive statistics of report corpora and label tables, shared by the data chapters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rrgkit.labels import CHEXPERT_OBSERVATIONS

LABEL_STATES = {"positive": 1.0, "uncertain": -1.0, "negative": 0.0}


def word_count(texts: pd.Series) -> pd.Series:
    """Whitespace-token counts (0 for empty text); the unit used for report length."""
    return texts.fillna("").str.split().map(len)


def section_presence(frame: pd.DataFrame, sections: Sequence[str]) -> pd.DataFrame:
    """Share and count of reports with a non-empty value in each section column."""
    present = {s: (frame[s].fillna("").str.strip() != "") for s in sections}
    return pd.DataFrame(
        {"section": list(sections), "reports": [int(p.sum()) for p in present.values()], "share": [float(p.mean()) for p in present.values()]}
    )


def label_states(labels: pd.DataFrame, observations: Sequence[str] = CHEXPERT_OBSERVATIONS) -> pd.DataFrame:
    """Per observation, the share of rows that are positive, uncertain, negative or blank (not mentioned)."""
    rows = []
    for obs in observations:
        col = labels[obs]
        row = {"observation": obs, "blank": float(col.isna().mean())}
        row.update({state: float((col == value).mean()) for state, value in LABEL_STATES.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("observation")


def conditional_cooccurrence(labels: pd.DataFrame, observations: Sequence[str] = CHEXPERT_OBSERVATIONS[1:]) -> pd.DataFrame:
    """P(column positive | row positive) over rows, positives only (uncertain is not positive here)."""
    positive = (labels[list(observations)] == 1.0).to_numpy(dtype=float)
    counts = positive.T @ positive
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = counts / np.diag(counts)[:, None]
    return pd.DataFrame(cond, index=list(observations), columns=list(observations))


def lift(labels: pd.DataFrame, observations: Sequence[str] = CHEXPERT_OBSERVATIONS[1:]) -> pd.DataFrame:
    """P(a and b) / (P(a) P(b)) for positives: >1 means the pair co-occurs more than by chance."""
    positive = (labels[list(observations)] == 1.0).to_numpy(dtype=float)
    joint = positive.T @ positive / len(positive)
    marginal = positive.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = joint / np.outer(marginal, marginal)
    return pd.DataFrame(value, index=list(observations), columns=list(observations))
