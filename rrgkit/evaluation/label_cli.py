"""``rrgkit label IN.csv|IN.jsonl --text-column COL --out OUT.csv``: CheXpert-style labels for report texts.

One output row per input row, in input order: the id column, then the 14 observations as
1 / 0 / -1 / blank. A missing or empty text (including a cell spelling a missing value, such as
``NaN``) is labelled all blank rather than dropped, so the output always lines up with the input;
the command says how many rows had no text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from rrgkit.evaluation.labeler import label_report
from rrgkit.evaluation.report_table import read_report_table, report_texts
from rrgkit.files import atomic_write_text, refuse_output_over_inputs
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def label_table(frame: pd.DataFrame, text_column: str, id_column: str, source: str = "input") -> pd.DataFrame:
    """Label ``frame[text_column]``; return ``id_column`` plus the 14 observations (nullable integers)."""
    for column in (text_column, id_column):
        if column not in frame.columns:
            raise ValueError(f"{source}: no column {column!r}; columns are {list(frame.columns)}")
    texts, _ = report_texts(frame, text_column)
    rows = [label_report(t) for t in tqdm(texts, desc="labelling", unit="report", disable=len(texts) < 1000)]
    labels = pd.DataFrame(rows, columns=list(CHEXPERT_OBSERVATIONS)).astype("Int64")
    return pd.concat([frame[[id_column]].reset_index(drop=True), labels], axis=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a .csv or .jsonl file with one report per row")
    parser.add_argument("--text-column", required=True, help="column holding the report text")
    parser.add_argument("--id-column", default="id", help="column copied to the output to identify rows (default: id)")
    parser.add_argument("--out", required=True, type=Path, help="output .csv: id column + 14 observations")


def run(args: argparse.Namespace) -> int:
    refuse_output_over_inputs(args.out, [args.input])
    table = label_table(read_report_table(args.input), args.text_column, args.id_column, str(args.input))
    atomic_write_text(args.out, table.to_csv(index=False))
    labels = table[list(CHEXPERT_OBSERVATIONS)]
    print(f"labelled {len(table)} reports ({int((labels == 1).sum().sum())} positive labels) -> {args.out}")
    blank = table[args.id_column][labels.isna().all(axis=1)]  # only a text-less row has no label at all
    if len(blank):
        print(f"rrgkit label: {len(blank)} of {len(table)} rows have no text in {args.text_column!r} (empty, or a "
              f"missing value such as NaN), e.g. ids {blank.astype(str).tolist()[:5]}; their labels are blank",
              file=sys.stderr)
    return 0
