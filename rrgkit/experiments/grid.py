"""Run a grid of training variants over seeds, reuse finished runs, and compare variants.

A variant is a mapping of config overrides (e.g. ``{"schedule": {"preset": "frozen"}}``) applied to
one base :class:`rrgkit.training.config.TrainConfig`. Each (variant, seed) trains in
``runs/<profile>/<experiment>/<key>/``, where the key hashes the resolved config and the source of
the code a training run executes (:mod:`rrgkit.runs`): an unchanged run is reused, a killed one
resumes from its last checkpoint, and a change in the training code re-runs it. While it works the
grid prints which run of how many it is at, the time so far and an estimate of what remains.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.paths import resolve
from rrgkit.runs import run_path
from rrgkit.training.config import TrainConfig, load_config

HEADLINE = ("F1-CXP-14", "F1-CXP-5", "BLEU-4", "ROUGE-L")


def deep_merge(base: Mapping, update: Mapping) -> dict:
    """``base`` with ``update`` merged in, recursively for nested mappings (neither is modified)."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def experiment_config(path: str | Path, overrides: Sequence[str] = (), dataset: str | Path | None = None) -> TrainConfig:
    """A grid's base config: ``path`` (relative to the project root) + overrides, ``dataset`` replacing its data.

    ``dataset`` is a manifest.csv (relative to the project root, or absolute). The grid chooses
    each run's ``out``, so the base has none.
    """
    extra = ["out=null"]
    if dataset is not None:
        if not resolve(dataset).exists():
            raise FileNotFoundError(f"dataset {dataset} not found (relative paths start at the project root); "
                                    "give a manifest.csv made by `rrgkit data build` or `rrgkit data curate`")
        extra += [f"data.manifest={dataset}", "data.build=null"]
    return load_config(resolve(path), [*overrides, *extra])


def _status(experiment: str, done: int, total: int, label: str, what: str, started: float,
            trained: list[float], to_train: int, workers: int) -> str:
    elapsed = (time.perf_counter() - started) / 60
    if not to_train:
        left = "nothing left to train"
    elif trained:
        left = f"about {np.mean(trained) * to_train / workers / 60:.0f} min to go"
    else:
        left = "estimate after the first trained run"
    return f"[{experiment}] {done} of {total} runs ({label}): {what}; elapsed {elapsed:.1f} min, {left}"


def _launch(config: TrainConfig, folder: Path) -> subprocess.Popen:
    """Train one run in its own single-threaded process (``rrgkit train`` on the run's config.json)."""
    from rrgkit.runs import write_json

    write_json(folder / "config.json", config.updated({"out": str(folder)}).to_dict())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    err = (folder / "train.err").open("w")
    return subprocess.Popen([sys.executable, "-m", "rrgkit.cli", "train", "--config", str(folder / "config.json"),
                             "--resume", "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=err)


def run_grid(base: TrainConfig, variants: Mapping[str, Mapping], seeds: Sequence[int], profile: str, experiment: str,
             force: bool = False, progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Train every (variant, seed) not already finished; one row per run with its headline test metrics.

    A finished run (its ``metrics.json`` exists) is read, not retrained; ``force`` clears the runs
    first. With ``workers`` > 1, that many runs train side by side, each in its own process with
    one thread (on a 2-core CPU two single-threaded runs get more done than one run on two
    threads); a profile fixes ``workers``, so its runs repeat exactly. Rows carry ``best_epoch``,
    ``epochs_run``, ``converged`` (False when the best validation epoch is the last one run) and
    ``best_val`` next to the test metrics.
    """
    from rrgkit.training.finetune import prepare_data, train

    if not variants or not seeds:
        raise ValueError(f"{experiment}: need at least one variant and one seed, got {list(variants)} and {list(seeds)}")
    if workers < 1:
        raise ValueError(f"{experiment}: workers must be >= 1, got {workers}")
    plan = []
    for name, overrides in variants.items():
        for seed in seeds:
            config = base.updated(deep_merge(overrides, {"seed": int(seed), "out": None}), f"variant {name!r}")
            key = {"variant": name, **{k: v for k, v in config.to_dict().items() if k != "out"}}
            plan.append((f"{name}, seed {seed}", config, run_path(profile, experiment, key)))
    if force:
        for *_, folder in plan:
            shutil.rmtree(folder, ignore_errors=True)
    todo = [item for item in plan if not (item[2] / "metrics.json").exists()]
    for manifest in dict.fromkeys(config.data.manifest_path for _, config, _ in todo):
        # each dataset built (or checked) once, before any worker: side-by-side builds of one folder would race
        prepare_data(next(config for _, config, _ in todo if config.data.manifest_path == manifest))
    started, trained, done = time.perf_counter(), [], len(plan) - len(todo)
    if progress and done:
        print(f"[{experiment}] {done} of {len(plan)} runs finished earlier, reused", flush=True)

    def finished(label: str, tic: float, still: int) -> None:
        nonlocal done
        trained.append(time.perf_counter() - tic)
        done += 1
        if progress:
            print(_status(experiment, done, len(plan), label, f"trained in {trained[-1] / 60:.1f} min", started,
                          trained, still, workers), flush=True)

    if workers == 1:
        for index, (label, config, folder) in enumerate(todo, 1):
            folder.mkdir(parents=True, exist_ok=True)
            tic = time.perf_counter()
            train(config.updated({"out": str(folder)}), resume=True, progress=False)
            finished(label, tic, len(todo) - index)
    else:
        running: dict[subprocess.Popen, tuple[str, Path, float]] = {}
        while todo or running:
            while todo and len(running) < workers:
                label, config, folder = todo.pop(0)
                folder.mkdir(parents=True, exist_ok=True)
                running[_launch(config, folder)] = (label, folder, time.perf_counter())
            proc = _wait_any(running)
            label, folder, tic = running.pop(proc)
            if proc.returncode != 0:
                for other in running:
                    other.kill()
                tail = (folder / "train.err").read_text().strip().splitlines()[-1:] or ["(no message)"]
                raise RuntimeError(f"[{experiment}] {label} failed: {tail[0]} (whole log: {folder / 'train.err'})")
            finished(label, tic, len(todo) + len(running))
    rows = []
    for label, config, folder in plan:
        metrics = json.loads((folder / "metrics.json").read_text())
        timing = metrics.get("timing", {})
        row = {"variant": label.rsplit(", seed ", 1)[0], "seed": config.seed, "run": str(folder),
               "best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
               "converged": metrics.get("converged"), "best_val": metrics.get("best_val"),
               "seconds": timing.get("train_seconds_this_process", 0.0) + timing.get("test_seconds", 0.0)}
        for metric in HEADLINE:
            row[metric] = metrics["metrics"][metric]["value"]
        rows.append(row)
    return pd.DataFrame(rows)


def _wait_any(running: Mapping[subprocess.Popen, tuple]) -> subprocess.Popen:
    """The first of the running processes to finish."""
    while True:
        for proc in running:
            if proc.poll() is not None:
                return proc
        time.sleep(0.5)


def summarise(runs: pd.DataFrame, metrics: Sequence[str] = HEADLINE) -> pd.DataFrame:
    """Per variant and metric: mean, std and 95% t-interval over seeds."""
    from rrgkit.evaluation.stats import aggregate_seeds

    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        for metric in metrics:
            rows.append({"variant": variant, "metric": metric, **aggregate_seeds(group[metric].to_numpy())})
    return pd.DataFrame(rows)


def predictions(run: str | Path) -> pd.DataFrame:
    """The test predictions of a finished run (``preds_test.jsonl``), ordered by id."""
    path = Path(run) / "preds_test.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run has not finished testing; rerun the grid to resume it")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows).sort_values("id").reset_index(drop=True)


def paired_differences(runs: pd.DataFrame, a: str, b: str, reference_labels: Mapping[str, np.ndarray],
                       metrics: Sequence[str] = ("F1-CXP-14", "F1-CXP-5"), n_boot: int = 1000) -> pd.DataFrame:
    """Variant ``a`` minus ``b`` per seed (paired bootstrap over the same test reports) and pooled over seeds.

    ``reference_labels`` maps study id → its 14 ground-truth labels (the manifest's), so both
    variants are scored against the same exact labels.
    """
    from rrgkit.evaluation.score import compare_runs
    from rrgkit.evaluation.stats import aggregate_seeds

    rows = []
    for seed in sorted(set(runs.seed)):
        pick = runs[runs.seed == seed].set_index("variant")
        if a not in pick.index or b not in pick.index:
            continue
        pa, pb = predictions(pick.loc[a, "run"]), predictions(pick.loc[b, "run"])
        if list(pa.id) != list(pb.id):
            raise ValueError(f"seed {seed}: variants {a} and {b} were tested on different studies")
        labels = np.array([reference_labels[i] for i in pa.id], dtype=float)
        result = compare_runs(list(pa.generated), list(pb.generated), list(pa.reference), metrics, n_boot=n_boot,
                              seed=int(seed), ref_labels=labels)
        rows += [{"seed": int(seed), "metric": m, **result[m]} for m in metrics]
    if not rows:
        raise ValueError(f"no seed has both variants {a!r} and {b!r}")
    table = pd.DataFrame(rows)
    pooled = []
    for metric, group in table.groupby("metric", sort=False):
        agg = aggregate_seeds(group["diff"].to_numpy())
        pooled.append({"seed": "all (t over seeds)", "metric": metric, "diff": agg["mean"], "ci_low": agg["ci_low"],
                       "ci_high": agg["ci_high"], "p": np.nan})
    return pd.concat([table, pd.DataFrame(pooled)], ignore_index=True)


def run_log(run: str | Path) -> pd.DataFrame:
    """The per-optimizer-step training log of a run (``log.csv``: step, epoch, phase, loss, learning rates)."""
    path = Path(run) / "log.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run has not trained a step; rerun the grid")
    return pd.read_csv(path)


def run_history(run: str | Path) -> pd.DataFrame:
    """The per-epoch validation record of a run (``history.json``): epoch, phase, train_loss, F1-CXP-14/5."""
    path = Path(run) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run has not finished an epoch; rerun the grid")
    return pd.DataFrame(json.loads(path.read_text())["history"])


def histories(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`run_history` of every run of a grid, with its variant and seed (for validation curves)."""
    frames = [run_history(row.run).assign(variant=row.variant, seed=row.seed) for row in runs.itertuples()]
    return pd.concat(frames, ignore_index=True)


def schedule_table(schedule) -> pd.DataFrame:
    """One row per phase of a :class:`rrgkit.training.config.ScheduleConfig`: its epochs and which groups train."""
    from rrgkit.models.config import PARAMETER_GROUPS

    rows, start = [], 1
    for phase in schedule.phases:
        epochs = f"{start}-{start + phase.epochs - 1}" if phase.epochs > 1 else str(start)
        trains = {g: "trains" if g in phase.train else "frozen" for g in PARAMETER_GROUPS}
        rows.append({"phase": phase.name, "epochs": epochs, "target": phase.data, **trains})
        start += phase.epochs
    table = pd.DataFrame(rows).set_index("phase")
    table.attrs["paper_name"] = schedule.paper_name
    return table


def headline_table(scores: Mapping[str, Mapping], metrics: Sequence[str] = HEADLINE) -> pd.DataFrame:
    """Long table ``system, metric, value, ci_low, ci_high`` from ``{system: score_reports output}``."""
    rows = []
    for system, result in scores.items():
        for metric in metrics:
            m = result["metrics"][metric]
            rows.append({"system": system, "metric": metric, "value": m["value"],
                         "ci_low": m.get("ci_low", np.nan), "ci_high": m.get("ci_high", np.nan)})
    return pd.DataFrame(rows)


def describe_difference(diff: float, ci_low: float, ci_high: float, a: str, b: str, metric: str) -> str:
    """A plain-language verdict on ``a − b`` from its 95% interval (never stronger than the interval allows)."""
    if not np.isfinite(ci_low) or not np.isfinite(ci_high):
        return f"{metric}: {a} − {b} = {100 * diff:+.1f} points, but the interval is undefined (one seed): no verdict."
    span = f"{metric}: {a} − {b} = {100 * diff:+.1f} points, 95% CI [{100 * ci_low:+.1f}, {100 * ci_high:+.1f}]"
    if ci_low > 0:
        return f"{span}; the interval excludes 0: {a} is better."
    if ci_high < 0:
        return f"{span}; the interval excludes 0: {b} is better."
    return f"{span}; the interval includes 0: no evidence of a difference at this scale."
