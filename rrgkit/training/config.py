"""Training configs: one YAML file plus ``a.b=c`` overrides, checked against one schema.

Every key a training run reads is in :data:`DEFAULTS`; a config file only states
what differs. A key that is not in the schema is an error naming the key path,
the file and the allowed keys, so a typo (``optim.lr.visoin``) never silently
falls back to a default. ``schedule.phases`` is the one list-valued section; its
entries are checked by :mod:`rrgkit.training.schedule`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from rrgkit.models.config import parse_model_config
from rrgkit.training.schedule import ScheduleError, resolve_schedule


class ConfigError(ValueError):
    """A training config is malformed; the message names the file, the key and the fix."""


DEFAULTS: dict = {
    "data": {
        "manifest": None,  # path to manifest.csv (required)
        "build": None,  # {dataset: phantom | iu-phantom, n, size, seed}: build (or reuse) the manifest's folder first
        "image_size": 96,
        "views": "frontal",  # frontal | stitch
        "augment": False,
        "cache": True,
    },
    "model": {},  # validated and defaulted by rrgkit.models.config.parse_model_config
    "schedule": {
        "preset": "two-stage",  # frozen | one-stage | two-stage | long-stage | curriculum; ignored if phases
        "epochs": 2,  # total epochs of the preset (long-stage: epochs of each stage)
        "stage1_epochs": 1,  # two-stage: epochs with the vision encoder frozen
        "phases": None,  # explicit list of phases, see rrgkit.training.schedule.Phase
    },
    "optim": {
        "lr": {"vision": 1e-4, "mapper": 1e-4, "lora": 1e-4},
        "weight_decay": 0.01,
        "warmup_steps": None,
        "warmup_frac": 0.05,
        "grad_clip": 1.0,
        "grad_accum": 1,
        "batch_size": 8,  # global micro-batch (split across processes); x grad_accum per optimizer step
        "precision": "fp32",  # fp32 | bf16
    },
    "eval": {
        "every": "epoch",
        "max_new_tokens": 64,
        "num_beams": 1,
        "select_by": "F1-CXP-14",
        "max_val_reports": 200,
        "batch_size": 16,
        "meteor": True,  # METEOR runs a Java process: slow on tiny test runs
        "backends": True,  # model-based metrics (BERTScore-MiniLM, F1-CXB, RadGraph) where installed
    },
    "checkpoint": {"every_steps": 50},
    "seed": 0,
    "out": None,  # run directory (required)
}

CHOICES: dict[str, tuple] = {
    "data.views": ("frontal", "stitch"),
    "optim.precision": ("fp32", "bf16"),
    "eval.every": ("epoch",),
    "eval.select_by": ("F1-CXP-14",),
}
BUILDABLE = ("phantom", "iu-phantom")
POSITIVE_INTS = ("data.image_size", "schedule.epochs", "schedule.stage1_epochs", "optim.grad_accum", "optim.batch_size",
                 "eval.max_new_tokens", "eval.num_beams", "eval.max_val_reports", "eval.batch_size",
                 "checkpoint.every_steps")
BOOLS = ("data.augment", "data.cache", "eval.meteor", "eval.backends")
OPEN_KEYS = ("schedule.phases", "model", "data.build")
"""Keys whose value is checked where it is used (the schedule, the model builder), not here."""


def _merge(base: dict, update: dict, where: str, prefix: str = "") -> dict:
    """Recursively overlay ``update`` on ``base``, refusing keys that ``base`` does not have."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in base:
            allowed = ", ".join(sorted(base))
            raise ConfigError(f"{where}: unknown key {path!r}; allowed keys here: {allowed}")
        if path in OPEN_KEYS:
            out[key] = _overlay(out[key], value) if isinstance(value, dict) and isinstance(out[key], dict) else value
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {path!r} must be a mapping with keys {', '.join(sorted(base[key]))}")
            out[key] = _merge(base[key], value, where, f"{path}.")
        else:
            out[key] = value
    return out


def _overlay(base: dict, update: dict) -> dict:
    """Recursive dict overlay without key checks (for sections validated elsewhere)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str) -> dict:
    """``"optim.batch_size=4"`` → ``{"optim": {"batch_size": 4}}`` (YAML-typed; ``2e-5`` becomes a float later)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value, e.g. optim.batch_size=4")
    path, raw = text.split("=", 1)
    keys = path.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {text!r}: empty key in {path!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    for key in reversed(keys):
        value = {key: value}
    return value


SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _floats(node, numeric: bool = False):
    """YAML 1.1 reads ``1e-4`` as a string; under ``optim``, ``schedule`` and ``lr`` keys such strings become floats."""
    if isinstance(node, dict):
        return {k: _floats(v, numeric or k in ("optim", "schedule", "lr")) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v, numeric) for v in node]
    return float(node) if numeric and isinstance(node, str) and SCIENTIFIC.match(node) else node


def _get(config: dict, path: str):
    node = config
    for key in path.split("."):
        node = node[key]
    return node


def validate_config(config: dict, where: str = "config") -> dict:
    """Check required keys, choices and positive integers; return the config unchanged."""
    for path in ("data.manifest", "out"):
        if _get(config, path) in (None, ""):
            raise ConfigError(f"{where}: {path!r} is required (set it in the file or pass {path}=...)")
    for path, choices in CHOICES.items():
        if _get(config, path) not in choices:
            raise ConfigError(f"{where}: {path}={_get(config, path)!r} is not one of {', '.join(choices)}")
    for path in POSITIVE_INTS:
        value = _get(config, path)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: {path} must be a positive integer, got {value!r}")
    for path in BOOLS:
        if not isinstance(_get(config, path), bool):
            raise ConfigError(f"{where}: {path} must be true or false, got {_get(config, path)!r}")
    if isinstance(config["seed"], bool) or not isinstance(config["seed"], int) or config["seed"] < 0:
        raise ConfigError(f"{where}: seed must be a non-negative integer, got {config['seed']!r}")
    for group, lr in config["optim"]["lr"].items():
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0:
            raise ConfigError(f"{where}: optim.lr.{group} must be a non-negative number, got {lr!r}")
    for path in ("optim.weight_decay", "optim.grad_clip", "optim.warmup_steps"):
        value = _get(config, path)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{where}: {path} must be a non-negative number or null, got {value!r}")
    warm_frac = config["optim"]["warmup_frac"]
    if not isinstance(warm_frac, (int, float)) or not 0 <= warm_frac < 1:
        raise ConfigError(f"{where}: optim.warmup_frac must be in [0, 1), got {warm_frac!r}")
    build = config["data"]["build"]
    if build is not None:
        allowed = {"dataset", "n", "size", "seed"}
        if not isinstance(build, dict) or set(build) - allowed or build.get("dataset") not in BUILDABLE:
            raise ConfigError(f"{where}: data.build must be null or a mapping with keys {sorted(allowed)} and "
                              f"dataset one of {', '.join(BUILDABLE)}; got {build!r}")
    parse_model_config(config["model"], f"{where}: model")
    try:
        resolve_schedule(config["schedule"])
    except ScheduleError as exc:
        raise ScheduleError(f"{where}: schedule: {exc}") from exc
    return config


def merge_yaml(path: str | Path | None, overrides: Sequence[str], defaults: dict) -> tuple[dict, str]:
    """``defaults`` ← YAML file ← ``key.path=value`` overrides, refusing unknown keys; returns (config, where)."""
    config = copy.deepcopy(defaults)
    where = "overrides"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.exists():
            raise FileNotFoundError(f"config {path} not found; the bundled ones are in configs/")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config must be a mapping with sections {', '.join(defaults)}")
        config = _merge(config, loaded, where)
    for text in overrides:
        config = _merge(config, parse_override(text), f"{where} + override {text!r}")
    return _floats(config), where


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    """Load a training config: :data:`DEFAULTS` ← YAML file ← ``key.path=value`` overrides, validated.

    ``path=None`` starts from the defaults alone (then ``data.manifest`` and ``out``
    must come from overrides). Relative paths stay relative to the working directory,
    like every other rrgkit command.
    """
    config, where = merge_yaml(path, overrides, DEFAULTS)
    return validate_config(config, where)
