"""``rrgkit score --pred P --ref R --out M.json``: score generated reports against references, with CIs.

Both files are JSONL or CSV with an ``id`` column and a text column. The text
column is ``--text-column`` if given, else ``findings`` if the file has one, else
``report`` (the paper generates the FINDINGS section; a manifest has ``findings``).
Pairs are joined on ``id``; every id must appear exactly once in each file. A report
without text (an absent key, ``null``, or a missing value such as ``NaN``) is an error
naming its ids, never silently an empty report; ``""`` is an empty report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.evaluation.report_table import is_missing, read_report_table, report_texts
from rrgkit.evaluation.score import format_table, score_reports
from rrgkit.files import refuse_output_over_inputs
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.runs import write_json

TEXT_COLUMN_DEFAULTS = ("findings", "report")
_EXAMPLES = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, type=Path, help="generated reports (.jsonl or .csv with id + text)")
    parser.add_argument("--ref", required=True, type=Path, help="reference reports (.jsonl or .csv, e.g. a manifest.csv)")
    parser.add_argument("--out", required=True, type=Path, help="metrics JSON to write")
    parser.add_argument("--text-column", help=f"text column in both files (default: first of {', '.join(TEXT_COLUMN_DEFAULTS)} present)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    parser.add_argument("--no-ci", action="store_true", help="point estimates only")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--ref-labels", action="store_true",
                        help="take reference labels from the reference file's 14 CheXpert columns instead of labelling its text")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (a Java process; ~10 s to start)")
    parser.add_argument("--no-backends", action="store_true", help="skip model-based metrics (BERTScore-MiniLM, F1-CheXbert, RadGraph)")


def read_reports(path: Path, text_column: str | None) -> pd.DataFrame:
    """Read ``id`` and one text column (as ``text``) from JSONL or CSV; a report without text is an error naming its ids."""
    frame = read_report_table(path)
    if "id" not in frame.columns:
        raise ValueError(f"{path}: no 'id' column (columns: {', '.join(map(str, frame.columns))}); add one to pair reports")
    column = text_column or next((c for c in TEXT_COLUMN_DEFAULTS if c in frame.columns), None)
    if column is None or column not in frame.columns:
        wanted = text_column or " or ".join(TEXT_COLUMN_DEFAULTS)
        raise ValueError(f"{path}: no text column {wanted!r} (columns: {', '.join(map(str, frame.columns))}); pass --text-column")
    frame["id"] = frame["id"].astype(str)
    duplicated = frame["id"][frame["id"].duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"{path}: {len(duplicated)} id(s) appear more than once, e.g. {list(duplicated[:_EXAMPLES])}; ids must be unique")
    texts, missing = report_texts(frame, column)
    if missing:
        ids = frame["id"].iloc[missing].tolist()
        raise ValueError(f"{path}: {len(ids)} report(s) have no {column!r} text (absent, null or a missing value such as "
                         f"NaN), ids {ids[:_EXAMPLES]}; give each a text (\"\" for an empty report) or drop the id from both files")
    frame["text"] = texts
    return frame


def reference_labels(pairs: pd.DataFrame, ref_path: Path) -> np.ndarray:
    """The 14 CheXpert columns of the reference file as floats (blank -> NaN) for ``--ref-labels``."""
    missing = [c for c in CHEXPERT_OBSERVATIONS if c not in pairs.columns]
    if missing:
        raise ValueError(f"{ref_path}: --ref-labels needs the 14 CheXpert columns; missing {missing}")
    labels = pairs[list(CHEXPERT_OBSERVATIONS)].map(lambda v: float("nan") if is_missing(v) or v == "" else v)
    try:
        return labels.astype(np.float64).to_numpy()
    except ValueError as exc:
        raise ValueError(f"{ref_path}: a CheXpert label is not a number ({exc}); labels must be 1, 0, -1 or blank") from None


def pair_reports(pred: pd.DataFrame, ref: pd.DataFrame, pred_path: Path, ref_path: Path) -> pd.DataFrame:
    """Join predictions and references on id, in the reference file's order (so CIs do not depend on the
    prediction file's row order); any id present in only one file is an error naming a few."""
    only_pred = sorted(set(pred["id"]) - set(ref["id"]))
    only_ref = sorted(set(ref["id"]) - set(pred["id"]))
    if only_pred or only_ref:
        parts = []
        if only_pred:
            parts.append(f"{len(only_pred)} id(s) only in {pred_path} (e.g. {only_pred[:_EXAMPLES]})")
        if only_ref:
            parts.append(f"{len(only_ref)} id(s) only in {ref_path} (e.g. {only_ref[:_EXAMPLES]})")
        raise ValueError("predictions and references do not pair up: " + "; ".join(parts) + "; score the same ids in both")
    return ref.merge(pred[["id", "text"]], on="id", how="left", suffixes=("_ref", "_pred"), validate="one_to_one")


def run(args: argparse.Namespace) -> int:
    refuse_output_over_inputs(args.out, [args.pred, args.ref])
    pred = read_reports(args.pred, args.text_column)
    ref = read_reports(args.ref, args.text_column)
    pairs = pair_reports(pred, ref, args.pred, args.ref)
    empty = pairs["id"][pairs["text_ref"].str.strip() == ""].tolist()
    if empty:
        raise ValueError(f"{args.ref}: {len(empty)} reference report(s) are empty, ids {empty[:_EXAMPLES]}; "
                         "an empty reference cannot be scored, so drop those ids from both files")
    ref_labels = reference_labels(pairs, args.ref) if args.ref_labels else None
    result = score_reports(
        pairs["text_pred"].tolist(), pairs["text_ref"].tolist(), ci=not args.no_ci, n_boot=args.n_boot, seed=args.seed,
        ref_labels=ref_labels, meteor=not args.no_meteor, backends=not args.no_backends,
    )
    result["inputs"] = {"pred": str(args.pred), "ref": str(args.ref)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(format_table(result))
    print(f"wrote {args.out}")
    return 0
