"""``rrgkit info``: what is installed, where the bundled assets are, and how many threads torch uses."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import sys

from rrgkit.assets import ASSETS

PACKAGES = ("rrgkit", "torch", "torchvision", "timm", "transformers", "peft", "gguf", "accelerate", "papermill", "jupyter-book", "pycocoevalcap")


def collect() -> dict:
    """Versions, machine facts and asset locations as a JSON-able dict."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = None
    assets = {}
    for name, asset in ASSETS.items():
        path = asset.locate()
        assets[name] = {
            "present": path is not None,
            "path": str(path) if path else None,
            "description": asset.description,
            "licence": asset.licence,
            "install": asset.install_command,
        }
    return {
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "torch_threads": threads,
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE", ""),
        "versions": versions,
        "assets": assets,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bundled asset is missing")


def run(args: argparse.Namespace) -> int:
    info = collect()
    missing = [n for n, a in info["assets"].items() if not a["present"]]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"python        {info['python']}")
        print(f"machine       {info['machine']}")
        print(f"torch threads {info['torch_threads']}")
        print(f"HF_HUB_OFFLINE={info['hf_hub_offline'] or '(unset)'}")
        print("\npackages")
        for name, version in info["versions"].items():
            print(f"  {name:<14} {version or 'not installed'}")
        print("\nbundled assets")
        for name, a in info["assets"].items():
            where = a["path"] if a["present"] else f"MISSING -> {a['install']}"
            print(f"  {name:<16} {where}")
    for name in missing:
        a = info["assets"][name]
        print(f"rrgkit: asset {name} missing: {a['install']}", file=sys.stderr)
    return 1 if (missing and args.check) else 0
