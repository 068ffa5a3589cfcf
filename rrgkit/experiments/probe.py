"""Look inside a trained run the way the paper does: attention to the visual prompt, prompt similarity, confidence.

:func:`probe_run` regenerates the test split with the best checkpoint, asking the model for its
attention weights, token probabilities and soft prompts, labels the generated text, and returns
the raw material of Eqs. 2-4. The result is cached next to the run (``probe_<n>.npz``), so a book
build that re-reads it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rrgkit.analysis.confidence import average_confidence, positive_outcomes
from rrgkit.analysis.prompt_attention import attention_allocation
from rrgkit.analysis.prompt_similarity import cosine_matrix, delta, label_classes, single_label_subset


@dataclass
class Probe:
    """Per test report: ids, true and generated labels, AC (Eq. 4), soft prompts; plus the Eq. 2 table."""

    ids: np.ndarray
    reference_labels: np.ndarray  # (n, 14) the manifest's labels
    generated_labels: np.ndarray  # (n, 14) labeler on the generated text
    confidence: np.ndarray  # (n,) Eq. 4
    soft_prompts: np.ndarray  # (n, N, D)
    allocation: pd.DataFrame  # report, step, layer, alpha (Eq. 2)


def probe_run(run: str | Path, max_reports: int | None = None, batch_size: int = 16, progress: bool = True) -> Probe:
    """Probe the best checkpoint of ``run`` on (the first ``max_reports`` of) its test split, cached."""
    import torch

    from rrgkit.data.loader import ManifestDataset, collate_reports
    from rrgkit.evaluation.labeler import label_reports
    from rrgkit.training.evaluate import load_run_model

    run = Path(run)
    cache = run / f"probe_{max_reports or 'all'}.npz"
    if cache.exists():
        return _load(cache)
    model, config = load_run_model(run)
    data = config["data"]
    dataset = ManifestDataset(data["manifest"], "test", data["image_size"], views=data["views"], augment=False, cache=False)
    n = len(dataset) if max_reports is None else min(max_reports, len(dataset))
    ids, labels, texts, probs, attention, lengths, prompts = [], [], [], [], [], [], []
    for start in tqdm(range(0, n, batch_size), desc=f"probe {run.name}", disable=not progress, leave=False):
        batch = collate_reports([dataset[i] for i in range(start, min(start + batch_size, n))])
        with torch.no_grad():
            out = model.generate(batch["image"], max_new_tokens=config["eval"]["max_new_tokens"], num_beams=1,
                                 output_scores=True, output_attentions=True)
        ids += list(batch["id"])
        labels.append(batch["labels"].numpy())
        texts += out.texts
        probs += out.token_probs
        attention += out.prompt_attention
        lengths += out.context_lengths
        prompts.append(out.soft_prompts.numpy())
    soft = np.concatenate(prompts)
    table = attention_allocation(attention, lengths, n_prompt=soft.shape[1])
    probe = Probe(np.array(ids), np.concatenate(labels), label_reports(texts), average_confidence(probs), soft, table)
    _save(cache, probe)
    return probe


def similarity_view(probe: Probe) -> tuple[np.ndarray, list[str], float]:
    """Eq. 3 as in Fig. 3: cosine matrix of single-label test prompts sorted by class, the classes, Delta.

    Delta is NaN when it is undefined here (fewer than two samples of any class, or one class only).
    """
    index = single_label_subset(probe.reference_labels)
    classes = label_classes(probe.reference_labels[index])
    order = np.argsort(classes, kind="stable")
    index, classes = index[order], [classes[i] for i in order]
    similarity = cosine_matrix(probe.soft_prompts[index])
    try:
        value = delta(similarity, classes)
    except ValueError:
        value = float("nan")
    return similarity, classes, value


def confidence_outcomes(probe: Probe) -> pd.DataFrame:
    """Eq. 4 per positive the generated report states: its AC and whether it is a TP or an FP."""
    return positive_outcomes(probe.confidence, probe.generated_labels, probe.reference_labels)


def _save(path: Path, probe: Probe) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, ids=probe.ids, reference_labels=probe.reference_labels,
                        generated_labels=probe.generated_labels, confidence=probe.confidence,
                        soft_prompts=probe.soft_prompts,
                        allocation=probe.allocation[["report", "step", "layer", "alpha"]].to_numpy(dtype=float))
    tmp.replace(path)


def _load(path: Path) -> Probe:
    with np.load(path, allow_pickle=False) as f:
        table = pd.DataFrame(f["allocation"], columns=["report", "step", "layer", "alpha"])
        table[["report", "step", "layer"]] = table[["report", "step", "layer"]].astype(int)
        return Probe(f["ids"], f["reference_labels"], f["generated_labels"], f["confidence"], f["soft_prompts"], table)
