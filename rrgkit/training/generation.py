"""Generate reports for a split with a model in memory or a finished run on disk.

Validation during training, the test split and ``rrgkit generate`` share :func:`generate_reports`,
so the reports scored for model selection are produced exactly like the test ones. On a CPU a
decoding step of a small LM costs nearly the same for 30 reports as for 300, so large batches
(``eval.batch_size``) write reports fastest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rrgkit.files import atomic_write_text, refuse_output_over_inputs
from rrgkit.training.checkpoint import WEIGHTS, CheckpointError, checkpoint_folder, load_weights


def generate_reports(model, dataset, indices: list[int] | None = None, batch_size: int = 16,
                     max_new_tokens: int = 64, num_beams: int = 1, progress: bool = True,
                     desc: str = "generate", visual_tokens: torch.Tensor | None = None) -> list[dict]:
    """Generate for ``dataset[i]`` (all items if ``indices`` is None); one row per study.

    Rows: ``id``, ``generated``, ``reference`` (findings), ``token_prob_mean`` (the
    paper's average token confidence, Eq. 4) and ``labels`` (the manifest's 14 labels,
    NaN for blank). ``visual_tokens`` (the encoder's output for every item of ``dataset``)
    skips the encoder, while it is frozen and its features are cached.
    """
    from rrgkit.data.loader import collate_reports

    indices = list(range(len(dataset))) if indices is None else list(indices)
    was_training = model.training
    model.eval()
    rows: list[dict] = []
    device = next(model.parameters()).device
    try:
        for start in tqdm(range(0, len(indices), batch_size), desc=desc, disable=not progress, leave=False):
            chunk = indices[start:start + batch_size]
            batch = collate_reports([dataset[i] for i in chunk])
            inputs = ({"visual_tokens": visual_tokens[chunk].to(device)} if visual_tokens is not None
                      else {"images": batch["image"].to(device)})
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                     output_scores=True, output_attentions=False)
            probs = out.token_probs or [None] * len(out.texts)
            for j, text in enumerate(out.texts):
                p = probs[j]
                rows.append({
                    "id": batch["id"][j],
                    "generated": text,
                    "reference": batch["findings"][j],
                    "token_prob_mean": float(np.mean(p)) if p is not None and len(p) else None,
                    "labels": [float(v) for v in batch["labels"][j]],
                })
    finally:
        model.train(was_training)
    return rows


def write_predictions(rows: list[dict], path: Path) -> None:
    """Write prediction rows as JSON lines (without the label vectors), atomically."""
    keys = ("id", "generated", "reference", "token_prob_mean")
    atomic_write_text(path, "".join(json.dumps({k: row[k] for k in keys}) + "\n" for row in rows))


def run_config(run_dir: Path):
    """The :class:`rrgkit.training.config.TrainConfig` a run folder was trained with (its ``config.json``)."""
    from rrgkit.training.config import parse_config

    config_file = Path(run_dir) / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file} not found; is {run_dir} a run folder written by `rrgkit train`?")
    return parse_config(json.loads(config_file.read_text()), str(config_file))


def load_run_model(run_dir: Path, which: str = "best"):
    """Rebuild a run's model from its ``config.json`` and load the ``best`` (or ``last``) checkpoint.

    Returns the model and the run's :class:`rrgkit.training.config.TrainConfig`. The checkpoint
    holds every encoder weight, so the encoder's initial weights (random or ``model.encoder.weights``)
    are skipped rather than announced and then overwritten.
    """
    from safetensors import SafetensorError

    from rrgkit.models.rrg import build_model

    run_dir = Path(run_dir)
    config = run_config(run_dir)
    folder = run_dir / "checkpoints" / which
    if checkpoint_folder(folder) is None:
        raise FileNotFoundError(f"no {which!r} checkpoint in {run_dir / 'checkpoints'}; train (or resume) the run first")
    model = build_model(config.model, trained_weights_follow=True)
    try:
        load_weights(folder, model, model.parameter_groups())
    except SafetensorError as exc:
        raise CheckpointError(f"{folder / WEIGHTS}: damaged checkpoint ({exc}); restore it from a backup, or train "
                              f"again with `rrgkit train --config {run_dir / 'config.json'} out=NEW_FOLDER`") from exc
    print(f"loaded the trained weights from {folder}")
    return model, config


def generate_split(run_dir: Path, split: str, out_jsonl: Path, batch_size: int = 16, num_beams: int | None = None,
                   progress: bool = True) -> list[dict]:
    """Generate the ``split`` of a run's manifest with its best checkpoint; write ``out_jsonl``; return rows."""
    from rrgkit.data.loader import ManifestDataset, check_images

    run_dir = Path(run_dir)
    data = run_config(run_dir).data
    refuse_output_over_inputs(out_jsonl, [run_dir / "config.json", data.manifest_path, *(run_dir / "checkpoints").rglob("*")])
    model, config = load_run_model(run_dir)
    dataset = ManifestDataset(data.manifest_path, split, data.image_size, views=data.views, augment=False, cache=False)
    check_images([dataset])
    rows = generate_reports(model, dataset, batch_size=batch_size, max_new_tokens=config.eval.max_new_tokens,
                            num_beams=num_beams or config.eval.num_beams, progress=progress, desc=split)
    write_predictions(rows, out_jsonl)
    return rows
