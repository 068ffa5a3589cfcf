"""Calibration of a probability for a binary event: reliability diagram, ECE and temperature scaling.

A confidence is *calibrated* when, among the cases given probability p, a fraction p turn out
true. The reliability diagram bins the probabilities and compares each bin's mean probability with
its observed frequency; the expected calibration error (ECE, Naeini et al. 2015; Guo et al. 2017)
is the count-weighted mean gap. Temperature scaling (Guo et al. 2017) divides the log-odds by one
number T > 0 fitted on held-out data by likelihood: it changes how sure the probabilities are, never
their order, so an AUROC is the same before and after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit


def _pair(probability: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(probability, dtype=float).ravel(), np.asarray(outcome, dtype=float).ravel()
    if p.shape != y.shape or len(p) == 0:
        raise ValueError(f"need as many outcomes as probabilities (and at least one), got {p.shape} and {y.shape}")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("probabilities must lie in [0, 1] and outcomes be 0 or 1")
    return p, y


def reliability_table(probability: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width probability bin (empty bins left out): its range, count, mean probability and observed frequency."""
    p, y = _pair(probability, outcome)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)  # bins (a, b]; the first also takes 0
    rows = [{"bin": b, "lower": edges[b], "upper": edges[b + 1], "n": int((index == b).sum()),
             "confidence": float(p[index == b].mean()), "frequency": float(y[index == b].mean())}
            for b in range(n_bins) if np.any(index == b)]
    return pd.DataFrame(rows, columns=["bin", "lower", "upper", "n", "confidence", "frequency"])


def expected_calibration_error(probability: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the mean over bins of |frequency - confidence|, weighted by the share of cases in each bin."""
    table = reliability_table(probability, outcome, n_bins)
    return float(np.sum(table["n"] * (table["frequency"] - table["confidence"]).abs()) / table["n"].sum())


def fit_temperature(log_odds: np.ndarray, outcome: np.ndarray) -> float:
    """The T > 0 minimising the binary negative log-likelihood of ``sigmoid(log_odds / T)`` (searched over log T)."""
    z, y = np.asarray(log_odds, dtype=float).ravel(), np.asarray(outcome, dtype=float).ravel()
    if z.shape != y.shape or len(z) == 0 or not np.all(np.isfinite(z)):
        raise ValueError(f"need finite log-odds and one outcome each, got {z.shape} and {y.shape}")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("outcomes must be 0 or 1")

    def nll(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        return -float(np.sum(y * log_expit(scaled) + (1 - y) * log_expit(-scaled)))

    return float(np.exp(minimize_scalar(nll, bounds=(-7.0, 7.0), method="bounded").x))


def scaled_probability(log_odds: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``sigmoid(log_odds / temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return expit(np.asarray(log_odds, dtype=float) / temperature)
