"""Descriptive statistics of report corpora, label tables and phantom studies, shared by the data chapters."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rrgkit.data.report_writer import LOW_INSPIRATION, ROTATED
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.phantom.state import Study

LABEL_STATES = {"positive": 1.0, "uncertain": -1.0, "negative": 0.0}

STUDY_KINDS = ("normal", "mild", "severe", "uncertain", "confounder")
"""The kinds of phantom study :func:`study_kind` tells apart, in the order the data chapter shows them."""
MILD_BELOW, SEVERE_FROM = 0.3, 0.7
"""Finding severity below which a finding is mild, and from which it is severe."""
BREAST_SHADOW = 0.45
"""Breast shadow density above which it can mimic basal opacity."""

_SENTENCE_END = re.compile(r"(?<=\.)\s+")


def word_count(texts: pd.Series) -> pd.Series:
    """Whitespace-token counts (0 for empty text); the unit used for report length."""
    return texts.fillna("").str.split().map(len)


def split_sentences(text: str) -> list[str]:
    """The sentences of a report, split at whitespace after a period: the unit in which report variety is counted."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def report_variety(texts: pd.Series) -> dict[str, float]:
    """Length and repetition of a set of reports: how far a model could get by memorising sentences or whole reports.

    Words are whitespace tokens (:func:`word_count`) and sentences those of :func:`split_sentences`;
    shares are percentages, NaN when there is no sentence at all.
    """
    if len(texts) == 0:
        raise ValueError("report_variety: no reports given")
    sentences = [split_sentences(t) for t in texts.fillna("")]
    every = [s for report in sentences for s in report]
    distinct = len(set(every))
    return {
        "reports": len(texts),
        "words per report (mean)": float(word_count(texts).mean()),
        "sentences per report (mean)": float(np.mean([len(report) for report in sentences])),
        "distinct sentences": distinct,
        "distinct / all sentences (%)": 100 * distinct / len(every) if every else float("nan"),
        "distinct reports (%)": 100 * texts.nunique() / len(texts),
    }


def study_kind(study: Study) -> str | None:
    """Which of :data:`STUDY_KINDS` a phantom study shows, or None when it is none of them (e.g. only moderate findings).

    The data chapter's gallery picks one study per kind to show what makes the benchmark hard. A
    *confounder* is a No Finding study with poor inspiration or rotation (the report writer's own
    thresholds) or a marked breast shadow; *normal* has No Finding and nothing in the image;
    *uncertain* carries a -1 label; *severe* has a finding of severity >= :data:`SEVERE_FROM`; *mild*
    only findings below :data:`MILD_BELOW`. Support devices count for none of the severities.
    The rules are tried in this order, so the first that fits names the study.
    """
    no_finding = study.labels[CHEXPERT_OBSERVATIONS.index("No Finding")] == 1
    shown = [f for f in study.findings if f.observation != "Support Devices"]
    p = study.patient
    if no_finding and (p.inspiration < LOW_INSPIRATION or abs(p.rotation) > ROTATED or p.breast > BREAST_SHADOW):
        return "confounder"
    if no_finding and not study.findings:
        return "normal"
    if any(v == -1 for v in study.labels):
        return "uncertain"
    if any(f.severity >= SEVERE_FROM for f in shown):
        return "severe"
    if shown and all(f.severity < MILD_BELOW for f in shown):
        return "mild"
    return None


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
