"""Reference labels for the real IU X-ray reports, and how well a labeler agrees with them.

Two references exist, both for positives only:

* :func:`mesh_labels` maps the human-assigned MeSH major terms of each IU report
  (``mesh_major``, e.g. ``"Cardiomegaly/mild"``, ``"Opacity/lung/base/left"``) to the 14
  CheXpert observations. MeSH indexes what *is* there and never what is absent, so the
  mapping yields 1 or NaN, never 0 or -1; agreement is therefore measured on positives.
* :func:`hand_labels` reads ``data/iu_hand_labels.csv``: 120 IU reports labelled with
  1 / 0 / -1 / blank by a project engineer following CheXpert's rules (see ``data/README.md``).

:func:`positive_agreement` scores predicted labels against either reference.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd

from rrgkit.labels import CHEXPERT_OBSERVATIONS

HAND_LABELS_FILE = "iu_hand_labels.csv"
HAND_LABEL_SEED = 2312  # the paper's arXiv number
HAND_LABEL_CUES = re.compile(
    r"\b(may|possible|possibly|likely|cannot|suspicious|concerning|versus|questionable|suggest\w*|borderline|tubes?"
    r"|catheters?|pacemaker|picc|lines?|wires?|sternotomy|clips|resolved|removed)\b",
    re.IGNORECASE,
)
"""Hedge, negation and device words that qualify a report for the enriched part of the hand-labelled set."""

# MeSH heading -> observation, for headings that mean the observation whatever their qualifiers.
# Choices mirror the labeler (rrgkit.evaluation.labeler_rules): congestion and heart failure are
# Edema, scars (Cicatrix) of the lung are Lung Opacity, fibrosis is Pleural Other, granulomas map to nothing.
MESH_HEADINGS: dict[str, str] = {
    "normal": "No Finding",
    "Cardiomegaly": "Cardiomegaly",
    "Opacity": "Lung Opacity",
    "Airspace Disease": "Lung Opacity",
    "Infiltrate": "Lung Opacity",
    "Lung Diseases, Interstitial": "Lung Opacity",
    "Pulmonary Edema": "Edema",
    "Pulmonary Congestion": "Edema",
    "Heart Failure": "Edema",
    "Consolidation": "Consolidation",
    "Pneumonia": "Pneumonia",
    "Pulmonary Atelectasis": "Atelectasis",
    "Pneumothorax": "Pneumothorax",
    "Hydropneumothorax": "Pneumothorax",
    "Hemopneumothorax": "Pneumothorax",
    "Pleural Effusion": "Pleural Effusion",
    "Pulmonary Fibrosis": "Pleural Other",
    "Fibrosis": "Pleural Other",
    "Fractures, Bone": "Fracture",
    "Catheters, Indwelling": "Support Devices",
    "Implanted Medical Device": "Support Devices",
    "Medical Device": "Support Devices",
    "Tube, Inserted": "Support Devices",
    "Stents": "Support Devices",
    "Surgical Instruments": "Support Devices",
    "Sutures": "Support Devices",
}
"""Headings mapped regardless of their qualifiers."""

# Headings that map only with one of some qualifiers (if any are listed) and none of others:
# (heading, needs one of, excludes, observation).
MESH_QUALIFIED: tuple[tuple[str, frozenset[str], frozenset[str], str], ...] = (
    ("Cardiac Shadow", frozenset({"enlarged"}), frozenset({"borderline"}), "Cardiomegaly"),
    ("Mediastinum", frozenset({"enlarged", "prominent"}), frozenset({"lymph nodes", "paratracheal", "blood vessels"}),
     "Enlarged Cardiomediastinum"),
    ("Density", frozenset({"lung"}), frozenset(), "Lung Opacity"),
    ("Cicatrix", frozenset({"lung"}), frozenset({"pleura"}), "Lung Opacity"),
    ("Cicatrix", frozenset({"pleura"}), frozenset(), "Pleural Other"),
    ("Markings", frozenset({"interstitial"}), frozenset(), "Lung Opacity"),
    ("Lung", frozenset({"interstitial"}), frozenset(), "Lung Opacity"),
    ("Nodule", frozenset({"lung"}), frozenset(), "Lung Lesion"),
    ("Mass", frozenset({"lung"}), frozenset(), "Lung Lesion"),
    ("Costophrenic Angle", frozenset({"blunted"}), frozenset(), "Pleural Effusion"),
    ("Pleura", frozenset({"blunted"}), frozenset(), "Pleural Effusion"),
    ("Thickening", frozenset({"pleura"}), frozenset(), "Pleural Other"),
)
"""Headings whose meaning depends on their qualifiers (a prominent *mediastinum*, a *lung* nodule)."""


def mesh_term_observation(term: str) -> str | None:
    """The observation a MeSH major term such as ``"Cardiomegaly/mild"`` is positive for, or None."""
    heading, *qualifiers = [part.strip() for part in term.split("/")]
    if heading in MESH_HEADINGS:
        return MESH_HEADINGS[heading]
    quals = set(qualifiers)
    for name, needs, excludes, observation in MESH_QUALIFIED:
        if name == heading and (not needs or needs & quals) and not excludes & quals:
            return observation
    return None


def mesh_labels(frame: pd.DataFrame) -> np.ndarray:
    """(n, 14) labels from the ``mesh_major`` lists of :func:`rrgkit.data.iu_xray.load_iu_reports`: 1 or NaN."""
    if "mesh_major" not in frame.columns:
        raise ValueError(f"mesh_labels needs a 'mesh_major' column (from load_iu_reports); got {list(frame.columns)}")
    index = {name: j for j, name in enumerate(CHEXPERT_OBSERVATIONS)}
    out = np.full((len(frame), len(CHEXPERT_OBSERVATIONS)), np.nan)
    for i, terms in enumerate(frame["mesh_major"]):
        for term in terms:
            observation = mesh_term_observation(term)
            if observation is not None:
                out[i, index[observation]] = 1.0
    return out


def hand_labels() -> pd.DataFrame:
    """The hand-labelled IU reports: ``uid`` plus the 14 observations as floats (1 / 0 / -1 / NaN)."""
    path = resources.files("rrgkit.evaluation").joinpath("data").joinpath(HAND_LABELS_FILE)
    with path.open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype={"uid": str})
    missing = [c for c in ("uid", *CHEXPERT_OBSERVATIONS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{HAND_LABELS_FILE}: missing columns {missing}; reinstall rrgkit")
    return frame.astype({name: float for name in CHEXPERT_OBSERVATIONS})


def hand_label_selection(frame: pd.DataFrame, n_random: int = 80, n_enriched: int = 40,
                         n_holdout: int = 30) -> pd.DataFrame:
    """The IU reports chosen for hand labelling, in CSV order, with a ``group`` column.

    Among reports with non-empty findings (in ``load_iu_reports`` order) a permutation seeded
    with :data:`HAND_LABEL_SEED` gives ``random`` = its first ``n_random``; ``enriched`` = the next
    ``n_enriched`` whose findings + impression match :data:`HAND_LABEL_CUES`; ``holdout`` = the next
    ``n_holdout`` not already taken, labelled after the rules were tuned on the first two groups.
    """
    pool = frame[frame["findings"].str.strip() != ""].reset_index(drop=True)
    order = np.random.default_rng(HAND_LABEL_SEED).permutation(len(pool))
    random_part, rest = list(order[:n_random]), order[n_random:]
    text = pool["findings"] + " " + pool["impression"]
    enriched = [i for i in rest if HAND_LABEL_CUES.search(text[i])][:n_enriched]
    taken = set(enriched)
    holdout = [i for i in rest if i not in taken][:n_holdout]
    groups = ["random"] * len(random_part) + ["enriched"] * len(enriched) + ["holdout"] * len(holdout)
    return pool.iloc[random_part + enriched + holdout].assign(group=groups).reset_index(drop=True)


def positive_agreement(pred: np.ndarray, ref: np.ndarray) -> pd.DataFrame:
    """Precision, recall and F1 of ``pred == 1`` against ``ref == 1``, per observation plus a ``micro`` row."""
    pred, ref = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    if pred.shape != ref.shape or pred.ndim != 2 or pred.shape[1] != len(CHEXPERT_OBSERVATIONS):
        raise ValueError(f"positive_agreement needs two (n, 14) arrays; got {pred.shape} and {ref.shape}")
    p, r = pred == 1, ref == 1
    tp, fp, fn = (p & r).sum(0), (p & ~r).sum(0), (~p & r).sum(0)
    table = pd.DataFrame({"tp": tp, "fp": fp, "fn": fn}, index=list(CHEXPERT_OBSERVATIONS))
    table.loc["micro"] = table.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["precision"] = table.tp / (table.tp + table.fp)
        table["recall"] = table.tp / (table.tp + table.fn)
        table["f1"] = 2 * table.tp / (2 * table.tp + table.fp + table.fn)
    return table
