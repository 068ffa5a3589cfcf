"""Plots the chapters share: loss by phase, validation curves, metrics with CIs (overall and per observation),
Eqs. 2-4 and the prompts' map.

Each function draws on a given (or new) matplotlib axis and returns it; values ×100 where papers print them so.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator


def _axis(ax, size: tuple[float, float]):
    return plt.subplots(figsize=size)[1] if ax is None else ax


def plot_loss(log: pd.DataFrame, ax=None, smooth: int = 5):
    """Training loss per optimizer step, coloured by schedule phase, with a running mean of ``smooth`` steps."""
    ax = _axis(ax, (7, 3.2))
    for phase, part in log.groupby("phase", sort=False):
        line = ax.plot(part["step"], part["loss"], ".", alpha=0.35, label=f"{phase} (per step)")[0]
        ax.plot(part["step"], part["loss"].rolling(smooth, min_periods=1).mean(), color=line.get_color(), lw=2,
                label=f"{phase} (mean of {smooth})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per report token (nats)")
    ax.legend(fontsize=8)
    return ax


def plot_validation(history: pd.DataFrame, metric: str = "F1-CXP-14", hue: str | None = None, ax=None):
    """Validation ``metric`` (×100) per epoch; with ``hue`` (e.g. variant) one line per group, mean ± sd over seeds."""
    ax = _axis(ax, (6, 3.2))
    data = history.assign(value=100 * history[metric])
    if hue is None:
        sns.lineplot(data, x="epoch", y="value", marker="o", errorbar=None, ax=ax)
    else:
        sns.lineplot(data, x="epoch", y="value", hue=hue, style=hue, markers=True, dashes=False, errorbar="sd", ax=ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric} (×100)")
    ax.set_xticks(sorted(history["epoch"].unique()))
    return ax


def plot_systems(table: pd.DataFrame, ax=None, metrics: Sequence[str] | None = None):
    """Grouped bars of ``value`` (×100) per metric and system with their 95% CI as error bars."""
    metrics = list(metrics or table["metric"].unique())
    systems = list(table["system"].unique())
    ax = _axis(ax, (7.5, 3.4))
    width = 0.8 / len(systems)
    for k, system in enumerate(systems):
        part = table[table["system"] == system].set_index("metric").loc[metrics]
        x = np.arange(len(metrics)) + (k - (len(systems) - 1) / 2) * width
        err = np.vstack([part["value"] - part["ci_low"], part["ci_high"] - part["value"]]) * 100
        ax.bar(x, 100 * part["value"], width, yerr=np.nan_to_num(err), capsize=3, label=system)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_xlabel("metric (test split)")
    ax.set_ylabel("score (×100), 95% bootstrap CI")
    ax.legend(fontsize=8)
    return ax


def plot_per_observation(table: pd.DataFrame, columns: Sequence[str] = ("f1",), title: str | None = None, ax=None):
    """Per-observation scores (×100) with their 95% CIs, one row per observation labelled with its support.

    ``table`` is :func:`rrgkit.evaluation.clinical.per_observation` output with bootstrap intervals;
    ``columns`` picks the measures (``f1``, ``precision``, ``recall``). Undefined values (no positives)
    are left out rather than drawn at 0, so an empty class never looks like a failure.
    """
    ax = _axis(ax, (8, 0.32 * len(table) + 1.2))
    y = np.arange(len(table))
    for k, col in enumerate(columns):
        value = 100 * table[col].to_numpy(dtype=float)
        low = 100 * table[f"{col}_ci_low"].to_numpy(dtype=float)
        high = 100 * table[f"{col}_ci_high"].to_numpy(dtype=float)
        ok = np.isfinite(value) & np.isfinite(low) & np.isfinite(high)
        ax.errorbar(value[ok], y[ok] + 0.2 * k, xerr=[value[ok] - low[ok], high[ok] - value[ok]], fmt="o", capsize=3,
                    label=col)
    ax.set_yticks(y, [f"{o} (n={s})" for o, s in zip(table["observation"], table["support"])])
    ax.invert_yaxis()
    ax.set_xlim(-2, 102)
    ax.set_xlabel("score (%, 95% bootstrap CI)")
    ax.set_ylabel("observation (reference positives)")
    if title is not None:
        ax.set_title(title)
    if len(columns) > 1:
        ax.legend(loc="lower left")
    return ax


def plot_allocation(summary: pd.DataFrame, x: str = "step", hue: str = "rung", reference: float | None = 1.0,
                    ylabel: str = "α, Eq. 2 (1 = attention by length)", ax=None):
    """Fig. 2's view: ``mean`` per ``x`` (``step`` or ``layer``), one line per ``hue`` with its 95 % band.

    ``summary`` has columns ``x``, ``hue``, ``mean``, ``ci_low`` and ``ci_high`` for one quantity
    (:func:`rrgkit.experiments.attention_study.allocation_summary`); ``reference`` is drawn dashed
    (α = 1: the visual prompt gets attention in proportion to its length).
    """
    ax = _axis(ax, (6, 3.2))
    for level, part in summary.groupby(hue, sort=False):
        part = part.sort_values(x)
        line = ax.plot(part[x], part["mean"], marker="o" if x == "layer" else None, lw=1.5, label=str(level))[0]
        ax.fill_between(part[x], part["ci_low"], part["ci_high"], color=line.get_color(), alpha=0.25, lw=0)
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=1)
    ax.set_xlabel({"step": "generated token position t (tokens)", "layer": "LM layer (0 = first)"}.get(x, x))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, title=hue, title_fontsize=8)
    return ax


def plot_similarity(similarity: np.ndarray, classes: Sequence[str], title: str, ax=None):
    """Fig. 3: cosine-similarity heatmap of soft prompts sorted by class, class blocks outlined and named.

    Soft prompts share a large common component, so raw cosines crowd near 1; the colours show each
    cosine minus the mean off-diagonal cosine (named in the colour bar), and the colour range skips the
    extreme 2 % (the diagonal's 1s), which keeps Eq. 3's pattern visible.
    """
    ax = _axis(ax, (4.5, 4))
    off_diagonal = similarity[~np.eye(len(similarity), dtype=bool)]
    mean = float(off_diagonal.mean()) if off_diagonal.size else 0.0
    sns.heatmap(similarity - mean, ax=ax, cmap="viridis", square=True, xticklabels=False, yticklabels=False,
                robust=True, cbar_kws={"label": f"cosine − {mean:.8g} (mean)"})
    classes = list(classes)
    edges = [0] + [i for i in range(1, len(classes)) if classes[i] != classes[i - 1]] + [len(classes)]
    for edge in edges[1:-1]:
        ax.axhline(edge, color="white", lw=0.6)
        ax.axvline(edge, color="white", lw=0.6)
    ticks = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    ax.set_yticks(ticks, [classes[a] for a in edges[:-1]], fontsize=6)
    ax.set_xlabel("test sample (sorted by class)")
    ax.set_ylabel("class")
    ax.set_title(title, fontsize=9, pad=16)  # clear of the colour bar's offset label (e.g. "1e-6")
    return ax


def plot_prompt_map(embedding: np.ndarray, classes: Sequence[str], title: str, ax=None):
    """A 2-D map of soft prompts (:func:`rrgkit.analysis.prompt_similarity.prompt_map`), one colour per class."""
    ax = _axis(ax, (4.5, 4))
    sns.scatterplot(x=embedding[:, 0], y=embedding[:, 1], hue=list(classes), s=18, ax=ax)
    ax.set_xlabel("UMAP 1 (no unit)")
    ax.set_ylabel("UMAP 2 (no unit)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=6, title="finding", title_fontsize=7)
    return ax


def plot_confidence(outcomes: pd.DataFrame, x: str = "variant", ax=None, order: Sequence[str] | None = None):
    """Fig. 5: average confidence (Eq. 4) of stated positives, true vs false, per ``x`` group (``order``: which, in order).

    With no stated positive the axes say so instead of drawing nothing.
    """
    ax = _axis(ax, (7, 3.4))
    if outcomes.empty:
        ax.text(0.5, 0.5, "no finding stated", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylim(0, 1)
        ax.set_xticks([])
    else:
        sns.violinplot(outcomes, x=x, y="AC", hue="outcome", hue_order=["TP", "FP"], split=True, inner="quart",
                       cut=0, density_norm="width", order=order, ax=ax)
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        ax.legend(title="outcome", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel(x)
    ax.set_ylabel("AC (mean token probability)")
    return ax


def plot_cells(summary: pd.DataFrame, x: str, hue: str, metric: str = "F1-CXP-14", reference: float | None = None,
               ax=None):
    """Fig. 1's view: a metric (×100) per ``x`` (e.g. LM rung) and ``hue`` (e.g. schedule), with 95 % intervals.

    ``summary`` has columns ``x``, ``hue``, ``mean``, ``ci_low`` and ``ci_high`` (fractions); ``reference``
    (e.g. the text-only report's score) is drawn as a dashed line.
    """
    ax = _axis(ax, (7, 3.4))
    groups, levels = list(dict.fromkeys(summary[x])), list(dict.fromkeys(summary[hue]))
    width = 0.8 / len(levels)
    for k, level in enumerate(levels):
        part = summary[summary[hue] == level].set_index(x).reindex(groups)
        pos = np.arange(len(groups)) + (k - (len(levels) - 1) / 2) * width
        err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]]) * 100
        ax.errorbar(pos, 100 * part["mean"], yerr=np.nan_to_num(err), fmt="o", capsize=4, label=str(level))
    if reference is not None:
        ax.axhline(100 * reference, color="grey", ls="--", lw=1, label="text-only report")
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_xlabel(x)
    ax.set_ylabel(f"test {metric} (×100), mean over seeds, 95% CI")
    ax.legend(fontsize=8)
    return ax


def plot_auroc(table: pd.DataFrame, x: str = "cell", margin: float | None = None, ax=None):
    """AUROC (TP vs FP) per ``x`` with its 95 % interval; dotted: chance, shaded: chance ± ``margin`` (a claim's band)."""
    ax = _axis(ax, (7, 3.2))
    groups = list(dict.fromkeys(table[x]))
    part = table.set_index(x).loc[groups]
    pos = np.arange(len(groups))
    err = np.vstack([part["AUROC"] - part["ci_low"], part["ci_high"] - part["AUROC"]])
    ax.errorbar(pos, part["AUROC"], yerr=np.nan_to_num(err), fmt="o", capsize=4, label="mean over seeds, 95% CI")
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance (0.5)")
    if margin is not None:
        ax.axhspan(0.5 - margin, 0.5 + margin, color="grey", alpha=0.15, label=f"0.5 ± {margin:g}")
    ax.set_xticks(pos, groups, rotation=20, ha="right")
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel(x)
    ax.set_ylabel("AUROC, TP vs FP (0.5 = chance)")
    ax.legend(fontsize=8)
    return ax


def plot_recall(recall: pd.DataFrame, systems: Sequence[str], ax=None):
    """Recall per observation (rows of ``recall``: ``observation`` and one column per system), one bar per system."""
    ax = _axis(ax, (7, 5))
    long = recall.melt(id_vars=["observation"], value_vars=list(systems), var_name="report", value_name="recall")
    sns.barplot(long, y="observation", x="recall", hue="report", orient="h", ax=ax)
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall (share of reference positives the report states)")
    ax.set_ylabel("observation")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(systems))
    return ax


def plot_reliability(pairs: pd.DataFrame, columns: Sequence[str] = ("before", "after"), n_bins: int = 10, ax=None):
    """Reliability diagram of probability columns of ``pairs`` against its boolean ``present``; the diagonal is calibration.

    Marker area follows the number of pairs in the bin; each label carries the column's ECE.
    """
    from rrgkit.analysis.calibration import expected_calibration_error, reliability_table

    ax = _axis(ax, (4.5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="calibrated")
    truth = pairs["present"].to_numpy(dtype=float)
    for column in columns:
        table = reliability_table(pairs[column], truth, n_bins)
        ece = expected_calibration_error(pairs[column], truth, n_bins)
        line = ax.plot(table["confidence"], table["frequency"], "-", label=f"{column} (ECE {ece:.3f})")[0]
        ax.scatter(table["confidence"], table["frequency"], s=10 + 200 * table["n"] / table["n"].sum(),
                   color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence in bin (probability)")
    ax.set_ylabel("share of pairs with the finding (fraction)")
    ax.legend(fontsize=8)
    return ax
