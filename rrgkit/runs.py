"""The run-directory convention: ``runs/<profile>/<experiment>/<key>/``.

The key hashes the resolved config *and* the rrgkit source code, so a changed
config or a changed library re-runs, while an unchanged one is reused. Each run
directory holds ``config.json`` (resolved config), ``metrics.json`` (written
last, atomically: its presence means the run finished) and ``log.txt``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import rrgkit

PACKAGE_DIR = Path(rrgkit.__file__).resolve().parent


def runs_root() -> Path:
    """Root of all runs: ``$RRGKIT_RUNS`` or ``runs/`` in the repository."""
    return Path(os.environ.get("RRGKIT_RUNS", PACKAGE_DIR.parent / "runs"))


def source_hash() -> str:
    """Hash of every ``.py`` file in the rrgkit package (path and content)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def config_key(config: dict) -> str:
    """Twelve hex digits identifying (config, rrgkit source)."""
    try:
        text = json.dumps(config, sort_keys=True, default=str)
    except TypeError as exc:
        raise ValueError(f"run config must be JSON-serialisable: {exc}") from exc
    return hashlib.sha256((text + source_hash()).encode()).hexdigest()[:12]


def run_path(profile: str, experiment: str, config: dict) -> Path:
    """Where the run for this profile, experiment and config lives (nothing is created)."""
    return runs_root() / profile / experiment / config_key(config)


def run_dir(profile: str, experiment: str, config: dict) -> Path:
    """The run directory for this profile, experiment and config (created, with config.json)."""
    path = run_path(profile, experiment, config)
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", config)
    return path


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename), so a killed run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def cached_run(profile: str, experiment: str, config: dict, fn: Callable[[Path], dict], force: bool = False) -> dict:
    """Run ``fn(run_dir) -> metrics`` unless this exact run already finished; return its metrics."""
    path = run_dir(profile, experiment, config)
    metrics_file = path / "metrics.json"
    if metrics_file.exists() and not force:
        return json.loads(metrics_file.read_text())
    metrics = fn(path)
    if not isinstance(metrics, dict):
        raise TypeError(f"{experiment}: the run function must return a metrics dict, got {type(metrics).__name__}")
    write_json(metrics_file, metrics)
    return metrics
