"""One AdamW over the three parameter groups, with a stateless warm-up + cosine learning rate.

The optimizer holds every group from the start, frozen or not, so a phase change
never rebuilds it (its moments survive from phase to phase, and a checkpoint has
one optimizer state). Frozen parameters are left alone by construction: the loop
zeroes gradients with ``set_to_none=True`` and frozen parameters have
``requires_grad=False``, so their ``.grad`` stays ``None`` — and
:class:`torch.optim.AdamW` skips a parameter whose grad is None entirely: no
moment state is created, no step is counted and no weight decay is applied.

The learning rate is a pure function of the global optimizer step (linear warm-up,
then cosine decay to zero over all steps of all phases), so resuming needs no
scheduler state beyond the step number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from rrgkit.training.schedule import GROUPS, Phase


def build_optimizer(groups: Mapping[str, list[torch.nn.Parameter]], optim_cfg: Mapping) -> torch.optim.AdamW:
    """AdamW with one param group per model group (named ``group["name"]``), in a fixed order.

    Biases and normalisation weights (1-D tensors) get no weight decay, as usual for
    transformers.
    """
    missing = GROUPS - set(groups)
    if missing:
        raise ValueError(f"model.parameter_groups() lacks groups {sorted(missing)}; it must return {sorted(GROUPS)}")
    param_groups = []
    for name in sorted(GROUPS):
        params = list(groups[name])
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for params_, wd, suffix in ((decay, optim_cfg["weight_decay"], ""), (no_decay, 0.0, ":no_decay")):
            if params_:
                lr = float(optim_cfg["lr"][name])
                param_groups.append({"params": params_, "name": name + suffix, "group": name,
                                     "weight_decay": float(wd), "lr": lr})
    if not param_groups:
        raise ValueError("the model has no parameters in its vision, mapper and lora groups")
    return torch.optim.AdamW(param_groups)


def warmup_steps(optim_cfg: Mapping, total_steps: int) -> int:
    """``optim.warmup_steps`` if set, else ``warmup_frac`` of the total optimizer steps."""
    if optim_cfg.get("warmup_steps") is not None:
        return int(optim_cfg["warmup_steps"])
    return int(round(float(optim_cfg["warmup_frac"]) * total_steps))


def lr_factor(step: int, total_steps: int, warmup: int) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rates(optimizer: torch.optim.Optimizer, phase: Phase, base_lrs: Mapping[str, float],
                       factor: float) -> dict[str, float]:
    """Set every param group's lr for this phase and step (0 for frozen groups); return the lr per model group."""
    lrs = {}
    for group in optimizer.param_groups:
        lr = phase.group_lr(group["group"], base_lrs) * factor if group["group"] in phase.train else 0.0
        group["lr"] = lr
        lrs[group["group"]] = lr
    return lrs
