"""Draw phantom studies whose labels, view, sex and age come from REAL CheXpert rows.

Prevalence and co-occurrence are therefore CheXpert's own (effusion with edema, devices on AP
ICU films, ...). Each label row is then realised as :class:`~rrgkit.phantom.state.Finding` s:

* ``1`` → a positive finding; severity from a right-skewed spread (most findings are mild) and
  laterality / zone / kind from the observation's priors in :data:`PRIORS`;
* ``-1`` → ``certainty="uncertain"``: a subtle, low-severity sign that the report hedges;
* ``0`` → absent (the report states it);
* blank → absent, except that with probability :data:`UNREPORTED_PROBABILITY` a minor observation
  is drawn as a mild finding that the report omits, as radiologists omit minor findings; the
  label stays blank because a label is what the report says.

No Finding is normalised to CheXpert's rule (1 iff no pathology other than Support Devices is
positive or uncertain, else blank); 2 % of the real frontal rows break that rule and are repaired.
Patient nuisances (habitus, inspiration, rotation, exposure, noise, breast shadow) are drawn so
that confounders are common; AP films, mostly ICU patients, get poorer inspiration and more noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from rrgkit.data.chexpert_rows import load_chexpert_rows
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.phantom.state import Finding, Patient, Study

NO_FINDING_EXEMPT = ("Support Devices",)
"""Pathologies that do not cancel No Finding (CheXpert's rule)."""

UNREPORTED_PROBABILITY: dict[str, float] = {
    "Atelectasis": 0.04,  # a little plate atelectasis at a base
    "Lung Opacity": 0.02,
    "Pleural Other": 0.03,  # apical pleural thickening
    "Fracture": 0.03,  # an old healed rib fracture
    "Cardiomegaly": 0.02,  # a borderline heart
}
"""Chance that a BLANK label hides a mild finding in the image (never in the report)."""

# Per observation: laterality, zone and kind as {value: probability}; None means "not applicable".
PRIORS: dict[str, dict[str, dict | None]] = {
    "Enlarged Cardiomediastinum": {"laterality": None, "zone": None, "kind": None},
    "Cardiomegaly": {"laterality": None, "zone": None, "kind": None},
    "Lung Opacity": {"laterality": {"left": 0.3, "right": 0.35, "bilateral": 0.35},
                     "zone": {"lower": 0.55, "middle": 0.15, "upper": 0.1, "perihilar": 0.1, "diffuse": 0.1}, "kind": None},
    "Lung Lesion": {"laterality": {"left": 0.45, "right": 0.55}, "zone": {"upper": 0.45, "middle": 0.3, "lower": 0.25},
                    "kind": {"nodule": 0.75, "mass": 0.25}},
    "Edema": {"laterality": {"bilateral": 1.0}, "zone": {"perihilar": 0.6, "diffuse": 0.4},
              "kind": {"interstitial": 0.7, "alveolar": 0.3}},
    "Consolidation": {"laterality": {"left": 0.35, "right": 0.45, "bilateral": 0.2},
                      "zone": {"lower": 0.65, "middle": 0.2, "upper": 0.15}, "kind": None},
    "Pneumonia": {"laterality": {"left": 0.35, "right": 0.45, "bilateral": 0.2},
                  "zone": {"lower": 0.65, "middle": 0.2, "upper": 0.15}, "kind": None},
    "Atelectasis": {"laterality": {"left": 0.35, "right": 0.25, "bilateral": 0.4}, "zone": {"lower": 0.85, "middle": 0.15},
                    "kind": {"plate": 0.7, "lobar": 0.3}},
    "Pneumothorax": {"laterality": {"left": 0.47, "right": 0.5, "bilateral": 0.03}, "zone": {"upper": 1.0}, "kind": None},
    "Pleural Effusion": {"laterality": {"left": 0.3, "right": 0.3, "bilateral": 0.4}, "zone": {"lower": 1.0}, "kind": None},
    "Pleural Other": {"laterality": {"left": 0.35, "right": 0.35, "bilateral": 0.3}, "zone": {"upper": 0.6, "lower": 0.4},
                      "kind": {"thickening": 0.8, "plaque": 0.2}},
    "Fracture": {"laterality": {"left": 0.5, "right": 0.5}, "zone": {"upper": 0.3, "middle": 0.4, "lower": 0.3},
                 "kind": {"acute": 0.6, "healing": 0.4}},
    "Support Devices": {"laterality": None, "zone": None, "kind": None},  # see DEVICE_PRIORS
}

EFFUSION_BILATERAL_WITH_EDEMA = 0.75
"""Effusions are mostly bilateral when there is edema (heart failure), 40 % otherwise."""

DEVICE_PRIORS: dict[str, dict[str, float]] = {
    # chance of each device on a study labelled Support Devices = 1; at least one is always drawn.
    "AP": {"et_tube": 0.45, "ng_tube": 0.4, "central_line": 0.45, "picc": 0.25, "pacemaker": 0.12, "sternotomy": 0.12,
           "chest_tube": 0.12},
    "PA": {"et_tube": 0.02, "ng_tube": 0.03, "central_line": 0.1, "picc": 0.3, "pacemaker": 0.4, "sternotomy": 0.35,
           "chest_tube": 0.05},
}
DEVICE_SIDES: dict[str, dict[str, float] | None] = {
    "et_tube": None, "ng_tube": None, "sternotomy": None,
    "central_line": {"right": 0.75, "left": 0.25}, "picc": {"right": 0.6, "left": 0.4},
    "pacemaker": {"left": 0.85, "right": 0.15}, "chest_tube": {"right": 0.5, "left": 0.5},
}

SEVERITY_BETA = (1.6, 3.2)
"""Positive findings: Beta(1.6, 3.2), mean 0.33, so most are mild and a few severe."""
UNCERTAIN_SEVERITY = (0.05, 0.3)
"""Uncertain and unreported findings: subtle, uniform in this range."""


@lru_cache(maxsize=1)
def default_pool() -> pd.DataFrame:
    """The frontal AP/PA rows of the bundled CheXpert labels (loaded once per process)."""
    return label_pool(load_chexpert_rows(frontal_only=True))


def label_pool(rows: pd.DataFrame) -> pd.DataFrame:
    """The frontal AP/PA rows of a CheXpert-layout frame, the pool that :func:`sample_studies` draws from."""
    missing = [c for c in ("Sex", "Age", "AP/PA", *CHEXPERT_OBSERVATIONS) if c not in rows.columns]
    if missing:
        raise ValueError(f"label rows lack columns {missing}; give rows from rrgkit.data.chexpert_rows.load_chexpert_rows")
    pool = rows[rows["AP/PA"].isin(("AP", "PA"))].reset_index(drop=True)
    if pool.empty:
        raise ValueError("label rows hold no frontal AP/PA row to sample from; pass load_chexpert_rows(frontal_only=True)")
    return pool


def normalise_no_finding(labels: np.ndarray) -> np.ndarray:
    """Set No Finding to 1 when no pathology (Support Devices exempt) is 1 or -1, else blank."""
    labels = np.asarray(labels, dtype=float).copy()
    if labels.shape != (len(CHEXPERT_OBSERVATIONS),):
        raise ValueError(f"a label vector must have {len(CHEXPERT_OBSERVATIONS)} entries (CheXpert order), got shape {labels.shape}")
    counted = [CHEXPERT_OBSERVATIONS.index(o) for o in PATHOLOGIES if o not in NO_FINDING_EXEMPT]
    labels[0] = np.nan if np.isin(labels[counted], (1.0, -1.0)).any() else 1.0
    return labels


def _choice(rng: np.random.Generator, table: dict | None) -> str | None:
    if table is None:
        return None
    keys = list(table)
    p = np.array([table[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _devices(rng: np.random.Generator, view: str, certainty: str, severity: float) -> list[Finding]:
    priors = DEVICE_PRIORS["AP" if view == "AP" else "PA"]
    kinds = [k for k in priors if rng.random() < priors[k]]
    if not kinds or certainty == "uncertain":
        kinds = kinds[:1] or [_choice(rng, priors)]
    return [Finding("Support Devices", certainty, severity, _choice(rng, DEVICE_SIDES[k]), None, k) for k in kinds]


def _finding(rng: np.random.Generator, observation: str, certainty: str, severity: float, labels: np.ndarray) -> Finding:
    prior = PRIORS[observation]
    laterality = _choice(rng, prior["laterality"])
    if observation == "Pleural Effusion":
        edema = labels[CHEXPERT_OBSERVATIONS.index("Edema")] in (1.0, -1.0)
        bilateral = EFFUSION_BILATERAL_WITH_EDEMA if edema else prior["laterality"]["bilateral"]
        laterality = "bilateral" if rng.random() < bilateral else ("left" if rng.random() < 0.5 else "right")
    return Finding(observation, certainty, severity, laterality, _choice(rng, prior["zone"]), _choice(rng, prior["kind"]))


def sample_patient(rng: np.random.Generator, sex: str, age: int, view: str) -> Patient:
    """Nuisances drawn so that confounders are common; AP (ICU) films breathe less and are noisier."""
    ap = view == "AP"
    habitus = float(rng.beta(2.2, 2.2))
    breast = float(np.clip(rng.beta(3, 3) * (0.6 + 0.6 * habitus), 0, 1)) if sex == "F" else 0.0
    return Patient(
        sex=sex,
        age=int(age),
        habitus=habitus,
        inspiration=float(rng.beta(2.0, 2.5) if ap else rng.beta(4.0, 1.8)),
        rotation=float(np.clip(rng.normal(0.0, 0.35 if ap else 0.2), -1, 1)),
        exposure=float(rng.beta(3, 3)),
        noise=float(rng.beta(3, 3) if ap else rng.beta(2, 4)),
        breast=breast,
    )


def study_from_labels(id: str, labels: np.ndarray, rng: np.random.Generator, view: str = "PA",
                      sex: str = "M", age: int = 60) -> Study:
    """Realise one 14-label vector (1 / 0 / -1 / NaN, CheXpert order) as a :class:`Study`."""
    labels = normalise_no_finding(labels)
    findings: list[Finding] = []
    for observation in PATHOLOGIES:
        value = labels[CHEXPERT_OBSERVATIONS.index(observation)]
        if value == 1.0:
            certainty, severity = "positive", float(np.clip(rng.beta(*SEVERITY_BETA), 0.05, 1.0))
        elif value == -1.0:
            certainty, severity = "uncertain", float(rng.uniform(*UNCERTAIN_SEVERITY))
        elif np.isnan(value) and rng.random() < UNREPORTED_PROBABILITY.get(observation, 0.0):
            certainty, severity = "positive", float(rng.uniform(*UNCERTAIN_SEVERITY))
        else:
            continue
        if observation == "Support Devices":
            findings += _devices(rng, view, certainty, severity)
        else:
            findings.append(_finding(rng, observation, certainty, severity, labels))
    sex = sex if sex in ("M", "F") else ("F" if rng.random() < 0.42 else "M")
    return Study(id=id, labels=labels, findings=tuple(findings), patient=sample_patient(rng, sex, age, view),
                 view=view, seed=int(rng.integers(2**31)))


def sample_studies(n: int, seed: int, rows: pd.DataFrame | None = None, prefix: str = "phantom") -> list[Study]:
    """``n`` studies whose label rows, views, sexes and ages are drawn (with replacement) from real CheXpert rows.

    ``rows`` defaults to every frontal row in the bundled CheXpert labels; ids are ``<prefix>-00000``, ...
    """
    if n < 1:
        raise ValueError(f"number of studies n={n} must be at least 1")
    pool = default_pool() if rows is None else label_pool(rows)
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(pool), size=n)
    labels = pool[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=float)[picks]
    meta = pool.iloc[picks]
    sexes = meta["Sex"].map({"Male": "M", "Female": "F"}).fillna("?").tolist()
    ages = np.clip(meta["Age"].fillna(60).to_numpy(), 18, 95).astype(int)
    return [study_from_labels(f"{prefix}-{i:05d}", labels[i], rng, view, sexes[i], ages[i])
            for i, view in enumerate(meta["AP/PA"].tolist())]
