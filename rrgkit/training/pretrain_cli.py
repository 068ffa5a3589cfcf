"""``rrgkit pretrain {contrastive,labels,lm} --config FILE [key.path=value ...]``."""

from __future__ import annotations

import argparse
import json

from rrgkit.training.pretrain import KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="contrastive: image-report encoder; labels: encoder on the 14 observation labels; lm: from-scratch GPT-2 on reports")
    parser.add_argument("--config", help="pretraining config YAML (see configs/pretrain_*.yaml); defaults if omitted")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. optim.epochs=1 out=runs/pre")
    parser.add_argument("--resume", action="store_true", help="continue the run in `out` from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from rrgkit.data.embedded import BuildFolderError
    from rrgkit.training.pretrain import PRETRAIN, load_pretrain_config

    config = load_pretrain_config(args.kind, args.config, args.overrides)
    try:
        summary = PRETRAIN[args.kind](config, resume=args.resume, progress=not args.no_progress)
    except BuildFolderError as exc:
        raise ValueError(exc.for_config()) from exc
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0
