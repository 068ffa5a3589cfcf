"""Pretraining a fine-tuning run depends on, run once per profile and reused.

The paper fine-tunes an encoder that was pretrained on chest X-rays (BioViL) and a pretrained LM.
A CPU profile that starts both from random weights never learns to look at the image (the
training chapter shows why), so the chapters first pretrain what the profile cannot download:
:func:`pretrained_overrides` runs ``rrgkit pretrain`` for the encoder and/or the LM with the
fine-tuning config's own architecture and image size, caches each run in a folder keyed by its
config and the rrgkit source (``runs/<profile>/pretrain-<kind>/<key>``), and returns the config
overrides that make the fine-tuning run load the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rrgkit.runs import cached_run
from rrgkit.training.pretrain import load_pretrain_config, pretrain_contrastive, pretrain_labels, pretrain_lm

ENCODER_KINDS = {"labels": pretrain_labels, "contrastive": pretrain_contrastive}


def _pretrain(kind: str, config: dict, profile: str, force: bool, progress: bool) -> dict:
    from rrgkit.profiles import REPO_ROOT

    fn = ENCODER_KINDS.get(kind, pretrain_lm)
    manifest = config["data"].get("manifest")
    if manifest and not Path(manifest).is_absolute():  # as experiment_config does: relative to the repository
        config["data"]["manifest"] = str((REPO_ROOT / manifest).resolve())

    def run(folder: Path) -> dict:
        return fn({**config, "out": str(folder)}, progress=progress)

    keyed = {key: value for key, value in config.items() if key != "out"}
    return cached_run(profile, f"pretrain-{kind}", keyed, run, force=force)


def pretrained_overrides(train_config: Mapping, profile: str, encoder: tuple[str, str] | None = None,
                         lm: str | None = None, force: bool = False, progress: bool = False) -> tuple[dict, dict]:
    """Run (or reuse) the pretraining ``train_config`` asks for; return (config overrides, pretraining summaries).

    ``encoder`` is ``(kind, config_path)`` with kind ``labels`` or ``contrastive``; its encoder
    architecture and image size are taken from ``train_config`` so the weights always fit.
    ``lm`` is an LM pretraining config path; its LM is ``train_config``'s (a ``gpt2-scratch-*``)
    and the fine-tuning manifest's val/test reports are excluded from its corpus.
    """
    overrides: dict = {}
    summaries: dict = {}
    model = train_config["model"]
    if encoder is not None:
        kind, path = encoder
        if kind not in ENCODER_KINDS:
            raise ValueError(f"encoder pretraining kind must be one of {', '.join(ENCODER_KINDS)}, got {kind!r}")
        config = load_pretrain_config(kind, path, ["out=unused"])
        config["encoder"] = {**model["encoder"], "weights": None}
        config["data"]["image_size"] = train_config["data"]["image_size"]
        summary = _pretrain(kind, config, profile, force, progress)
        overrides.setdefault("model", {})["encoder"] = {"weights": summary["encoder_weights"]}
        summaries["encoder"] = summary
    if lm is not None:
        config = load_pretrain_config("lm", lm, ["out=unused"])
        config["lm"] = {"name": model["lm"]["name"]}
        config["data"]["exclude_manifest"] = str(train_config["data"]["manifest"])
        summary = _pretrain("lm", config, profile, force, progress)
        overrides.setdefault("model", {})["lm"] = {"name": summary["model_folder"]}
        summaries["lm"] = summary
    return overrides, summaries
