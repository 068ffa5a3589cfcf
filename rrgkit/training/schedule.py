"""Fine-tuning schedules as data: a list of phases, each naming which parameter groups train.

A model has three parameter groups: ``vision`` (the image encoder), ``mapper``
(the transformer-decoder mapping network) and ``lora`` (the LoRA adapters of the
language model). A :class:`Phase` trains a subset of them for some epochs on one
target *task*. The presets reproduce the paper's comparisons:

``frozen``
    vision never trains (the "common practice" the paper challenges).
``one-stage``
    everything trains from the first step ("FT").
``two-stage``
    the paper's protocol ("FT-II"): the first ``stage1_epochs`` (1) epochs with the
    vision encoder frozen, then everything, for the SAME total epochs as one-stage.
``long-stage``
    Appendix C / Kumar et al.: stage 1 runs the full ``epochs`` with vision frozen,
    then stage 2 runs ``epochs`` more with everything (twice the training time).
``curriculum``
    SLaVA-CXR's Re³Training (Recognition → Reasoning → Reporting) mapped onto our
    pieces. SLaVA-CXR trains only the projector on image–caption pairs, then all
    components on instruction data, then all components on reports. Here:
    *recognition* trains the mapper alone (the LM stays frozen, as in SLaVA-CXR — the
    one phase where LoRA does not train) on ``labels`` targets, a short phrase naming
    the positive CheXpert observations, our stand-in for concept captions;
    *reasoning* adds LoRA on ``report`` targets (findings followed by the impression,
    the diagnostic conclusion), our stand-in for instruction data; *reporting*
    trains everything on ``findings``, the evaluated task. Simplified: no
    instruction-following data or synthetic RADEX corpus, no regularisation term,
    and the vision encoder is unfrozen only in the last phase (SLaVA-CXR unfreezes it
    in Reasoning) so the mapper is aligned before the encoder moves, as in two-stage.

LoRA trains in every phase of every other preset: its weights start random, as the
paper notes. Learning rates come from ``optim.lr`` per group, times a phase's
``lr_scale``, or from the phase's own ``lrs`` mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rrgkit.labels import CHEXPERT_OBSERVATIONS

GROUPS: frozenset[str] = frozenset({"vision", "mapper", "lora"})
TASKS: tuple[str, ...] = ("findings", "labels", "report")
"""Target texts a phase can train on: the findings section, a phrase of positive labels, findings + impression."""
PRESETS: tuple[str, ...] = ("frozen", "one-stage", "two-stage", "long-stage", "curriculum")


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
        unknown = set(self.train) - GROUPS
        if unknown or not self.train:
            raise ScheduleError(
                f"phase {self.name!r}: train must be a non-empty subset of {sorted(GROUPS)}, got {sorted(self.train)}"
            )
        if set(self.lrs) - GROUPS:
            raise ScheduleError(f"phase {self.name!r}: lrs keys must be in {sorted(GROUPS)}, got {sorted(self.lrs)}")
        if self.data not in TASKS:
            raise ScheduleError(f"phase {self.name!r}: data must be one of {TASKS}, got {self.data!r}")
        if not isinstance(self.lr_scale, (int, float)) or self.lr_scale < 0:
            raise ScheduleError(f"phase {self.name!r}: lr_scale must be a non-negative number, got {self.lr_scale!r}")

    def group_lr(self, group: str, base: Mapping[str, float]) -> float:
        """The peak learning rate of ``group`` in this phase (before warm-up and cosine decay)."""
        return float(self.lrs.get(group, base[group])) * float(self.lr_scale)


NO_VISION = frozenset({"mapper", "lora"})


def preset_phases(preset: str, epochs: int, stage1_epochs: int = 1) -> list[Phase]:
    """The phases of a named preset for ``epochs`` total epochs (long-stage: per stage)."""
    if preset == "frozen":
        return [Phase("frozen", epochs, NO_VISION)]
    if preset == "one-stage":
        return [Phase("one-stage", epochs, GROUPS)]
    if preset == "two-stage":
        if not 1 <= stage1_epochs < epochs:
            raise ScheduleError(
                f"two-stage needs 1 <= stage1_epochs < epochs (the paper: 1 of 50), got {stage1_epochs} of {epochs}"
            )
        return [Phase("stage1", stage1_epochs, NO_VISION), Phase("stage2", epochs - stage1_epochs, GROUPS)]
    if preset == "long-stage":
        return [Phase("stage1", epochs, NO_VISION), Phase("stage2", epochs, GROUPS)]
    if preset == "curriculum":
        if epochs < 3:
            raise ScheduleError(f"curriculum has three phases and needs epochs >= 3, got {epochs}")
        reasoning = max(1, (epochs - 1) // 2)
        return [
            Phase("recognition", 1, frozenset({"mapper"}), data="labels"),
            Phase("reasoning", reasoning, NO_VISION, data="report"),
            Phase("reporting", epochs - 1 - reasoning, GROUPS, data="findings"),
        ]
    raise ScheduleError(f"unknown schedule preset {preset!r}; choose one of {', '.join(PRESETS)} or give phases")


def phase_from_dict(entry: Mapping, index: int) -> Phase:
    """Build one phase from a config mapping ``{name, epochs, train: [groups], lr_scale, lrs, data}``."""
    if not isinstance(entry, Mapping):
        raise ScheduleError(f"schedule.phases[{index}] must be a mapping, got {entry!r}")
    allowed = {"name", "epochs", "train", "lr_scale", "lrs", "data"}
    unknown = set(entry) - allowed
    if unknown:
        raise ScheduleError(f"schedule.phases[{index}]: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "epochs" not in entry or "train" not in entry:
        raise ScheduleError(f"schedule.phases[{index}] needs 'epochs' and 'train' (a list of groups)")
    train = entry["train"]
    if isinstance(train, str) or not isinstance(train, (list, tuple, set, frozenset)):
        raise ScheduleError(f"schedule.phases[{index}].train must be a list of groups from {sorted(GROUPS)}")
    return Phase(
        name=str(entry.get("name", f"phase{index + 1}")),
        epochs=entry["epochs"],
        train=frozenset(train),
        lr_scale=entry.get("lr_scale", 1.0),
        lrs=dict(entry.get("lrs") or {}),
        data=entry.get("data", "findings"),
    )


def resolve_schedule(cfg: Mapping, total_epochs: int | None = None) -> list[Phase]:
    """The phases of the ``schedule`` config section: its explicit ``phases`` or its ``preset``.

    ``total_epochs`` defaults to ``cfg["epochs"]``; it is ignored when phases are explicit.
    """
    phases = cfg.get("phases")
    if phases:
        if not isinstance(phases, (list, tuple)):
            raise ScheduleError("schedule.phases must be a list of phase mappings")
        return [phase_from_dict(entry, i) for i, entry in enumerate(phases)]
    epochs = cfg.get("epochs") if total_epochs is None else total_epochs
    return preset_phases(str(cfg.get("preset")), int(epochs), int(cfg.get("stage1_epochs", 1)))


def phase_at_epoch(phases: list[Phase], epoch: int) -> tuple[int, Phase]:
    """(index, phase) that the 0-based ``epoch`` belongs to."""
    start = 0
    for index, phase in enumerate(phases):
        if epoch < start + phase.epochs:
            return index, phase
        start += phase.epochs
    raise IndexError(f"epoch {epoch} is past the schedule's {start} epochs")


def total_epochs(phases: list[Phase]) -> int:
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


def task_targets(batch: Mapping, task: str) -> list[str]:
    """The target texts of a collated batch for a phase's ``data`` task (see :data:`TASKS`)."""
    if task == "findings":
        return list(batch["findings"])
    if task == "report":
        return [f"{f.strip()} {i.strip()}".strip() for f, i in zip(batch["findings"], batch["impression"])]
    if task == "labels":
        return [label_phrase([float(v) for v in row]) for row in batch["labels"]]
    raise ScheduleError(f"unknown task {task!r}; choose one of {TASKS}")
