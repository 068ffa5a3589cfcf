"""``rrgkit book``: execute the notebooks with a profile and build the HTML book."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rrgkit.book.build import BookBuildError, build_book
from rrgkit.paths import project_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="smoke", help="profile name in notebooks/profiles/ (smoke, full, long, paper) or a YAML path")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="execute only these notebooks (by stem)")
    parser.add_argument("--no-html", action="store_true", help="execute the notebooks but skip jupyter-book")
    parser.add_argument("--root", type=Path, default=None, help="book project folder (default: this repository)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds allowed per cell (default 7200)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    try:
        result = build_book(args.profile, args.root or project_root(), only=args.only, html=not args.no_html, timeout=args.timeout, log=lambda m: print(m, flush=True))
    except BookBuildError as exc:
        print(f"rrgkit book: FAILED: {exc}", file=sys.stderr)
        return 2  # like every rrgkit command that cannot do what it was asked
    print(f"book built in {time.perf_counter() - start:.0f} s" + ("" if args.no_html else f": {result.html_dir / 'index.html'}"))
    return 0
