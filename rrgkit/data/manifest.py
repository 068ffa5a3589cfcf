"""The one manifest schema shared by every dataset in rrgkit.

A manifest is a CSV file (``manifest.csv``), one row per study:

========================  ===============================================================
column                    meaning
========================  ===============================================================
id                        unique study id (string)
images                    image paths, ``|``-separated, relative to the manifest's folder
views                     one view per image (``PA``, ``AP``, ``LATERAL``, ...), ``|``-separated
findings                  findings section (the generation target)
impression                impression section ("" if absent)
comparison                comparison section ("" if absent)
<14 CheXpert names>       1 / 0 / -1 / blank, CheXpert semantics
split                     ``train``, ``val`` or ``test``
source                    dataset name; credentialed sources are guarded (``mimic-cxr``)
========================  ===============================================================

Extra columns are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.files import atomic_write_text
from rrgkit.labels import CHEXPERT_OBSERVATIONS

TEXT_COLUMNS = ("id", "images", "views", "findings", "impression", "comparison", "split", "source")
COLUMNS = (*TEXT_COLUMNS[:6], *CHEXPERT_OBSERVATIONS, "split", "source")
SPLITS = ("train", "val", "test")
CREDENTIALED_SOURCES = frozenset({"mimic-cxr"})
SEP = "|"


class ManifestError(ValueError):
    """A manifest does not follow the schema; the message names the file and the fix."""


def validate_manifest(frame: pd.DataFrame, where: str = "manifest") -> pd.DataFrame:
    """Check the schema and return the frame with normalised dtypes (labels float, text str)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"{where}: missing columns {missing}; see rrgkit.data.manifest for the schema")
    frame = frame.copy()
    for col in TEXT_COLUMNS:
        frame[col] = frame[col].astype(object).fillna("").astype(str)
    if (frame["id"] == "").any():
        raise ManifestError(f"{where}: {int((frame['id'] == '').sum())} rows have an empty id")
    dup = frame["id"][frame["id"].duplicated()]
    if len(dup):
        raise ManifestError(f"{where}: duplicate ids, e.g. {dup.iloc[0]!r}; ids must be unique per study")
    bad_split = sorted(set(frame["split"]) - set(SPLITS))
    if bad_split:
        raise ManifestError(f"{where}: unknown split values {bad_split}; use one of {SPLITS}")
    labels = frame[list(CHEXPERT_OBSERVATIONS)].apply(pd.to_numeric, errors="coerce")
    raw_blank = frame[list(CHEXPERT_OBSERVATIONS)].isna() | (frame[list(CHEXPERT_OBSERVATIONS)].astype(str) == "")
    if (labels.isna() & ~raw_blank).any().any():
        raise ManifestError(f"{where}: non-numeric label values; labels must be 1, 0, -1 or blank")
    values = labels.to_numpy(dtype=float)
    ok = np.isnan(values) | np.isin(values, (1.0, 0.0, -1.0))
    if not ok.all():
        raise ManifestError(f"{where}: label values outside 1/0/-1/blank, e.g. {values[~ok][0]}")
    frame[list(CHEXPERT_OBSERVATIONS)] = labels.astype(float)
    n_img = frame["images"].str.split(SEP).map(len)
    n_view = frame["views"].str.split(SEP).map(len)
    if (frame["images"] == "").any():
        raise ManifestError(f"{where}: {int((frame['images'] == '').sum())} rows have no image")
    if (n_img != n_view).any():
        raise ManifestError(f"{where}: rows whose image and view counts differ, e.g. id {frame['id'][n_img != n_view].iloc[0]!r}")
    return frame


def write_manifest(frame: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write a manifest CSV (columns in schema order, extras after), atomically."""
    path = Path(path)
    frame = validate_manifest(frame, str(path))
    extras = [c for c in frame.columns if c not in COLUMNS]
    text = frame[list(COLUMNS) + extras].to_csv(index=False, float_format="%.0f", lineterminator="\n")
    return atomic_write_text(path, text)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest; ``path`` is the CSV or the dataset folder holding ``manifest.csv``."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.exists():
        raise ManifestError(f"{path}: no manifest here; build one with `rrgkit data build` or `rrgkit data curate`")
    frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values={c: [""] for c in CHEXPERT_OBSERVATIONS})
    frame = validate_manifest(frame, str(path))
    frame.attrs["root"] = str(path.parent.resolve())
    return frame


def image_paths(frame: pd.DataFrame, row: int) -> list[Path]:
    """Absolute image paths of one manifest row (paths are relative to the manifest's folder)."""
    root = Path(frame.attrs.get("root", "."))
    return [root / p for p in frame["images"].iloc[row].split(SEP)]

