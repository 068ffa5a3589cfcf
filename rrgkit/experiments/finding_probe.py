"""Per-finding confidence of a trained run: the model's odds of affirming rather than denying each pathology.

For every study and pathology the model reads the image and the prompt and is asked, teacher
forced, how probable it is to open the report with the dataset's affirming sentence and with its
denying sentence (:func:`rrgkit.analysis.finding_statements.finding_statements`); the log-odds
``log p(affirm) - log p(deny)`` is its confidence that the finding is present.

Why this and not the probability of the tokens of the sentence that states the finding in the
generated report: that exists only for the findings a report states, so it can flag a
hallucination but never reveal a finding the model leaves out. The two-choice odds exist for every
study and pathology, stated or not; they are the probability of a binary event, so a reliability
diagram and temperature scaling mean what they do for a classifier (T divides these log-odds); and
they come from the model itself, with no labels fitted. A probe trained on the soft prompts would
measure what a new classifier can read from the language model's input, not what the model says.
The sums run over the sentence's tokens, not its end-of-report token (the sentence opens a report,
it does not end it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rrgkit.runs import TRAINING_SOURCES, source_hash

PROBE_SOURCES = (*TRAINING_SOURCES, "analysis/finding_statements.py", "experiments/finding_probe.py")
"""What the scores depend on besides the run and the sentences."""


@dataclass
class FindingScores:
    """One split's studies (manifest order), their reference labels and log-odds of affirming each pathology."""

    ids: np.ndarray
    reference_labels: np.ndarray  # (n, 14)
    log_odds: np.ndarray  # (n, 13): log p(affirm) - log p(deny); NaN where a pathology lacks a sentence


def statement_log_probs(model, images, sentences: Sequence[str], rows: int = 64) -> np.ndarray:
    """(B, k): log-probability of each of ``sentences`` as the opening of each image's report (its tokens, no EOS).

    The model is used in the mode it is in (put it in eval mode: dropout would make the scores random).

    ``rows`` bounds the teacher-forced sequences per forward pass (their logits span the vocabulary).
    """
    import torch

    k = len(sentences)
    with torch.no_grad():
        soft = model.soft_prompts(images)
        soft = soft.repeat_interleave(k, dim=0)  # image-major: image 0 with every sentence, then image 1 ...
        texts = list(sentences) * len(images)
        k0 = soft.shape[1] + len(model.prompt_ids)  # soft prompt + text prompt: no logits needed there
        out = []
        for start in range(0, len(texts), rows):
            embeds, mask, labels = model.build_inputs(soft[start:start + rows], texts[start:start + rows])
            predicting = torch.arange(k0 - 1, labels.shape[1] - 1, device=embeds.device)  # position t predicts t + 1
            logits = model.lm(inputs_embeds=embeds, attention_mask=mask, logits_to_keep=predicting).logits.float()
            target = labels[:, k0:]
            logp = logits.log_softmax(-1).gather(2, target.clamp(min=0)[..., None])[..., 0]
            keep = (target != -100) & (target != model.eos_id)
            out.append((logp * keep).sum(1))
    return torch.cat(out).reshape(len(images), k).numpy().astype(np.float64)


def finding_scores(run: str | Path, statements: pd.DataFrame, splits: Sequence[str] = ("val", "test"),
                   max_reports: int | None = None, batch_size: int = 16) -> dict[str, FindingScores]:
    """Log-odds of affirming each pathology for (the first ``max_reports`` of) each split, cached next to the run.

    ``statements`` is :func:`~rrgkit.analysis.finding_statements.finding_statements` of the run's
    training reports; the cache key covers its sentences and the code (:data:`PROBE_SOURCES`). The
    model is loaded once, and only when a split is not cached.
    """
    run = Path(run)
    sentences = statements[["observation", "affirm", "deny"]].to_dict(orient="records")
    key = hashlib.sha256((json.dumps(sentences) + source_hash(PROBE_SOURCES)).encode()).hexdigest()[:8]
    caches = {split: run / f"findings_{split}_{max_reports or 'all'}_{key}.npz" for split in splits}
    scores = {}
    for split, cache in caches.items():
        if cache.exists():
            with np.load(cache, allow_pickle=False) as f:
                scores[split] = FindingScores(f["ids"], f["reference_labels"], f["log_odds"])
    missing = [split for split in splits if split not in scores]
    if missing:
        from rrgkit.training.generation import load_run_model

        model, config = load_run_model(run)
        model.eval()
        for split in missing:
            scores[split] = _score_split(model, config.data, split, sentences, max_reports, batch_size)
            tmp = caches[split].with_name(caches[split].stem + ".tmp.npz")
            np.savez_compressed(tmp, ids=scores[split].ids, reference_labels=scores[split].reference_labels,
                                log_odds=scores[split].log_odds)
            tmp.replace(caches[split])
    return {split: scores[split] for split in splits}


def _score_split(model, data, split: str, sentences: list[dict], max_reports: int | None, batch_size: int) -> FindingScores:
    from rrgkit.data.loader import ManifestDataset, collate_reports

    usable = [j for j, s in enumerate(sentences) if isinstance(s["affirm"], str) and isinstance(s["deny"], str)]
    asked = [sentences[j][kind] for j in usable for kind in ("affirm", "deny")]
    dataset = ManifestDataset(data.manifest_path, split, data.image_size, views=data.views, augment=False, cache=False)
    n = len(dataset) if max_reports is None else min(max_reports, len(dataset))
    ids, labels, odds = [], [], []
    for start in range(0, n, batch_size):
        batch = collate_reports([dataset[i] for i in range(start, min(start + batch_size, n))])
        logp = statement_log_probs(model, batch["image"], asked) if asked else np.empty((len(batch["id"]), 0))
        row = np.full((len(batch["id"]), len(sentences)), np.nan)
        row[:, usable] = logp[:, 0::2] - logp[:, 1::2]
        ids += list(batch["id"])
        labels.append(batch["labels"].numpy().astype(np.float64))
        odds.append(row)
    return FindingScores(np.array(ids), np.concatenate(labels), np.concatenate(odds))
