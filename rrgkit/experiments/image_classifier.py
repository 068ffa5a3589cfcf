"""An image-classifier reference point: what a linear read-out of the pretrained encoder reports.

The text-only report and the writer ceiling bracket a report generator from below and from
above, but the gap between them mixes two things: what the images do not show (equivocal and
low-severity signs) and what the generator fails to say. This reference point separates them.
The encoder the model starts from (frozen, eval mode) embeds every study (visual tokens,
mean-pooled); one logistic regression per observation learns the U-ones targets (positive or
uncertain) on the train split; per-observation thresholds are tuned on the validation split to
maximise micro F1 (the headline metric, not each observation's own F1, which over-calls rare
findings); the test predictions become reports through the phantom's own writer
(:func:`rrgkit.data.sampling.study_from_labels` → :func:`rrgkit.data.report_writer.write_report`),
so phrasing costs it what it costs the writer ceiling. It is a classifier with F1-optimal
decisions on the features the model starts from, so a model that lands below it has not said all
that its encoder sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rrgkit.labels import CHEXPERT_OBSERVATIONS

THRESHOLD_GRID = np.linspace(0.02, 0.98, 49)
WRITER_STREAM = 54321
"""Offset of the writer's rng seed for the classifier's reports (the ceiling uses 12345)."""


@dataclass
class ClassifierReports:
    """Test reports in the requested order, and the tuned threshold per observation."""

    ids: list[str]
    texts: list[str]
    thresholds: dict[str, float]
    test_probabilities: np.ndarray  # (n_test, 14), NaN for observations the classifier does not model


def encoder_features(encoder: torch.nn.Module, manifest: str | Path, split: str, image_size: int,
                     views: str = "frontal", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mean-pooled visual tokens of ``encoder`` (in eval mode), the manifest's labels and ids, for one split."""
    from rrgkit.data.loader import ManifestDataset, collate_reports

    encoder.eval()
    dataset = ManifestDataset(manifest, split, image_size, views=views, cache=False)
    features, labels, ids = [], [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate_reports([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
            features.append(encoder(batch["image"]).mean(1))
            labels.append(batch["labels"])
            ids += batch["id"]
    return torch.cat(features).numpy(), torch.cat(labels).numpy(), ids


def micro_f1_thresholds(probabilities: np.ndarray, truth: np.ndarray, grid: np.ndarray = THRESHOLD_GRID,
                        passes: int = 3) -> np.ndarray:
    """One threshold per column maximising the micro F1 of ``probabilities >= thresholds`` against ``truth``.

    Coordinate ascent from 0.5: each column in turn takes the grid value that maximises the pooled
    F1 given the others' thresholds; ``passes`` sweeps (ties go to the lower threshold).
    """
    if probabilities.shape != truth.shape or probabilities.ndim != 2:
        raise ValueError(f"probabilities {probabilities.shape} and truth {truth.shape} must be the same (n, k) shape")
    truth = truth.astype(bool)
    thresholds = np.full(probabilities.shape[1], 0.5)
    n_true = truth.sum()
    for _ in range(passes):
        for j in range(probabilities.shape[1]):
            others = np.delete(np.arange(probabilities.shape[1]), j)
            pred_others = probabilities[:, others] >= thresholds[others]
            tp_others, pos_others = (pred_others & truth[:, others]).sum(), pred_others.sum()
            pred = probabilities[:, j][None, :] >= grid[:, None]  # (grid, n)
            tp = tp_others + (pred & truth[:, j][None, :]).sum(1)
            f1 = 2 * tp / np.maximum(1, pos_others + pred.sum(1) + n_true)
            thresholds[j] = grid[int(np.argmax(f1))]
    return thresholds


def classifier_reports(manifest: str | Path, encoder, image_size: int, ids: Sequence[str] | None = None,
                       views: str = "frontal", seed: int = 0) -> ClassifierReports:
    """Reports written from a linear classifier on ``encoder``'s frozen features (test split, ``ids`` order).

    ``encoder`` is an :class:`rrgkit.models.config.EncoderConfig` or a ``model.encoder`` mapping with its weights.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from rrgkit.data.manifest import read_manifest
    from rrgkit.data.report_writer import write_report
    from rrgkit.data.sampling import study_from_labels
    from rrgkit.evaluation.clinical import binarize
    from rrgkit.models.config import EncoderConfig, parse_model_config
    from rrgkit.models.encoder import build_encoder

    model = build_encoder(encoder if isinstance(encoder, EncoderConfig) else parse_model_config({"encoder": dict(encoder)}).encoder)
    data = {split: encoder_features(model, manifest, split, image_size, views) for split in ("train", "val", "test")}
    scaler = StandardScaler().fit(data["train"][0])
    x = {split: scaler.transform(d[0]) for split, d in data.items()}
    y = {split: binarize(d[1], uncertain="positive") for split, d in data.items()}  # U-ones, blank = negative
    columns = [j for j, obs in enumerate(CHEXPERT_OBSERVATIONS)
               if obs != "No Finding" and 0 < y["train"][:, j].sum() < len(y["train"])]
    probabilities = {split: np.full(y[split].shape, np.nan) for split in ("val", "test")}
    for j in columns:
        classifier = LogisticRegression(C=1.0, max_iter=2000).fit(x["train"], y["train"][:, j])
        for split in probabilities:
            probabilities[split][:, j] = classifier.predict_proba(x[split])[:, 1]
    thresholds = micro_f1_thresholds(probabilities["val"][:, columns], y["val"][:, columns])
    predicted = np.zeros(y["test"].shape)
    predicted[:, columns] = probabilities["test"][:, columns] >= thresholds
    views_of = read_manifest(manifest).set_index("id")["views"]
    rng = np.random.default_rng(seed + WRITER_STREAM)
    written = {}
    for i, study_id in enumerate(data["test"][2]):  # manifest order, so the texts do not depend on ``ids``
        view = "AP" if str(views_of[study_id]).split("|")[0] == "AP" else "PA"
        written[study_id] = write_report(study_from_labels(study_id, predicted[i], rng, view=view), rng)["findings"]
    order = list(ids) if ids is not None else data["test"][2]
    missing = [i for i in order if i not in written]
    if missing:
        raise ValueError(f"{len(missing)} id(s) are not test studies of {manifest} (first {missing[0]!r})")
    row = {study_id: i for i, study_id in enumerate(data["test"][2])}
    return ClassifierReports(
        ids=order,
        texts=[written[i] for i in order],
        thresholds={CHEXPERT_OBSERVATIONS[j]: float(t) for j, t in zip(columns, thresholds, strict=True)},
        test_probabilities=probabilities["test"][[row[i] for i in order]],
    )
