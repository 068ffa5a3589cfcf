"""The run-folder convention: ``runs/<profile>/<experiment>/<key>/``, keyed by what a run depends on.

The key hashes the resolved config *and* the source of the rrgkit modules the computation
executes — for a training run, the data, model, training and scoring code
(:data:`TRAINING_SOURCES`), not the book runner, the plots or the chapter helpers — so a change
that can alter a result re-runs it and an edit of a plot or a page reuses it. Each run folder holds
``config.json`` and ``metrics.json`` (written last, atomically: its presence means the run
finished).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from rrgkit.paths import PACKAGE_DIR, runs_root

DATA_SOURCES: tuple[str, ...] = ("data", "phantom", "labels.py", "assets.py", "evaluation/labeler.py",
                                 "evaluation/labeler_rules.py", "evaluation/mesh.py")
"""What builds an embedded dataset: sampler, writer, renderer, curation, and the labeler (iu-phantom)."""
TRAINING_SOURCES: tuple[str, ...] = ("data", "phantom", "models", "training", "evaluation", "labels.py", "seed.py",
                                     "assets.py")
"""What a training run executes: data, models, the training core, generation and scoring."""
PRETRAINING_SOURCES: tuple[str, ...] = ("data", "phantom", "models", "training/engine.py", "training/pretrain.py",
                                        "training/optim.py", "training/checkpoint.py", "training/schedule.py",
                                        "training/config.py", "evaluation/clinical.py", "labels.py", "seed.py",
                                        "assets.py")
"""What a pretraining run executes: data, models, the training core and the pretraining tasks (not fine-tuning)."""


def source_hash(parts: Sequence[str] = TRAINING_SOURCES) -> str:
    """Hash of the ``.py`` files (path and content) of the named subpackages and modules of rrgkit.

    Command-line modules (``*_cli.py``) only parse arguments and print, so they are left out.
    """
    digest = hashlib.sha256()
    for part in sorted(parts):
        target = PACKAGE_DIR / part
        if not target.exists():
            raise ValueError(f"source_hash: rrgkit has no {part!r}")
        for path in sorted(p for p in target.rglob("*.py") if not p.name.endswith("_cli.py")) if target.is_dir() else [target]:
            digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def config_key(config: dict, parts: Sequence[str] = TRAINING_SOURCES) -> str:
    """Twelve hex digits identifying (config, source of ``parts``)."""
    try:
        text = json.dumps(config, sort_keys=True, default=str)
    except TypeError as exc:
        raise ValueError(f"run config must be JSON-serialisable: {exc}") from exc
    return hashlib.sha256((text + source_hash(parts)).encode()).hexdigest()[:12]


def run_path(profile: str, experiment: str, config: dict, parts: Sequence[str] = TRAINING_SOURCES) -> Path:
    """Where the run for this profile, experiment and config lives (nothing is created)."""
    return runs_root(profile) / experiment / config_key(config, parts)


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename), so a killed run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def cached_run(profile: str, experiment: str, config: dict, fn: Callable[[Path], dict], force: bool = False,
               parts: Sequence[str] = TRAINING_SOURCES) -> dict:
    """Run ``fn(run_dir) -> metrics`` unless this exact run already finished; return its metrics.

    ``fn`` may resume from what it left in ``run_dir`` when a previous call was killed.
    """
    path = run_path(profile, experiment, config, parts)
    if force and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", config)
    metrics_file = path / "metrics.json"
    if metrics_file.exists():
        return json.loads(metrics_file.read_text())
    metrics = fn(path)
    if not isinstance(metrics, dict):
        raise TypeError(f"{experiment}: the run function must return a metrics dict, got {type(metrics).__name__}")
    write_json(metrics_file, metrics)
    return metrics
