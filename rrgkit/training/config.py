"""Training configs: one YAML file plus ``a.b=c`` overrides, parsed ONCE into a typed :class:`TrainConfig`.

Every key a training run reads is in :data:`DEFAULTS`; a config file only states what differs. A
key that is not in the schema is an error naming the key path, the file and the allowed keys, so a
typo (``optim.lr.visoin``) never silently falls back to a default; a bad value names the key and
whether the file or an override gave it. The parsed object carries its schedule already resolved
into phases (:mod:`rrgkit.training.schedule`) and its model section as a
:class:`rrgkit.models.config.ModelConfig`; everything downstream trusts it. ``to_dict`` gives the
YAML-shaped form back (run folders store it as ``config.json``; run keys hash it), and
``updated`` applies more overrides (a grid's variants) by parsing again.

Relative paths (``data.manifest``, ``out``, ``model.encoder.weights``) are relative to the project
root (:mod:`rrgkit.paths`) and are kept as written, so run keys are the same on every machine.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rrgkit.models.config import ModelConfig, parse_model_config
from rrgkit.paths import resolve
from rrgkit.training.schedule import PRESETS, Phase, ScheduleError, phase_from_dict, phase_to_dict, preset_phases


class ConfigError(ValueError):
    """A training config is malformed; the message names the file or override, the key and the fix."""


DEFAULTS: dict = {
    "data": {
        "manifest": None,  # path to manifest.csv (required)
        "build": None,  # {dataset: phantom | iu-phantom, n, size, seed}: build (or reuse) the manifest's folder first
        "image_size": 96,
        "views": "frontal",  # frontal | stitch
        "augment": False,
        "cache": True,  # keep decoded images (and, while the encoder is frozen, its features) in memory
        # batches of similar report length pad less, but on phantom reports length tracks normal vs abnormal, so a
        # bucketed batch is all one kind: the 03 config's validation F1 fell 4-7 points at epochs 2-6 (one seed)
        "bucketing": False,
    },
    "model": {},  # validated and defaulted by rrgkit.models.config.parse_model_config
    "schedule": {
        "preset": "two-stage",  # a name in rrgkit.training.schedule.PRESETS; ignored if phases are given
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
        "precision": "fp32",  # fp32 | bf16 (autocast; see benchmarks/train_speed.py for what it buys on a CPU)
    },
    "eval": {
        "every": "epoch",
        "max_new_tokens": 64,
        "num_beams": 1,
        "select_by": "F1-CXP-14",
        "max_val_reports": 200,
        "batch_size": 128,  # reports generated at once: on a CPU a decoding step costs about the same for 30 as for 300
        "patience": None,  # end a phase after this many epochs without a better validation score (null: every epoch)
        "meteor": True,  # METEOR runs a Java process: slow on tiny test runs
        "backends": True,  # model-based metrics (BERTScore-MiniLM, F1-CXB, RadGraph) where installed
    },
    "checkpoint": {"every_steps": 50},
    "seed": 0,
    "out": None,  # run directory (required by `rrgkit train`; a grid chooses its own)
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
BOOLS = ("data.augment", "data.cache", "data.bucketing", "eval.meteor", "eval.backends")
OPEN_KEYS = ("schedule.phases", "model", "data.build")
"""Keys whose value is checked where it is parsed (the schedule, the model), not by the schema merge."""
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@dataclass(frozen=True)
class BuildSpec:
    """An embedded dataset to build (or reuse) in the manifest's folder before training."""

    dataset: str
    n: int | None
    size: int | None
    seed: int


@dataclass(frozen=True)
class DataConfig:
    manifest: str
    build: BuildSpec | None
    image_size: int
    views: str
    augment: bool
    cache: bool
    bucketing: bool

    @property
    def manifest_path(self) -> Path:
        """The manifest file (relative paths are under the project root)."""
        return resolve(self.manifest)


@dataclass(frozen=True)
class ScheduleConfig:
    """A preset (with its epochs) or explicit phases; ``phases`` is resolved either way."""

    preset: str | None
    epochs: int
    stage1_epochs: int
    phases: tuple[Phase, ...]
    explicit: bool

    @property
    def name(self) -> str:
        """The preset's name, or ``custom`` for explicit phases."""
        return "custom" if self.explicit else str(self.preset)

    @property
    def paper_name(self) -> str:
        """What the paper calls this schedule (``FT-II`` for two-stage), or ``custom``."""
        return "custom" if self.explicit else PRESETS[str(self.preset)].paper_name


@dataclass(frozen=True)
class OptimConfig:
    lr: Mapping[str, float]
    weight_decay: float
    warmup_steps: int | None
    warmup_frac: float
    grad_clip: float | None
    grad_accum: int
    batch_size: int
    precision: str


@dataclass(frozen=True)
class EvalConfig:
    every: str
    max_new_tokens: int
    num_beams: int
    select_by: str
    max_val_reports: int
    batch_size: int
    patience: int | None
    meteor: bool
    backends: bool


@dataclass(frozen=True)
class TrainConfig:
    """A validated training config; build one with :func:`load_config` or :func:`parse_config`."""

    data: DataConfig
    model: ModelConfig
    schedule: ScheduleConfig
    optim: OptimConfig
    eval: EvalConfig
    checkpoint_every: int
    seed: int
    out: str | None

    def to_dict(self) -> dict:
        """The YAML-shaped form (``parse_config(c.to_dict()) == c``); what ``config.json`` and run keys hold."""
        data = dataclasses.asdict(self.data)
        schedule = {"preset": self.schedule.preset, "epochs": self.schedule.epochs,
                    "stage1_epochs": self.schedule.stage1_epochs,
                    "phases": [phase_to_dict(p) for p in self.schedule.phases] if self.schedule.explicit else None}
        model = dataclasses.asdict(self.model)
        if self.model.lm.lora is not None:
            targets = self.model.lm.lora.targets
            model["lm"]["lora"]["targets"] = targets if isinstance(targets, str) else list(targets)
        return {"data": data, "model": model, "schedule": schedule,
                "optim": {**dataclasses.asdict(self.optim), "lr": dict(self.optim.lr)},
                "eval": dataclasses.asdict(self.eval), "checkpoint": {"every_steps": self.checkpoint_every},
                "seed": self.seed, "out": self.out}

    def updated(self, overrides: Mapping | Sequence[str] = (), where: str = "override") -> TrainConfig:
        """This config with ``overrides`` (a nested mapping or ``key.path=value`` texts) applied and re-parsed."""
        texts = [overrides] if isinstance(overrides, Mapping) else [parse_override(t) for t in overrides]
        config = self.to_dict()
        for update in texts:
            config = _merge(config, update, where)
        return parse_config(config, where)

    @property
    def out_path(self) -> Path:
        """The run folder (relative paths are under the project root)."""
        if not self.out:
            raise ConfigError("'out' is required (set it in the file or pass out=...)")
        return resolve(self.out)


def _merge(base: dict, update: Mapping, where: str, prefix: str = "") -> dict:
    """Recursively overlay ``update`` on ``base``, refusing keys that ``base`` does not have."""
    out = copy.deepcopy(base)
    if not isinstance(update, Mapping):
        raise ConfigError(f"{where}: a config must be a mapping with sections {', '.join(base)}")
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{where}: unknown key {path!r}; allowed keys here: {', '.join(sorted(base))}")
        if path in OPEN_KEYS:
            out[key] = _overlay(out[key], value) if isinstance(value, dict) and isinstance(out[key], dict) else value
        elif isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {path!r} must be a mapping with keys {', '.join(sorted(base[key]))}")
            out[key] = _merge(base[key], value, where, f"{path}.")
        else:
            out[key] = value
    return _floats(out)


def _overlay(base: dict, update: dict) -> dict:
    """Recursive dict overlay without key checks (for sections validated where they are parsed)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _floats(node, numeric: bool = False):
    """YAML 1.1 reads ``1e-4`` as a string; under ``optim``, ``schedule`` and ``lr`` keys such strings become floats."""
    if isinstance(node, dict):
        return {k: _floats(v, numeric or k in ("optim", "schedule", "lr")) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v, numeric) for v in node]
    return float(node) if numeric and isinstance(node, str) and SCIENTIFIC.match(node) else node


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


def read_yaml_config(path: str | Path) -> dict:
    """The mapping in a YAML config file; a missing file or bad YAML is one clear error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {path} not found; the bundled ones are in configs/")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return loaded


def merge_yaml(path: str | Path | None, overrides: Sequence[str], defaults: dict) -> tuple[dict, list[tuple[str, dict]]]:
    """``defaults`` ← YAML file, refusing unknown keys; returns the merged dict and the parsed overrides with their text."""
    config = copy.deepcopy(defaults)
    if path is not None:
        config = _merge(config, read_yaml_config(path), str(path))
    return config, [(f"override {text!r}", parse_override(text)) for text in overrides]


def _get(config: dict, path: str):
    node = config
    for key in path.split("."):
        node = node[key]
    return node


def _number(value, where: str, what: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: {what} must be a non-negative number{' or null' if allow_none else ''}, got {value!r}")
    return float(value)


def _check_schema(config: dict, where: str) -> None:
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
    patience = config["eval"]["patience"]
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ConfigError(f"{where}: eval.patience must be a positive integer or null, got {patience!r}")
    warm_frac = config["optim"]["warmup_frac"]
    if isinstance(warm_frac, bool) or not isinstance(warm_frac, (int, float)) or not 0 <= warm_frac < 1:
        raise ConfigError(f"{where}: optim.warmup_frac must be in [0, 1), got {warm_frac!r}")
    warm = config["optim"]["warmup_steps"]
    if warm is not None and (isinstance(warm, bool) or not isinstance(warm, int) or warm < 0):
        raise ConfigError(f"{where}: optim.warmup_steps must be a non-negative integer or null, got {warm!r}")
    for key in ("manifest", "out"):
        value = config["data"][key] if key == "manifest" else config[key]
        if value is not None and (not isinstance(value, (str, Path)) or not str(value).strip()):
            raise ConfigError(f"{where}: {'data.manifest' if key == 'manifest' else key} must be a path, got {value!r}")


def _build_spec(build, data: dict, where: str) -> BuildSpec | None:
    if build is None:
        return None
    allowed = {"dataset", "n", "size", "seed"}
    if not isinstance(build, Mapping) or set(build) - allowed or build.get("dataset") not in BUILDABLE:
        raise ConfigError(f"{where}: data.build must be null or a mapping with keys {sorted(allowed)} and "
                          f"dataset one of {', '.join(BUILDABLE)}; got {build!r}")
    if build["dataset"] == "phantom" and "n" not in build:
        raise ConfigError(f"{where}: data.build for the phantom dataset needs n (the number of studies)")
    if data["manifest"] and Path(str(data["manifest"])).name != "manifest.csv":
        raise ConfigError(f"{where}: data.build writes <folder>/manifest.csv, so data.manifest must end in manifest.csv, "
                          f"got {data['manifest']}")
    return BuildSpec(build["dataset"], build.get("n"), build.get("size", data["image_size"]), build.get("seed", 0))


def _schedule(section: dict, where: str) -> ScheduleConfig:
    try:
        if section["phases"]:
            if not isinstance(section["phases"], (list, tuple)):
                raise ScheduleError("schedule.phases must be a list of phase mappings")
            phases = tuple(phase_from_dict(entry, i) for i, entry in enumerate(section["phases"]))
            return ScheduleConfig(section["preset"], sum(p.epochs for p in phases), section["stage1_epochs"], phases, True)
        phases = tuple(preset_phases(str(section["preset"]), section["epochs"], section["stage1_epochs"]))
    except ScheduleError as exc:
        raise ConfigError(f"{where}: schedule: {exc}") from exc
    return ScheduleConfig(section["preset"], section["epochs"], section["stage1_epochs"], phases, False)


def parse_config(config: Mapping, where: str = "config") -> TrainConfig:
    """Validate a YAML-shaped training config (merged onto :data:`DEFAULTS`) into a :class:`TrainConfig`."""
    config = _merge(DEFAULTS, config, where)
    _check_schema(config, where)
    optim, ev, data = config["optim"], config["eval"], config["data"]
    lrs = optim["lr"]
    for group, lr in lrs.items():
        _number(lr, where, f"optim.lr.{group}")
    try:
        model = parse_model_config(config["model"], f"{where}: model")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return TrainConfig(
        data=DataConfig(manifest=data["manifest"] and str(data["manifest"]), build=_build_spec(data["build"], data, where),
                        image_size=data["image_size"], views=data["views"], augment=data["augment"],
                        cache=data["cache"], bucketing=data["bucketing"]),
        model=model,
        schedule=_schedule(config["schedule"], where),
        optim=OptimConfig(lr={k: float(v) for k, v in lrs.items()},
                          weight_decay=_number(optim["weight_decay"], where, "optim.weight_decay"),
                          warmup_steps=optim["warmup_steps"], warmup_frac=float(optim["warmup_frac"]),
                          grad_clip=_number(optim["grad_clip"], where, "optim.grad_clip", allow_none=True) or None,
                          grad_accum=optim["grad_accum"], batch_size=optim["batch_size"], precision=optim["precision"]),
        eval=EvalConfig(**ev),
        checkpoint_every=config["checkpoint"]["every_steps"],
        seed=config["seed"],
        out=config["out"] and str(config["out"]),
    )


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a training config: :data:`DEFAULTS` ← YAML file ← ``key.path=value`` overrides, parsed once.

    ``path=None`` starts from the defaults alone. A bad value is blamed on where it came from: the
    file, or the first override after which the config no longer parses.
    """
    config, parsed = merge_yaml(path, overrides, DEFAULTS)
    where = str(path) if path is not None else "defaults"
    steps = [(where, config)]
    for text, update in parsed:
        config = _merge(config, update, f"{where} + {text}")
        steps.append((f"{where} + {text}", config))
    if not config["data"]["manifest"]:
        raise ConfigError(f"{where}: 'data.manifest' is required (set it in the file or pass data.manifest=...)")
    try:
        return parse_config(config, where)
    except ConfigError:
        for label, step in steps:  # re-raise from the first step that does not parse, naming it
            parse_config(step, label)
        raise
