"""``rrgkit train --config configs/smoke.yaml [key.path=value ...] [--resume]``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. optim.batch_size=4 out=runs/x")
    parser.add_argument("--resume", action="store_true", help="continue the run in `out` from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from rrgkit.data.embedded import BuildFolderError
    from rrgkit.training.config import load_config
    from rrgkit.training.loop import train

    config = load_config(args.config, args.overrides)
    try:
        metrics = train(config, resume=args.resume, progress=not args.no_progress)
    except BuildFolderError as exc:
        raise ValueError(exc.for_config()) from exc
    if metrics:
        from rrgkit.evaluation.score import HEADLINE_METRICS, format_table

        print(format_table(metrics, [n for n in HEADLINE_METRICS if n in metrics["metrics"]]))
        print(f"best epoch {metrics['best_epoch']} (validation {metrics['select_by']} = {metrics['best_val']:.4f}); "
              f"run folder {config['out']}")
    return 0
