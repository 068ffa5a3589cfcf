"""Confidence of trained runs (Fig. 5, claim C6), a per-finding confidence, and what a run knows but does not say.

Every number here is read from runs a grid already trained (:func:`rrgkit.experiments.schedule_study.run_ladder`):

* **Eq. 4 on the headline's reports.** The test reports a run wrote (``preds_test.jsonl``) carry their
  average token confidence, so the TP / FP rows of :func:`headline_outcomes` are the very findings the
  headline F1-CXP-14 counts, under its uncertain policy. :func:`separability_table` gives the AUROC of AC
  per cell and observation (mean over seeds, seeds-then-reports interval), :func:`seed_separability` per run
  (reports resampled), :func:`confidence_claim` the verdict on C6 by the book's rule.
* **Per-finding confidence** (:mod:`rrgkit.experiments.finding_probe`): :func:`probe_run` fits a
  temperature and per-pathology thresholds on the validation split, and rewrites each test report to
  state exactly the pathologies whose calibrated confidence clears its threshold.
  :func:`flagging_table`, :func:`calibration_table` and :func:`edit_comparison` summarise them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrgkit.analysis.calibration import expected_calibration_error, fit_temperature, scaled_probability
from rrgkit.analysis.confidence import (AUROC_MARGIN, pooled_auroc, pooled_auroc_difference, positive_outcomes,
                                       separability)
from rrgkit.analysis.finding_statements import edit_report
from rrgkit.evaluation.clinical import binarize, per_observation
from rrgkit.evaluation.labeler import label_reports
from rrgkit.evaluation.stats import hierarchical_paired_bootstrap
from rrgkit.evaluation.verdicts import verdict
from rrgkit.experiments.claims import ClaimResult, cell_runs
from rrgkit.experiments.grid import predictions
from rrgkit.experiments.paper_tables import paper_claim
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES

FINDING_CONFIDENCE = "finding confidence"
"""Column of the calibrated per-finding confidence, beside ``AC``."""


def _reference(ids: Sequence[str], labels: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.array([labels[i] for i in ids], dtype=float)


def headline_outcomes(runs: pd.DataFrame, labels: Mapping[str, np.ndarray], uncertain: str = "positive") -> pd.DataFrame:
    """Every stated pathology of every run's test reports: ``cell, seed, report, study, observation, AC, outcome, n_reports``."""
    frames = []
    for row in runs.itertuples():
        preds = predictions(row.run)
        outcomes = positive_outcomes(preds["token_prob_mean"].to_numpy(dtype=float), label_reports(list(preds.generated)),
                                     _reference(preds.id, labels), uncertain=uncertain)
        frames.append(outcomes.assign(cell=row.variant, seed=row.seed, study=preds.id.to_numpy()[outcomes.report],
                                      n_reports=len(preds)))
    columns = ["cell", "seed", "report", "study", "observation", "AC", "outcome", "n_reports"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def separability_table(outcomes: pd.DataFrame, cells: Sequence[str] | None = None, score: str = "AC", n_boot: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Per cell (default: those in ``outcomes``) and observation ("all" first): TP and FP rows over seeds, mean score
    of each, AUROC with its interval.

    The AUROC is the mean of the per-seed AUROCs with a seeds-then-reports interval
    (:func:`rrgkit.analysis.confidence.pooled_auroc`); ``seeds`` counts those where it is defined. A cell that
    states nothing still gets its "all" row (zero counts, NaN AUROC).
    """
    rows = []
    for cell in dict.fromkeys(outcomes["cell"]) if cells is None else cells:
        part = outcomes[outcomes["cell"] == cell]
        for name, group in [("all", part), *part.groupby("observation", sort=False)]:
            result = pooled_auroc(group, score, n_boot=n_boot, seed=seed)
            rows.append({"cell": cell, "observation": name, "TP": int((group.outcome == "TP").sum()),
                         "FP": int((group.outcome == "FP").sum()),
                         f"{score} TP": group.loc[group.outcome == "TP", score].mean(),
                         f"{score} FP": group.loc[group.outcome == "FP", score].mean(),
                         "AUROC": result["value"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                         "seeds": result["n_seeds"]})
    return pd.DataFrame(rows)


def seed_separability(outcomes: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per run (cell and seed) and observation ("all" first): :func:`~rrgkit.analysis.confidence.separability` of AC,
    its interval resampling that run's test reports."""
    frames = [separability(part, int(part["n_reports"].iloc[0]), "AC", n_boot=n_boot, seed=seed).assign(cell=cell, seed=s)
              for (cell, s), part in outcomes.groupby(["cell", "seed"], sort=False)]
    columns = ["cell", "seed", "observation", "n_TP", "n_FP", "AC_TP", "AC_FP", "AUROC", "ci_low", "ci_high"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def confidence_claim(outcomes: pd.DataFrame, runs: pd.DataFrame, cell: str, n_boot: int = 2000,
                     seed: int = 0) -> ClaimResult:
    """C6 for one cell: AUROC(AC, TP vs FP) − 0.5 judged by the verdict rule as a claim of no difference.

    It replicates when the interval lies within ±:data:`~rrgkit.analysis.confidence.AUROC_MARGIN` of
    chance, contradicts when it excludes chance (and leaves that band), and is inconclusive otherwise.
    """
    result = pooled_auroc(outcomes[outcomes.cell == cell], "AC", n_boot=n_boot, seed=seed)
    picked = cell_runs(runs, cell)
    judged = verdict(result["value"] - 0.5, result["ci_low"] - 0.5, result["ci_high"] - 0.5,
                     direction=paper_claim("C6")["direction"], margin=AUROC_MARGIN)
    return ClaimResult(claim=f"C6 ({cell})", a=cell, b="chance (AUROC 0.5)", metric="AUROC of AC, TP vs FP",
                       verdict=judged, n_seeds=result["n_seeds"], sd_seeds=result["sd_seeds"], a_beats_text_only=None,
                       b_beats_text_only=None, unconverged_runs=int((~picked["converged"].astype(bool)).sum()))


@dataclass
class ProbeRun:
    """A run's per-finding confidence on its (capped) test split, and its reports rewritten by it."""

    cell: str
    seed: int
    temperature: float  # fitted on validation
    thresholds: dict[str, float]  # per pathology, tuned on validation for micro F1
    reports: pd.DataFrame  # per test study: id, reference, generated, edited, AC
    pairs: pd.DataFrame  # per test study and pathology: study, observation, log_odds, present, stated


def probe_run(run: str, cell: str, seed: int, statements: pd.DataFrame, labels: Mapping[str, np.ndarray],
              uncertain: str = "positive", max_reports: int | None = None) -> ProbeRun:
    """Temperature and thresholds from the validation split, then the test reports rewritten to follow the confidence.

    A pathology without both sentences has no confidence: the report keeps what it says about it.
    """
    from rrgkit.experiments.finding_probe import finding_scores
    from rrgkit.experiments.image_classifier import micro_f1_thresholds

    scores = finding_scores(run, statements, ("val", "test"), max_reports)
    val, test = scores["val"], scores["test"]
    usable = np.flatnonzero(np.isfinite(val.log_odds).all(axis=0))
    truth_val = binarize(val.reference_labels, uncertain)[:, 1:]
    temperature = fit_temperature(val.log_odds[:, usable], truth_val[:, usable]) if len(usable) else 1.0
    thresholds = micro_f1_thresholds(scaled_probability(val.log_odds[:, usable], temperature), truth_val[:, usable])
    preds = predictions(run).set_index("id").loc[list(test.ids)]
    stated = binarize(label_reports(list(preds.generated)), uncertain)[:, 1:]
    states = stated.copy()
    states[:, usable] = scaled_probability(test.log_odds[:, usable], temperature) >= thresholds
    edited = [edit_report(text, row, statements, uncertain) for text, row in zip(preds.generated, states, strict=True)]
    reports = pd.DataFrame({"id": test.ids, "reference": preds.reference.to_numpy(), "generated": preds.generated.to_numpy(),
                            "edited": edited, "AC": preds.token_prob_mean.to_numpy(dtype=float)})
    present = binarize(test.reference_labels, uncertain)[:, 1:]
    n, m = test.log_odds.shape
    pairs = pd.DataFrame({"study": np.repeat(test.ids, m), "report": np.repeat(np.arange(n), m),
                          "observation": np.tile(PATHOLOGIES, n), "log_odds": test.log_odds.ravel(),
                          "present": present.ravel(), "stated": stated.ravel()})
    return ProbeRun(cell, seed, temperature, {PATHOLOGIES[j]: float(t) for j, t in zip(usable, thresholds, strict=True)},
                    reports, pairs)


def calibration_table(probes: Sequence[ProbeRun], n_bins: int = 10) -> pd.DataFrame:
    """Per run: the fitted temperature and the test ECE of the per-finding confidence before and after scaling."""
    rows = []
    for probe in probes:
        pairs = probe.pairs[np.isfinite(probe.pairs.log_odds)]
        if pairs.empty:
            continue
        truth = pairs.present.to_numpy(dtype=float)
        rows.append({"cell": probe.cell, "seed": probe.seed, "temperature": probe.temperature, "pairs": len(pairs),
                     "ECE before": expected_calibration_error(scaled_probability(pairs.log_odds), truth, n_bins),
                     "ECE after": expected_calibration_error(scaled_probability(pairs.log_odds, probe.temperature), truth,
                                                             n_bins)})
    return pd.DataFrame(rows, columns=["cell", "seed", "temperature", "pairs", "ECE before", "ECE after"])


def probe_pairs(probes: Sequence[ProbeRun]) -> pd.DataFrame:
    """Every run's test (study, pathology) pairs with the confidence before (T = 1) and after temperature scaling."""
    frames = [p.pairs.assign(cell=p.cell, seed=p.seed, before=scaled_probability(p.pairs.log_odds),
                             after=scaled_probability(p.pairs.log_odds, p.temperature)) for p in probes]
    return pd.concat(frames, ignore_index=True).dropna(subset=["log_odds"])


def flagging_outcomes(probes: Sequence[ProbeRun]) -> pd.DataFrame:
    """The stated pathologies of the probed test reports as TP / FP rows carrying both AC and the finding confidence."""
    frames = []
    for probe in probes:
        stated = probe.pairs[probe.pairs.stated]
        frames.append(pd.DataFrame({
            "cell": probe.cell, "seed": probe.seed, "report": stated.report.to_numpy(), "observation": stated.observation,
            "AC": probe.reports.AC.to_numpy()[stated.report], "outcome": np.where(stated.present, "TP", "FP"),
            FINDING_CONFIDENCE: scaled_probability(stated.log_odds, probe.temperature), "n_reports": len(probe.reports)}))
    return pd.concat(frames, ignore_index=True)


def flagging_table(probes: Sequence[ProbeRun], n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per cell: AUROC of AC and of the finding confidence for TP vs FP on the same rows, and their paired difference."""
    outcomes, rows = flagging_outcomes(probes), []
    for cell in dict.fromkeys(p.cell for p in probes):
        both = outcomes[(outcomes.cell == cell) & np.isfinite(outcomes[FINDING_CONFIDENCE])]
        for name, result in (("AC (Eq. 4)", pooled_auroc(both, "AC", n_boot, seed)),
                             (FINDING_CONFIDENCE, pooled_auroc(both, FINDING_CONFIDENCE, n_boot, seed))):
            rows.append({"cell": cell, "score": name, "AUROC": result["value"], "ci_low": result["ci_low"],
                         "ci_high": result["ci_high"], "seeds": result["n_seeds"]})
        diff = pooled_auroc_difference(both, FINDING_CONFIDENCE, "AC", n_boot, seed)
        rows.append({"cell": cell, "score": f"{FINDING_CONFIDENCE} − AC", "AUROC": diff["diff"], "ci_low": diff["ci_low"],
                     "ci_high": diff["ci_high"], "seeds": diff["n_seeds"]})
    return pd.DataFrame(rows)


def _f1_statistic(texts: Sequence[str], references: Sequence[str], truth: np.ndarray, metric: str):
    from rrgkit.evaluation.score import metric_statistics

    return metric_statistics(list(texts), list(references), ref_labels=truth, meteor=False, backends=False,
                             only=[metric])[metric]


def edit_comparison(probes: Sequence[ProbeRun], labels: Mapping[str, np.ndarray], classifier: Mapping[str, str] | None,
                    metric: str = "F1-CXP-14", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per cell, paired over seeds and reports: edited − generated, and both against the encoder + classifier.

    ``classifier`` maps test study id → the encoder + classifier reference report (``None``: no such
    reference, only edited − generated). Each row has the mean difference over seeds with its
    seeds-then-reports interval and the verdict of the book's rule on "the first beats the second".
    """
    systems = ("edited", "generated") + (() if classifier is None else ("encoder + classifier",))
    rows = []
    for cell in dict.fromkeys(p.cell for p in probes):
        stats = []
        for probe in (p for p in probes if p.cell == cell):
            texts = _systems(probe, classifier)
            truth = _reference(probe.reports.id, labels)
            stats.append({name: _f1_statistic(texts[name], probe.reports.reference, truth, metric) for name in systems})
        for a, b in [(a, b) for k, a in enumerate(systems) for b in systems[k + 1:]]:
            result = hierarchical_paired_bootstrap([(s[a], s[b]) for s in stats], n_boot=n_boot, seed=seed)
            rows.append({"cell": cell, "a − b": f"{a} − {b}", "metric": metric, "diff": result["diff"],
                         "ci_low": result["ci_low"], "ci_high": result["ci_high"], "seeds": result["n_seeds"],
                         "verdict": verdict(result["diff"], result["ci_low"], result["ci_high"]).verdict})
    return pd.DataFrame(rows)


def _systems(probe: ProbeRun, classifier: Mapping[str, str] | None) -> dict[str, list[str]]:
    texts = {"generated": list(probe.reports.generated), "edited": list(probe.reports.edited)}
    if classifier is not None:
        texts["encoder + classifier"] = [classifier[i] for i in probe.reports.id]
    return texts


def recall_table(probes: Sequence[ProbeRun], labels: Mapping[str, np.ndarray], classifier: Mapping[str, str] | None,
                 uncertain: str = "positive") -> pd.DataFrame:
    """Per cell and pathology: reference positives and the recall of each system's reports (mean over seeds; NaN without positives)."""
    frames = []
    for probe in probes:
        truth = _reference(probe.reports.id, labels)
        for name, texts in _systems(probe, classifier).items():
            table = per_observation(label_reports(texts), truth, CHEXPERT_OBSERVATIONS[1:], uncertain)
            frames.append(table.assign(cell=probe.cell, seed=probe.seed, system=name))
    long = pd.concat(frames, ignore_index=True)
    wide = long.groupby(["cell", "observation", "system"], sort=False)[["recall", "support"]].mean().unstack("system")
    columns = list(dict.fromkeys(long["system"]))
    return wide["recall"][columns].assign(support=wide["support"][columns[0]]).reset_index()[
        ["cell", "observation", "support", *columns]]
