"""``rrgkit label IN.csv|IN.jsonl --text-column COL --out OUT.csv``: CheXpert-style labels for report texts.

One output row per input row, in input order: the id column, then the 14 observations as
1 / 0 / -1 / blank. A missing or empty text is labelled all blank rather than dropped, so the
output always lines up with the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from rrgkit.evaluation.labeler import label_report
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def read_table(path: Path) -> pd.DataFrame:
    """Read a ``.csv`` or ``.jsonl`` file as strings, with errors that name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give a .csv or .jsonl of report texts")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: could not be parsed as {suffix[1:]} ({exc}); check the file's format") from exc
    raise ValueError(f"{path}: unsupported file type {suffix!r}; give a .csv or .jsonl file")


def label_table(frame: pd.DataFrame, text_column: str, id_column: str, source: str = "input") -> pd.DataFrame:
    """Label ``frame[text_column]``; return ``id_column`` plus the 14 observations (nullable integers)."""
    for column in (text_column, id_column):
        if column not in frame.columns:
            raise ValueError(f"{source}: no column {column!r}; columns are {list(frame.columns)}")
    texts = ["" if pd.isna(t) else str(t) for t in frame[text_column]]
    rows = [label_report(t) for t in tqdm(texts, desc="labelling", unit="report", disable=len(texts) < 1000)]
    labels = pd.DataFrame(rows, columns=list(CHEXPERT_OBSERVATIONS)).astype("Int64")
    return pd.concat([frame[[id_column]].reset_index(drop=True), labels], axis=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a .csv or .jsonl file with one report per row")
    parser.add_argument("--text-column", required=True, help="column holding the report text")
    parser.add_argument("--id-column", default="id", help="column copied to the output to identify rows (default: id)")
    parser.add_argument("--out", required=True, type=Path, help="output .csv: id column + 14 observations")


def run(args: argparse.Namespace) -> int:
    table = label_table(read_table(args.input), args.text_column, args.id_column, str(args.input))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    positives = int((table[list(CHEXPERT_OBSERVATIONS)] == 1).sum().sum())
    print(f"labelled {len(table)} reports ({positives} positive labels) -> {args.out}")
    return 0
