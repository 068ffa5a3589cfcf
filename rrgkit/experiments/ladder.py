"""A ladder of language models, prepared the paper's way: pretrained, then frozen with LoRA r = 8 on q and v.

The paper fine-tunes GPT2-S, GPT2-L and OpenLLaMA-7B, each pretrained on general text and frozen,
with LoRA adapters and a learning rate chosen per LM (Appendix A). A CPU book cannot download
them; a :class:`Rung` is the nearest thing it can run: a from-scratch GPT-2 of some size first
pretrained on report text (``rrgkit pretrain lm``; the fine-tuning set's validation and test
reports are excluded), or a bundled pretrained LM (SmolLM2-135M), then frozen with LoRA — or,
marked as such, fully fine-tuned. :func:`choose_learning_rate` picks a rung's learning rate as the
paper did: a small grid in the frozen setting, the best validation F1-CXP-14, reused for the
rung's other settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rrgkit.experiments.grid import run_grid
from rrgkit.experiments.pretrained import pretrained_overrides
from rrgkit.training.config import TrainConfig

LR_GROUPS = ("mapper", "lora")
"""The groups whose learning rate the grid sets by default: the new parts; the encoder keeps the config's rate
(the paper sets one rate for everything: a rung may say so with ``lr_groups``)."""


@dataclass(frozen=True)
class Rung:
    """One language model of the ladder and how it is prepared and tuned."""

    name: str
    paper_analog: str  # the paper's LM this rung stands in for
    lm: str  # model.lm.name before pretraining: gpt2-scratch-tiny, smollm2-135m, ...
    pretrain_lm: str | None = None  # an LM pretraining config (relative to the project root), for scratch LMs
    lora: Mapping | None = field(default_factory=lambda: {"r": 8})  # None: every LM weight trains (labelled so)
    lrs: tuple[float, ...] = (1e-3,)
    seeds: tuple[int, ...] = (0,)
    lr_groups: tuple[str, ...] = LR_GROUPS

    @property
    def tuning(self) -> str:
        """How the LM is adapted, for tables: ``LoRA r=8`` or ``full fine-tuning``."""
        return "full fine-tuning" if self.lora is None else f"LoRA r={self.lora.get('r', 8)}"


def parse_rungs(entries: Sequence[Mapping], where: str = "rungs") -> list[Rung]:
    """Rungs from a profile's list of mappings (keys as :class:`Rung`'s fields); a bad key names the entry."""
    allowed = set(Rung.__dataclass_fields__)
    rungs = []
    for i, entry in enumerate(entries):
        unknown = set(entry) - allowed
        if unknown or "name" not in entry or "lm" not in entry:
            raise ValueError(f"{where}[{i}]: needs name and lm, and only keys {sorted(allowed)}; got {sorted(entry)}")
        values = dict(entry)
        values["lrs"] = tuple(float(v) for v in values.get("lrs", (1e-3,)))
        values["seeds"] = tuple(int(v) for v in values.get("seeds", (0,)))
        values["lr_groups"] = tuple(values.get("lr_groups", LR_GROUPS))
        values.setdefault("paper_analog", "")
        rungs.append(Rung(**values))
    if len({r.name for r in rungs}) != len(rungs):
        raise ValueError(f"{where}: rung names must be unique, got {[r.name for r in rungs]}")
    return rungs


def size_pairs(rungs: Sequence[Rung]) -> list[tuple[Rung, Rung]]:
    """(smaller, larger) pairs for C3: each rung with the next one down the ladder that is adapted the same way.

    The paper's C3 compares LMs of different size under the same recipe (LoRA); a LoRA rung against a fully
    fine-tuned one would confound size with the adaptation, so such pairs are never formed.
    """
    pairs = []
    for i, small in enumerate(rungs):
        large = next((r for r in rungs[i + 1:] if r.tuning == small.tuning), None)
        if large is not None:
            pairs.append((small, large))
    return pairs


def rung_config(base: TrainConfig, rung: Rung, profile: str, progress: bool = False) -> tuple[TrainConfig, dict]:
    """``base`` with the rung's LM: pretrained on report text first if it asks, then LoRA (or full tuning)."""
    config = base.updated({"model": {"lm": {"name": rung.lm, "lora": None}}}, f"rung {rung.name!r}")
    summary: dict = {}
    if rung.pretrain_lm is not None:
        overrides, summaries = pretrained_overrides(config, profile, lm=rung.pretrain_lm, progress=progress)
        config, summary = config.updated(overrides), summaries["lm"]
    lora = None if rung.lora is None else dict(rung.lora)
    return config.updated({"model": {"lm": {"lora": lora}}}, f"rung {rung.name!r}"), summary


def lr_variants(lrs: Sequence[float], groups: Sequence[str] = LR_GROUPS, preset: str = "frozen") -> dict[str, dict]:
    """Grid variants: ``preset`` with the learning rate of ``groups`` set to each of ``lrs``."""
    return {f"lr {lr:g}": {"schedule": {"preset": preset, "phases": None},
                           "optim": {"lr": {g: float(lr) for g in groups}}} for lr in lrs}


def choose_learning_rate(config: TrainConfig, lrs: Sequence[float], profile: str, experiment: str, seed: int = 0,
                         workers: int = 1, progress: bool = False,
                         groups: Sequence[str] = LR_GROUPS) -> tuple[float, pd.DataFrame]:
    """The learning rate (of ``groups``) with the best validation F1-CXP-14 in the frozen setting.

    Ties go to the smaller rate. Returns it and the grid's runs (``lr``, ``best_val``, ``converged``, …).
    """
    if not lrs:
        raise ValueError("need at least one learning rate to choose from")
    variants = lr_variants(lrs, groups)
    runs = run_grid(config, variants, [seed], profile, experiment, progress=progress, workers=workers)
    runs["lr"] = [float(v.removeprefix("lr ")) for v in runs["variant"]]
    best = runs.sort_values(["best_val", "lr"], ascending=[False, True]).iloc[0]
    return float(best["lr"]), runs


def with_learning_rate(config: TrainConfig, lr: float, groups: Sequence[str] = LR_GROUPS) -> TrainConfig:
    """``config`` with the learning rate of ``groups`` set to ``lr``."""
    return config.updated({"optim": {"lr": {g: float(lr) for g in groups}}})
