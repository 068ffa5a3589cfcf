"""Fine-tuning the RRG model: a :class:`FineTuneTask` for the training core, then the test split.

``train(config)`` reads in pieces a reader can name:

1. **set-up** (:func:`setup`) — build (or reuse) the embedded dataset, seed, build the model, open
   the train/val/test splits;
2. **epochs** — :func:`rrgkit.training.engine.fit` runs the schedule's phases; at the start of
   each epoch :meth:`FineTuneTask.start_epoch` applies ``model.set_trainable(phase.train)``
   (which also keeps a frozen encoder's BatchNorm in eval mode);
3. **validation** (:meth:`FineTuneTask.validate`) — after each epoch the model greedily writes
   the first ``eval.max_val_reports`` validation reports, the labeler labels them, and F1-CXP-14
   against the manifest's labels picks the best checkpoint (the paper's selection rule);
   ``eval.patience`` stops a run that has stopped improving;
4. **test** (:func:`test`) — the best checkpoint writes every test report (``preds_test.jsonl``);
   ``metrics.json`` holds their scores, the best epoch and whether the run converged.

While the vision encoder is frozen and images are not augmented, its output is a fixed function
of the image, so :class:`FeatureCache` computes it once per split in a fixed order and batch size
(so a resumed run reads the very same numbers) and the loss and the validation reports start from
it; the cache is dropped as soon as a phase trains the encoder.

The run folder ``out`` holds ``config.json`` (:meth:`TrainConfig.to_dict`), ``log.csv``,
``history.json``, ``checkpoints/{last,best}``, ``preds_test.jsonl`` and ``metrics.json``.
The model, data and metric modules are imported inside functions: they pull in transformers and
peft, which config validation and ``--help`` do not need.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rrgkit.labels import FIVE_OBSERVATIONS
from rrgkit.runs import write_json
from rrgkit.seed import seed_everything
from rrgkit.training.checkpoint import load_weights
from rrgkit.training.config import TrainConfig, parse_config
from rrgkit.training.engine import Distributed, LoopSettings, Progress, autocast, fit
from rrgkit.training.generation import generate_reports, write_predictions
from rrgkit.training.schedule import Phase, task_target, task_targets

SPLITS = ("train", "val", "test")
FEATURE_BATCH = 64
"""Images per encoder forward when filling the feature cache (fixed, so cached numbers never depend on a batch)."""


class FeatureCache:
    """The frozen encoder's visual tokens for every item of a split, computed once in fixed batches."""

    def __init__(self) -> None:
        self.tokens: dict[str, torch.Tensor] = {}

    def clear(self) -> None:
        self.tokens.clear()

    def get(self, split: str, model, dataset, device: torch.device, precision: str) -> torch.Tensor:
        if split not in self.tokens:
            from rrgkit.data.loader import collate_reports

            parts = []
            with torch.no_grad(), autocast(precision, device):
                for start in range(0, len(dataset), FEATURE_BATCH):
                    batch = collate_reports([dataset[i] for i in range(start, min(start + FEATURE_BATCH, len(dataset)))])
                    parts.append(model.encoder(batch["image"].to(device)).float())
            self.tokens[split] = torch.cat(parts)
        return self.tokens[split]


class FineTuneTask:
    """The RRG model on a manifest, for :func:`rrgkit.training.engine.fit`."""

    def __init__(self, config: TrainConfig, model, datasets: dict, device: torch.device) -> None:
        self.config, self.model, self.datasets, self.device = config, model, datasets, device
        self.phases: Sequence[Phase] = config.schedule.phases
        self.features = FeatureCache()
        self._lengths: dict[str, list[int]] = {}
        self._phase: Phase | None = None

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return self.model.parameter_groups()

    def state_module(self) -> torch.nn.Module:
        return self.model

    def n_items(self) -> int:
        return len(self.datasets["train"])

    def lengths(self, phase: Phase) -> list[int]:
        """Characters of each training item's target text: a tokenizer-free proxy for its token count."""
        if phase.data not in self._lengths:
            frame, labels = self.datasets["train"].frame, self.datasets["train"].labels.tolist()
            self._lengths[phase.data] = [len(task_target(f, i, lab, phase.data))
                                         for f, i, lab in zip(frame["findings"], frame["impression"], labels)]
        return self._lengths[phase.data]

    def _cached(self, phase: Phase) -> bool:
        data = self.config.data
        return data.cache and "vision" not in phase.train and not data.augment

    def start_epoch(self, phase: Phase) -> None:
        self._phase = phase
        self.model.train()
        self.model.set_trainable(phase.train)
        if not self._cached(phase):
            self.features.clear()

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        from rrgkit.data.loader import collate_reports

        train = self.datasets["train"]
        batch = collate_reports([train[i] for i in indices])
        targets = task_targets(batch, phase.data)
        if self._cached(phase):
            tokens = self.features.get("train", self.model, train, self.device, self.config.optim.precision)
            return self.model.loss_from_tokens(tokens[indices].to(self.device), targets)
        return self.model(batch["image"].to(self.device), targets)

    def validate(self, phase: Phase) -> dict[str, float]:
        """F1-CXP-14 and F1-CXP-5 of greedy reports for the first ``eval.max_val_reports`` validation studies."""
        from rrgkit.evaluation.clinical import f1_scores
        from rrgkit.evaluation.labeler import label_reports

        ev, val = self.config.eval, self.datasets["val"]
        n = min(len(val), ev.max_val_reports)
        tokens = (self.features.get("val", self.model, val, self.device, self.config.optim.precision)
                  if self._cached(phase) else None)
        with autocast(self.config.optim.precision, self.device):
            rows = generate_reports(self.model, val, list(range(n)), ev.batch_size, ev.max_new_tokens, num_beams=1,
                                    progress=False, desc="validate", visual_tokens=tokens)
        pred = label_reports([r["generated"] for r in rows])
        ref = np.array([r["labels"] for r in rows], dtype=float)
        return {"F1-CXP-14": float(f1_scores(pred, ref)),
                "F1-CXP-5": float(f1_scores(pred, ref, observations=FIVE_OBSERVATIONS)), "n_val": n}


def prepare_data(config: TrainConfig) -> Path:
    """The config's manifest, built first (or reused) when ``data.build`` names an embedded dataset."""
    spec = config.data.build
    if spec is not None:
        from rrgkit.data.embedded import build_embedded

        build_embedded(spec.dataset, config.data.manifest_path.parent, spec.n, spec.size, spec.seed)
    return config.data.manifest_path


@dataclass
class Setup:
    """What :func:`setup` prepares: the model, the three splits, the process group."""

    model: torch.nn.Module
    datasets: dict
    dist: Distributed


def setup(config: TrainConfig) -> Setup:
    """Build the dataset if asked, seed, build the model and open the splits (every process alike)."""
    from rrgkit.data.loader import ManifestDataset, check_images
    from rrgkit.models.rrg import build_model

    dist = Distributed()
    if dist.main:
        prepare_data(config)
    dist.wait()
    seed_everything(config.seed)
    model = build_model(config.model).to(dist.device)
    dist.broadcast(model, buffers_only=False)
    data = config.data
    datasets = {split: ManifestDataset(data.manifest_path, split, data.image_size, views=data.views,
                                       augment=data.augment and split == "train", cache=data.cache)
                for split in SPLITS}
    check_images(datasets.values())
    return Setup(model, datasets, dist)


def loop_settings(config: TrainConfig) -> LoopSettings:
    """The training core's settings for a fine-tuning config."""
    o = config.optim
    return LoopSettings(batch_size=o.batch_size, lrs=o.lr, weight_decay=o.weight_decay, warmup_steps=o.warmup_steps,
                        warmup_frac=o.warmup_frac, grad_clip=o.grad_clip, grad_accum=o.grad_accum, precision=o.precision,
                        checkpoint_every=config.checkpoint_every, seed=config.seed, bucketing=config.data.bucketing,
                        select_by=config.eval.select_by, patience=config.eval.patience)


def test(config: TrainConfig, model, dataset, out: Path, progress: bool) -> dict:
    """Write every test report with ``model`` (``preds_test.jsonl``) and score them."""
    from rrgkit.evaluation.score import score_reports

    ev = config.eval
    with autocast(config.optim.precision, next(model.parameters()).device):
        rows = generate_reports(model, dataset, None, ev.batch_size, ev.max_new_tokens, ev.num_beams,
                                progress=progress, desc="test")
    write_predictions(rows, out / "preds_test.jsonl")
    ref_labels = np.array([r["labels"] for r in rows], dtype=float)
    scores = score_reports([r["generated"] for r in rows], [r["reference"] for r in rows], ref_labels=ref_labels,
                           seed=config.seed, meteor=ev.meteor, backends=ev.backends)
    probs = [r["token_prob_mean"] for r in rows if r["token_prob_mean"] is not None]
    return {**scores, "token_prob_mean": float(np.mean(probs)) if probs else None}


def _check_resume(config: TrainConfig, out: Path) -> None:
    saved_file = out / "config.json"
    if not saved_file.exists():
        return
    saved = json.loads(saved_file.read_text())
    mine = json.loads(json.dumps(config.to_dict(), default=str))
    if saved != mine:
        try:  # an older run folder may spell the same config differently: compare parsed forms
            if parse_config(saved, str(saved_file)) == config:
                return
        except ValueError:
            pass
        changed = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        raise ValueError(f"cannot resume {out}: the config differs from its config.json in {changed}; "
                         "resume with the run's own config (or start a new out)")


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train, select by validation F1-CXP-14, test the best checkpoint; return the final metrics.

    ``resume=True`` continues from ``<out>/checkpoints/last`` (or returns the metrics of a
    finished run); without it an ``out`` that already holds a checkpoint is an error, so a run
    is never silently overwritten.
    """
    out = config.out_path
    if resume:
        _check_resume(config, out)
        if (out / "metrics.json").exists():
            return json.loads((out / "metrics.json").read_text())
    parts = setup(config)
    if parts.dist.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
    task = FineTuneTask(config, parts.model, parts.datasets, parts.dist.device)
    state: Progress = fit(task, loop_settings(config), out, resume=resume, progress=progress, dist=parts.dist)
    if not parts.dist.main:
        parts.dist.wait()
        return {}
    tic = time.perf_counter()
    load_weights(out / "checkpoints" / "best", parts.model, parts.model.parameter_groups())
    metrics = test(config, parts.model, parts.datasets["test"], out, progress)
    metrics.update({
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "converged": state.converged,
        "stopped_early": state.stopped_early,
        "select_by": config.eval.select_by,
        "best_val": state.best,
        "schedule": [p.name for p in config.schedule.phases],
        "total_steps": state.step,
        "timing": {"train_seconds_this_process": sum(h["seconds"] for h in state.history),
                   "step_seconds": state.train_seconds, "test_seconds": time.perf_counter() - tic},
    })
    write_json(out / "metrics.json", metrics)
    parts.dist.wait()
    return metrics
