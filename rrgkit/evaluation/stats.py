"""Uncertainty for report metrics: bootstrap over reports, paired bootstrap between systems, t-intervals over seeds.

Every rrgkit metric is a function of *sums of per-report statistics* (BLEU of
summed n-gram counts, micro-F1 of summed TP/FP/FN, ROUGE-L of summed scores and
counts). :class:`SumStatistic` captures that form, and a bootstrap resample is
then one matrix product — weights (B, n) @ statistics (n, k) — instead of B
re-scorings. Any other metric can be passed as a plain callable of an index
array and is resampled in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def format_ci(ci: Mapping[str, float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """``value [ci_low, ci_high]`` of a :func:`bootstrap_ci` result, times ``scale``, for a table cell or a sentence.

    A number is never shown without its interval; metrics are fractions, so the default prints percent.
    ``signed`` prints a leading + on positive numbers (differences).
    """
    form = f"{'+' if signed else ''}.{digits}f"
    value, low, high = (scale * ci[key] for key in ("value", "ci_low", "ci_high"))
    return f"{value:{form}} [{low:{form}}, {high:{form}}]"


def interval_column(frame, value: str, scale: float = 100.0, digits: int = 1, signed: bool = False) -> list[str]:
    """:func:`format_ci` for every row of a table holding ``value``, ``ci_low`` and ``ci_high`` columns."""
    return [format_ci({"value": v, "ci_low": lo, "ci_high": hi}, scale, digits, signed)
            for v, lo, hi in zip(frame[value], frame["ci_low"], frame["ci_high"], strict=True)]


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


def hierarchical_paired_bootstrap(pairs: list[tuple[SumStatistic, SumStatistic]], n_boot: int = 2000, seed: int = 0,
                                  alpha: float = 0.05) -> dict[str, float]:
    """Mean over training seeds of a − b, with an interval that carries seed AND test-set variance.

    ``pairs`` holds, per seed, the two systems' statistics on that seed's test reports (the same
    reports for a and b). A replicate draws seeds with replacement and, for each drawn seed, the
    test reports with replacement (paired: the same draw for a and b), and averages the per-seed
    differences: a two-level (hierarchical) bootstrap. Each seed's report-level draws come from a
    pool of ``n_boot`` resamples made once. It is conservative: where seeds differ only by test-set
    noise, that noise is counted at both levels (the interval is up to sqrt(2) too wide). With few
    seeds the seed level is coarse (5 seeds have 126 distinct multisets), so read the interval with
    the number of seeds it rests on.

    Returns ``diff`` (mean of the per-seed differences), ``ci_low``, ``ci_high``, ``n_seeds``,
    ``sd_seeds`` (sample sd of the per-seed differences) and ``per_seed`` (the differences).
    """
    _check_alpha(alpha)
    if not pairs:
        raise ValueError("need at least one seed's pair of systems")
    rng = np.random.default_rng(seed)
    per_seed = np.array([a.value() - b.value() for a, b in pairs])
    pools = []
    for index, (a, b) in enumerate(pairs):
        if a.n != b.n:
            raise ValueError(f"seed {index}: systems a and b were scored on {a.n} and {b.n} reports; pair them on the same reports")
        reps = _replicates([a, b], a.n, n_boot, seed + 7919 * (index + 1))
        pools.append(reps[0] - reps[1])
    pools = np.stack(pools)  # (seeds, n_boot)
    n_seeds = len(pairs)
    drawn_seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    drawn_reports = rng.integers(0, n_boot, size=(n_boot, n_seeds))
    replicates = np.nanmean(pools[drawn_seeds, drawn_reports], axis=1)
    low, high = _interval(replicates, alpha)
    sd = float(per_seed.std(ddof=1)) if n_seeds > 1 else float("nan")
    return {"diff": float(per_seed.mean()), "ci_low": low, "ci_high": high, "n_seeds": n_seeds, "sd_seeds": sd,
            "per_seed": per_seed.tolist()}


def hierarchical_bootstrap(statistics: list[SumStatistic], n_boot: int = 2000, seed: int = 0,
                           alpha: float = 0.05) -> dict[str, float]:
    """Mean over seeds of one system's metric, with a seed-then-reports interval (see :func:`hierarchical_paired_bootstrap`)."""
    _check_alpha(alpha)
    if not statistics:
        raise ValueError("need at least one seed's statistics")
    rng = np.random.default_rng(seed)
    per_seed = np.array([s.value() for s in statistics])
    pools = np.stack([_replicates([s], s.n, n_boot, seed + 7919 * (i + 1))[0] for i, s in enumerate(statistics)])
    n_seeds = len(statistics)
    replicates = np.nanmean(pools[rng.integers(0, n_seeds, (n_boot, n_seeds)), rng.integers(0, n_boot, (n_boot, n_seeds))],
                            axis=1)
    low, high = _interval(replicates, alpha)
    sd = float(per_seed.std(ddof=1)) if n_seeds > 1 else float("nan")
    return {"value": float(per_seed.mean()), "ci_low": low, "ci_high": high, "n_seeds": n_seeds, "sd_seeds": sd,
            "per_seed": per_seed.tolist()}
