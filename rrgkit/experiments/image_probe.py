"""Validity check for an image benchmark: can a small classifier see each finding in the pixels?

A benchmark on which a CNN reads every label perfectly cannot separate fine-tuning schedules; one
on which it reads nothing cannot teach a report generator to look. :func:`image_probe` trains a
small CNN (four conv blocks with BatchNorm, multi-label BCE over the 13 pathologies) on the train
split — with the training core every other model uses (:func:`rrgkit.training.engine.fit`) — and reports, per observation on the test split, the AUROC of definite positives (label 1)
against studies without the finding (0 or blank), with a 95% bootstrap interval, and the same for
uncertain (-1) studies, whose signs are drawn subtler.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.seed import seed_everything
from rrgkit.training.engine import LoopSettings, fit
from rrgkit.training.schedule import Phase

COLUMNS = [CHEXPERT_OBSERVATIONS.index(name) for name in PATHOLOGIES]


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]


def probe_network() -> nn.Module:
    """The probe: four conv blocks (16-32-64-64 channels), global max pooling, one linear layer."""
    return nn.Sequential(*_block(1, 16), *_block(16, 32), *_block(32, 64), *_block(64, 64),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, len(PATHOLOGIES)))


def _split(manifest: str | Path, split: str, image_size: int) -> tuple[torch.Tensor, np.ndarray]:
    from rrgkit.data.loader import ManifestDataset, collate_reports

    data = ManifestDataset(manifest, split, image_size, cache=False)
    if len(data) == 0:
        raise ValueError(f"{manifest}: the {split} split is empty; the image probe needs train and test studies")
    batch = collate_reports([data[i] for i in range(len(data))])
    return batch["image"], batch["labels"].numpy()[:, COLUMNS]


def _auroc_with_ci(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray, n_boot: int, seed: int) -> dict:
    pos, neg = scores[positive], scores[negative]
    if len(pos) == 0 or len(neg) == 0:
        return {"auroc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_pos": len(pos)}
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):  # stratified: resample positives and negatives separately
        ip, ineg = rng.integers(0, len(pos), len(pos)), rng.integers(0, len(neg), len(neg))
        reps.append(roc_auc_score(y, np.r_[pos[ip], neg[ineg]]))
    low, high = np.percentile(reps, [2.5, 97.5]) if reps else (np.nan, np.nan)
    return {"auroc": float(roc_auc_score(y, s)), "ci_low": float(low), "ci_high": float(high), "n_pos": len(pos)}


class _ProbeTask:
    """The probe CNN on images held in memory, for the training core."""

    def __init__(self, net: nn.Module, images: torch.Tensor, targets: torch.Tensor, epochs: int) -> None:
        self.net, self.images, self.targets = net, images, targets
        self.phases = [Phase("probe", epochs, frozenset({"probe"}))]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"probe": list(self.net.parameters())}

    def state_module(self) -> nn.Module:
        return self.net

    def n_items(self) -> int:
        return len(self.images)

    def lengths(self, phase: Phase) -> None:
        return None

    def start_epoch(self, phase: Phase) -> None:
        self.net.train()

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.net(self.images[indices]), self.targets[indices])

    def validate(self, phase: Phase) -> None:
        return None


def image_probe(manifest: str | Path, image_size: int, epochs: int = 10, seed: int = 0, batch_size: int = 32,
                lr: float = 2e-3, n_boot: int = 200) -> pd.DataFrame:
    """Train the probe on the train split; per-observation test AUROC for positives and for uncertain studies."""
    if epochs < 1:
        raise ValueError(f"image_probe: epochs must be >= 1, got {epochs}")
    seed_everything(seed)
    x_train, y_train = _split(manifest, "train", image_size)
    x_test, y_test = _split(manifest, "test", image_size)
    mean = x_train.mean()
    x_train, x_test = (x_train - mean) * 5, (x_test - mean) * 5  # centre and stretch: the signs are faint
    task = _ProbeTask(probe_network(), x_train, torch.tensor(y_train == 1, dtype=torch.float32), epochs)
    settings = LoopSettings(batch_size=batch_size, lrs={"probe": lr}, weight_decay=0.0, warmup_frac=0.0, grad_clip=None,
                            checkpoint_every=10**9, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        fit(task, settings, Path(folder), progress=False, desc="image probe")
    net = task.net
    net.eval()
    with torch.no_grad():
        scores = torch.sigmoid(net(x_test)).numpy()
    rows = []
    for j, name in enumerate(PATHOLOGIES):
        absent = ~np.isin(y_test[:, j], (1.0, -1.0))
        for kind, value in (("positive (1)", 1.0), ("uncertain (-1)", -1.0)):
            rows.append({"observation": name, "label": kind,
                         **_auroc_with_ci(scores[:, j], y_test[:, j] == value, absent, n_boot, seed)})
    return pd.DataFrame(rows)
