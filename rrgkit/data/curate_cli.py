"""``rrgkit data curate mimic-cxr|iu-xray``: real dataset -> paper's curation -> manifest + ``curation.json`` funnel."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from rrgkit.data.curation import curate_manifest, format_funnel
from rrgkit.data.manifest import SEP, write_manifest
from rrgkit.runs import write_json

DATASETS = ("mimic-cxr", "iu-xray")
PAPER_FUNNEL = {"dataset": "mimic-cxr", "train": 85802, "val": 682, "test": 1259}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--root", required=True, type=Path, help="dataset folder (MIMIC-CXR-JPG root or IU X-ray layout)")
    parser.add_argument("--reports-root", type=Path, help="MIMIC-CXR reports root if not under --root")
    parser.add_argument("--layout", choices=("openi", "csv", "r2gen"), help="IU X-ray layout (detected by default)")
    parser.add_argument("--out", required=True, type=Path, help="folder for manifest.csv and curation.json")
    parser.add_argument("--keep-lateral", action="store_true", help="keep lateral images after the frontal (RRG24 multi-view)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the IU 7:1:2 split when the layout has none")
    parser.add_argument("--resize", type=int, metavar="PX", help="also write a PX-pixel image cache and its manifest under OUT/resized-PX")


def relative_images(frame: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Rewrite absolute image paths relative to the manifest folder, as the schema asks."""
    out = out.resolve()
    rel = [SEP.join(os.path.relpath(p, out) for p in paths.split(SEP)) for paths in frame["images"]]
    return frame.assign(images=rel)


def curate(dataset: str, root: Path, out: Path, reports_root: Path | None = None, layout: str | None = None,
           keep_lateral: bool = False, seed: int = 0) -> dict:
    """Load, curate and write ``out/manifest.csv`` and ``out/curation.json``; return the curation record."""
    if dataset == "mimic-cxr":
        from rrgkit.data.mimic import load_mimic

        frame, skips = load_mimic(root, reports_root)
    else:
        from rrgkit.data.iu_xray import load_iu_xray

        frame, skips = load_iu_xray(root, layout, seed)
    curated, funnel = curate_manifest(frame, keep_lateral=keep_lateral)
    write_manifest(relative_images(curated, out), out / "manifest.csv")
    record = {"dataset": dataset, "root": str(root), "keep_lateral": keep_lateral, "funnel": funnel,
              "skipped_files": skips, "paper": PAPER_FUNNEL}
    write_json(out / "curation.json", record)
    return record


def run(args: argparse.Namespace) -> int:
    record = curate(args.dataset, args.root, args.out, args.reports_root, args.layout, args.keep_lateral, args.seed)
    print(format_funnel(record["funnel"]))
    if args.resize:
        from rrgkit.data.resize_cache import resize_manifest_images

        print(f"resized manifest: {resize_manifest_images(args.out, args.out / f'resized-{args.resize}', args.resize)}")
    print(f"skipped files: {len(record['skipped_files'])} (listed in {args.out / 'curation.json'})")
    if args.dataset == "mimic-cxr":
        print("paper (Lu et al. 2023): train 85,802 / val 682 / test 1,259")
    return 0
