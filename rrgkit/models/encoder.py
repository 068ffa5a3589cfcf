"""Vision encoder: an X-ray → a sequence of visual tokens (the flattened feature map).

The paper uses BioViL's ResNet50 at 480 px, whose last stage (stride 32) gives
15×15 = 225 tokens of width 2048. Any timm architecture works here; two small
built-ins keep the CPU profiles fast: ``resnet18-half`` (ResNet18 at half
width, the CPU default) and ``resnet-tiny`` (one block per stage, quarter
width, for tests).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from rrgkit.models.config import EncoderConfig
from rrgkit.paths import resolve

# Built-in narrow ResNets: timm's ResNet with overridden widths/depths.
BUILTIN_ENCODERS: dict[str, dict] = {
    "resnet18-half": dict(arch="resnet18", channels=(32, 64, 128, 256), stem_width=32),
    "resnet-tiny": dict(arch="resnet18", layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16),
}
STAGE_INDEX = {"last": -1, "penultimate": -2}


class EncoderWeightsError(FileNotFoundError):
    """An encoder checkpoint is missing or does not fit the architecture; the message names the file."""


class VisionEncoder(nn.Module):
    """A timm backbone cut at one stage; ``forward`` returns (B, L, out_dim) with L = H·W of that stage."""

    def __init__(self, backbone: nn.Module, out_dim: int, reduction: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_dim = out_dim
        self.reduction = reduction  # input pixels per token side: 480 px / 32 → 15 → 225 tokens

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
        features = self.backbone(images)[-1]  # (B, D, h, w)
        return features.flatten(2).transpose(1, 2)  # (B, h·w, D)

    def n_tokens(self, image_size: int) -> int:
        """Number of visual tokens for a square image of ``image_size`` pixels."""
        side = -(-image_size // self.reduction)
        return side * side


def _create_backbone(cfg: EncoderConfig) -> nn.Module:
    kwargs = dict(BUILTIN_ENCODERS.get(cfg.name, {"arch": cfg.name}))
    arch = kwargs.pop("arch")
    try:
        return timm.create_model(
            arch,
            pretrained=False,
            in_chans=cfg.in_chans,
            features_only=True,
            out_indices=(STAGE_INDEX[cfg.stage],),
            **kwargs,
        )
    except RuntimeError as exc:  # timm raises RuntimeError for unknown names
        if "Unknown model" not in str(exc):
            raise
        raise ValueError(
            f"model.encoder.name: unknown encoder {cfg.name!r}; use one of {', '.join(BUILTIN_ENCODERS)} "
            f"or a timm architecture name (timm.list_models())"
        ) from exc


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise EncoderWeightsError(f"encoder weights file {path} does not exist; fix model.encoder.weights or set it to null")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a tensor file: name the file, keep the cause
        raise EncoderWeightsError(f"{path}: cannot read encoder weights ({type(exc).__name__}: {exc}); "
                                  "give a timm state dict saved with torch.save or safetensors") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise EncoderWeightsError(f"{path}: expected a state dict (name → tensor), got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_encoder_weights(backbone: nn.Module, path: Path) -> None:
    """Load a timm-style state dict; RGB first-conv weights are summed over channels for grayscale input.

    Summing (as timm does for ``in_chans=1``) keeps the response to a gray image
    equal to the response to the same image replicated over three channels.
    Keys the backbone lacks (a classifier head) are ignored; a backbone key the
    file lacks is an error, since a silently random layer would spoil a run.
    """
    state = _read_state_dict(path)
    own = backbone.state_dict()
    for key, value in list(state.items()):
        target = own.get(key)
        if target is not None and value.ndim == 4 and value.shape[1] != target.shape[1] and target.shape[1] == 1:
            state[key] = value.sum(dim=1, keepdim=True)
    missing = [k for k in own if k not in state]
    if missing:
        raise EncoderWeightsError(
            f"{path}: {len(missing)} encoder weights are missing (first: {', '.join(missing[:3])}); "
            "is it a checkpoint of the same timm architecture as model.encoder.name?"
        )
    wrong = [k for k in own if state[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        raise EncoderWeightsError(f"{path}: weight {k} has shape {tuple(state[k].shape)}, the encoder expects {tuple(own[k].shape)}")
    backbone.load_state_dict({k: state[k] for k in own})


def build_encoder(cfg: EncoderConfig, trained_weights_follow: bool = False) -> VisionEncoder:
    """Build the encoder from ``cfg``; says clearly whether weights were loaded or randomly initialised.

    With ``trained_weights_follow`` the caller loads a trained checkpoint over every encoder weight next
    (``rrgkit generate``), so the initial weights are neither loaded nor announced: the caller says what it loaded.
    """
    backbone = _create_backbone(cfg)
    if not trained_weights_follow:
        if cfg.weights is None:
            print(f"encoder {cfg.name}: random initialisation (no weights file given)")
        else:
            load_encoder_weights(backbone, resolve(cfg.weights))
            print(f"encoder {cfg.name}: weights loaded from {cfg.weights}")
    info = backbone.feature_info
    return VisionEncoder(backbone, out_dim=info.channels()[-1], reduction=info.reduction()[-1])
