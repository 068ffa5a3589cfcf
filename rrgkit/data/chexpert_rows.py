"""The real CheXpert label rows shipped in the ``torchxrayvision`` wheel.

Used for the real joint distribution of the 14 observations (prevalence and
co-occurrence), view, sex and age. Blank means "not mentioned", 0 an explicit
negative and -1 uncertain, as in CheXpert.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rrgkit.assets import asset_path
from rrgkit.labels import CHEXPERT_OBSERVATIONS

META_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")


def load_chexpert_rows(path: str | Path | None = None, frontal_only: bool = False) -> pd.DataFrame:
    """Load the label rows (one row per image) with the 14 observations as float (NaN = blank)."""
    path = Path(path) if path is not None else asset_path("chexpert-labels")
    frame = pd.read_csv(path)
    missing = [c for c in (*META_COLUMNS, *CHEXPERT_OBSERVATIONS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected CheXpert's train.csv layout")
    frame[list(CHEXPERT_OBSERVATIONS)] = frame[list(CHEXPERT_OBSERVATIONS)].astype(float)
    if frontal_only:
        frame = frame[frame["Frontal/Lateral"] == "Frontal"].reset_index(drop=True)
    return frame
