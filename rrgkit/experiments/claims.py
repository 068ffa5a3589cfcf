"""Cells of an experiment grid and the paper's claims about them, with intervals that carry seeds and test reports.

A *cell* is one configuration (a language-model rung, an encoder, a schedule), a variant of
:func:`rrgkit.experiments.grid.run_grid`, trained over several seeds; every seed's run wrote the
same test reports. :func:`cell_summary` gives a cell's mean
metric with a seeds-then-reports interval (:func:`rrgkit.evaluation.stats.hierarchical_bootstrap`);
:func:`claim` compares two cells seed by seed (the same seed's runs are paired: same data order,
same test reports) and applies the book's verdict rule (:mod:`rrgkit.evaluation.verdicts`).
:func:`seed_claim` does the same for a number each run has once (such as Eq. 3's Delta), with an
interval over seeds only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrgkit.evaluation.stats import SumStatistic, aggregate_seeds, hierarchical_bootstrap, hierarchical_paired_bootstrap
from rrgkit.evaluation.verdicts import ClaimVerdict, verdict
from rrgkit.experiments.grid import predictions


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict, the two cells, and whether each beats the text-only report."""

    claim: str
    a: str
    b: str
    metric: str
    verdict: ClaimVerdict
    n_seeds: int
    sd_seeds: float
    a_beats_text_only: bool | None
    b_beats_text_only: bool | None
    unconverged_runs: int


def _statistics(run: str, metrics: Sequence[str], labels: Mapping[str, np.ndarray]) -> tuple[list[str], dict[str, SumStatistic]]:
    """The test ids of a run and its ``metrics`` as bootstrappable statistics against the manifest's labels."""
    from rrgkit.evaluation.score import metric_statistics

    preds = predictions(run)
    ref = np.array([labels[i] for i in preds.id], dtype=float)
    stats = metric_statistics(list(preds.generated), list(preds.reference), ref_labels=ref, meteor=False,
                              backends=False, only=list(metrics))
    return list(preds.id), {m: stats[m] for m in metrics}


def cell_runs(runs: pd.DataFrame, cell: str) -> pd.DataFrame:
    """The runs of one cell (``runs.variant == cell``), one per seed, ordered by seed."""
    picked = runs[runs["variant"] == cell].sort_values("seed")
    if picked.empty:
        raise ValueError(f"no runs of cell {cell!r}; cells are {sorted(set(runs['variant']))}")
    if picked["seed"].duplicated().any():
        raise ValueError(f"cell {cell!r} has two runs with the same seed")
    return picked


def cell_summary(runs: pd.DataFrame, labels: Mapping[str, np.ndarray], metrics: Sequence[str] = ("F1-CXP-14",),
                 n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per cell and metric: seeds, mean ± sd over seeds, the seeds-then-reports 95 % interval, runs not converged."""
    rows = []
    for cell in dict.fromkeys(runs["variant"]):
        picked = cell_runs(runs, cell)
        per_run = [_statistics(r, metrics, labels)[1] for r in picked["run"]]
        for metric in metrics:
            result = hierarchical_bootstrap([stats[metric] for stats in per_run], n_boot=n_boot, seed=seed)
            rows.append({"cell": cell, "metric": metric, "seeds": len(picked), "mean": result["value"],
                         "sd": result["sd_seeds"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                         "not converged": int((~picked["converged"].astype(bool)).sum())})
    return pd.DataFrame(rows)


def paired_cells(runs: pd.DataFrame, a: str, b: str) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """The runs of cells ``a`` and ``b`` indexed by seed, and the seeds both have (a claim pairs those)."""
    ra, rb = cell_runs(runs, a).set_index("seed"), cell_runs(runs, b).set_index("seed")
    seeds = sorted(set(ra.index) & set(rb.index))
    if not seeds:
        raise ValueError(f"cells {a!r} and {b!r} share no seed")
    return ra, rb, seeds


def unconverged_runs(ra: pd.DataFrame, rb: pd.DataFrame, seeds: Sequence[int]) -> int:
    """How many of the paired runs (:func:`paired_cells`) ended their budget still improving."""
    return int((~ra.loc[seeds, "converged"].astype(bool)).sum() + (~rb.loc[seeds, "converged"].astype(bool)).sum())


def claim(runs: pd.DataFrame, a: str, b: str, labels: Mapping[str, np.ndarray], text: str, direction: int = 1,
          metric: str = "F1-CXP-14", text_only: float | None = None, n_boot: int = 2000, seed: int = 0) -> ClaimResult:
    """Cell ``a`` − cell ``b`` over the seeds both have, paired per seed, judged by the verdict rule.

    ``text_only`` (the text-only report's score on the same test reports) adds whether each cell's
    mean beats it: a difference between two models that both lose to a report that ignores the
    image says little about vision.
    """
    ra, rb, seeds = paired_cells(runs, a, b)
    pairs = []
    for s in seeds:
        ids_a, stat_a = _statistics(ra.loc[s, "run"], [metric], labels)
        ids_b, stat_b = _statistics(rb.loc[s, "run"], [metric], labels)
        if ids_a != ids_b:
            raise ValueError(f"seed {s}: cells {a!r} and {b!r} were tested on different studies")
        pairs.append((stat_a[metric], stat_b[metric]))
    result = hierarchical_paired_bootstrap(pairs, n_boot=n_boot, seed=seed)
    means = {name: float(np.mean([p[i].value() for p in pairs])) for i, name in enumerate((a, b))}
    return ClaimResult(
        claim=text, a=a, b=b, metric=metric,
        verdict=verdict(result["diff"], result["ci_low"], result["ci_high"], direction),
        n_seeds=len(seeds), sd_seeds=result["sd_seeds"],
        a_beats_text_only=None if text_only is None else means[a] > text_only,
        b_beats_text_only=None if text_only is None else means[b] > text_only,
        unconverged_runs=unconverged_runs(ra, rb, seeds),
    )


def seed_claim(runs: pd.DataFrame, a: str, b: str, value: str, text: str, direction: int = 1,
               metric: str | None = None) -> ClaimResult:
    """Cell ``a`` − cell ``b`` on the column ``value`` of ``runs`` (one number per run), paired by seed.

    For a statistic of a whole test set that is not a sum over reports (Eq. 3's Delta, a mean pairwise
    cosine), the interval is Student's t over the per-seed differences
    (:func:`rrgkit.evaluation.stats.aggregate_seeds`): it carries the seed-to-seed variation only, not
    the finite test set, and is undefined (verdict "undetermined") with one seed. A seed whose value is
    undefined (NaN) in either cell is left out, and ``n_seeds`` counts the seeds used.
    """
    ra, rb, seeds = paired_cells(runs, a, b)
    differences = ra.loc[seeds, value].to_numpy(dtype=float) - rb.loc[seeds, value].to_numpy(dtype=float)
    used = differences[np.isfinite(differences)]
    nan = float("nan")
    result = aggregate_seeds(used) if len(used) else {"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan}
    return ClaimResult(
        claim=text, a=a, b=b, metric=metric or value,
        verdict=verdict(result["mean"], result["ci_low"], result["ci_high"], direction),
        n_seeds=len(used), sd_seeds=result["std"], a_beats_text_only=None, b_beats_text_only=None,
        unconverged_runs=unconverged_runs(ra, rb, seeds),
    )


def claims_table(results: Sequence[ClaimResult], scale: float = 100.0) -> pd.DataFrame:
    """One row per claim: difference, interval, verdict, detectable effect, seeds, text-only check, convergence."""
    def beats(flag: bool | None) -> str:
        return "n/a" if flag is None else ("yes" if flag else "no")

    rows = [{"claim": r.claim, "a − b": f"{r.a} − {r.b}", "metric": r.metric,
             "difference": round(scale * r.verdict.diff, 1),
             "95% interval": f"[{scale * r.verdict.ci_low:+.1f}, {scale * r.verdict.ci_high:+.1f}]",
             "verdict": r.verdict.verdict, "detectable effect": round(scale * r.verdict.detectable, 1),
             "seeds": r.n_seeds, "a beats text only": beats(r.a_beats_text_only),
             "b beats text only": beats(r.b_beats_text_only), "runs not converged": r.unconverged_runs}
            for r in results]
    return pd.DataFrame(rows)
