"""``rrgkit generate --run DIR --split test --out preds.jsonl``: reports from a run's best checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="a run folder written by `rrgkit train`")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--out", required=True, type=Path, help="output JSON lines (id, generated, reference, ...)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-beams", type=int, default=None, help="default: the run's eval.num_beams")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from rrgkit.training.generation import generate_split

    if args.batch_size < 1 or (args.num_beams is not None and args.num_beams < 1):
        raise ValueError("--batch-size and --num-beams must be positive integers")
    rows = generate_split(args.run, args.split, args.out, batch_size=args.batch_size, num_beams=args.num_beams,
                          progress=not args.no_progress)
    print(f"wrote {len(rows)} reports to {args.out}")
    return 0
