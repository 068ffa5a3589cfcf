"""The paper's fine-tuning study on a ladder of language models: frozen, one-stage, two-stage (and a long stage 1).

:func:`run_ladder` prepares each rung's language model (:mod:`rrgkit.experiments.ladder`),
chooses its learning rate in the frozen setting, then trains every schedule over the rung's
seeds with that rate, from one base config; every cell of the grid is a variant named
``"<rung> · <schedule>"`` of :func:`rrgkit.experiments.grid.run_grid`, so finished runs are reused
by any chapter that asks for the same cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rrgkit.experiments.grid import run_grid
from rrgkit.experiments.ladder import Rung, choose_learning_rate, rung_config, with_learning_rate
from rrgkit.training.config import TrainConfig
from rrgkit.training.schedule import PRESETS

SEPARATOR = " · "


def cell_name(rung: str, schedule: str) -> str:
    """The name of a grid cell: ``"gpt2-tiny · two-stage"``."""
    return f"{rung}{SEPARATOR}{schedule}"


def schedule_variants(rung: str, schedules: Sequence[str], epochs: int, stage1_epochs: int = 1) -> dict[str, dict]:
    """One variant per schedule preset, each with the same maximum budget of ``epochs`` (long-stage: per stage)."""
    unknown = [s for s in schedules if s not in PRESETS]
    if unknown:
        raise ValueError(f"unknown schedule(s) {unknown}; choose from {list(PRESETS)}")
    return {cell_name(rung, s): {"schedule": {"preset": s, "epochs": epochs, "stage1_epochs": stage1_epochs,
                                              "phases": None}} for s in schedules}


@dataclass
class LadderRuns:
    """What :func:`run_ladder` trained or reused."""

    runs: pd.DataFrame  # one row per run: rung, schedule, variant (the cell), seed, test metrics, convergence
    learning_rates: pd.DataFrame  # per rung and rate: validation F1-CXP-14 in the frozen setting, chosen or not
    pretraining: dict[str, dict]  # rung → its LM pretraining summary (empty for a bundled pretrained LM)
    configs: dict[str, TrainConfig]  # rung → its config at the chosen learning rate


def run_ladder(base: TrainConfig, rungs: Sequence[Rung], schedules: Sequence[str], epochs: int, profile: str,
               experiment: str, workers: int = 1, progress: bool = True) -> LadderRuns:
    """For each rung: its LM, its learning rate (frozen setting, first seed), then every schedule over its seeds."""
    frames, rates, pretraining, configs = [], [], {}, {}
    for rung in rungs:
        config, pretraining[rung.name] = rung_config(base, rung, profile, progress=progress)
        config = config.updated({"schedule": {"epochs": epochs}})
        if len(rung.lrs) > 1:
            lr, grid = choose_learning_rate(config, rung.lrs, profile, f"{experiment}-lr", seed=rung.seeds[0],
                                            workers=workers, progress=progress, groups=rung.lr_groups)
            rates.append(grid.assign(rung=rung.name, chosen=grid["lr"] == lr)[["rung", "lr", "best_val", "converged",
                                                                               "chosen"]])
        else:
            lr = rung.lrs[0]
            rates.append(pd.DataFrame([{"rung": rung.name, "lr": lr, "best_val": float("nan"), "converged": None,
                                        "chosen": True}]))
        configs[rung.name] = with_learning_rate(config, lr, rung.lr_groups)
        runs = run_grid(configs[rung.name], schedule_variants(rung.name, schedules, epochs), rung.seeds, profile,
                        experiment, progress=progress, workers=workers)
        frames.append(runs.assign(rung=rung.name, schedule=[v.split(SEPARATOR)[1] for v in runs["variant"]], lr=lr))
    return LadderRuns(pd.concat(frames, ignore_index=True), pd.concat(rates, ignore_index=True), pretraining, configs)
