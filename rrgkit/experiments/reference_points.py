"""Reference points a trained model is read against, on the very test studies it was scored on.

* **text only**: every test study gets the training set's most common report
  (:func:`rrgkit.data.embedded.most_common_report`). It never looks at an image, so a model must
  beat it before it can claim to read the X-ray.
* **writer ceiling** (embedded datasets only): a fresh report written by
  :func:`rrgkit.data.report_writer.write_report` from each test study's true state
  (:func:`rrgkit.data.embedded.load_studies`), with the random stream the data chapter uses. It is
  what a model that sees everything could write; it misses 1 only where phrasing or the labeler do.
* **encoder + classifier** (when the model's encoder is pretrained): a linear classifier on the
  frozen encoder's features with F1-tuned thresholds, its predictions written up by the writer
  (:mod:`rrgkit.experiments.image_classifier`). What the images let the model's starting encoder
  see; a model below it has not said all its encoder sees.

All are scored like a model's test reports (:func:`rrgkit.evaluation.score.score_reports`,
labels of the manifest as reference labels), so the bar plot of the training chapter compares like
with like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.data.embedded import BUILD_FILE, PHANTOM_SOURCE, load_studies, most_common_report
from rrgkit.data.manifest import read_manifest
from rrgkit.labels import CHEXPERT_OBSERVATIONS

CEILING_STREAM = 12345
"""Offset of the writer ceiling's rng seed (the data chapter's ``seed + 12345``)."""


def _test_rows(frame: pd.DataFrame, ids: Sequence[str] | None) -> pd.DataFrame:
    test = frame[frame["split"] == "test"]
    if test.empty:
        raise ValueError("the manifest has no test studies; build a larger dataset")
    if ids is None:
        return test.reset_index(drop=True)
    missing = sorted(set(ids) - set(test["id"]))
    if missing:
        raise ValueError(f"{len(missing)} id(s) are not test studies of the manifest (first {missing[0]!r}); "
                         "score the run against the manifest it was trained on")
    return test.set_index("id").loc[list(ids)].reset_index()


def text_only_reports(frame: pd.DataFrame, ids: Sequence[str] | None = None) -> list[str]:
    """The most common train findings for every test study (in ``ids`` order, default manifest order)."""
    return [most_common_report(frame)] * len(_test_rows(frame, ids))


def writer_ceiling_reports(manifest: str | Path, ids: Sequence[str] | None = None, seed: int = 0) -> list[str] | None:
    """Fresh writer reports from the true test states of a built phantom folder; ``None`` for other datasets.

    The writer runs over the test studies in manifest order (as the data chapter does), then the
    reports are put in ``ids`` order, so the texts do not depend on the order a run tested in.
    """
    from rrgkit.data.report_writer import write_report

    manifest = Path(manifest)
    record = manifest.parent / BUILD_FILE
    if not record.exists() or json.loads(record.read_text())["config"]["dataset"] != PHANTOM_SOURCE:
        return None
    frame = read_manifest(manifest)
    studies = load_studies(manifest.parent)
    rng = np.random.default_rng(seed + CEILING_STREAM)
    fresh = {i: write_report(studies[i], rng)["findings"] for i in frame.loc[frame["split"] == "test", "id"]}
    return [fresh[i] for i in _test_rows(frame, ids)["id"]]


def reference_reports(manifest: str | Path, ids: Sequence[str] | None = None, seed: int = 0,
                      classifier: Mapping | None = None) -> dict[str, list[str]]:
    """The reference points' test reports in ``ids`` order: text only, encoder + classifier, writer ceiling.

    ``classifier`` is ``{"encoder": <model.encoder config with weights>, "image_size": px, "views": ...}``;
    without it (or outside phantom data, for the ceiling) that reference point is left out.
    """
    from rrgkit.experiments.image_classifier import classifier_reports

    frame = read_manifest(manifest)
    ids = list(_test_rows(frame, ids)["id"])
    systems = {"text only": text_only_reports(frame, ids)}
    if classifier is not None:
        systems["encoder + classifier"] = classifier_reports(
            manifest, classifier["encoder"], classifier["image_size"], ids, classifier.get("views", "frontal"), seed).texts
    ceiling = writer_ceiling_reports(manifest, ids, seed)
    if ceiling is not None:
        systems["writer ceiling"] = ceiling
    return systems


def score_on_test(manifest: str | Path, systems: Mapping[str, Sequence[str]], ids: Sequence[str] | None = None,
                  seed: int = 0, n_boot: int = 1000) -> dict[str, dict]:
    """``score_reports`` of each system's test reports (in ``ids`` order) against the manifest's labels."""
    from rrgkit.evaluation.score import score_reports

    test = _test_rows(read_manifest(manifest), ids)
    labels = test[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=float)
    return {
        name: score_reports(list(texts), list(test["findings"]), ref_labels=labels, n_boot=n_boot, seed=seed,
                            meteor=False, backends=False)
        for name, texts in systems.items()
    }

