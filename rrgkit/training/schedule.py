"""Fine-tuning schedules as data: a list of phases, each naming which parameter groups train.

The RRG model has three parameter groups (:data:`rrgkit.models.config.PARAMETER_GROUPS`):
``vision`` (the image encoder), ``mapper`` (the mapping network) and ``lora`` (the LM's
adapters, or the whole LM when it is trained from scratch). A :class:`Phase` trains a subset of
them for some epochs on one target *task*, as LLaVA's stage flags do. :data:`PRESETS` is the one
table of named schedules and the paper's names for them:

``frozen`` (paper: Frozen)
    vision never trains (the "common practice" the paper challenges).
``one-stage`` (FT)
    everything trains from the first step.
``two-stage`` (FT-II)
    the paper's protocol: the first ``stage1_epochs`` (1) epochs with the vision encoder
    frozen, then everything, for the SAME total epochs as one-stage.
``long-stage`` (Appendix C)
    Kumar et al.'s LP-FT taken literally: stage 1 runs the full ``epochs`` with vision frozen,
    then stage 2 runs ``epochs`` more with everything (twice the training time).
``curriculum`` (SLaVA-CXR's Re³Training)
    *recognition* trains the mapper alone (the LM frozen, as in SLaVA-CXR; the one phase where
    LoRA does not train) on ``labels`` targets, a short phrase naming the positive CheXpert
    observations (our stand-in for concept captions); *reasoning* adds LoRA on ``report``
    targets (findings followed by the impression; our stand-in for instruction data);
    *reporting* trains everything on ``findings``, the evaluated task. Simplified: no
    instruction data or RADEX corpus, no regularisation term, and the encoder is unfrozen only
    in the last phase (SLaVA-CXR unfreezes it in Reasoning) so the mapper aligns before the
    encoder moves, as in two-stage.

LoRA trains in every phase of every other preset: its weights start random, as the paper notes.
Learning rates come from ``optim.lr`` per group, times a phase's ``lr_scale``, or from the
phase's own ``lrs`` mapping. Pretraining (:mod:`rrgkit.training.pretrain`) uses the same
:class:`Phase` with its own groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.models.config import PARAMETER_GROUPS

ALL_GROUPS: frozenset[str] = frozenset(PARAMETER_GROUPS)
NO_VISION: frozenset[str] = ALL_GROUPS - {"vision"}
TASKS: tuple[str, ...] = ("findings", "labels", "report")
"""Target texts a phase can train on: the findings section, a phrase of positive labels, findings + impression."""


class ScheduleError(ValueError):
    """A schedule is malformed; the message names the phase or preset and the fix."""


@dataclass(frozen=True)
class Phase:
    """Train the ``train`` groups for ``epochs`` epochs on target ``data``."""

    name: str
    epochs: int
    train: frozenset[str]
    lr_scale: float = 1.0
    lrs: Mapping[str, float] = field(default_factory=dict)
    data: str = "findings"

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ScheduleError(f"phase {self.name!r}: epochs must be a positive integer, got {self.epochs!r}")
        if not self.train:
            raise ScheduleError(f"phase {self.name!r}: train must name at least one parameter group")
        if set(self.lrs) - set(self.train):
            raise ScheduleError(f"phase {self.name!r}: lrs names groups it does not train: {sorted(set(self.lrs) - set(self.train))}")
        if self.data not in TASKS:
            raise ScheduleError(f"phase {self.name!r}: data must be one of {TASKS}, got {self.data!r}")
        if isinstance(self.lr_scale, bool) or not isinstance(self.lr_scale, (int, float)) or self.lr_scale < 0:
            raise ScheduleError(f"phase {self.name!r}: lr_scale must be a non-negative number, got {self.lr_scale!r}")

    def group_lr(self, group: str, base: Mapping[str, float]) -> float:
        """The peak learning rate of ``group`` in this phase (0 if it does not train here)."""
        if group not in self.train:
            return 0.0
        return float(self.lrs.get(group, base[group])) * float(self.lr_scale)


def _frozen(epochs: int, stage1: int) -> list[Phase]:
    return [Phase("frozen", epochs, NO_VISION)]


def _one_stage(epochs: int, stage1: int) -> list[Phase]:
    return [Phase("one-stage", epochs, ALL_GROUPS)]


def _two_stage(epochs: int, stage1: int) -> list[Phase]:
    if not 1 <= stage1 < epochs:
        raise ScheduleError(f"two-stage needs 1 <= stage1_epochs < epochs (the paper: 1 of 50), got {stage1} of {epochs}")
    return [Phase("stage1", stage1, NO_VISION), Phase("stage2", epochs - stage1, ALL_GROUPS)]


def _long_stage(epochs: int, stage1: int) -> list[Phase]:
    return [Phase("stage1", epochs, NO_VISION), Phase("stage2", epochs, ALL_GROUPS)]


def _curriculum(epochs: int, stage1: int) -> list[Phase]:
    if epochs < 3:
        raise ScheduleError(f"curriculum has three phases and needs epochs >= 3, got {epochs}")
    reasoning = max(1, (epochs - 1) // 2)
    return [Phase("recognition", 1, frozenset({"mapper"}), data="labels"),
            Phase("reasoning", reasoning, NO_VISION, data="report"),
            Phase("reporting", epochs - 1 - reasoning, ALL_GROUPS, data="findings")]


@dataclass(frozen=True)
class Preset:
    """A named schedule: what the paper calls it, one line on what it does, and its phases."""

    paper_name: str
    summary: str
    phases: Callable[[int, int], list[Phase]]


PRESETS: dict[str, Preset] = {
    "frozen": Preset("Frozen", "the vision encoder never trains", _frozen),
    "one-stage": Preset("FT", "everything trains from the first step", _one_stage),
    "two-stage": Preset("FT-II", "stage 1 with the encoder frozen, then everything; same total epochs as FT", _two_stage),
    "long-stage": Preset("FT-II, long stage 1 (App. C)", "all epochs with the encoder frozen, then as many with everything",
                         _long_stage),
    "curriculum": Preset("Re³Training (SLaVA-CXR)", "recognition (mapper), reasoning (+ LoRA), reporting (all)",
                         _curriculum),
}


def preset_phases(preset: str, epochs: int, stage1_epochs: int = 1) -> list[Phase]:
    """The phases of a named preset for ``epochs`` total epochs (long-stage: per stage)."""
    if preset not in PRESETS:
        raise ScheduleError(f"unknown schedule preset {preset!r}; choose one of {', '.join(PRESETS)} or give phases")
    return PRESETS[preset].phases(epochs, stage1_epochs)


def phase_from_dict(entry: Mapping, index: int) -> Phase:
    """Build one phase of the RRG model from ``{name, epochs, train: [groups], lr_scale, lrs, data}``."""
    if not isinstance(entry, Mapping):
        raise ScheduleError(f"schedule.phases[{index}] must be a mapping, got {entry!r}")
    allowed = {"name", "epochs", "train", "lr_scale", "lrs", "data"}
    unknown = set(entry) - allowed
    if unknown:
        raise ScheduleError(f"schedule.phases[{index}]: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "epochs" not in entry or "train" not in entry:
        raise ScheduleError(f"schedule.phases[{index}] needs 'epochs' and 'train' (a list of groups)")
    train = entry["train"]
    if isinstance(train, str) or not isinstance(train, (list, tuple, set, frozenset)) or not set(train) <= ALL_GROUPS:
        raise ScheduleError(f"schedule.phases[{index}].train must be a non-empty subset of {sorted(ALL_GROUPS)}, got {train!r}")
    lrs = dict(entry.get("lrs") or {})
    if set(lrs) - ALL_GROUPS:
        raise ScheduleError(f"schedule.phases[{index}].lrs keys must be in {sorted(ALL_GROUPS)}, got {sorted(lrs)}")
    return Phase(name=str(entry.get("name", f"phase{index + 1}")), epochs=entry["epochs"], train=frozenset(train),
                 lr_scale=entry.get("lr_scale", 1.0), lrs=lrs, data=entry.get("data", "findings"))


def phase_to_dict(phase: Phase) -> dict:
    """The config form of a phase (inverse of :func:`phase_from_dict`)."""
    return {"name": phase.name, "epochs": phase.epochs, "train": sorted(phase.train), "lr_scale": phase.lr_scale,
            "lrs": dict(phase.lrs), "data": phase.data}


def phase_at_epoch(phases: Sequence[Phase], epoch: int) -> tuple[int, Phase]:
    """(index, phase) that the 0-based ``epoch`` belongs to."""
    start = 0
    for index, phase in enumerate(phases):
        if epoch < start + phase.epochs:
            return index, phase
        start += phase.epochs
    raise IndexError(f"epoch {epoch} is past the schedule's {start} epochs")


def total_epochs(phases: Sequence[Phase]) -> int:
    """Number of epochs the schedule runs."""
    return sum(p.epochs for p in phases)


def label_phrase(labels: Sequence[float]) -> str:
    """A recognition target from 14 CheXpert labels: ``"cardiomegaly, possible edema."`` or ``"no finding."``."""
    words = []
    for name, value in zip(CHEXPERT_OBSERVATIONS[1:], list(labels)[1:]):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if value == 1:
            words.append(name.lower())
        elif value == -1:
            words.append(f"possible {name.lower()}")
    return (", ".join(words) if words else "no finding") + "."


def task_target(findings: str, impression: str, labels: Sequence[float], task: str) -> str:
    """The target text of one study for a phase's ``data`` task (see :data:`TASKS`)."""
    if task == "findings":
        return findings
    if task == "report":
        return f"{findings.strip()} {impression.strip()}".strip()
    if task == "labels":
        return label_phrase([float(v) for v in labels])
    raise ScheduleError(f"unknown task {task!r}; choose one of {TASKS}")


def task_targets(batch: Mapping, task: str) -> list[str]:
    """The target texts of a collated batch for a phase's ``data`` task."""
    return [task_target(f, i, labels, task) for f, i, labels in zip(batch["findings"], batch["impression"], batch["labels"])]
