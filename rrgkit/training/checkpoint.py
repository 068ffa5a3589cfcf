"""Checkpoints: the trained weights in safetensors, the rest of the training state beside them.

A checkpoint is a folder (``<run>/checkpoints/last`` or ``.../best``) holding

* ``model.safetensors`` — every parameter of the task's parameter groups (for the RRG
  model: vision, mapper and lora) plus the module's persistent buffers (BatchNorm running
  statistics move when the encoder trains). Weights outside the groups (a frozen pretrained
  base LM) are not saved: they are rebuilt from the config.
* ``state.pt`` — optimizer state and the python / numpy / torch RNG states.
* ``progress.json`` — where training stands (global step, epoch, micro-batch
  position within the epoch, best score, history), human-readable.

A folder is written as ``<name>.tmp`` and swapped in with renames, so a run killed
while saving leaves the previous checkpoint intact (``<name>.old`` is used if the
kill fell between the two renames).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


WEIGHTS = "model.safetensors"
STATE = "state.pt"
PROGRESS = "progress.json"


class CheckpointError(FileNotFoundError):
    """A checkpoint is missing or does not fit the model; the message names the folder and the fix."""


Groups = Mapping[str, Sequence[torch.nn.Parameter]]


def trainable_state(model: torch.nn.Module, groups: Groups) -> dict[str, torch.Tensor]:
    """Tensors to save: the parameters of ``groups`` and all persistent buffers, by state-dict name."""
    wanted = {id(p) for params in groups.values() for p in params}
    names = {name for name, p in model.named_parameters() if id(p) in wanted}
    names |= {name for name, _ in model.named_buffers()}
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items() if k in names}


def rng_state() -> dict:
    """Python, numpy and torch RNG states (the data order does not need them; dropout does)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(folder: Path, model: torch.nn.Module, groups: Groups, optimizer: torch.optim.Optimizer | None,
                    progress: dict) -> None:
    """Write a checkpoint folder atomically (see the module docstring)."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(model, groups), str(tmp / WEIGHTS))
    torch.save({"optimizer": None if optimizer is None else optimizer.state_dict(), "rng": rng_state()},
               tmp / STATE)
    (tmp / PROGRESS).write_text(json.dumps(progress, indent=2, sort_keys=True, default=str))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_folder(folder: Path) -> Path | None:
    """The complete checkpoint at ``folder`` (or its ``.old`` twin after an interrupted swap), else None."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if all((candidate / f).exists() for f in (WEIGHTS, STATE, PROGRESS)):
            return candidate
    return None


def load_weights(folder: Path, model: torch.nn.Module, groups: Groups) -> None:
    """Load a checkpoint's weights into ``model``; every saved tensor must match a model tensor."""
    found = checkpoint_folder(folder)
    if found is None:
        raise CheckpointError(f"no complete checkpoint at {folder} (needs {WEIGHTS}, {STATE}, {PROGRESS})")
    tensors = load_file(str(found / WEIGHTS))
    result = model.load_state_dict(tensors, strict=False)
    if result.unexpected_keys:
        raise CheckpointError(
            f"{found / WEIGHTS} holds tensors the model does not have, e.g. {result.unexpected_keys[:3]}; "
            "was it trained with a different model config?"
        )
    expected = set(trainable_state(model, groups))
    missing = sorted(expected - set(tensors))
    if missing:
        raise CheckpointError(f"{found / WEIGHTS} lacks {len(missing)} trained tensors, e.g. {missing[:3]}")


def load_checkpoint(folder: Path, model: torch.nn.Module, groups: Groups,
                    optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore weights, optimizer and RNG states; return the progress dict."""
    load_weights(folder, model, groups)
    found = checkpoint_folder(folder)
    state = torch.load(found / STATE, map_location="cpu", weights_only=False)
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return json.loads((found / PROGRESS).read_text())
