"""Attention allocated to the soft visual prompt while generating (Lu et al. 2023, Eq. 2, Fig. 2), with and without the sink.

For the t-th generated token, let m_t be the attention mass (averaged over heads) on the N soft-prompt
positions and L_t the number of attended positions at that step (soft prompt + text prompt + tokens
generated so far: the paper's K + i once a text prompt follows the soft prompt). Eq. 2 is

    alpha_t = m_t / (N / L_t),

so 1 means "attention proportional to length" and values below 1 mean the model looks at the image
less than at text.

The soft prompt sits at position 0, and causal LMs park the attention a head does not need on the first
position (the *attention sink*), whatever it holds. Part of alpha may be that parking rather than
looking at the image. With s_t the mass on position 0 alone, the allocation **without the sink** asks
how the attention *not* parked there is shared, with position 0 removed from the context:

    alpha_no_sink_t = ((m_t - s_t) / (1 - s_t)) / ((N - 1) / (L_t - 1)),

i.e. the share of the remaining attention that goes to soft-prompt positions 1..N-1, over their share
of the remaining L_t - 1 positions. Under uniform attention both are exactly 1. It is undefined (NaN)
for a one-token prompt or a step whose whole attention is on position 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

QUANTITIES: dict[str, str] = {"alpha": "α (Eq. 2)", "alpha_no_sink": "α without the sink",
                              "sink": "sink share (mass on position 0)"}
"""The columns of :func:`attention_allocation` a reader compares, with their names on the page."""


def attention_allocation(prompt_attention: Sequence[np.ndarray], context_lengths: Sequence[np.ndarray], n_prompt: int,
                         sink_attention: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """Eq. 2 for every generated token of every report, as a long table.

    ``prompt_attention[r]`` is (T_r, n_layers): attention mass on the soft prompt, averaged over
    heads; ``context_lengths[r]`` is (T_r,): attended positions at each step. Returns columns
    ``report, step, layer, alpha``; with ``sink_attention`` (per report (T_r, n_layers): the mass on
    position 0 alone) also ``sink`` and ``alpha_no_sink`` (see the module docstring).
    """
    if len(prompt_attention) != len(context_lengths):
        raise ValueError(f"attention_allocation: {len(prompt_attention)} attention arrays but {len(context_lengths)} context-length arrays")
    if sink_attention is not None and len(sink_attention) != len(prompt_attention):
        raise ValueError(f"attention_allocation: {len(prompt_attention)} attention arrays but {len(sink_attention)} sink arrays")
    if n_prompt < 1:
        raise ValueError(f"attention_allocation: n_prompt must be >= 1, got {n_prompt}")
    columns = ["report", "step", "layer", "alpha"] + ([] if sink_attention is None else ["sink", "alpha_no_sink"])
    frames = []
    for report, (mass, lengths) in enumerate(zip(prompt_attention, context_lengths, strict=True)):
        mass = np.asarray(mass, dtype=float)
        lengths = np.asarray(lengths, dtype=float)
        if mass.ndim != 2 or mass.shape[0] != lengths.shape[0]:
            raise ValueError(f"attention_allocation: report {report} has attention {mass.shape} but {lengths.shape[0]} context lengths")
        if mass.shape[0] == 0:
            continue
        steps, layers = np.meshgrid(np.arange(1, mass.shape[0] + 1), np.arange(mass.shape[1]), indexing="ij")
        frame = {"report": report, "step": steps.ravel(), "layer": layers.ravel(),
                 "alpha": (mass / (n_prompt / lengths)[:, None]).ravel()}
        if sink_attention is not None:
            sink = np.asarray(sink_attention[report], dtype=float)
            if sink.shape != mass.shape:
                raise ValueError(f"attention_allocation: report {report} has attention {mass.shape} but sink {sink.shape}")
            frame["sink"] = sink.ravel()
            frame["alpha_no_sink"] = _without_sink(mass, sink, lengths, n_prompt).ravel()
        frames.append(pd.DataFrame(frame))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _without_sink(mass: np.ndarray, sink: np.ndarray, lengths: np.ndarray, n_prompt: int) -> np.ndarray:
    """alpha_no_sink of the module docstring; NaN where it is undefined."""
    if n_prompt < 2:
        return np.full(mass.shape, np.nan)
    rest = 1.0 - sink
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rest > 0, (mass - sink) / rest, np.nan)
    return share / ((n_prompt - 1) / (lengths - 1))[:, None]


def report_means(table: pd.DataFrame, quantity: str = "alpha", by: str | None = None) -> pd.Series:
    """Per report (and per ``by`` value, ``"step"`` or ``"layer"``), the mean of ``quantity`` over the rest.

    ``by="step"`` gives Fig. 2's curve per report (mean over layers at each generated position),
    ``by="layer"`` the mean over a report's tokens per layer, ``None`` one number per report (tokens
    and layers). Averaging within a report first makes each report count once, however long it is.
    The index is ``report`` or ``(by, report)``.
    """
    if quantity not in table.columns:
        raise KeyError(f"report_means: no column {quantity!r}; the table has {list(table.columns)}")
    if by not in (None, "step", "layer"):
        raise ValueError(f"report_means: by must be None, 'step' or 'layer', got {by!r}")
    return table.groupby(["report"] if by is None else [by, "report"])[quantity].mean()
