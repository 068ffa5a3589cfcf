"""The book's verdict rule for a paper's claim, stated once and applied by code, and what a design can detect.

A claim says that system a beats system b (``direction=+1``) or loses to it (``-1``) on a metric.
Its verdict comes from the 95 % interval of the paired difference a − b, and from nothing else:

* **replicates** — the interval excludes 0 on the side the claim predicts;
* **contradicts** — the interval excludes 0 on the other side;
* **equivalent** — the interval lies inside ±``margin`` (1 F1 point by default): any difference is
  too small to matter;
* **inconclusive** — none of these: the interval contains 0 and is wider than the margin. It is
  reported with the smallest effect the design could have detected (:func:`detectable_effect`),
  never as "consistent with" the paper.

A claim of *no* difference (``direction=0``, e.g. "a long stage 1 gives mixed results") replicates
only when the interval lies inside ±``margin``, contradicts when it excludes 0, and is
inconclusive otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

VERDICTS = ("replicates", "contradicts", "equivalent", "inconclusive", "undetermined")
MARGIN = 0.01
"""The equivalence margin: 1 point of F1 (metrics are fractions)."""


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim's verdict with the numbers it rests on (fractions, like rrgkit's metrics)."""

    verdict: str
    diff: float
    ci_low: float
    ci_high: float
    detectable: float  # the smallest effect this design detects with 80 % power

    def sentence(self, claim: str, scale: float = 100.0, unit: str = "points") -> str:
        """One line: the claim, the verdict and the interval it rests on."""
        span = (f"{scale * self.diff:+.1f} {unit}, 95% interval [{scale * self.ci_low:+.1f}, "
                f"{scale * self.ci_high:+.1f}]")
        if self.verdict == "undetermined":
            return f"{claim}: undetermined ({scale * self.diff:+.1f} {unit}; no interval)."
        if self.verdict == "inconclusive":
            return (f"{claim}: inconclusive ({span}); this design detects effects of "
                    f"{scale * self.detectable:.1f} {unit} or more.")
        return f"{claim}: {self.verdict} ({span})."


def verdict(diff: float, ci_low: float, ci_high: float, direction: int = 1, margin: float = MARGIN) -> ClaimVerdict:
    """Apply the rule of this module to the interval of a − b for a claim that a beats b (``direction=+1``),
    loses to it (``-1``) or does no differently (``0``)."""
    if direction not in (1, -1, 0):
        raise ValueError(f"direction must be +1 (a beats b), -1 (a loses to b) or 0 (no difference), got {direction}")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return ClaimVerdict("undetermined", diff, ci_low, ci_high, float("nan"))
    if ci_low > ci_high:
        raise ValueError(f"interval [{ci_low}, {ci_high}] is reversed")
    inside = -margin <= ci_low and ci_high <= margin
    excludes_zero = ci_low > 0 or ci_high < 0
    if direction == 0:
        name = "replicates" if inside else "contradicts" if excludes_zero else "inconclusive"
    else:
        low, high = (ci_low, ci_high) if direction == 1 else (-ci_high, -ci_low)
        name = ("replicates" if low > 0 else "contradicts" if high < 0 else "equivalent" if inside
                else "inconclusive")
    return ClaimVerdict(name, diff, ci_low, ci_high, detectable_effect(ci_low, ci_high))


def detectable_effect(ci_low: float, ci_high: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at ``alpha`` finds with probability ``power``.

    The standard error is read off the interval's half-width (``half / z(1 - alpha/2)``), and the
    effect is ``(z(1 - alpha/2) + z(power)) * se``: about 1.43 half-widths at 95 % and 80 %.
    """
    z_alpha, z_power = scipy_stats.norm.ppf(1 - alpha / 2), scipy_stats.norm.ppf(power)
    se = (ci_high - ci_low) / 2 / z_alpha
    return float((z_alpha + z_power) * se)


def seeds_needed(sd_seeds: float, effect: float, alpha: float = 0.05, power: float = 0.8, most: int = 200) -> int:
    """Seeds per cell for a paired comparison to detect ``effect`` when per-seed differences have sd ``sd_seeds``.

    The smallest n with ``(t(1 - alpha/2, n-1) + t(power, n-1)) * sd / sqrt(n) <= effect`` (at least 2);
    ``most`` if even that many do not suffice.
    """
    if sd_seeds < 0 or effect <= 0:
        raise ValueError(f"need sd >= 0 and effect > 0, got {sd_seeds} and {effect}")
    for n in range(2, most + 1):
        t = scipy_stats.t.ppf(1 - alpha / 2, n - 1) + scipy_stats.t.ppf(power, n - 1)
        if t * sd_seeds / math.sqrt(n) <= effect:
            return n
    return most
