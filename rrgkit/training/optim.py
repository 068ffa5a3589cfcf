"""One AdamW over named parameter groups, with a stateless warm-up + cosine learning rate.

The optimizer holds every group from the start, frozen or not, so a phase change never rebuilds
it (its moments survive from phase to phase, and a checkpoint has one optimizer state). Frozen
parameters are left alone by construction: the loop zeroes gradients with ``set_to_none=True``
and frozen parameters have ``requires_grad=False``, so their ``.grad`` stays ``None`` — and AdamW
skips a parameter whose grad is None entirely: no moment state, no step count, no weight decay.
The fused implementation is used where torch has one for the device (on a CPU it is ~3x faster
than the per-tensor loop).

The learning rate is a pure function of the global optimizer step (linear warm-up, then cosine
decay to zero over all steps of all phases), so resuming needs no scheduler state beyond the step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from rrgkit.training.schedule import Phase


def build_optimizer(groups: Mapping[str, list[torch.nn.Parameter]], lrs: Mapping[str, float],
                    weight_decay: float) -> torch.optim.AdamW:
    """AdamW with param groups per named group (``group["group"]``), in sorted order.

    Biases and normalisation weights (1-D tensors) get no weight decay, as usual for transformers.
    """
    missing = set(groups) - set(lrs)
    if missing:
        raise ValueError(f"no learning rate for parameter group(s) {sorted(missing)}; optim.lr has {sorted(lrs)}")
    param_groups = []
    for name in sorted(groups):
        params = list(groups[name])
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for params_, wd, suffix in ((decay, weight_decay, ""), (no_decay, 0.0, ":no_decay")):
            if params_:
                param_groups.append({"params": params_, "name": name + suffix, "group": name,
                                     "weight_decay": float(wd), "lr": float(lrs[name])})
    if not param_groups:
        raise ValueError(f"the parameter groups {sorted(groups)} hold no parameters")
    return torch.optim.AdamW(param_groups, fused=True)


def warmup_steps(steps: int | None, fraction: float, total_steps: int) -> int:
    """``steps`` if set, else ``fraction`` of the total optimizer steps."""
    return int(steps) if steps is not None else int(round(float(fraction) * total_steps))


def lr_factor(step: int, total_steps: int, warmup: int) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rates(optimizer: torch.optim.Optimizer, phase: Phase, base_lrs: Mapping[str, float],
                       factor: float) -> dict[str, float]:
    """Set every param group's lr for this phase and step (0 for frozen groups); return the lr per named group."""
    lrs = {}
    for group in optimizer.param_groups:
        group["lr"] = phase.group_lr(group["group"], base_lrs) * factor
        lrs[group["group"]] = group["lr"]
    return lrs
