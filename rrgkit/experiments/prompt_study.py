"""Figure 3 and claim C5 over a ladder's runs: how alike the soft visual prompts of different studies are (Eq. 3).

The runs carry their test prompts (:func:`rrgkit.experiments.trace.prompt_runs`). Per run, Delta and the
mean pairwise cosine are computed on the single-label test studies, classes assigned under one stated
uncertain-label policy (:mod:`rrgkit.analysis.prompt_similarity`); each is one number per run, so
intervals are over seeds (:func:`rrgkit.evaluation.stats.aggregate_seeds`), and claims pair runs by seed
(:func:`rrgkit.experiments.claims.seed_claim`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rrgkit.analysis.prompt_similarity import image_dependent_share, mean_similarity
from rrgkit.evaluation.stats import aggregate_seeds
from rrgkit.experiments.trace import similarity_view

MEASURES: dict[str, str] = {"delta": "Δ (Eq. 3)", "mean_cosine": "mean pairwise cosine",
                            "image_dependent_share": "image-dependent share"}
"""The per-run columns of :func:`similarity_table`, with their names on the page."""


def similarity_table(runs: pd.DataFrame, uncertain: str = "positive") -> pd.DataFrame:
    """``runs`` (with a ``prompts`` column) with, per run, Delta, the mean pairwise cosine, the image-dependent share.

    Delta and the mean cosine use the single-label studies (``n_single_label`` of ``n_studies``); the
    image-dependent share (0: every image gets the same prompt) uses every study.
    """
    rows = []
    for prompts in runs["prompts"]:
        similarity, _, delta = similarity_view(prompts, uncertain)
        rows.append({"delta": delta, "mean_cosine": mean_similarity(similarity) if len(similarity) > 1 else np.nan,
                     "image_dependent_share": image_dependent_share(prompts.soft_prompts),
                     "n_single_label": len(similarity), "n_studies": len(prompts.ids)})
    return pd.concat([runs.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def seed_summary(table: pd.DataFrame, measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """Per cell (rung, schedule) and measure: mean over seeds, sd and Student-t 95 % interval (NaN with one seed)."""
    rows = []
    for (rung, schedule), cell in table.groupby(["rung", "schedule"], sort=False):
        for measure in measures:
            values = cell[measure].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            result = aggregate_seeds(values)
            rows.append({"rung": rung, "schedule": schedule, "measure": measure, "mean": result["mean"],
                         "sd": result["std"], "ci_low": result["ci_low"], "ci_high": result["ci_high"], "n_seeds": result["n"]})
    return pd.DataFrame(rows)
