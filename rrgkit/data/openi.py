"""Parse the IU X-ray (Open-i) report XMLs: from a folder of XMLs or the ``.tgz`` archive.

By default the archive is the one bundled in the ``torchxrayvision`` wheel; it is
read in place and never copied into the repository.
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from rrgkit.assets import asset_path

SECTIONS = ("comparison", "indication", "findings", "impression")
COLUMNS = ("uid", "comparison", "indication", "findings", "impression", "mesh_major", "mesh_automatic", "images", "source_file")


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
    """All IU reports as a DataFrame with :data:`COLUMNS`, sorted by numeric uid.

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
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    key = frame["uid"].str.extract(r"(\d+)")[0].astype(int)
    return frame.assign(_k=key).sort_values("_k").drop(columns="_k").reset_index(drop=True)
