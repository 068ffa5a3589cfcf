"""Read IU X-ray (Demner-Fushman et al. 2016, CC BY-NC-ND 4.0) into the common manifest schema (uncurated).

Three layouts are recognised:

* ``openi``: the Open-i report XMLs (a folder or ``NLMCXR_reports.tgz``) plus ``indiana_projections.csv``
  for the views (the XMLs do not say which image is frontal) and the PNG images anywhere under the root;
* ``csv``: the common pair ``indiana_reports.csv`` + ``indiana_projections.csv`` and the PNG images;
* ``r2gen``: R2Gen's ``annotation.json`` and ``images/`` (it carries its own split; by R2Gen's
  convention ``0.png`` is the frontal and ``1.png`` the lateral view, and the report is the findings).

IU frontal images are labelled ``PA`` (the dataset does not distinguish PA from AP). Without a split in
the layout, reports are split 7:1:2 at random with a fixed seed.

The report XMLs (:func:`load_iu_reports`) are also read on their own: the ``torchxrayvision`` wheel
bundles ``NLMCXR_reports.tgz``, read in place and never copied into the repository, which the
embedded ``iu-phantom`` dataset, the labeler's hand labels and the LM pretraining corpus use.
"""

from __future__ import annotations

import json
import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.assets import asset_path
from rrgkit.data.manifest import SEP, ManifestError
from rrgkit.labels import CHEXPERT_OBSERVATIONS

SOURCE = "iu-xray"
LAYOUTS = ("openi", "csv", "r2gen")
REPORT_COLUMNS = ("uid", "image", "indication", "comparison", "findings", "impression")
PROJECTION_COLUMNS = ("uid", "filename", "projection")
VIEW_OF_PROJECTION = {"frontal": "PA", "lateral": "LATERAL"}
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
SECTIONS = ("comparison", "indication", "findings", "impression")
XML_COLUMNS = ("uid", "comparison", "indication", "findings", "impression", "mesh_major", "mesh_automatic", "images", "source_file")


class ReportParseError(ValueError):
    """An IU report XML could not be parsed; the message names the file."""


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def parse_report_xml(data: bytes, source: str) -> dict:
    """Parse one Open-i XML document into a flat record (empty string for an absent section)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportParseError(f"{source}: not well-formed XML ({exc}); re-extract the archive") from exc
    uid_el = root.find("uId")
    if uid_el is None or not uid_el.get("id"):
        raise ReportParseError(f"{source}: no <uId id=...> element; is this an Open-i report XML?")
    record = {"uid": uid_el.get("id"), "source_file": source}
    for sec in SECTIONS:
        record[sec] = ""
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().lower()
        if label in SECTIONS:
            record[label] = _clean(node.text)
    mesh = root.find("MeSH")
    record["mesh_major"] = [_clean(m.text) for m in mesh.findall("major")] if mesh is not None else []
    record["mesh_automatic"] = [_clean(m.text) for m in mesh.findall("automatic")] if mesh is not None else []
    record["images"] = [img.get("id") for img in root.findall("parentImage") if img.get("id")]
    return record


def load_iu_reports(source: str | Path | None = None) -> pd.DataFrame:
    """All IU reports as a DataFrame with :data:`XML_COLUMNS`, sorted by numeric uid.

    ``source`` is a folder of XMLs or a ``.tgz``; by default the wheel's archive.
    """
    path = Path(source) if source is not None else asset_path("iu-reports")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder; give the Open-i XML folder or NLMCXR_reports.tgz")
    records = []
    if path.is_dir():
        files = sorted(path.rglob("*.xml"))
        if not files:
            raise FileNotFoundError(f"{path}: contains no .xml reports; give the folder of Open-i report XMLs")
        for f in files:
            records.append(parse_report_xml(f.read_bytes(), str(f)))
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".xml"):
                        data = tar.extractfile(member).read()
                        records.append(parse_report_xml(data, f"{path}:{member.name}"))
        except tarfile.TarError as exc:
            raise ReportParseError(f"{path}: not a readable tar archive ({exc}); re-download or reinstall the wheel") from exc
    frame = pd.DataFrame.from_records(records, columns=list(XML_COLUMNS))
    key = frame["uid"].str.extract(r"(\d+)")[0].astype(int)
    return frame.assign(_k=key).sort_values("_k").drop(columns="_k").reset_index(drop=True)



def detect_layout(root: Path) -> str:
    """Which of :data:`LAYOUTS` the folder holds; raises with the expected file names otherwise."""
    if (root / "annotation.json").exists():
        return "r2gen"
    if (root / "indiana_reports.csv").exists():
        return "csv"
    if any(root.glob("*.tgz")) or any(root.rglob("*.xml")):
        return "openi"
    raise FileNotFoundError(
        f"{root}: no IU X-ray layout found; expected annotation.json (R2Gen), indiana_reports.csv + "
        "indiana_projections.csv, or Open-i report XMLs / NLMCXR_reports.tgz; or pass --layout"
    )


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; the IU X-ray CSV layout needs it next to indiana_reports.csv")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing columns {missing}; expected the Kaggle IU X-ray CSV format")
    return table


def _image_key(name: str) -> tuple[str, str] | None:
    """(uid, IM-part) shared by Open-i image ids (CXR1_1_IM-0001-3001) and Kaggle file names (1_IM-0001-3001.dcm.png)."""
    match = re.match(r"(?:CXR)?(\d+)_.*?(IM-\d+-\d+)", Path(name).name)
    return (match.group(1), match.group(2)) if match else None


def random_split(n: int, seed: int) -> list[str]:
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([round(f * n) for f in SPLIT_FRACTIONS[:2]])
    names = np.empty(n, dtype=object)
    names[order[: cuts[0]]], names[order[cuts[0]: cuts[1]]], names[order[cuts[1]:]] = "train", "val", "test"
    return list(names)


def _with_images(reports: pd.DataFrame, projections: pd.DataFrame, root: Path, skips: list[dict]) -> pd.DataFrame:
    """Attach image paths and views (from the projections table) to one row per report."""
    files = {_image_key(p.name): p for p in root.rglob("*.png") if _image_key(p.name)}
    view_of = {}
    for _, proj in projections.iterrows():
        key = _image_key(proj["filename"])
        view = VIEW_OF_PROJECTION.get(proj["projection"].strip().lower())
        if key is None or view is None:
            raise ManifestError(f"indiana_projections.csv: row {proj.to_dict()} has an unknown filename or projection; expected Frontal/Lateral")
        view_of[key] = (view, proj["uid"])
    keys_of_uid: dict[str, list] = {}
    for key, (_, uid) in view_of.items():
        keys_of_uid.setdefault(uid, []).append(key)
    images, views = [], []
    for _, rep in reports.iterrows():
        row_images, row_views = [], []
        ids = rep["image_ids"]
        keys = [_image_key(i) for i in ids] if isinstance(ids, list) else keys_of_uid.get(rep["uid"], [])
        for key in keys:
            if key not in files:
                skips.append({"id": rep["id"], "file": f"{key[0]}_{key[1]}*.png", "reason": "missing image"})
            elif key not in view_of:
                skips.append({"id": rep["id"], "file": str(files[key]), "reason": "no projection in indiana_projections.csv"})
            else:
                row_images.append(str(files[key].resolve()))
                row_views.append(view_of[key][0])
        images.append(SEP.join(row_images))
        views.append(SEP.join(row_views))
    return reports.assign(images=images, views=views)


def _load_r2gen(root: Path, skips: list[dict]) -> pd.DataFrame:
    path = root / "annotation.json"
    try:
        annotation = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid UTF-8 JSON ({exc}); re-download R2Gen's annotation.json") from exc
    records = []
    for split in ("train", "val", "test"):
        for item in annotation.get(split, []):
            if not {"id", "report", "image_path"} <= set(item):
                raise ManifestError(f"{path}: an entry of {split!r} lacks id/report/image_path; expected R2Gen's format")
            images, views = [], []
            for index, rel in enumerate(item["image_path"]):
                file = root / "images" / rel
                if not file.exists():
                    skips.append({"id": item["id"], "file": str(file), "reason": "missing image"})
                    continue
                images.append(str(file.resolve()))
                views.append("PA" if index == 0 else "LATERAL")
            records.append({"id": item["id"], "images": SEP.join(images), "views": SEP.join(views),
                            "findings": item["report"], "impression": "", "comparison": "", "split": split})
    return pd.DataFrame.from_records(records)


def load_iu_xray(root: str | Path, layout: str | None = None, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Every IU X-ray report as a manifest-schema frame (absolute image paths, no labels) and the skipped files."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; --root must hold an IU X-ray layout")
    layout = layout or detect_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown IU X-ray layout {layout!r}; use one of {LAYOUTS}")
    skips: list[dict] = []
    if layout == "r2gen":
        frame = _load_r2gen(root, skips)
    else:
        projections = _read_csv(root / "indiana_projections.csv", PROJECTION_COLUMNS)
        if layout == "csv":
            reports = _read_csv(root / "indiana_reports.csv", REPORT_COLUMNS).assign(image_ids=None)
        else:
            source = next(iter(sorted(root.glob("*.tgz"))), root)
            reports = load_iu_reports(source).rename(columns={"images": "image_ids"})
            reports["uid"] = reports["uid"].str.extract(r"(\d+)")[0]
        reports = reports.assign(id=["iu-" + u for u in reports["uid"]])
        frame = _with_images(reports, projections, root, skips)
        frame["split"] = random_split(len(frame), seed)
        frame = frame[["id", "images", "views", "findings", "impression", "comparison", "split"]]
    for obs in CHEXPERT_OBSERVATIONS:
        frame[obs] = np.nan
    frame["source"] = SOURCE
    return frame.reset_index(drop=True), skips
