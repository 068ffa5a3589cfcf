"""``rrgkit data build phantom|iu-phantom``: materialise an embedded dataset (manifest + PNGs) in a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rrgkit.data.curation import format_funnel
from rrgkit.data.embedded import build_iu_phantom, build_phantom

DATASETS = ("phantom", "iu-phantom")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--out", required=True, type=Path, help="folder for manifest.csv, images/, curation.json, build.json")
    parser.add_argument("--n", type=int, help="number of studies (phantom: required; iu-phantom: first N reports, default all)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, rendering and the 7:1:2 split (default 0)")
    parser.add_argument("--no-lateral", action="store_true", help="frontal images only (no lateral view)")
    parser.add_argument("--force", action="store_true",
                        help="replace the build in --out (another config, or an interrupted one), or rebuild an up-to-date one")


def run(args: argparse.Namespace) -> int:
    lateral = not args.no_lateral
    if args.dataset == "phantom":
        if args.n is None:
            raise ValueError("rrgkit data build phantom needs --n N (number of studies), e.g. --n 2000")
        manifest = build_phantom(args.out, args.n, args.size, args.seed, lateral=lateral, force=args.force)
    else:
        manifest = build_iu_phantom(args.out, args.size, args.seed, lateral=lateral, n=args.n, force=args.force)
    funnel = json.loads((manifest.parent / "curation.json").read_text())["funnel"]
    print(format_funnel(funnel))
    print(f"manifest: {manifest}")
    return 0
