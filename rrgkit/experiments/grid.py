"""Run a grid of training variants over seeds, reuse finished runs, and compare variants honestly.

A variant is a set of config overrides (e.g. ``{"schedule": {"preset": "frozen"}}``) applied to
one base config. Each (variant, seed) trains in ``runs/<profile>/<experiment>/<key>/``, where the
key hashes the resolved config and the rrgkit source (:mod:`rrgkit.runs`): an unchanged run is
reused, a killed one resumes from its last checkpoint, and a changed library re-runs.

Claims compare variants two ways: spread over training seeds (mean, std, t-interval) and, per
seed, a paired bootstrap over the same test reports.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.runs import run_path

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


def experiment_config(path: str | Path, overrides: Sequence[str] = (), dataset: str | Path | None = None) -> dict:
    """A training config for a grid: ``path`` + overrides, ``dataset`` (a manifest.csv) replacing the config's data.

    Relative manifest paths are resolved against the repository root (where configs are written
    from), so a notebook running in ``notebooks/`` trains on the same files as ``rrgkit train``.
    """
    from rrgkit.profiles import REPO_ROOT
    from rrgkit.training.config import load_config

    extra = ["out=unused-grid-chooses"]
    if dataset is not None:
        manifest = Path(dataset)
        if not (manifest if manifest.is_absolute() else REPO_ROOT / manifest).exists():
            raise FileNotFoundError(f"dataset {dataset} not found (relative paths start at {REPO_ROOT}); "
                                    "give a manifest.csv made by `rrgkit data build` or `rrgkit data curate`")
        extra += [f"data.manifest={manifest}", "data.build=null"]
    config = load_config(path, [*overrides, *extra])
    manifest = Path(config["data"]["manifest"])
    config["data"]["manifest"] = str(manifest if manifest.is_absolute() else (REPO_ROOT / manifest).resolve())
    config.pop("out")
    return config


def run_grid(base: Mapping, variants: Mapping[str, Mapping], seeds: Sequence[int], profile: str, experiment: str,
             force: bool = False, progress: bool = True) -> pd.DataFrame:
    """Train every (variant, seed) not already finished; one row per run with its headline test metrics.

    A finished run (its ``metrics.json`` exists) is read, not retrained; ``force`` clears the runs first.
    """
    from rrgkit.training.loop import train

    if not variants or not seeds:
        raise ValueError(f"{experiment}: need at least one variant and one seed, got {list(variants)} and {list(seeds)}")
    rows = []
    for name, overrides in variants.items():
        for seed in seeds:
            config = deep_merge(deep_merge(base, overrides), {"seed": int(seed)})
            config.pop("out", None)
            folder = run_path(profile, experiment, {"variant": name, **config})
            if force and folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)  # train writes config.json (with out) and checks it on resume
            finished = folder / "metrics.json"
            if finished.exists():
                metrics = json.loads(finished.read_text())
            else:
                if progress:
                    print(f"[{experiment}] {name} seed {seed}: {folder}", flush=True)
                metrics = train({**config, "out": str(folder)}, resume=True, progress=progress)
            timing = metrics.get("timing", {})
            row = {"variant": name, "seed": int(seed), "run": str(folder), "best_epoch": metrics.get("best_epoch"),
                   "seconds": timing.get("train_seconds_this_process", 0.0) + timing.get("test_seconds", 0.0)}
            for metric in HEADLINE:
                row[metric] = metrics["metrics"][metric]["value"]
            rows.append(row)
    return pd.DataFrame(rows)


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


def schedule_table(schedule: Mapping) -> pd.DataFrame:
    """One row per phase of a ``schedule`` config section: its epochs and which parameter groups train."""
    from rrgkit.training.schedule import resolve_schedule

    rows, start = [], 1
    for phase in resolve_schedule(schedule):
        epochs = f"{start}-{start + phase.epochs - 1}" if phase.epochs > 1 else str(start)
        trains = {g: "trains" if g in phase.train else "frozen" for g in ("vision", "mapper", "lora")}
        rows.append({"phase": phase.name, "epochs": epochs, "target": phase.data, **trains})
        start += phase.epochs
    return pd.DataFrame(rows).set_index("phase")


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
