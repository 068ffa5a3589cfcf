"""Materialise the two embedded datasets as manifest + PNG folders, so every chapter runs without credentials.

* ``phantom``: labels, view, sex and age from real CheXpert rows (:mod:`rrgkit.data.sampling`),
  reports from :mod:`rrgkit.data.report_writer`, pixels from :mod:`rrgkit.phantom.render`.
* ``iu-phantom``: the REAL IU X-ray reports (findings and impression unmodified, IU uid as id),
  labelled by :func:`rrgkit.evaluation.labeler.label_reports`, with phantom images drawn from those labels:
  real report language, synthetic pixels.

Both pass the paper's curation (:func:`rrgkit.data.curation.curate_manifest`, laterals kept after the
frontal) before any pixel is rendered, and write ``manifest.csv``, ``images/*.png`` (8-bit grayscale),
``curation.json`` (the funnel) and ``build.json`` (config and rrgkit source hash; written last). A folder
whose ``build.json`` matches the config and source is reused, not rebuilt. A folder holding another build is
never replaced without ``force``, and ``build.partial.json`` (the config, written first) lets an interrupted
build be recognised as ours: finished by the same command, cleared by ``force``.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

from rrgkit.data.curation import curate_manifest
from rrgkit.data.iu_xray import random_split
from rrgkit.data.manifest import SEP, read_manifest, write_manifest
from rrgkit.data.report_writer import write_report
from rrgkit.data.sampling import default_pool, sample_studies, study_from_labels
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.phantom.state import Study
from rrgkit.runs import DATA_SOURCES, source_hash, write_json

BUILD_FILE = "build.json"
PARTIAL_FILE = "build.partial.json"
"""Written before the first image and removed after ``build.json``: marks a folder as an unfinished build of ours."""
IU_SOURCE = "iu-phantom"
PHANTOM_SOURCE = "phantom"


class BuildFolderError(ValueError):
    """``out`` holds something other than the build asked for: another build, the unfinished build of another
    config, or files rrgkit did not write. Replacing a build needs ``--force``; a foreign folder is never cleared.

    The default message is for ``rrgkit data build``; :meth:`for_config` words the fix for a config's ``data.build``.
    """

    def __init__(self, out: Path, holds: dict | None, wanted: dict, finished: bool = True) -> None:
        self.out, self.holds, self.wanted, self.finished = out, holds, wanted, finished
        if holds is None:
            message = f"{out}: folder is not empty and holds no {BUILD_FILE}; give `rrgkit data build --out` an empty or new folder"
        else:
            message = (f"{out} holds {self._what()}, not the one asked for ({describe(wanted)}); "
                       f"pass --force to replace it, or give another --out")
        super().__init__(message)

    def _what(self) -> str:
        if self.holds is None:
            return "files that are not an rrgkit build"
        return f"{'the build' if self.finished else 'an unfinished build of'} {describe(self.holds)}"

    def for_config(self) -> str:
        """The same refusal for ``data.manifest`` + ``data.build`` in a training or pretraining config."""
        replace = f"replace it with `{build_command(self.wanted, self.out)} --force`"
        if self.holds is None:
            fix = "point data.manifest at a new folder, or use the manifest there as it is with data.build=null"
        elif self.finished:
            fix = f"use the existing build with data.build=null, or {replace}"
        else:
            fix = replace
        return f"{self.out} holds {self._what()}, but data.build asks for {describe(self.wanted)}; {fix}"


def describe(config: dict) -> str:
    """A build config in one phrase, e.g. ``phantom n=40 size=64 seed=1``."""
    n = "all" if config["n"] is None else config["n"]
    return f"{config['dataset']} n={n} size={config['size']} seed={config['seed']}" + ("" if config["lateral"] else " frontal-only")


def build_command(config: dict, out: Path) -> str:
    """The ``rrgkit data build`` command line that makes this build in ``out``."""
    argv = ["rrgkit", "data", "build", config["dataset"], "--out", str(out)]
    argv += [] if config["n"] is None else ["--n", str(config["n"])]
    argv += ["--size", str(config["size"]), "--seed", str(config["seed"])]
    return shlex.join(argv + ([] if config["lateral"] else ["--no-lateral"]))


def rebuild_command(out: str | Path) -> str | None:
    """The exact ``rrgkit data build ... --force`` that remakes ``out`` as it was built, or None without a build.json."""
    record = _read_record(Path(out) / BUILD_FILE)
    return None if record is None else f"{build_command(record['config'], Path(out))} --force"


def _read_record(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete the folder {path.parent} and build it again") from None


def _clear(out: Path) -> None:
    """Remove what a build writes (and its temporary files), nothing else."""
    shutil.rmtree(out / "images", ignore_errors=True)
    for name in (BUILD_FILE, PARTIAL_FILE, "manifest.csv", "curation.json"):
        (out / name).unlink(missing_ok=True)
    for tmp in out.glob("*.tmp"):  # pathlib's * matches the hidden names of rrgkit.files too
        tmp.unlink()


def _prepare(out: Path, config: dict, force: bool) -> bool:
    """True when ``out`` already holds this build; otherwise clear it and mark it as this build, unfinished.

    A finished or unfinished build of another config is replaced only with ``force``; a folder without
    either record is not rrgkit's and is never cleared. The same config built by an older rrgkit (another
    source hash) is rebuilt, as the library changed.
    """
    record, partial = _read_record(out / BUILD_FILE), _read_record(out / PARTIAL_FILE)
    if record is not None:
        if record["config"] == config and not force and record["source_hash"] == source_hash(DATA_SOURCES) \
                and (out / "manifest.csv").exists():
            return True
        if record["config"] != config:
            if not force:
                raise BuildFolderError(out, record["config"], config)
            print(f"replacing the build {describe(record['config'])} in {out}")
    elif partial is not None:
        if partial["config"] != config and not force:
            raise BuildFolderError(out, partial["config"], config, finished=False)
    elif out.exists() and any(out.iterdir()):
        raise BuildFolderError(out, None, config)
    _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / PARTIAL_FILE, {"config": config})
    return False


def _save_png(pixels: np.ndarray, path: Path) -> None:
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise RuntimeError(f"{path}: the renderer returned an array of shape {array.shape} with non-finite values; expected (size, size) in [0, 1]")
    Image.fromarray(np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8), mode="L").save(path)


def _frame(studies: list[Study], reports: list[dict], splits: list[str], source: str, lateral: bool) -> pd.DataFrame:
    """Manifest rows; image paths are decided now, pixels are rendered only for the studies curation keeps."""
    rows = []
    for study, report, split in zip(studies, reports, splits):
        images, views = [f"images/{study.id}_frontal.png"], [study.view]
        if lateral:
            images.append(f"images/{study.id}_lateral.png")
            views.append("LATERAL")
        labels = dict(zip(CHEXPERT_OBSERVATIONS, study.labels))
        rows.append({"id": study.id, "images": SEP.join(images), "views": SEP.join(views), **report, **labels,
                     "split": split, "source": source})
    return pd.DataFrame(rows)


def _materialise(out: Path, config: dict, studies: list[Study], frame: pd.DataFrame, size: int) -> Path:
    from rrgkit.phantom.render import render_study

    curated, funnel = curate_manifest(frame, keep_lateral=config["lateral"])
    by_id = {s.id: s for s in studies}
    (out / "images").mkdir(parents=True, exist_ok=True)
    for study_id, images, views in tqdm(list(zip(curated["id"], curated["images"], curated["views"])),
                                        desc=f"rendering {config['dataset']} ({size} px)"):
        for image, view in zip(images.split(SEP), views.split(SEP)):
            _save_png(render_study(by_id[study_id], size=size, view=view), out / image)
    manifest = write_manifest(curated, out / "manifest.csv")
    write_json(out / "curation.json", {"dataset": config["dataset"], "keep_lateral": config["lateral"], "funnel": funnel})
    write_json(out / BUILD_FILE, {"config": config, "source_hash": source_hash(DATA_SOURCES)})
    (out / PARTIAL_FILE).unlink()
    return manifest


def _check(n: int | None, size: int, seed: int) -> None:
    from rrgkit.phantom.render import MAX_SIZE, MIN_SIZE

    if n is not None and n < 1:
        raise ValueError(f"number of studies n={n} must be at least 1")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size {size} px is outside the renderer's range; use {MIN_SIZE} to {MAX_SIZE}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def build_phantom(out: str | Path, n: int, size: int, seed: int, lateral: bool = True, force: bool = False) -> Path:
    """Build (or reuse) the phantom dataset in ``out``; return the path of its ``manifest.csv``.

    Split 70/10/20 by study with ``seed``; reports are written with a separate rng stream so that
    changing the writer does not change the sampled studies.
    """
    _check(n, size, seed)
    out = Path(out)
    config = {"dataset": PHANTOM_SOURCE, "n": n, "size": size, "seed": seed, "lateral": lateral}
    if _prepare(out, config, force):
        return out / "manifest.csv"
    studies = sample_studies(n, seed)
    writer_rng = np.random.default_rng([seed, 1])
    reports = [write_report(study, writer_rng) for study in studies]
    frame = _frame(studies, reports, random_split(n, seed), PHANTOM_SOURCE, lateral)
    return _materialise(out, config, studies, frame, size)


def _iu_studies(n: int | None, seed: int) -> tuple[pd.DataFrame, list[Study]]:
    """The first ``n`` IU reports and the phantom studies drawn from their labels."""
    from rrgkit.data.iu_xray import load_iu_reports
    from rrgkit.evaluation.labeler import label_reports

    reports = load_iu_reports()
    reports = reports.iloc[:n] if n is not None else reports
    texts = (reports["findings"] + " " + reports["impression"]).str.strip().tolist()
    labels = np.asarray(label_reports(texts), dtype=float)
    rng = np.random.default_rng(seed)
    pa = default_pool()
    pa = pa[pa["AP/PA"] == "PA"]
    meta = pa.iloc[rng.integers(len(pa), size=len(reports))]
    sexes = meta["Sex"].map({"Male": "M", "Female": "F"}).fillna("?").tolist()
    ages = np.clip(meta["Age"].fillna(60).to_numpy(), 18, 95).astype(int)
    studies = [study_from_labels(uid, labels[i], rng, "PA", sexes[i], ages[i]) for i, uid in enumerate(reports["uid"])]
    return reports, studies


def build_iu_phantom(out: str | Path, size: int, seed: int, lateral: bool = True, n: int | None = None,
                     force: bool = False) -> Path:
    """Build (or reuse) iu-phantom in ``out`` from the first ``n`` IU reports (all 3,955 by default).

    Labels come from the labeler on findings + impression; every study is PA (IU X-ray is an
    outpatient collection); sex and age are drawn from real PA CheXpert rows. Split 7:1:2 by report.
    The manifest's No Finding follows CheXpert's rule (:func:`rrgkit.data.sampling.normalise_no_finding`).
    """
    _check(n, size, seed)
    out = Path(out)
    config = {"dataset": IU_SOURCE, "n": n, "size": size, "seed": seed, "lateral": lateral}
    if _prepare(out, config, force):
        return out / "manifest.csv"
    reports, studies = _iu_studies(n, seed)
    texts = [{"findings": f, "impression": i, "comparison": c}
             for f, i, c in zip(reports["findings"], reports["impression"], reports["comparison"])]
    frame = _frame(studies, texts, random_split(len(reports), seed), IU_SOURCE, lateral)
    return _materialise(out, config, studies, frame, size)


def load_studies(out: str | Path) -> dict[str, Study]:
    """The :class:`Study` behind every id of a built folder (all of them, curated or not), re-drawn from ``build.json``.

    The build is deterministic, so this is exact as long as the sampler is unchanged; the re-drawn
    labels and views are checked against the manifest. The gallery, the writer ceiling and
    per-severity analyses need the state the pixels and reports came from, which a manifest does not hold.
    """
    out = Path(out)
    record = out / BUILD_FILE
    if not record.exists():
        raise FileNotFoundError(f"{record}: not found; build the folder with `rrgkit data build phantom|iu-phantom --out {out}`")
    config = json.loads(record.read_text())["config"]
    if config["dataset"] == PHANTOM_SOURCE:
        studies = {s.id: s for s in sample_studies(config["n"], config["seed"])}
    else:
        studies = {s.id: s for s in _iu_studies(config["n"], config["seed"])[1]}
    frame = read_manifest(out)
    labels = frame[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=float)
    for row, (study_id, views) in enumerate(zip(frame["id"], frame["views"])):
        study = studies.get(study_id)
        if study is None or study.view != views.split(SEP)[0] or not np.array_equal(study.labels, labels[row], equal_nan=True):
            raise RuntimeError(f"{out}: study {study_id!r} re-drawn by this rrgkit differs from the built one; "
                               f"rebuild with `{rebuild_command(out)}`")
    return studies


def most_common_report(frame: pd.DataFrame, split: str = "train") -> str:
    """The text-only baseline's report: what a model that never looks at the image would write.

    The most common findings text among the ``split`` reports whose label vector is the most common
    one. On real reports this is the modal (normal) report; on phantom, where the writer makes nearly
    every report unique, plain text frequency would pick an arbitrary report, so the modal label
    vector decides first.
    """
    rows = frame[frame["split"] == split]
    if rows.empty:
        raise ValueError(f"no {split!r} reports to take the most common one from; build a larger dataset")
    vectors = rows[list(CHEXPERT_OBSERVATIONS)].fillna(9.0).astype(int).astype(str).agg(",".join, axis=1)
    modal = vectors.value_counts().index[0]
    return str(rows.loc[vectors == modal, "findings"].value_counts().index[0])


def build_embedded(dataset: str, out: str | Path, n: int | None, size: int, seed: int) -> Path:
    """Build (or reuse) the embedded ``dataset`` (``phantom`` or ``iu-phantom``) in ``out``; its ``manifest.csv``."""
    if dataset == PHANTOM_SOURCE:
        if n is None:
            raise ValueError("the phantom dataset needs n, the number of studies")
        return build_phantom(out, n, size, seed)
    if dataset == IU_SOURCE:
        return build_iu_phantom(out, size, seed, n=n)
    raise ValueError(f"unknown embedded dataset {dataset!r}; choose {PHANTOM_SOURCE} or {IU_SOURCE}")
