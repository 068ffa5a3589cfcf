"""Read MIMIC-CXR-JPG (v2.0.0 / 2.1.0) from its on-disk layout into the common manifest schema (uncurated).

Layout: ``mimic-cxr-2.0.0-{split,metadata,chexpert}.csv[.gz]`` at the root, images at
``files/pNN/p<subject>/s<study>/<dicom_id>.jpg`` and reports at ``files/pNN/p<subject>/s<study>.txt``
(under the same root or the separate reports root). Problems with single files (missing or unreadable
image, missing or non-UTF-8 report) are skipped, counted and returned, never dropped silently: the study
then fails a curation rule and shows up in the funnel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from rrgkit.data.manifest import SEP, ManifestError
from rrgkit.data.mimic_sections import section_report
from rrgkit.labels import CHEXPERT_OBSERVATIONS

SOURCE = "mimic-cxr"
TABLES = {
    "split": ("dicom_id", "study_id", "subject_id", "split"),
    "metadata": ("dicom_id", "subject_id", "study_id", "ViewPosition"),
    "chexpert": ("subject_id", "study_id", *CHEXPERT_OBSERVATIONS),
}
SPLIT_NAMES = {"train": "train", "validate": "val", "test": "test"}


def read_table(root: Path, name: str) -> pd.DataFrame:
    """One of the MIMIC-CXR-JPG CSV tables (plain or gzipped), with its required columns checked."""
    candidates = [root / f"mimic-cxr-2.0.0-{name}.csv.gz", root / f"mimic-cxr-2.0.0-{name}.csv"]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f"{candidates[0]}: not found (nor the .csv); --root must be the MIMIC-CXR-JPG folder holding it")
    try:
        table = pd.read_csv(path, dtype={"dicom_id": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError) as exc:
        raise ManifestError(f"{path}: unreadable CSV ({exc}); re-download it from PhysioNet") from exc
    missing = [c for c in TABLES[name] if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing columns {missing}; expected the PhysioNet MIMIC-CXR-JPG {name} table")
    return table


def _report_path(root: Path, subject: int, study: int) -> Path:
    return root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}.txt"


def _image_path(root: Path, subject: int, study: int, dicom: str) -> Path:
    return root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"


def _image_problem(path: Path) -> str | None:
    """Why an image cannot be used (missing, unreadable), or None; reads the header only, so it is fast."""
    if not path.exists():
        return "missing image"
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        return "unreadable image"
    return None


def _read_report(path: Path) -> tuple[str | None, str | None]:
    if not path.exists():
        return None, "missing report"
    try:
        return path.read_bytes().decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "non-UTF-8 report"


def load_mimic(root: str | Path, reports_root: str | Path | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Every MIMIC-CXR-JPG study as a manifest-schema frame (absolute image paths) and the skipped files.

    Each skip is ``{"id", "file", "reason"}``.
    """
    root = Path(root)
    reports_root = Path(reports_root) if reports_root is not None else root
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; --root must be the MIMIC-CXR-JPG folder")
    split = read_table(root, "split")
    meta = read_table(root, "metadata").merge(split[["dicom_id", "split"]], on="dicom_id", how="left")
    bad = sorted(set(meta["split"].dropna()) - set(SPLIT_NAMES))
    if bad or meta["split"].isna().any():
        raise ManifestError(f"{root}/mimic-cxr-2.0.0-split.csv[.gz]: unknown split values {bad} or misses dicoms; expected train/validate/test for every dicom")
    labels = read_table(root, "chexpert").drop_duplicates("study_id").set_index("study_id")
    records, skips = [], []
    groups = meta.sort_values(["subject_id", "study_id", "dicom_id"]).groupby("study_id", sort=False)
    for study, rows in tqdm(groups, desc="MIMIC-CXR studies", total=meta["study_id"].nunique()):
        subject = int(rows["subject_id"].iloc[0])
        sid = f"s{int(study)}"
        images, views = [], []
        for dicom, view in zip(rows["dicom_id"], rows["ViewPosition"]):
            path = _image_path(root, subject, int(study), dicom)
            problem = _image_problem(path)
            if problem:
                skips.append({"id": sid, "file": str(path), "reason": problem})
                continue
            images.append(str(path.resolve()))
            views.append("" if pd.isna(view) else str(view).upper())
        report_file = _report_path(reports_root, subject, int(study))
        text, problem = _read_report(report_file)
        if problem:
            skips.append({"id": sid, "file": str(report_file), "reason": problem})
        sections = section_report(text or "")
        row_labels = labels.loc[study] if study in labels.index else None
        record = {
            "id": sid, "images": SEP.join(images), "views": SEP.join(views),
            "findings": sections["findings"], "impression": sections["impression"], "comparison": sections["comparison"],
            "split": SPLIT_NAMES[rows["split"].iloc[0]], "source": SOURCE, "subject_id": str(subject),
        }
        for obs in CHEXPERT_OBSERVATIONS:
            record[obs] = np.nan if row_labels is None else float(row_labels[obs])
        records.append(record)
    for reason, where in (("missing report", f"--reports-root {reports_root}"), ("missing image", f"--root {root}")):
        if records and sum(s["reason"] == reason for s in skips) >= (len(records) if reason == "missing report" else len(meta)):
            raise FileNotFoundError(f"{where}: every file is a {reason}; the folder must contain files/pNN/p<subject>/...")
    return pd.DataFrame.from_records(records), skips
