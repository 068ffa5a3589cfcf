"""``rrgkit train --config configs/smoke.yaml [key.path=value ...] [--resume]``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. optim.batch_size=4 out=runs/x")
    parser.add_argument("--resume", action="store_true", help="continue the run in `out` from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def last_checkpoint_step(out: Path) -> int | None:
    """The global step of the run's last checkpoint, or None before the first one.

    Read from ``progress.json`` of ``checkpoints/last`` (or ``last.old``, which a checkpoint swap
    leaves for a moment); a checkpoint folder only appears there complete.
    """
    for name in ("last", "last.old"):
        progress = out / "checkpoints" / name / "progress.json"
        if progress.exists():
            return int(json.loads(progress.read_text())["step"])
    return None


def _command(args: argparse.Namespace, resume: bool) -> str:
    return shlex.join(["rrgkit", "train", "--config", args.config, *args.overrides, *(["--resume"] if resume else [])])


def run(args: argparse.Namespace) -> int:
    from rrgkit.data.embedded import BuildFolderError
    from rrgkit.training.config import load_config
    from rrgkit.training.finetune import train

    config = load_config(args.config, args.overrides)
    out = config.out_path
    if args.resume and last_checkpoint_step(out) is None and not (out / "metrics.json").exists():
        print(f"rrgkit train: {out}: no checkpoint to resume; starting a new run", file=sys.stderr)
    try:
        metrics = train(config, resume=args.resume, progress=not args.no_progress)
    except BuildFolderError as exc:
        raise ValueError(exc.for_config()) from exc
    except KeyboardInterrupt:
        if os.environ.get("RRGKIT_DEBUG"):
            raise
        step = last_checkpoint_step(out)
        if step is None:
            print(f"rrgkit train: interrupted before the first checkpoint; start again with: {_command(args, False)}",
                  file=sys.stderr)
        else:
            print(f"rrgkit train: interrupted at step {step}; continue with: {_command(args, True)}", file=sys.stderr)
        return 130
    if metrics:
        from rrgkit.evaluation.score import HEADLINE_METRICS, format_table

        print(format_table(metrics, [n for n in HEADLINE_METRICS if n in metrics["metrics"]]))
        print(f"best epoch {metrics['best_epoch']} (validation {metrics['select_by']} = {metrics['best_val']:.4f}); "
              f"run folder {config.out}")
    return 0
