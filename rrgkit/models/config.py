"""The ``model:`` section of a config, validated into frozen dataclasses.

Configs are plain YAML dicts; validating them here (unknown key or bad value →
:class:`ModelConfigError` naming the key, the allowed values and the section)
means a typo fails at start-up instead of silently falling back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

PARAMETER_GROUPS: tuple[str, ...] = ("vision", "mapper", "lora")
"""The RRG model's trainable parts, named once: the image encoder, the mapping network, the LM's adapters.
A schedule phase lists which of them train (:mod:`rrgkit.training.schedule`)."""
ENCODER_STAGES = ("last", "penultimate")
SCRATCH_PREFIX = "gpt2-scratch-"
SCRATCH_GPT2: dict[str, dict[str, int]] = {  # from-scratch GPT-2 shapes (tiny, mini, GPT2-S)
    "gpt2-scratch-tiny": dict(n_layer=2, n_embd=128, n_head=4),
    "gpt2-scratch-mini": dict(n_layer=4, n_embd=256, n_head=4),
    "gpt2-scratch-small": dict(n_layer=12, n_embd=768, n_head=12),
}
MAPPER_KINDS = ("query", "mlp")


class ModelConfigError(ValueError):
    """A ``model:`` config key is unknown or has a bad value; the message names it and the fix."""


@dataclass(frozen=True)
class EncoderConfig:
    """Vision encoder: a built-in name (``resnet18-half``, ``resnet-tiny``) or any timm architecture."""

    name: str = "resnet18-half"
    weights: str | None = None  # local checkpoint (relative to the project root); None → random init
    in_chans: int = 1
    stage: str = "last"  # last (stride 32) | penultimate (stride 16)


@dataclass(frozen=True)
class MapperConfig:
    """Mapping network: ``query`` (the paper: one transformer decoder layer) or ``mlp`` (LLaVA)."""

    kind: str = "query"
    n_queries: int = 10
    n_heads: int = 8
    dropout: float = 0.1


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on the language model; ``targets: auto`` picks q and v per architecture."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: str | tuple[str, ...] = "auto"


@dataclass(frozen=True)
class LMConfig:
    """Language model: ``smollm2-135m``, ``gpt2-scratch-{tiny,mini,small}``, an HF id or a local folder.

    ``lora: null`` trains every LM weight instead of LoRA adapters; it is the
    only choice for a from-scratch LM, where LoRA cannot work: with frozen
    random embeddings tied to the output layer (std 0.02) the logits stay
    within a few units, so the loss cannot fall far below ln(vocabulary).
    """

    name: str = "smollm2-135m"
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """Everything :func:`rrgkit.models.build_model` needs."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    mapper: MapperConfig = field(default_factory=MapperConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    prompt: str = "FINDINGS:"
    max_report_tokens: int = 96


def _check_keys(data: Mapping, cls: type, where: str) -> None:
    if not isinstance(data, Mapping):
        raise ModelConfigError(f"{where} must be a mapping, got {type(data).__name__} {data!r}")
    allowed = [f.name for f in fields(cls)]
    for key in data:
        if key not in allowed:
            raise ModelConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _prob(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ModelConfigError(f"{where} must be a number in [0, 1), got {value!r}")
    return float(value)


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModelConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _choice(value: object, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ModelConfigError(f"{where} must be one of {', '.join(allowed)}; got {value!r}")
    return value  # type: ignore[return-value]


def _encoder(data: Mapping, where: str) -> EncoderConfig:
    _check_keys(data, EncoderConfig, where)
    cfg = replace(EncoderConfig(), **data)
    _str(cfg.name, f"{where}.name")
    if cfg.weights is not None:
        _str(cfg.weights, f"{where}.weights (a checkpoint path or null)")
    if cfg.in_chans not in (1, 3) or isinstance(cfg.in_chans, bool):
        raise ModelConfigError(f"{where}.in_chans must be 1 (grayscale) or 3 (RGB), got {cfg.in_chans!r}")
    _choice(cfg.stage, ENCODER_STAGES, f"{where}.stage")
    return cfg


def _mapper(data: Mapping, where: str) -> MapperConfig:
    _check_keys(data, MapperConfig, where)
    cfg = replace(MapperConfig(), **data)
    _choice(cfg.kind, MAPPER_KINDS, f"{where}.kind")
    _int(cfg.n_queries, f"{where}.n_queries", 1)
    _int(cfg.n_heads, f"{where}.n_heads", 1)
    return replace(cfg, dropout=_prob(cfg.dropout, f"{where}.dropout"))


def _lora(data: Mapping, where: str) -> LoraSettings:
    _check_keys(data, LoraSettings, where)
    cfg = replace(LoraSettings(), **data)
    _int(cfg.r, f"{where}.r", 1)
    if isinstance(cfg.alpha, bool) or not isinstance(cfg.alpha, (int, float)) or cfg.alpha <= 0:
        raise ModelConfigError(f"{where}.alpha must be a positive number, got {cfg.alpha!r}")
    targets = cfg.targets
    if isinstance(targets, (list, tuple)):
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ModelConfigError(f"{where}.targets must be 'auto' or a non-empty list of module names, got {targets!r}")
        targets = tuple(targets)
    elif targets != "auto":
        raise ModelConfigError(f"{where}.targets must be 'auto' or a list of module names (e.g. [q_proj, v_proj]), got {targets!r}")
    return replace(cfg, dropout=_prob(cfg.dropout, f"{where}.dropout"), targets=targets)


def _lm(data: Mapping, where: str) -> LMConfig:
    _check_keys(data, LMConfig, where)
    data = dict(data)
    name = _str(data.pop("name", LMConfig.name), f"{where}.name")
    scratch = name.startswith(SCRATCH_PREFIX)
    if scratch and name not in SCRATCH_GPT2:
        raise ModelConfigError(f"{where}.name: unknown from-scratch GPT-2 {name!r}; known: {', '.join(SCRATCH_GPT2)}")
    lora_data = data.pop("lora", None if scratch else {})
    if scratch and lora_data is not None:
        raise ModelConfigError(
            f"{where}.lora: {name} is trained from scratch, so all its weights train and LoRA does not apply; "
            f"set {where}.lora: null (or leave it out)"
        )
    lora = None if lora_data is None else _lora(lora_data, f"{where}.lora")
    cfg = replace(LMConfig(), **data, name=name, lora=lora)
    if not isinstance(cfg.gradient_checkpointing, bool):
        raise ModelConfigError(f"{where}.gradient_checkpointing must be true or false, got {cfg.gradient_checkpointing!r}")
    return cfg


def parse_model_config(data: Mapping | ModelConfig | None, source: str = "model") -> ModelConfig:
    """Validate a ``model:`` mapping (or a mapping holding one under ``model``) into a :class:`ModelConfig`.

    ``source`` names the file/section in error messages, e.g. ``"profiles/smoke.yaml: model"``.
    Missing keys take the dataclass defaults (the CPU profile's model).
    """
    if isinstance(data, ModelConfig):
        return data
    data = {} if data is None else data
    if isinstance(data, Mapping) and set(data) == {"model"}:
        data = data["model"] or {}
    _check_keys(data, ModelConfig, source)
    data = dict(data)
    cfg = ModelConfig(
        encoder=_encoder(data.pop("encoder", None) or {}, f"{source}.encoder"),
        mapper=_mapper(data.pop("mapper", None) or {}, f"{source}.mapper"),
        lm=_lm(data.pop("lm", None) or {}, f"{source}.lm"),
        **data,
    )
    if not isinstance(cfg.prompt, str):
        raise ModelConfigError(f"{source}.prompt must be a string, got {cfg.prompt!r}")
    _int(cfg.max_report_tokens, f"{source}.max_report_tokens", 1)
    return cfg
