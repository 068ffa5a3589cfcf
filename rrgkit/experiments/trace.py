"""Generation traces: what a trained run's model did while writing each test report, for Eqs. 2-4.

:func:`trace_run` regenerates the test split with the best checkpoint, recording the attention
weights on the soft prompt (and on its first position, the attention sink, apart), the token
probabilities and the soft prompts themselves, labels the generated text, and returns the raw
material of the paper's analyses (attention allocation, prompt similarity, confidence). The trace
is cached next to the run (``trace_<n>_<key>.npz``, keyed by the source of the code that computes
it), so a book build that re-reads it costs nothing; :func:`trace_runs` does so for a table of runs
(a grid's or a ladder's). Eq. 3 needs only the soft prompts, which :func:`prompt_run` computes for a
whole test split in seconds, without generating.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rrgkit.analysis.confidence import average_confidence, positive_outcomes
from rrgkit.analysis.prompt_attention import attention_allocation
from rrgkit.analysis.prompt_similarity import cosine_matrix, delta, label_classes, single_label_subset
from rrgkit.runs import TRAINING_SOURCES, source_hash

TRACE_SOURCES = (*TRAINING_SOURCES, "analysis", "experiments/trace.py")
"""What a trace depends on besides its run: the model, generation, labeler and the analysis code."""


@dataclass
class Trace:
    """Per test report: ids, true and generated labels, AC (Eq. 4), soft prompts; plus the Eq. 2 table."""

    ids: np.ndarray
    reference_labels: np.ndarray  # (n, 14) the manifest's labels
    generated_labels: np.ndarray  # (n, 14) labeler on the generated text
    confidence: np.ndarray  # (n,) Eq. 4
    soft_prompts: np.ndarray  # (n, N, D)
    allocation: pd.DataFrame  # report, step, layer, alpha, sink, alpha_no_sink (Eq. 2)


def trace_run(run: str | Path, max_reports: int | None = None, batch_size: int | None = None, progress: bool = True) -> Trace:
    """Trace the best checkpoint of ``run`` on (the first ``max_reports`` of) its test split, cached.

    ``batch_size`` (reports generated at once) defaults to the run's ``eval.batch_size``, as its test reports were.
    """
    import torch

    from rrgkit.evaluation.labeler import label_reports

    run = Path(run)
    cache = trace_path(run, max_reports)
    if cache.exists():
        return _load(cache)
    model, config, batches = _test_batches(run, max_reports, batch_size)
    ids, labels, texts, probs, attention, sink, lengths, prompts = [], [], [], [], [], [], [], []
    for batch in tqdm(batches, desc=f"trace {run.name}", disable=not progress, leave=False):
        with torch.no_grad():
            out = model.generate(batch["image"], max_new_tokens=config.eval.max_new_tokens, num_beams=1,
                                 output_scores=True, output_attentions=True)
        ids += list(batch["id"])
        labels.append(batch["labels"].numpy())
        texts += out.texts
        probs += out.token_probs
        attention += out.prompt_attention
        sink += out.sink_attention
        lengths += out.context_lengths
        prompts.append(out.soft_prompts.numpy())
    soft = np.concatenate(prompts)
    table = attention_allocation(attention, lengths, n_prompt=soft.shape[1], sink_attention=sink)
    trace = Trace(np.array(ids), np.concatenate(labels), label_reports(texts), average_confidence(probs), soft, table)
    _save(cache, trace)
    return trace


@dataclass
class SplitPrompts:
    """Per test study: id, the manifest's labels and the soft prompt; what Eq. 3 needs, without generating."""

    ids: np.ndarray
    reference_labels: np.ndarray  # (n, 14)
    soft_prompts: np.ndarray  # (n, N, D)


def prompt_run(run: str | Path, max_reports: int | None = None, batch_size: int | None = None) -> SplitPrompts:
    """The soft prompts of ``run``'s best checkpoint for (the first ``max_reports`` of) its test split, in eval mode.

    Only the encoder and the mapping network run (seconds per run), so unlike a trace it needs no cache
    and no cap: Eq. 3 can use every test study.
    """
    import torch

    model, _, batches = _test_batches(Path(run), max_reports, batch_size)
    model.eval()
    ids, labels, prompts = [], [], []
    for batch in batches:
        with torch.no_grad():
            prompts.append(model.soft_prompts(batch["image"]).float().numpy())
        ids += list(batch["id"])
        labels.append(batch["labels"].numpy())
    return SplitPrompts(np.array(ids), np.concatenate(labels), np.concatenate(prompts))


def _test_batches(run: Path, max_reports: int | None, batch_size: int | None):
    """The run's best model and config, and (the first ``max_reports`` studies of) its test split in batches.

    ``batch_size`` defaults to the run's ``eval.batch_size``, as its test reports were generated.
    """
    from rrgkit.data.loader import ManifestDataset, collate_reports
    from rrgkit.training.generation import load_run_model

    model, config = load_run_model(run)
    data = config.data
    dataset = ManifestDataset(data.manifest_path, "test", data.image_size, views=data.views, augment=False, cache=False)
    n = len(dataset) if max_reports is None else min(max_reports, len(dataset))
    size = batch_size or config.eval.batch_size
    batches = (collate_reports([dataset[i] for i in range(start, min(start + size, n))]) for start in range(0, n, size))
    return model, config, batches


def trace_path(run: str | Path, max_reports: int | None = None) -> Path:
    """Where :func:`trace_run` caches the trace of ``run`` (this code's version, ``max_reports`` first test studies)."""
    return Path(run) / f"trace_{max_reports or 'all'}_{source_hash(TRACE_SOURCES)[:8]}.npz"


def trace_runs(runs: pd.DataFrame, max_reports: int | None = None, seeds: Sequence[int] | None = None,
               progress: bool = True) -> pd.DataFrame:
    """The rows of ``runs`` (a ``run`` column of run folders) with ``seed`` in ``seeds`` (all if None), each traced.

    Returns those rows with a ``trace`` column. With ``progress``, a line per run that had to be traced
    (a cached one costs nothing), as the grids print theirs.
    """
    picked = _with_seeds(runs, seeds)
    traces, start = [], time.perf_counter()
    for k, run in enumerate(picked["run"], 1):
        cached = trace_path(run, max_reports).exists()
        traces.append(trace_run(run, max_reports, progress=False))
        if progress and not cached:
            print(f"traced {k} of {len(picked)} runs ({Path(run).name}), {time.perf_counter() - start:.0f} s so far", flush=True)
    return picked.assign(trace=traces)


def prompt_runs(runs: pd.DataFrame, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """The rows of ``runs`` with ``seed`` in ``seeds`` (all if None), with a ``prompts`` column (:func:`prompt_run`)."""
    picked = _with_seeds(runs, seeds)
    return picked.assign(prompts=[prompt_run(run) for run in picked["run"]])


def _with_seeds(runs: pd.DataFrame, seeds: Sequence[int] | None) -> pd.DataFrame:
    picked = runs if seeds is None else runs[runs["seed"].isin(list(seeds))]
    if picked.empty:
        raise ValueError(f"no run has a seed in {list(seeds or [])}; seeds are {sorted(set(runs['seed']))}")
    return picked


def similarity_view(trace: Trace | SplitPrompts, uncertain: str = "positive") -> tuple[np.ndarray, list[str], float]:
    """Eq. 3 as in Fig. 3: cosine matrix of single-label test prompts sorted by class, the classes, Delta.

    ``trace`` is a :class:`Trace` or a :class:`SplitPrompts` (only labels and prompts are read).

    Classes follow :func:`rrgkit.analysis.prompt_similarity.label_classes` under ``uncertain``. Delta is
    NaN when it is undefined here (fewer than two samples of any class, or one class only).
    """
    index = single_label_subset(trace.reference_labels, uncertain)
    classes = label_classes(trace.reference_labels[index], uncertain)
    order = np.argsort(classes, kind="stable")
    index, classes = index[order], [classes[i] for i in order]
    similarity = cosine_matrix(trace.soft_prompts[index])
    try:
        value = delta(similarity, classes)
    except ValueError:
        value = float("nan")
    return similarity, classes, value


def confidence_outcomes(trace: Trace) -> pd.DataFrame:
    """Eq. 4 per positive the generated report states: its AC and whether it is a TP or an FP."""
    return positive_outcomes(trace.confidence, trace.generated_labels, trace.reference_labels)


def _save(path: Path, trace: Trace) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, ids=trace.ids, reference_labels=trace.reference_labels,
                        generated_labels=trace.generated_labels, confidence=trace.confidence,
                        soft_prompts=trace.soft_prompts, allocation=trace.allocation.to_numpy(dtype=float),
                        allocation_columns=np.array(trace.allocation.columns, dtype=str))
    tmp.replace(path)


def _load(path: Path) -> Trace:
    with np.load(path, allow_pickle=False) as f:
        table = pd.DataFrame(f["allocation"], columns=list(f["allocation_columns"]))
        table[["report", "step", "layer"]] = table[["report", "step", "layer"]].astype(int)
        return Trace(f["ids"], f["reference_labels"], f["generated_labels"], f["confidence"], f["soft_prompts"], table)
