"""``rrgkit data``: build the embedded datasets or curate real ones into the common manifest."""

from __future__ import annotations

import argparse

from rrgkit.cli import dispatch

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "build": ("rrgkit.data.build_cli", "materialise an embedded dataset (phantom, iu-phantom) under data/"),
    "curate": ("rrgkit.data.curate_cli", "curate MIMIC-CXR-JPG or IU X-ray into the common manifest"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="build | curate, then their options")


def run(args: argparse.Namespace) -> int:
    return dispatch(SUBCOMMANDS, args.rest, "rrgkit data", "Build or curate datasets into the common manifest.")
