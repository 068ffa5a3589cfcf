"""Tables of report texts (CSV or JSON lines) as ``rrgkit label`` and ``rrgkit score`` read them.

One reader, so both commands agree on what a file means: CSV cells are read as strings
exactly as written, a JSON-lines file is parsed line by line so that an error names the
line, non-UTF-8 bytes are an error naming the line, and a missing value (an absent key,
JSON ``null``, or a cell holding a missing-value spelling such as ``NaN``, which pandas
writes for one) is a *missing* text, never the word "NaN" handed to the labeler.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MISSING_TEXTS = frozenset({"nan", "-nan", "none", "null", "na", "n/a", "<na>", "#n/a"})
"""Spellings of a missing value written by pandas, numpy, Python and spreadsheets (compared case-blind, stripped)."""


def _format(path: Path) -> str:
    name = path.name.lower()
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; give one of {', '.join(FORMATS)}")


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                         "re-save the file as UTF-8") from None


def _json_lines(path: Path, text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not JSON ({exc.msg} at column {exc.colno}); "
                             "each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {number} is a JSON {type(record).__name__}, not an object; "
                             'each line must be one JSON object such as {"id": ..., "findings": ...}')
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def read_report_table(path: Path) -> pd.DataFrame:
    """Read a ``.csv`` (optionally gzipped) or ``.jsonl`` file; CSV cells stay strings, absent JSON keys are NaN."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give a .csv or .jsonl file with one report per row")
    kind = _format(path)
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a gzip file ({exc}); give a plain .csv or a gzipped .csv.gz") from None
    text = _decode(path, raw)
    if kind == "jsonl":
        return _json_lines(path, text)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty; give a CSV with a header row and one report per row") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a valid CSV file ({str(exc).strip()}); check its quoting and separators") from None


def is_missing(value: object) -> bool:
    """True for NaN, None and the spellings in :data:`MISSING_TEXTS`."""
    if isinstance(value, str):
        return value.strip().lower() in MISSING_TEXTS
    return value is None or (isinstance(value, float) and value != value)


def report_texts(frame: pd.DataFrame, column: str) -> tuple[list[str], list[int]]:
    """The column as strings, with ``""`` for missing values, and the row positions that were missing."""
    texts, missing = [], []
    for position, value in enumerate(frame[column]):
        if is_missing(value):
            missing.append(position)
            texts.append("")
        else:
            texts.append(str(value))
    return texts, missing
