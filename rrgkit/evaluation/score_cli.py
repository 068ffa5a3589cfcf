"""``rrgkit score --pred P --ref R --out M.json``: score generated reports against references, with CIs.

Both files are JSONL or CSV with an ``id`` column and a text column. The text
column is ``--text-column`` if given, else ``findings`` if the file has one, else
``report`` (the paper generates the FINDINGS section; a manifest has ``findings``).
Pairs are joined on ``id``; every id must appear exactly once in each file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.evaluation.score import format_table, score_reports
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
    """Read ``id`` and one text column from JSONL or CSV; missing text becomes ''."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; give a .jsonl or .csv with an id column and a text column")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".jsonl":
        try:
            frame = pd.read_json(path, lines=True, dtype={"id": str})
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSONL (one JSON object per line): {exc}") from exc
    elif path.suffix.lower() == ".csv" or suffixes == ".csv.gz":
        frame = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values={c: [""] for c in CHEXPERT_OBSERVATIONS})
    else:
        raise ValueError(f"{path}: unknown format {path.suffix!r}; use .jsonl or .csv")
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
    frame["text"] = frame[column].fillna("").astype(str)
    return frame


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
    pred = read_reports(args.pred, args.text_column)
    ref = read_reports(args.ref, args.text_column)
    pairs = pair_reports(pred, ref, args.pred, args.ref)
    ref_labels = None
    if args.ref_labels:
        missing = [c for c in CHEXPERT_OBSERVATIONS if c not in pairs.columns]
        if missing:
            raise ValueError(f"{args.ref}: --ref-labels needs the 14 CheXpert columns; missing {missing}")
        ref_labels = pairs[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=np.float64)
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
