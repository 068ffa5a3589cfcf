"""Uncertainty for report metrics: bootstrap over reports, paired bootstrap between systems, t-intervals over seeds.

Every rrgkit metric is a function of *sums of per-report statistics* (BLEU of
summed n-gram counts, micro-F1 of summed TP/FP/FN, ROUGE-L of summed scores and
counts). :class:`SumStatistic` captures that form, and a bootstrap resample is
then one matrix product — weights (B, n) @ statistics (n, k) — instead of B
re-scorings. Any other metric can be passed as a plain callable of an index
array and is resampled in a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import numpy as np
from scipy import stats as scipy_stats

_CHUNK = 250  # bootstrap replicates per matrix product: bounds memory at 250 * n floats


@dataclass(frozen=True)
class SumStatistic:
    """A metric of the form ``combine(per_report.sum(axis=0))``; ``combine`` maps (..., k) → (...)."""

    per_report: np.ndarray  # (n, k)
    combine: Callable[[np.ndarray], np.ndarray]

    def __post_init__(self) -> None:
        if self.per_report.ndim != 2 or len(self.per_report) == 0:
            raise ValueError(f"per-report statistics must be a non-empty (n, k) array, got shape {self.per_report.shape}")

    @property
    def n(self) -> int:
        return len(self.per_report)

    def value(self) -> float:
        """The metric on the full set."""
        return float(self.combine(self.per_report.sum(axis=0)))

    def on_weights(self, weights: np.ndarray) -> np.ndarray:
        """The metric on each resample, given per-report multiplicities (B, n) → (B,)."""
        return np.asarray(self.combine(weights @ self.per_report), dtype=np.float64)


def mean_statistic(values: np.ndarray) -> SumStatistic:
    """The mean of per-report values (ROUGE-L, example-F1, BERTScore) as a :class:`SumStatistic`."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return SumStatistic(np.column_stack([values, np.ones_like(values)]), lambda s: s[..., 0] / s[..., 1])


Metric = Union[SumStatistic, Callable[[np.ndarray], float]]


def _resample_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Multiplicity of each report in each of ``n_boot`` resamples drawn with replacement, (n_boot, n)."""
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _replicates(metrics: list[Metric], n: int, n_boot: int, seed: int) -> np.ndarray:
    """(len(metrics), n_boot) bootstrap values; all metrics see the same resamples (that is what makes it paired)."""
    if n < 1:
        raise ValueError(f"cannot bootstrap {n} reports; need at least one")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(metrics), n_boot), dtype=np.float64)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        weights = _resample_weights(rng, n, size)
        for m, metric in enumerate(metrics):
            if isinstance(metric, SumStatistic):
                if metric.n != n:
                    raise ValueError(f"metric has statistics for {metric.n} reports but n={n}")
                out[m, start : start + size] = metric.on_weights(weights)
            else:
                for b in range(size):
                    idx = np.repeat(np.arange(n), weights[b].astype(np.int64))
                    out[m, start + b] = float(metric(idx))
    return out


def _point(metric: Metric, n: int) -> float:
    return metric.value() if isinstance(metric, SumStatistic) else float(metric(np.arange(n)))


def _interval(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval over the resamples where the metric is defined (a resample can miss a rare class)."""
    defined = reps[np.isfinite(reps)]
    if len(defined) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def bootstrap_ci(metric_fn: Metric, n: int, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Percentile bootstrap CI of a metric over ``n`` reports: ``{"value", "ci_low", "ci_high"}``.

    ``metric_fn`` is a :class:`SumStatistic` (vectorised) or a callable taking an
    array of report indices (resampled with replacement) and returning a float.
    Resamples where the metric is undefined (NaN, e.g. precision with no predicted
    positive) are left out of the percentiles; if all are, the CI is NaN.
    """
    _check_alpha(alpha)
    low, high = _interval(_replicates([metric_fn], n, n_boot, seed)[0], alpha)
    return {"value": _point(metric_fn, n), "ci_low": low, "ci_high": high}


def paired_bootstrap(
    metric_fn_a: Metric, metric_fn_b: Metric, n: int, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """Difference a − b on the same reports, resampled jointly: ``{"diff", "ci_low", "ci_high", "p"}``.

    ``p`` is the fraction of resamples whose difference is ≤ 0 when the observed
    difference is positive (≥ 0 when negative): a one-sided bootstrap
    "p-value-ish" for "a beats b" (resp. "b beats a"); identical systems give 1.
    """
    _check_alpha(alpha)
    reps = _replicates([metric_fn_a, metric_fn_b], n, n_boot, seed)
    diffs = reps[0] - reps[1]
    diff = _point(metric_fn_a, n) - _point(metric_fn_b, n)
    low, high = _interval(diffs, alpha)
    diffs = diffs[np.isfinite(diffs)]
    p = float(np.mean(diffs <= 0) if diff > 0 else np.mean(diffs >= 0)) if len(diffs) else float("nan")
    return {"diff": float(diff), "ci_low": low, "ci_high": high, "p": p}


def aggregate_seeds(values: np.ndarray | list[float], alpha: float = 0.05) -> dict[str, float]:
    """Mean, sample std and Student-t CI of one metric over training seeds.

    With one seed the interval is undefined (NaN), never a fake zero-width interval.
    """
    _check_alpha(alpha)
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"need one or more finite values to aggregate, got {x.tolist()}")
    mean = float(x.mean())
    if len(x) == 1:
        return {"mean": mean, "std": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 1}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(1 - alpha / 2, df=len(x) - 1)) * std / np.sqrt(len(x))
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": len(x)}
