"""Verdicts a chapter records for the book's front page.

A chapter that compares systems (or checks an estimate against a target) ends with ``record([...])``:
each row is one verdict (what is compared, metric, estimate, 95% interval, verdict). ``rrgkit book`` points ``RRGKIT_BOOK_RESULTS`` at a
JSON file in its build folder while it executes that chapter, and then renders every chapter's rows
into one table on the front page, so the summary is computed by the same build as the chapters and
never typed in. Run anywhere else (JupyterLab, papermill by hand) ``record`` writes nothing; it
returns the rows as a table either way, so a chapter reads the same wherever it runs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from rrgkit.evaluation.verdicts import verdict

RESULTS_ENV = "RRGKIT_BOOK_RESULTS"
COLUMNS = ("comparison", "metric", "estimate", "95% interval", "verdict")


@dataclass(frozen=True)
class Verdict:
    """One verdict as the front page shows it; ``estimate`` and the interval are in ``unit``.

    Most verdicts are differences between two systems (``signed``: shown with their sign); a chapter
    may also judge one estimate against a target, such as the labeler's F1 against 98 %.
    """

    comparison: str
    metric: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    verdict: str
    unit: str = "points"
    signed: bool = True

    def _number(self, x: float) -> str:
        return f"{x:+.1f}" if self.signed else f"{x:.1f}"

    def interval(self) -> str:
        """The interval as ``[low, high]``, or why there is none."""
        if self.ci_low is None or self.ci_high is None:
            return "none (one seed)"
        return f"[{self._number(self.ci_low)}, {self._number(self.ci_high)}]"

    def row(self) -> dict[str, str]:
        """The verdict formatted for a table, keyed by :data:`COLUMNS`."""
        return {"comparison": self.comparison, "metric": self.metric, "estimate": f"{self._number(self.estimate)} {self.unit}",
                "95% interval": self.interval(), "verdict": self.verdict}


def _finite(x: float) -> float | None:
    """JSON has no NaN: an undefined bound is stored as null."""
    return float(x) if x is not None and math.isfinite(x) else None


def paired_verdict(a: str, b: str, metric: str, diff: float, ci_low: float, ci_high: float, scale: float = 100.0) -> Verdict:
    """The verdict on ``a − b`` from its 95% interval by the book's rule (:func:`rrgkit.evaluation.verdicts.verdict`).

    One side is better only when the interval excludes 0; inside ±1 point it is "equivalent"; otherwise
    "inconclusive", with the smallest effect the interval could have shown. ``diff`` and the bounds are
    fractions (as rrgkit's metrics are); ``scale`` turns them into points.
    """
    low, high = _finite(ci_low), _finite(ci_high)
    if low is None or high is None:
        text = "no verdict (no interval)"
    else:
        judged = verdict(diff, low, high)
        text = {"replicates": f"{a} better", "contradicts": f"{b} better", "equivalent": "equivalent (within ±1 point)",
                "inconclusive": f"inconclusive (detects ≥ {scale * judged.detectable:.1f} points)"}[judged.verdict]
    return Verdict(f"{a} − {b}", metric, scale * float(diff), None if low is None else scale * low,
                   None if high is None else scale * high, text)


def from_claim(result, scale: float = 100.0) -> Verdict:
    """A paper claim's verdict (:class:`rrgkit.experiments.claims.ClaimResult`) as a front-page row."""
    judged = result.verdict
    text = judged.verdict
    if text == "inconclusive":
        text += f" (detects ≥ {scale * judged.detectable:.1f} points)"
    if result.unconverged_runs:
        text += f"; {result.unconverged_runs} run(s) not converged"
    return Verdict(f"{result.claim}: {result.a} − {result.b} ({result.n_seeds} seeds)", result.metric,
                   scale * judged.diff, _finite(scale * judged.ci_low), _finite(scale * judged.ci_high), text)


def table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """Verdicts as a DataFrame with :data:`COLUMNS`."""
    return pd.DataFrame([v.row() for v in verdicts], columns=list(COLUMNS))


def record(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """Add a chapter's verdicts to the build's results file (when ``rrgkit book`` runs it) and return them as a table."""
    verdicts = list(verdicts)
    target = os.environ.get(RESULTS_ENV)
    if target:
        path = Path(target)
        kept = json.loads(path.read_text()) if path.exists() else []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(kept + [asdict(v) for v in verdicts], indent=1, ensure_ascii=False))
    return table(verdicts)


def load(path: Path) -> list[Verdict]:
    """The verdicts in one chapter's results file; a chapter that recorded none has no file and gives []."""
    if not path.exists():
        return []
    return [Verdict(**row) for row in json.loads(path.read_text())]
