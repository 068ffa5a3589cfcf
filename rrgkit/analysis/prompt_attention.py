"""Attention allocated to the soft visual prompt while generating (Lu et al. 2023, Eq. 2, Fig. 2).

For the i-th generated token, the attention mass on the K visual-prompt positions is divided by
the share those positions would get if attention were uniform over the context, K / (K + i) in
the paper's notation. We use the exact number of attended positions at that step (soft prompt
+ text prompt + tokens generated so far), which is what K + i stands for once a text prompt
follows the soft prompt. An allocation of 1 therefore means "attention proportional to length";
values below 1 mean the model looks at the image less than at text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def attention_allocation(prompt_attention: Sequence[np.ndarray], context_lengths: Sequence[np.ndarray], n_prompt: int) -> pd.DataFrame:
    """Eq. 2 for every generated token of every report, as a long table.

    ``prompt_attention[r]`` is (T_r, n_layers): attention mass on the soft prompt, averaged over
    heads; ``context_lengths[r]`` is (T_r,): attended positions at each step. Returns columns
    ``report, step, layer, alpha``.
    """
    if len(prompt_attention) != len(context_lengths):
        raise ValueError(f"attention_allocation: {len(prompt_attention)} attention arrays but {len(context_lengths)} context-length arrays")
    if n_prompt < 1:
        raise ValueError(f"attention_allocation: n_prompt must be >= 1, got {n_prompt}")
    frames = []
    for report, (mass, lengths) in enumerate(zip(prompt_attention, context_lengths, strict=True)):
        mass = np.asarray(mass, dtype=float)
        lengths = np.asarray(lengths, dtype=float)
        if mass.ndim != 2 or mass.shape[0] != lengths.shape[0]:
            raise ValueError(f"attention_allocation: report {report} has attention {mass.shape} but {lengths.shape[0]} context lengths")
        if mass.shape[0] == 0:
            continue
        alpha = mass / (n_prompt / lengths)[:, None]
        steps, layers = np.meshgrid(np.arange(1, mass.shape[0] + 1), np.arange(mass.shape[1]), indexing="ij")
        frames.append(pd.DataFrame({"report": report, "step": steps.ravel(), "layer": layers.ravel(), "alpha": alpha.ravel()}))
    if not frames:
        return pd.DataFrame(columns=["report", "step", "layer", "alpha"])
    return pd.concat(frames, ignore_index=True)


def allocation_by_layer(table: pd.DataFrame) -> pd.DataFrame:
    """Mean allocation per layer (over tokens, then reports, as in Fig. 2), with the spread over reports."""
    per_report = table.groupby(["layer", "report"])["alpha"].mean().reset_index()
    summary = per_report.groupby("layer")["alpha"].agg(["mean", "std", "count"]).reset_index()
    return summary.rename(columns={"mean": "alpha_mean", "std": "alpha_std", "count": "n_reports"})
