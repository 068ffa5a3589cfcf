"""Mapping networks: visual tokens (B, L, D_img) → soft prompts in the LM's embedding space.

``QueryMapper`` is the paper's: ONE transformer decoder layer in which N learned
queries self-attend, cross-attend to the visual tokens (attention pooling as in
Set Transformer / BLIP-2's Q-Former) and pass an MLP. The visual tokens are
projected D_img → D_txt by a linear layer *before* the decoder layer, so the
layer runs at the LM width (the paper does not say where the projection sits;
at D_img = 2048 a decoder layer after it would cost ~4× the parameters).
Pre-norm (``norm_first``) matches the Q-Former-like layers of recent LMMs; a
final LayerNorm, its gain started at ``out_scale`` (the RMS of the LM's word
embeddings, set by :func:`build_mapper`), makes the soft prompts start at the
scale of real word embeddings rather than 10× above or below it.

``MLPMapper`` is the LLaVA-1.5 / RRG24 alternative: every visual token projected
by a 2-layer MLP, no pooling (L soft tokens instead of N).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rrgkit.models.config import MapperConfig


class QueryMapper(nn.Module):
    """N learned queries → one ``nn.TransformerDecoderLayer`` over the projected visual tokens → (B, N, D_txt)."""

    def __init__(
        self, d_img: int, d_txt: int, n_queries: int = 10, n_heads: int = 8, dropout: float = 0.1, out_scale: float = 1.0
    ) -> None:
        super().__init__()
        if d_txt % n_heads:
            raise ValueError(
                f"model.mapper.n_heads={n_heads} must divide the language model width {d_txt}; "
                f"choose a divisor such as {', '.join(str(h) for h in (1, 2, 4, 8, 12, 16) if d_txt % h == 0)}"
            )
        self.input_proj = nn.Linear(d_img, d_txt)
        self.queries = nn.Parameter(torch.randn(n_queries, d_txt) * 0.02)
        self.layer = nn.TransformerDecoderLayer(
            d_model=d_txt,
            nhead=n_heads,
            dim_feedforward=4 * d_txt,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.norm = nn.LayerNorm(d_txt)
        nn.init.constant_(self.norm.weight, out_scale)

    def forward(self, tokens: Tensor) -> Tensor:
        memory = self.input_proj(tokens)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.norm(self.layer(queries, memory))


class MLPMapper(nn.Module):
    """Linear → GELU → Linear on every visual token: (B, L, D_img) → (B, L, D_txt)."""

    def __init__(self, d_img: int, d_txt: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_img, d_txt), nn.GELU(), nn.Linear(d_txt, d_txt))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.net(tokens)


def build_mapper(cfg: MapperConfig, d_img: int, d_txt: int, out_scale: float = 1.0) -> nn.Module:
    """The mapping network named by ``cfg.kind``; ``out_scale`` is the query mapper's initial output RMS."""
    if cfg.kind == "query":
        return QueryMapper(d_img, d_txt, cfg.n_queries, cfg.n_heads, cfg.dropout, out_scale)
    if cfg.kind == "mlp":
        return MLPMapper(d_img, d_txt)
    raise ValueError(f"model.mapper.kind must be 'query' or 'mlp', got {cfg.kind!r}")
