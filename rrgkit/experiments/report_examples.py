"""Figure 4's examples, picked by rule from the test reports of trained runs, with the labeler's findings marked."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rrgkit.analysis.qualitative import finding_marks, pick_examples, report_f1
from rrgkit.evaluation.labeler import label_reports
from rrgkit.experiments.claims import cell_runs
from rrgkit.experiments.grid import predictions
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def report_scores(runs: pd.DataFrame, labels: Mapping[str, np.ndarray], uncertain: str = "positive") -> pd.DataFrame:
    """Per cell, its first seed's test reports: ``cell, seed, run, study, F1, reference, generated, marks, pick``.

    ``F1`` is the report's own F1 over the 14 observations, ``marks`` maps each observation either
    report states to agreement / miss / hallucination, and ``pick`` names the rows
    :func:`~rrgkit.analysis.qualitative.pick_examples` chooses (worst, median, best; empty otherwise).
    """
    frames = []
    for cell in dict.fromkeys(runs["variant"]):
        run = cell_runs(runs, cell).iloc[0]
        preds = predictions(run["run"])
        reference = np.array([labels[i] for i in preds.id], dtype=float)
        generated = label_reports(list(preds.generated))
        f1 = report_f1(generated, reference, uncertain)
        marks = finding_marks(generated, reference, uncertain)
        picks = {i: name for name, i in pick_examples(f1, reference, list(preds.id), uncertain).items()}
        frames.append(pd.DataFrame({
            "cell": cell, "seed": int(run["seed"]), "run": run["run"], "study": preds.id, "F1": f1,
            "reference": preds.reference, "generated": preds.generated,
            "marks": [{o: m for o, m in zip(CHEXPERT_OBSERVATIONS, row, strict=True) if m} for row in marks],
            "pick": [picks.get(i, "") for i in range(len(preds))]}))
    return pd.concat(frames, ignore_index=True)


def report_examples(runs: pd.DataFrame, labels: Mapping[str, np.ndarray], uncertain: str = "positive") -> pd.DataFrame:
    """The picked rows of :func:`report_scores`, worst, median and best per cell."""
    scores = report_scores(runs, labels, uncertain)
    picked = scores[scores["pick"] != ""]
    rank = picked["pick"].map({"worst": 0, "median": 1, "best": 2}).to_numpy()
    cell_rank = picked["cell"].map({c: k for k, c in enumerate(dict.fromkeys(scores["cell"]))}).to_numpy()
    return picked.iloc[np.lexsort((rank, cell_rank))].reset_index(drop=True)
