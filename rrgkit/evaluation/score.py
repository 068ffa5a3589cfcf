"""Score generated reports against references: every metric variant, each with a bootstrap CI.

One call gives the paper's four numbers (BLEU-4, ROUGE-L, F1-CXP-14, F1-CXP-5)
*and* every convention papers silently differ on, so a reader can line a result
up with whichever paper they compare to. All metrics are computed from
per-report statistics once; CIs resample those (see :mod:`rrgkit.evaluation.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrgkit.evaluation import backends as model_backends
from rrgkit.evaluation import clinical, nlg
from rrgkit.evaluation.stats import SumStatistic, bootstrap_ci, mean_statistic, paired_bootstrap

HEADLINE_METRICS = ("BLEU-4", "ROUGE-L", "F1-CXP-14", "F1-CXP-5")
"""The paper's Table 1 columns, in rrgkit's names."""

NORMALISATION_NOTE = "NLG metrics on normalize_report() text (rrgkit.evaluation.nlg); pycocoevalcap scorers"


def _check_texts(preds: Sequence[str], refs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate paired texts and return them as lists (a pandas Series' index must not leak into positions)."""
    preds, refs = list(preds), list(refs)
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references; pair each prediction with one reference")
    if len(preds) == 0:
        raise ValueError("no reports to score; give at least one prediction/reference pair")
    for name, texts in (("prediction", preds), ("reference", refs)):
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ValueError(f"{name} {bad[0]} is {texts[bad[0]]!r}, not a string ({len(bad)} such); fill missing reports with ''")
    empty_refs = [i for i, t in enumerate(refs) if not t.strip()]
    if empty_refs:
        raise ValueError(
            f"{len(empty_refs)} reference report(s) are empty (first at position {empty_refs[0]}); "
            "drop those pairs: an empty reference cannot be scored"
        )
    return preds, refs


def _labels(texts: Sequence[str], given: np.ndarray | None, name: str) -> np.ndarray:
    if given is not None:
        labels = clinical.check_labels(given, name)
        if len(labels) != len(texts):
            raise ValueError(f"{name} labels have {len(labels)} rows for {len(texts)} reports; one row per report")
        return labels
    from rrgkit.evaluation.labeler import label_reports

    return label_reports(list(texts))


def metric_statistics(
    preds: Sequence[str],
    refs: Sequence[str],
    *,
    ref_labels: np.ndarray | None = None,
    pred_labels: np.ndarray | None = None,
    normalize: bool = True,
    meteor: bool = True,
    backends: bool = True,
    only: Sequence[str] | None = None,
) -> dict[str, SumStatistic]:
    """Every metric as a bootstrappable :class:`SumStatistic`, keyed by name; ``only`` limits the work to some names.

    Labels come from :func:`rrgkit.evaluation.labeler.label_reports` unless given
    (e.g. a phantom's exact labels as ``ref_labels``). METEOR needs Java; the model
    backends (BERTScore-MiniLM, F1-CXB via f1chexbert, RadGraph-F1) run when
    ``backends`` and print one line when unavailable.
    """
    preds, refs = _check_texts(preds, refs)

    def wanted(*names: str) -> bool:
        return only is None or any(o.startswith(n) for o in only for n in names)

    out: dict[str, SumStatistic] = {}
    if wanted("BLEU-"):
        counts = nlg.bleu_statistics(preds, refs, normalize)
        for k in range(nlg.BLEU_N):
            out[f"BLEU-{k + 1}"] = SumStatistic(counts, lambda s, k=k: nlg.bleu_from_sums(s)[..., k])
    if wanted("ROUGE-L"):
        out["ROUGE-L"] = mean_statistic(nlg.rouge_l_per_report(preds, refs, normalize))
    if wanted("CIDEr"):
        out["CIDEr"] = mean_statistic(nlg.cider_per_report(preds, refs, normalize))
    if meteor and wanted("METEOR"):
        scores = nlg.meteor_per_report(preds, refs, normalize)
        if scores is not None:
            out["METEOR"] = mean_statistic(scores)
    if wanted("F1-CXP"):
        out.update(clinical.f1_variants(_labels(preds, pred_labels, "predicted"), _labels(refs, ref_labels, "reference")))
    if backends and wanted(model_backends.BERTSCORE_NAME):
        out[model_backends.BERTSCORE_NAME] = mean_statistic(model_backends.bertscore_minilm(preds, refs)[:, 2])
    if backends and wanted("F1-CXB"):
        pred_cxb = model_backends.chexbert_labels(preds)
        ref_cxb = model_backends.chexbert_labels(refs) if pred_cxb is not None else None
        if ref_cxb is not None:
            out.update({k.replace("CXP", "CXB"): v for k, v in clinical.f1_variants(pred_cxb, ref_cxb).items()})
    if backends and wanted("RadGraph-F1"):
        rewards = model_backends.radgraph_f1(preds, refs)
        if rewards is not None:
            out["RadGraph-F1"] = mean_statistic(rewards)
    if only is not None:
        missing = [n for n in only if n not in out]
        if missing:
            raise ValueError(f"unknown or unavailable metric(s) {missing}; available here: {sorted(out)}")
        out = {n: out[n] for n in only}
    return out


def score_reports(
    preds: Sequence[str],
    refs: Sequence[str],
    *,
    ci: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    ref_labels: np.ndarray | None = None,
    pred_labels: np.ndarray | None = None,
    normalize: bool = True,
    meteor: bool = True,
    backends: bool = True,
) -> dict:
    """Every metric variant for paired reports, JSON-ready.

    Returns ``{"n", "metrics": {name: {"value", "ci_low", "ci_high"}}, "per_observation": [...],
    "settings": {...}}``; without ``ci`` each metric is ``{"value"}``. ``per_observation``
    is the F1-CXP-14 (uncertain-as-positive) precision/recall/F1/support table.
    Percentile bootstrap over reports with ``n_boot`` resamples; every metric sees
    the same resamples (same ``seed``).
    """
    preds, refs = _check_texts(preds, refs)
    pred_l, ref_l = _labels(preds, pred_labels, "predicted"), _labels(refs, ref_labels, "reference")
    statistics = metric_statistics(
        preds, refs, ref_labels=ref_l, pred_labels=pred_l, normalize=normalize, meteor=meteor, backends=backends
    )
    n = len(preds)
    metrics = {
        name: bootstrap_ci(stat, n, n_boot=n_boot, seed=seed, alpha=alpha) if ci else {"value": stat.value()}
        for name, stat in statistics.items()
    }
    table = clinical.per_observation(pred_l, ref_l, n_boot=n_boot if ci else 0, seed=seed, alpha=alpha)
    return {
        "n": n,
        "metrics": metrics,
        "per_observation": table.replace({np.nan: None}).to_dict(orient="records"),
        "settings": {
            "ci": ci, "n_boot": n_boot if ci else 0, "seed": seed, "alpha": alpha, "normalize": normalize,
            "reference_labels": "given" if ref_labels is not None else "rrgkit.evaluation.labeler",
            "predicted_labels": "given" if pred_labels is not None else "rrgkit.evaluation.labeler",
            "note": NORMALISATION_NOTE,
        },
    }


def compare_runs(
    preds_a: Sequence[str],
    preds_b: Sequence[str],
    refs: Sequence[str],
    metrics: Sequence[str] = HEADLINE_METRICS,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    ref_labels: np.ndarray | None = None,
    normalize: bool = True,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap of system A − system B on the same references: ``{metric: {"diff", "ci_low", "ci_high", "p"}}``."""
    if len(preds_a) != len(preds_b):
        raise ValueError(f"system A has {len(preds_a)} reports and system B {len(preds_b)}; compare on the same references")
    if ref_labels is None and any(m.startswith("F1-CXP") for m in metrics):
        from rrgkit.evaluation.labeler import label_reports

        ref_labels = label_reports(list(refs))  # label the references once, not once per system
    kwargs = dict(ref_labels=ref_labels, normalize=normalize, meteor=True, backends=True, only=list(metrics))
    stats_a = metric_statistics(preds_a, refs, **kwargs)
    stats_b = metric_statistics(preds_b, refs, **kwargs)
    n = len(refs)
    return {m: paired_bootstrap(stats_a[m], stats_b[m], n, n_boot=n_boot, seed=seed, alpha=alpha) for m in metrics}


def format_table(result: dict, names: Sequence[str] | None = None) -> str:
    """A plain-text table of ``score_reports`` output (values and CIs ×100, as papers print them)."""
    rows = result["metrics"] if names is None else {n: result["metrics"][n] for n in names}
    width = max(len(n) for n in rows)
    level = f"{100 * (1 - result['settings']['alpha']):g}% CI" if result["settings"]["ci"] else ""
    lines = [f"{'metric':<{width}}  {'value':>7}  {level:>17}"]
    for name, m in rows.items():
        ci = f"[{100 * m['ci_low']:6.2f}, {100 * m['ci_high']:6.2f}]" if "ci_low" in m else ""
        lines.append(f"{name:<{width}}  {100 * m['value']:7.2f}  {ci:>17}")
    lines.append(f"n = {result['n']} report pairs; values ×100")
    return "\n".join(lines)
