"""The one training core: fine-tuning, pretraining and the data chapter's image check all run :func:`fit`.

A :class:`Task` says *what* is trained — its named parameter groups, its phases (which groups
train in which epochs), the loss of a list of item indices and, optionally, a validation score.
:func:`fit` does everything else the same way for every task:

* **data order** — epoch *e* visits the items in a permutation drawn from a ``torch.Generator``
  seeded with ``seed * 100003 + e`` (:func:`epoch_order`); with ``bucketing`` the permutation is
  cut into pools of :data:`POOL_BATCHES` batches, each pool sorted by the items' target length
  and the batches shuffled again, so a batch pads to a length close to its own reports' (the same
  epochs and steps, far fewer padded tokens);
* **optimisation** — one AdamW over all groups (:mod:`rrgkit.training.optim`), the phase's
  groups at their learning rates and the others at 0, linear warm-up then cosine decay over all
  steps, gradient accumulation, gradient-norm clipping, bf16 autocast on request;
* **convergence** — with a validation score, ``patience`` ends a phase whose score has not improved
  for that many epochs: the run moves on to its next phase (a long stage 1 runs to convergence, then
  stage 2 does) or, in the last phase, stops; the budget of epochs is a maximum;
* **checkpoints** — ``checkpoints/last`` every ``checkpoint_every`` steps and after every epoch,
  with the optimizer and RNG states and the position in the epoch, written atomically
  (:mod:`rrgkit.training.checkpoint`); ``resume=True`` replays exactly what an uninterrupted run
  does; with a validation score, ``checkpoints/best`` holds the best epoch;
* **records** — ``log.csv`` (one row per optimizer step: step, epoch, phase, loss, lr per group,
  samples/s) and ``history.json`` (one row per epoch: train loss, validation scores, seconds);
* **several processes** — under ``torchrun``/``accelerate launch`` each of the P processes takes
  every P-th item of each global micro-batch and gradients are averaged with one all-reduce per
  step (a DDP wrapper would fix the trainable set when it wraps, while phases change it);
  BatchNorm buffers are broadcast from rank 0 after each step; only rank 0 validates and writes.

``RRGKIT_STOP_AFTER_STEPS=k`` raises :class:`TrainingInterrupted` after global step ``k``: a crash
simulator for resume tests (a real ``kill -9`` is tested too).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from rrgkit.runs import write_json
from rrgkit.training.checkpoint import checkpoint_folder, load_checkpoint, save_checkpoint
from rrgkit.training.optim import build_optimizer, lr_factor, set_learning_rates, warmup_steps
from rrgkit.training.schedule import Phase, phase_at_epoch, total_epochs

POOL_BATCHES = 64
"""Batches per length-sorting pool: large enough to group similar lengths, small enough to keep epochs random."""


class TrainingInterrupted(RuntimeError):
    """Raised by the ``RRGKIT_STOP_AFTER_STEPS`` crash simulator."""


class Task(Protocol):
    """What :func:`fit` trains. Implementations: fine-tuning, the three pretrainings, the image check."""

    phases: Sequence[Phase]

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Named groups of trainable parameters (a phase's ``train`` names some of them)."""

    def state_module(self) -> torch.nn.Module:
        """The module whose group parameters and buffers a checkpoint holds."""

    def n_items(self) -> int:
        """Training items per epoch."""

    def lengths(self, phase: Phase) -> Sequence[int] | None:
        """Each item's target length under ``phase`` (for bucketing), or None if all are alike."""

    def start_epoch(self, phase: Phase) -> None:
        """Set train/eval modes and trainable flags for ``phase`` (and refresh caches)."""

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        """Mean loss of the items ``indices``."""

    def validate(self, phase: Phase) -> dict[str, float] | None:
        """Validation scores after an epoch (rank 0 only), or None."""


@dataclass(frozen=True)
class LoopSettings:
    """How :func:`fit` optimises; fine-tuning and pretraining configs both map onto it."""

    batch_size: int
    lrs: Mapping[str, float]
    weight_decay: float = 0.01
    warmup_steps: int | None = None
    warmup_frac: float = 0.05
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    precision: str = "fp32"
    checkpoint_every: int = 50
    seed: int = 0
    bucketing: bool = False
    select_by: str | None = None  # a key of Task.validate's scores; higher is better
    patience: int | None = None
    full_batches_only: bool = False  # contrastive losses need negatives: drop a last, smaller batch


@dataclass
class Progress:
    """Where a run stands; saved with every checkpoint (``progress.json``), so resuming continues it."""

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    best: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """False when the best epoch is the last one run: the score was still rising when training ended."""
        return self.best_epoch is not None and bool(self.history) and self.best_epoch != self.history[-1]["epoch"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of one epoch: a pure function of (n, seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, lengths: Sequence[int] | None = None,
                  world: int = 1, full_only: bool = False) -> list[list[int]]:
    """The global micro-batches of one epoch (a pure function of its arguments).

    Without ``lengths``: consecutive slices of :func:`epoch_order`. With them: the order is cut
    into pools of :data:`POOL_BATCHES` batches, each pool is sorted by length (stable), sliced, and
    the batches of the epoch are shuffled with a second seeded generator. With P processes a batch
    whose size is not a multiple of P is padded from the start of the order (as DistributedSampler
    does); ``full_only`` drops a last batch smaller than ``batch_size``.
    """
    order = epoch_order(n, seed, epoch)
    if lengths is None:
        batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    else:
        if len(lengths) != n:
            raise ValueError(f"got {len(lengths)} lengths for {n} items")
        pool = POOL_BATCHES * batch_size
        batches = []
        for start in range(0, n, pool):
            chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        shuffle = torch.Generator().manual_seed(seed * 100003 + epoch + 7919 * 100003)
        batches = [batches[i] for i in torch.randperm(len(batches), generator=shuffle).tolist()]
    if full_only:
        batches = [b for b in batches if len(b) == batch_size]
    if world > 1:
        batches = [b + order[: (world - len(b) % world) % world] for b in batches]
    return batches


class Distributed:
    """The process group (under torchrun / accelerate launch) or a single process, and its device.

    accelerate sets the group up only when a launcher started several processes (``WORLD_SIZE``);
    ``cpu=True`` makes it treat torchrun's processes as a gloo group when there is no GPU. Mixed
    precision is applied with ``torch.autocast`` rather than by accelerate, whose process-wide
    state refuses a second run in the same process with a different precision.
    """

    def __init__(self) -> None:
        self.accelerator = None
        self.rank, self.world, self.main = 0, 1, True
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
            self.rank = self.accelerator.process_index
            self.world = self.accelerator.num_processes
            self.main = self.accelerator.is_main_process
            self.device = self.accelerator.device

    def wait(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def average_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average gradients over processes with one flattened all-reduce."""
        grads = [p.grad for p in params if p.grad is not None]
        if self.world == 1 or not grads:
            return
        flat = torch._utils._flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= self.world
        for grad, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(synced)

    def broadcast(self, module: torch.nn.Module, buffers_only: bool) -> None:
        """Rank 0's buffers (and parameters) to every process."""
        if self.world == 1:
            return
        tensors = [b for _, b in module.named_buffers()]
        if not buffers_only:
            tensors += [p.data for p in module.parameters()]
        for tensor in tensors:
            torch.distributed.broadcast(tensor, src=0)

    def share(self, value):
        """Rank 0's ``value`` (any picklable object) on every process."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(value)
            value /= self.world
        return value


def autocast(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision == "bf16"``, else nothing."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


class _Log:
    """``log.csv``: one row per optimizer step; rows past a resumed checkpoint are dropped first."""

    def __init__(self, path: Path, groups: Sequence[str], resumed_step: int) -> None:
        self.fields = ("step", "epoch", "phase", "loss", *(f"lr_{g}" for g in sorted(groups)), "samples_per_s")
        rows = []
        if path.exists() and resumed_step:
            with path.open() as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resumed_step]
        self.file = path.open("w", newline="")
        self.writer = csv.DictWriter(self.file, self.fields)
        self.writer.writeheader()
        self.writer.writerows(rows)

    def row(self, step: int, epoch: int, phase: str, loss: float, lrs: Mapping[str, float], rate: float) -> None:
        self.writer.writerow({"step": step, "epoch": epoch, "phase": phase, "loss": f"{loss:.6f}",
                              **{f"lr_{g}": f"{lr:.3e}" for g, lr in lrs.items()}, "samples_per_s": f"{rate:.2f}"})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


@contextlib.contextmanager
def _maybe_log(path: Path, groups: Sequence[str], resumed_step: int, main: bool) -> Iterator[_Log | None]:
    log = _Log(path, groups, resumed_step) if main else None
    try:
        yield log
    finally:
        if log is not None:
            log.close()


def fit(task: Task, settings: LoopSettings, out: Path, resume: bool = False, progress: bool = True,
        desc: str = "train", dist: Distributed | None = None) -> Progress:
    """Train ``task`` under ``settings``, writing checkpoints and records to ``out``; return the final progress.

    ``resume=True`` continues from ``out/checkpoints/last`` when it exists; without it, a folder
    that already holds a checkpoint is refused, so a run is never silently overwritten.
    """
    out = Path(out)
    ckpt = out / "checkpoints"
    if not resume and checkpoint_folder(ckpt / "last") is not None:
        raise RuntimeError(f"{out} already holds a training run; pass --resume to continue it or choose a new out")
    dist = dist or Distributed()
    groups = task.parameter_groups()
    module = task.state_module()
    optimizer = build_optimizer(groups, settings.lrs, settings.weight_decay)
    trainable = [p for params in groups.values() for p in params]
    phases = list(task.phases)
    n = task.n_items()
    bs, accum = settings.batch_size, settings.grad_accum
    if bs % dist.world:
        raise ValueError(f"batch size {bs} must be divisible by the {dist.world} processes")
    n_micro = n // bs if settings.full_batches_only else math.ceil(n / bs)
    if n_micro < 1:
        raise ValueError(f"{n} training items make no batch of {bs}; lower the batch size or add data")
    steps_per_epoch = math.ceil(n_micro / accum)
    n_epochs = total_epochs(phases)
    total_steps = steps_per_epoch * n_epochs
    warmup = warmup_steps(settings.warmup_steps, settings.warmup_frac, total_steps)
    state = Progress()
    if resume and checkpoint_folder(ckpt / "last") is not None:
        state = Progress(**load_checkpoint(ckpt / "last", module, groups, optimizer))
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    stop_after = int(os.environ.get("RRGKIT_STOP_AFTER_STEPS", "0") or 0)
    bar = tqdm(total=total_steps, initial=state.step, desc=desc, disable=not (progress and dist.main))
    try:
        with _maybe_log(out / "log.csv", list(groups), state.step, dist.main) as log:
            while state.epoch < n_epochs and not state.stopped_early:
                epoch = state.epoch
                index, phase = phase_at_epoch(phases, epoch)
                epoch_start = time.perf_counter()
                task.start_epoch(phase)
                lengths = task.lengths(phase) if settings.bucketing else None
                batches = epoch_batches(n, bs, settings.seed, epoch, lengths, dist.world, settings.full_batches_only)
                for epoch_step in range(state.epoch_step, steps_per_epoch):
                    tic = time.perf_counter()
                    lrs = set_learning_rates(optimizer, phase, settings.lrs, lr_factor(state.step, total_steps, warmup))
                    chunk = batches[epoch_step * accum:(epoch_step + 1) * accum]
                    loss_sum = torch.zeros((), dtype=torch.float64)
                    for indices in chunk:
                        with autocast(settings.precision, dist.device):
                            loss = task.loss(indices[dist.rank::dist.world], phase)
                        (loss.float() / len(chunk)).backward()
                        loss_sum += loss.detach().double().cpu() / len(chunk)
                    dist.average_gradients(trainable)
                    if settings.grad_clip:
                        torch.nn.utils.clip_grad_norm_([p for p in trainable if p.grad is not None], settings.grad_clip,
                                                       foreach=True)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    dist.broadcast(module, buffers_only=True)
                    loss_value = float(dist.mean(loss_sum))
                    state.step += 1
                    state.epoch_step = epoch_step + 1
                    state.epoch_losses.append(loss_value)
                    seconds = time.perf_counter() - tic
                    state.train_seconds += seconds
                    bar.update(1)
                    bar.set_postfix(phase=phase.name, loss=f"{loss_value:.3f}")
                    if log is not None:
                        log.row(state.step, epoch + 1, phase.name, loss_value, lrs, sum(map(len, chunk)) / seconds)
                        if state.step % settings.checkpoint_every == 0 and state.epoch_step < steps_per_epoch:
                            save_checkpoint(ckpt / "last", module, groups, optimizer, asdict(state))
                    if stop_after and state.step >= stop_after:
                        raise TrainingInterrupted(f"stopped after step {state.step} (RRGKIT_STOP_AFTER_STEPS)")
                next_epoch = epoch + 1
                if dist.main:
                    _end_epoch(task, phase, epoch, state, settings, module, groups, out, epoch_start)
                    if state.stale_epochs and settings.patience and state.stale_epochs >= settings.patience:
                        if index + 1 < len(phases):  # this phase has converged: on to the next one, patience anew
                            next_epoch, state.stale_epochs = sum(p.epochs for p in phases[:index + 1]), 0
                        else:
                            state.stopped_early = True
                    if next_epoch < n_epochs and phase_at_epoch(phases, next_epoch)[0] != index:
                        state.stale_epochs = 0  # every phase gets its own patience
                next_epoch, state.stopped_early = dist.share((next_epoch, state.stopped_early))
                state.epoch, state.epoch_step, state.epoch_losses = next_epoch, 0, []
                if dist.main:
                    save_checkpoint(ckpt / "last", module, groups, optimizer, asdict(state))
                dist.wait()
    finally:
        bar.close()
    return state


def _end_epoch(task: Task, phase: Phase, epoch: int, state: Progress, settings: LoopSettings, module, groups,
               out: Path, epoch_start: float) -> None:
    """Validate, record the epoch (its wall seconds include validation), keep the best checkpoint, apply patience."""
    tic = time.perf_counter()
    scores = task.validate(phase) or {}
    record = {"epoch": epoch + 1, "phase": phase.name, "step": state.step,
              "train_loss": float(np.mean(state.epoch_losses)) if state.epoch_losses else float("nan"),
              "seconds": time.perf_counter() - epoch_start, "validation_seconds": time.perf_counter() - tic, **scores}
    state.history.append(record)
    if settings.select_by is not None:
        if settings.select_by not in scores:
            raise KeyError(f"validation returned {sorted(scores)}, not the selection metric {settings.select_by!r}")
        if state.best is None or scores[settings.select_by] > state.best:
            state.best, state.best_epoch, state.stale_epochs = scores[settings.select_by], epoch + 1, 0
            save_checkpoint(out / "checkpoints" / "best", module, groups, None, asdict(state))
        else:
            state.stale_epochs += 1
    write_json(out / "history.json", {"history": state.history})
