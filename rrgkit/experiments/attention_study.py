"""Figure 2 and claim C4 over traced runs: attention to the visual prompt (Eq. 2) with intervals over seeds and reports.

The runs are a ladder's (:func:`rrgkit.experiments.schedule_study.run_ladder`) traced by
:func:`rrgkit.experiments.trace.trace_runs`: one row per run with ``rung``, ``schedule``, ``variant``
(the cell), ``seed``, ``converged`` and ``trace``. Every interval is the seeds-then-reports bootstrap
of :mod:`rrgkit.evaluation.stats` on per-report means (:func:`rrgkit.analysis.prompt_attention.report_means`),
so a report counts once however long it is, and a seed's runs are paired across cells (same test studies).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rrgkit.analysis.prompt_attention import QUANTITIES, report_means
from rrgkit.evaluation.stats import hierarchical_bootstrap, hierarchical_paired_bootstrap, mean_statistic
from rrgkit.evaluation.verdicts import verdict
from rrgkit.experiments.claims import ClaimResult, paired_cells, unconverged_runs


def allocation_summary(traced: pd.DataFrame, by: str | None = None, quantities: Sequence[str] = tuple(QUANTITIES),
                       n_boot: int = 1000, max_step: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Per cell, ``by`` value (``step``, ``layer`` or None: the whole report) and quantity: mean and 95 % interval.

    The mean is over seeds of the mean over reports; a generated position counts the reports that reach
    it (``n_reports``, summed over seeds), and positions past ``max_step`` are left out. Columns: ``rung,
    schedule, <by>, quantity, mean, ci_low, ci_high, n_seeds, n_reports``.
    """
    rows = []
    for (rung, schedule), cell in traced.groupby(["rung", "schedule"], sort=False):
        tables = [t.allocation if max_step is None else t.allocation[t.allocation["step"] <= max_step]
                  for t in cell.sort_values("seed")["trace"]]
        for quantity in quantities:
            per_seed = [report_means(table, quantity, by).dropna() for table in tables]
            keys = sorted(set().union(*(s.index.get_level_values(0) for s in per_seed))) if by else [None]
            for key in keys:
                values = [s if key is None else s.loc[key] for s in per_seed if key is None or key in s.index]
                values = [v.to_numpy() for v in values if len(v)]
                if not values:
                    continue
                result = hierarchical_bootstrap([mean_statistic(v) for v in values], n_boot=n_boot, seed=seed)
                rows.append({"rung": rung, "schedule": schedule, **({by: key} if by else {}), "quantity": quantity,
                             "mean": result["value"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                             "n_seeds": len(values), "n_reports": sum(len(v) for v in values)})
    return pd.DataFrame(rows)


def attention_claim(traced: pd.DataFrame, a: str, b: str, text: str, quantity: str = "alpha", direction: int = -1,
                    n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """Cell ``a`` − cell ``b`` on a report's mean ``quantity`` (over its tokens and layers), paired by seed.

    The default reads C4: the larger LM (``a``) gives the visual prompt *less* attention than the smaller
    one (``b``). Both cells' runs of a seed must have traced the same test studies; the interval draws
    seeds, then reports within each seed, the same draw for both cells.
    """
    ra, rb, seeds = paired_cells(traced, a, b)
    pairs = []
    for s in seeds:
        trace_a, trace_b = ra.loc[s, "trace"], rb.loc[s, "trace"]
        if list(trace_a.ids) != list(trace_b.ids):
            raise ValueError(f"seed {s}: cells {a!r} and {b!r} were traced on different studies")
        pairs.append(tuple(mean_statistic(report_means(t.allocation, quantity).to_numpy()) for t in (trace_a, trace_b)))
    result = hierarchical_paired_bootstrap(pairs, n_boot=n_boot, seed=seed)
    return ClaimResult(claim=text, a=a, b=b, metric=f"{QUANTITIES[quantity]} ×100",
                       verdict=verdict(result["diff"], result["ci_low"], result["ci_high"], direction),
                       n_seeds=len(seeds), sd_seeds=result["sd_seeds"], a_beats_text_only=None, b_beats_text_only=None,
                       unconverged_runs=unconverged_runs(ra, rb, seeds))
