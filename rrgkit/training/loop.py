"""ONE training loop for every schedule: phases, AdamW, warm-up + cosine, checkpoints, resume, DDP.

``train(config)`` runs the phases of ``config["schedule"]`` (see
:mod:`rrgkit.training.schedule`): at the start of every epoch the model is put in
train mode and ``model.set_trainable(phase.train)`` is (re-)applied, which also
keeps a frozen encoder's BatchNorm in eval mode. After each epoch the model
greedily writes the validation reports (at most ``eval.max_val_reports``), the
labeler labels them, and F1-CXP-14 against the manifest's labels picks the best
checkpoint, the paper's selection rule. At the end the best checkpoint writes the
test reports (``preds_test.jsonl``) and ``metrics.json`` holds their scores.

The run folder ``out`` holds ``config.json`` (resolved config), ``log.csv`` (one row
per optimizer step: step, epoch, phase, loss, lr per group, samples/s),
``history.json`` (validation F1-CXP-14 / F1-CXP-5 and train loss per epoch),
``checkpoints/{last,best}`` (see :mod:`rrgkit.training.checkpoint`),
``preds_test.jsonl`` and ``metrics.json`` (``score_reports`` output, best epoch,
timing). With ``data.build`` set, the embedded dataset is built (or reused) first.
The model, data and metric modules are imported inside :func:`train`: they pull in
transformers and peft, which config validation and ``--help`` do not need.

Determinism and resume: the data order of epoch *e* is a permutation drawn from a
``torch.Generator`` seeded with ``seed * 100003 + e``, the learning rate is a
function of the global step, and checkpoints store optimizer and RNG states at an
optimizer-step boundary together with the number of steps done in the epoch.
Resuming from ``last`` therefore replays exactly what the uninterrupted run did.

Scale-out: launched with ``accelerate launch`` or ``torchrun``, each of the P
processes takes every P-th item of each global micro-batch of ``optim.batch_size``
and gradients are averaged with one all-reduce per optimizer step (instead of a
DDP wrapper, which fixes the set of trainable parameters when it wraps the model,
while our phases change it). BatchNorm buffers are broadcast from rank 0 after
each step, as DDP does. Only rank 0 validates, checkpoints and writes files. The loss
curve equals a single process's only where the model has no per-process randomness
or batch statistics: BatchNorm in a *training* encoder normalises each process's
share of the batch, and dropout masks differ between processes.

``RRGKIT_STOP_AFTER_STEPS=k`` raises :class:`TrainingInterrupted` after global
optimizer step ``k`` — a crash simulator for the resume test.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rrgkit.labels import FIVE_OBSERVATIONS
from rrgkit.runs import write_json
from rrgkit.seed import seed_everything
from rrgkit.training.checkpoint import checkpoint_folder, load_checkpoint, load_weights, save_checkpoint
from rrgkit.training.config import validate_config
from rrgkit.training.evaluate import generate_reports, write_predictions
from rrgkit.training.optim import build_optimizer, lr_factor, set_learning_rates, warmup_steps
from rrgkit.training.schedule import GROUPS, phase_at_epoch, resolve_schedule, task_targets, total_epochs

LOG_FIELDS = ("step", "epoch", "phase", "loss", *(f"lr_{g}" for g in sorted(GROUPS)), "samples_per_s")


class TrainingInterrupted(RuntimeError):
    """Raised by the ``RRGKIT_STOP_AFTER_STEPS`` crash simulator."""


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of one epoch: a pure function of (n, seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def micro_batches(order: list[int], batch_size: int, world: int) -> list[list[int]]:
    """Global micro-batches of ``batch_size``; with P processes the last one is padded from the start.

    Padding (as DistributedSampler does) gives every process an item; with one
    process nothing is padded or dropped.
    """
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if world > 1 and len(batches[-1]) % world:
        batches[-1] = batches[-1] + order[: world - len(batches[-1]) % world]
    return batches


def _accelerator():
    """The process group (if launched with torchrun / accelerate launch) and device.

    ``cpu=True`` makes accelerate treat torchrun's processes as a gloo group when there
    is no GPU. Mixed precision is applied with ``torch.autocast`` in the loop rather
    than by accelerate, whose process-wide state refuses a second run in the same
    process with a different precision.
    """
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def _sync_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Average gradients over processes with one flattened all-reduce."""
    grads = [p.grad for p in params if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch._utils._flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat)
    flat /= world
    for grad, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)


def _broadcast_state(model: torch.nn.Module, buffers_only: bool) -> None:
    tensors = [b for _, b in model.named_buffers()]
    if not buffers_only:
        tensors += [p.data for p in model.parameters()]
    for tensor in tensors:
        torch.distributed.broadcast(tensor, src=0)


def build_data(data_cfg: dict) -> None:
    """Materialise ``data.build`` (an embedded dataset) in the manifest's folder, reusing an up-to-date one."""
    from rrgkit.data.embedded import build_iu_phantom, build_phantom

    spec, manifest = data_cfg["build"], Path(data_cfg["manifest"])
    if manifest.name != "manifest.csv":
        raise ValueError(f"data.build writes <folder>/manifest.csv, so data.manifest must end in manifest.csv, got {manifest}")
    size, seed = spec.get("size", data_cfg["image_size"]), spec.get("seed", 0)
    if spec["dataset"] == "phantom":
        if "n" not in spec:
            raise ValueError("data.build for the phantom dataset needs n (number of studies)")
        build_phantom(manifest.parent, spec["n"], size, seed)
    else:
        build_iu_phantom(manifest.parent, size, seed, n=spec.get("n"))


def _validate(model, dataset, eval_cfg: dict, progress: bool) -> dict:
    """Greedy-generate the first ``max_val_reports`` validation studies and score them by F1-CXP."""
    from rrgkit.evaluation.clinical import f1_scores
    from rrgkit.evaluation.labeler import label_reports

    n = min(len(dataset), eval_cfg["max_val_reports"])
    rows = generate_reports(model, dataset, list(range(n)), eval_cfg["batch_size"], eval_cfg["max_new_tokens"],
                            num_beams=1, progress=progress, desc="validate")
    pred = label_reports([r["generated"] for r in rows])
    ref = np.array([r["labels"] for r in rows], dtype=float)
    return {
        "F1-CXP-14": float(f1_scores(pred, ref)),
        "F1-CXP-5": float(f1_scores(pred, ref, observations=FIVE_OBSERVATIONS)),
        "n_val": n,
    }


def _test(model, dataset, config: dict, out: Path, progress: bool) -> dict:
    from rrgkit.evaluation.score import score_reports

    eval_cfg = config["eval"]
    rows = generate_reports(model, dataset, None, eval_cfg["batch_size"], eval_cfg["max_new_tokens"],
                            eval_cfg["num_beams"], progress=progress, desc="test")
    write_predictions(rows, out / "preds_test.jsonl")
    ref_labels = np.array([r["labels"] for r in rows], dtype=float)
    scores = score_reports([r["generated"] for r in rows], [r["reference"] for r in rows], ref_labels=ref_labels,
                           seed=config["seed"], meteor=eval_cfg["meteor"], backends=eval_cfg["backends"])
    probs = [r["token_prob_mean"] for r in rows if r["token_prob_mean"] is not None]
    return {**scores, "token_prob_mean": float(np.mean(probs)) if probs else None}


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    with path.open() as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def train(config: dict, resume: bool = False, progress: bool = True) -> dict:
    """Train, select by validation F1-CXP-14, test the best checkpoint; return the final metrics.

    ``resume=True`` continues from ``<out>/checkpoints/last`` (or returns the metrics
    of a finished run); without it an ``out`` that already holds a checkpoint is an
    error, so a run is never silently overwritten.
    """
    from rrgkit.data.loader import ManifestDataset, check_images, collate_reports
    from rrgkit.models.rrg import build_model

    config = validate_config(copy.deepcopy(config), "train config")
    out = Path(config["out"])
    ckpt_dir = out / "checkpoints"
    if not resume and checkpoint_folder(ckpt_dir / "last") is not None:
        raise RuntimeError(f"{out} already holds a training run; pass --resume to continue it or choose a new out")
    if resume and (out / "config.json").exists():
        saved = json.loads((out / "config.json").read_text())
        if saved != json.loads(json.dumps(config, default=str)):
            changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
            raise ValueError(f"cannot resume {out}: the config differs from its config.json in {changed}; "
                             "resume with the run's own config (or start a new out)")
    if resume and (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())

    optim_cfg, eval_cfg, data_cfg = config["optim"], config["eval"], config["data"]
    accelerator = _accelerator()
    bf16 = optim_cfg["precision"] == "bf16"
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    if optim_cfg["batch_size"] % world:
        raise ValueError(f"optim.batch_size={optim_cfg['batch_size']} must be divisible by the {world} processes")
    if data_cfg["build"] is not None:
        if main:
            build_data(data_cfg)
        accelerator.wait_for_everyone()
    seed = config["seed"]
    seed_everything(seed)
    phases = resolve_schedule(config["schedule"])
    model = build_model({"model": config["model"]}).to(accelerator.device)
    if world > 1:
        _broadcast_state(model, buffers_only=False)
    dataset = {
        split: ManifestDataset(data_cfg["manifest"], split, data_cfg["image_size"], views=data_cfg["views"],
                               augment=data_cfg["augment"] and split == "train", cache=data_cfg["cache"])
        for split in ("train", "val", "test")
    }
    empty = [split for split, ds in dataset.items() if len(ds) == 0]
    if empty:
        raise ValueError(f"{data_cfg['manifest']} has no {' or '.join(empty)} studies; training needs train, val and "
                         "test splits (rebuild the dataset or fix the manifest's split column)")
    check_images(dataset.values())
    optimizer = build_optimizer(model.parameter_groups(), optim_cfg)
    trainable = [p for group in model.parameter_groups().values() for p in group]
    accum = optim_cfg["grad_accum"]
    n_micro = math.ceil(len(dataset["train"]) / optim_cfg["batch_size"])
    steps_per_epoch = math.ceil(n_micro / accum)
    n_epochs = total_epochs(phases)
    total_steps = steps_per_epoch * n_epochs
    warmup = warmup_steps(optim_cfg, total_steps)

    state = {"step": 0, "epoch": 0, "epoch_step": 0, "epoch_losses": [], "best": None, "best_epoch": None,
             "history": []}
    if resume and checkpoint_folder(ckpt_dir / "last") is not None:
        state = load_checkpoint(ckpt_dir / "last", model, optimizer)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config)
        _truncate_log(out / "log.csv", state["step"])
    stop_after = int(os.environ.get("RRGKIT_STOP_AFTER_STEPS", "0") or 0)
    every = config["checkpoint"]["every_steps"]

    started = time.perf_counter()
    bar = tqdm(total=total_steps, initial=state["step"], desc="train", disable=not (progress and main))
    log_file = (out / "log.csv").open("a", newline="") if main else None
    try:
        log = csv.DictWriter(log_file, LOG_FIELDS) if main else None
        if main and log_file.tell() == 0:
            log.writeheader()
        for epoch in range(state["epoch"], n_epochs):
            _, phase = phase_at_epoch(phases, epoch)
            model.train()
            model.set_trainable(phase.train)
            batches = micro_batches(epoch_order(len(dataset["train"]), seed, epoch), optim_cfg["batch_size"], world)
            for epoch_step in range(state["epoch_step"], steps_per_epoch):
                tic = time.perf_counter()
                lrs = set_learning_rates(optimizer, phase, optim_cfg["lr"],
                                         lr_factor(state["step"], total_steps, warmup))
                chunk = batches[epoch_step * accum:(epoch_step + 1) * accum]
                loss_sum = torch.zeros((), dtype=torch.float64)
                n_samples = 0
                for indices in chunk:
                    batch = collate_reports([dataset["train"][i] for i in indices[rank::world]])
                    with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16):
                        loss = model(batch["image"].to(accelerator.device), task_targets(batch, phase.data))
                    (loss.float() / len(chunk)).backward()
                    loss_sum += loss.detach().double().cpu() / len(chunk)
                    n_samples += len(indices)
                _sync_gradients(trainable, world)
                if optim_cfg["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_([p for p in trainable if p.grad is not None],
                                                   optim_cfg["grad_clip"])
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if world > 1:
                    _broadcast_state(model, buffers_only=True)
                    torch.distributed.all_reduce(loss_sum)
                    loss_sum /= world
                state["step"] += 1
                state["epoch_step"] = epoch_step + 1
                state["epoch_losses"].append(float(loss_sum))
                bar.update(1)
                bar.set_postfix(phase=phase.name, loss=f"{float(loss_sum):.3f}")
                if main:
                    log.writerow({"step": state["step"], "epoch": epoch + 1, "phase": phase.name,
                                  "loss": f"{float(loss_sum):.6f}",
                                  **{f"lr_{g}": f"{lrs.get(g, 0.0):.3e}" for g in sorted(GROUPS)},
                                  "samples_per_s": f"{n_samples / (time.perf_counter() - tic):.2f}"})
                    log_file.flush()
                    if state["step"] % every == 0 and state["epoch_step"] < steps_per_epoch:
                        save_checkpoint(ckpt_dir / "last", model, optimizer, state)
                if stop_after and state["step"] >= stop_after:
                    raise TrainingInterrupted(f"stopped after step {state['step']} (RRGKIT_STOP_AFTER_STEPS)")
            if main:
                scores = _validate(model, dataset["val"], eval_cfg, progress)
                record = {"epoch": epoch + 1, "phase": phase.name, "step": state["step"],
                          "train_loss": float(np.mean(state["epoch_losses"])), **scores}
                state["history"].append(record)
                if state["best"] is None or scores[eval_cfg["select_by"]] > state["best"]:
                    state["best"], state["best_epoch"] = scores[eval_cfg["select_by"]], epoch + 1
                    save_checkpoint(ckpt_dir / "best", model, None, state)
                write_json(out / "history.json", {"history": state["history"]})
            state["epoch"], state["epoch_step"], state["epoch_losses"] = epoch + 1, 0, []
            if main:
                save_checkpoint(ckpt_dir / "last", model, optimizer, state)
            accelerator.wait_for_everyone()
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
    train_seconds = time.perf_counter() - started
    if not main:
        accelerator.wait_for_everyone()
        return {}
    tic = time.perf_counter()
    load_weights(ckpt_dir / "best", model)
    metrics = _test(model, dataset["test"], config, out, progress)
    metrics.update({
        "best_epoch": state["best_epoch"],
        "select_by": eval_cfg["select_by"],
        "best_val": state["best"],
        "schedule": [p.name for p in phases],
        "total_steps": total_steps,
        "timing": {"train_seconds_this_process": train_seconds, "test_seconds": time.perf_counter() - tic},
    })
    write_json(out / "metrics.json", metrics)
    accelerator.wait_for_everyone()
    return metrics
