"""Pretraining a fine-tuning run depends on, run once per profile and reused.

The paper fine-tunes an encoder that was pretrained on chest X-rays (BioViL) and a pretrained LM.
A CPU profile that starts both from random weights never learns to look at the image (the
training chapter shows why), so the chapters first pretrain what the profile cannot download:
:func:`pretrained_overrides` runs ``rrgkit pretrain`` for the encoder and/or the LM with the
fine-tuning config's own architecture and image size, caches each run in a folder keyed by its
config and the training code (``runs/<profile>/pretrain-<kind>/<key>``; a killed one resumes), and
returns the config overrides that make the fine-tuning run load the results.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rrgkit.paths import relative, resolve
from rrgkit.runs import PRETRAINING_SOURCES, cached_run
from rrgkit.training.config import TrainConfig
from rrgkit.training.pretrain import PRETRAIN, PretrainConfig, load_pretrain_config

ENCODER_KINDS = ("labels", "contrastive")


def _pretrain(config: PretrainConfig, profile: str, force: bool, progress: bool) -> dict:
    def run(folder: Path) -> dict:
        return PRETRAIN[config.kind](config.updated({"out": str(folder)}), resume=True, progress=progress)

    keyed = {key: value for key, value in config.to_dict().items() if key != "out"}
    return cached_run(profile, f"pretrain-{config.kind}", keyed, run, force=force, parts=PRETRAINING_SOURCES)


def pretrained_overrides(train_config: TrainConfig, profile: str, encoder: tuple[str, str] | None = None,
                         lm: str | None = None, force: bool = False, progress: bool = False) -> tuple[dict, dict]:
    """Run (or reuse) the pretraining ``train_config`` asks for; return (config overrides, pretraining summaries).

    ``encoder`` is ``(kind, config_path)`` with kind ``labels`` or ``contrastive``; its encoder
    architecture and image size are taken from ``train_config`` so the weights always fit.
    ``lm`` is an LM pretraining config path; its LM is ``train_config``'s (a ``gpt2-scratch-*``)
    and the fine-tuning manifest's val/test reports are excluded from its corpus. Config paths
    are relative to the project root; the returned paths too, so run keys stay portable.
    """
    overrides: dict = {}
    summaries: dict = {}
    if encoder is not None:
        kind, path = encoder
        if kind not in ENCODER_KINDS:
            raise ValueError(f"encoder pretraining kind must be one of {', '.join(ENCODER_KINDS)}, got {kind!r}")
        shape = {**dataclasses.asdict(train_config.model.encoder), "weights": None}
        config = load_pretrain_config(kind, resolve(path)).updated(
            {"encoder": shape, "data": {"image_size": train_config.data.image_size}, "out": None})
        summary = _pretrain(config, profile, force, progress)
        overrides.setdefault("model", {})["encoder"] = {"weights": relative(summary["encoder_weights"])}
        summaries["encoder"] = summary
    if lm is not None:
        config = load_pretrain_config("lm", resolve(lm)).updated(
            {"lm": {"name": train_config.model.lm.name}, "data": {"exclude_manifest": train_config.data.manifest},
             "out": None})
        summary = _pretrain(config, profile, force, progress)
        overrides.setdefault("model", {})["lm"] = {"name": relative(summary["model_folder"])}
        summaries["lm"] = summary
    return overrides, summaries
