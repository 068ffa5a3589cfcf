"""Which sentence of a report states which finding, the sentences a dataset uses to state one, and report edits.

The labeler classifies each mention inside its clause, and a clause never crosses a full stop, so
labelling each sentence on its own (:func:`sentence_labels`) says which sentences state a finding
(No Finding, derived from the whole text, is left out). That gives, per observation, the dataset's
own way of affirming and of denying it (:func:`finding_statements`: the most frequent training
sentence that states it and no other pathology), which is what the per-finding confidence asks the
language model to choose between, and what :func:`edit_report` writes into a report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from rrgkit.evaluation.clinical import binarize
from rrgkit.evaluation.labeler import label_reports
from rrgkit.labels import PATHOLOGIES

_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Sentences of a report: split after ``.``, ``;``, ``!`` or ``?`` followed by white space (so "3.5 cm" stays whole)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s] if isinstance(text, str) else []


def sentence_labels(sentences: Sequence[str]) -> np.ndarray:
    """(k, 13) labels of each sentence on its own, pathologies only (1 / 0 / -1 / NaN)."""
    if not sentences:
        return np.empty((0, len(PATHOLOGIES)))
    return label_reports(list(sentences))[:, 1:]


def finding_statements(texts: Iterable[str]) -> pd.DataFrame:
    """Per pathology, the most frequent sentence of ``texts`` that affirms it (label 1) and one that denies it (0).

    A candidate sentence states that pathology and no other (every other pathology blank, or 0 for
    a denial), so that choosing it says nothing else. Ties go to the shorter, then the alphabetically
    first sentence. Columns ``observation, affirm, affirm_count, deny, deny_count``; a pathology
    with no such sentence gets a missing value (NaN) and 0.
    """
    counts = Counter(s for text in texts for s in split_sentences(text))
    sentences = sorted(counts, key=lambda s: (-counts[s], len(s), s))
    labels = sentence_labels(sentences)
    rows = []
    for j, name in enumerate(PATHOLOGIES):
        others = np.delete(labels, j, axis=1)
        quiet = np.all(np.isnan(others), axis=1)
        calm = np.all(np.isnan(others) | (others == 0), axis=1)
        affirm = np.flatnonzero((labels[:, j] == 1) & quiet)
        deny = np.flatnonzero((labels[:, j] == 0) & calm)
        row = {"observation": name}
        for kind, found in (("affirm", affirm), ("deny", deny)):
            row[kind] = sentences[found[0]] if len(found) else None
            row[f"{kind}_count"] = counts[sentences[found[0]]] if len(found) else 0
        rows.append(row)
    return pd.DataFrame(rows)


def edit_report(text: str, states: np.ndarray, statements: pd.DataFrame, uncertain: str = "positive") -> str:
    """``text`` changed so that it states pathology j exactly where ``states[j]`` (13 booleans) says so.

    A pathology to state that the text does not state: the sentences denying it are dropped and its
    ``affirm`` sentence appended. A pathology not to state that the text states: the sentences
    stating it (by ``uncertain``) are dropped. A dropped sentence takes whatever else it said with
    it; the edited text is labelled afresh, so that cost is counted. A pathology without an affirming
    sentence in ``statements`` cannot be added and is left as it is.
    """
    states = np.asarray(states, dtype=bool)
    if states.shape != (len(PATHOLOGIES),):
        raise ValueError(f"edit_report: states must hold {len(PATHOLOGIES)} booleans (pathologies), got {states.shape}")
    affirm = dict(zip(statements["observation"], statements["affirm"], strict=True))
    sentences = split_sentences(text)
    labels = sentence_labels(sentences)
    stated = binarize(labels, uncertain)
    drop = np.zeros(len(sentences), dtype=bool)
    added = []
    for j, name in enumerate(PATHOLOGIES):
        says = bool(stated[:, j].any())
        if states[j] and not says and isinstance(affirm[name], str):
            drop |= labels[:, j] == 0
            added.append(affirm[name])
        elif not states[j] and says:
            drop |= stated[:, j]
    return " ".join([s for s, d in zip(sentences, drop, strict=True) if not d] + added)
