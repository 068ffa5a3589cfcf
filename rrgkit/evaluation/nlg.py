"""Natural-language-generation metrics (BLEU-1..4, ROUGE-L, CIDEr, METEOR) with per-report statistics.

Scores come from **pycocoevalcap**, the scorer behind R2Gen and most RRG papers,
so numbers are comparable. What papers rarely state is the text normalisation
applied first; :func:`normalize_report` makes ours explicit.

The bootstrap needs per-report pieces: BLEU is a *corpus* statistic (clipped
n-gram matches and lengths summed over reports, then combined), so
:func:`bleu_statistics` returns the per-report counts once and
:func:`bleu_from_sums` turns any (re)summed counts into BLEU; summing with
bootstrap weights gives corpus BLEU on every resample without re-tokenising.
ROUGE-L and CIDEr are means of per-report scores, so their resamples are means.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

BLEU_N = 4
_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's guards against 0/0, kept for exact parity

_PLACEHOLDER = "xxxx"
_DEID = re.compile(r"\b[xX]{2,}\b|_{2,}")
_ENUMERATION = re.compile(r"(^|[.:;]\s*)\d{1,2}[.)]\s+")
_SENTENCE_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_DROP = re.compile(r"[,;:!?()\[\]{}\"'`*%^&+=<>#@|\\/~$]")
_LONE_HYPHEN = re.compile(r"(?<!\w)-+|-+(?!\w)")
_REPEATED_DOTS = re.compile(r"\.(?:\s*\.)+")


def normalize_report(text: str) -> str:
    """Normalise a report before NLG scoring, R2Gen-style; the same function is applied to predictions and references.

    Steps, in order:

    1. lower-case; newlines and runs of whitespace become one space;
    2. de-identification placeholders — IU X-ray's ``XXXX`` (any standalone run of
       two or more x) and MIMIC-CXR's ``___`` (two or more underscores) — become the
       single token ``xxxx`` (R2Gen deletes ``___``; one token for both keeps
       placeholder-heavy IU reports and MIMIC reports on the same footing);
    3. list enumerators at the start of the text or of a sentence (``1.``, ``2)``) are removed;
    4. a period is a token ``.`` unless it sits between two digits (``1.9 cm`` keeps
       ``1.9``); runs of periods collapse to one;
    5. the punctuation ``, ; : ! ? ( ) [ ] { } " ' ` * % ^ & + = < > # @ | \\ / ~ $``
       becomes a space (as R2Gen deletes it, except ``/`` separates words instead of
       gluing them); hyphens inside words stay (``x-ray``), lone hyphens go;
    6. digits are kept as written (``8mm`` stays one token);
    7. tokens are joined by single spaces and a non-empty report ends with ``.``.

    >>> normalize_report("No effusion.There is a 1.9 x 1.8 cm nodule, XXXX granuloma..")
    'no effusion . there is a 1.9 x 1.8 cm nodule xxxx granuloma .'
    """
    if not isinstance(text, str):
        raise ValueError(f"report must be a string, got {type(text).__name__}: {text!r}")
    out = " ".join(text.lower().split())
    out = _DEID.sub(f" {_PLACEHOLDER} ", out)
    out = _ENUMERATION.sub(r"\1 ", out)
    out = _DROP.sub(" ", out)
    out = _LONE_HYPHEN.sub(" ", out)
    out = _SENTENCE_DOT.sub(" . ", out)
    out = _REPEATED_DOTS.sub(" . ", out)
    tokens = out.split()
    while tokens and tokens[0] == ".":
        tokens.pop(0)
    if tokens and tokens[-1] != ".":
        tokens.append(".")
    return " ".join(tokens)


def _prepare(preds: Sequence[str], refs: Sequence[str], normalize: bool) -> tuple[list[str], list[str]]:
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references; pair each prediction with one reference")
    if len(preds) == 0:
        raise ValueError("no reports to score; give at least one prediction/reference pair")
    for name, texts in (("prediction", preds), ("reference", refs)):
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"{name} {bad} is {texts[bad]!r}, not a string; fill missing reports with ''")
    fix = normalize_report if normalize else (lambda t: " ".join(t.split()))
    return [fix(p) for p in preds], [fix(r) for r in refs]


def bleu_statistics(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> np.ndarray:
    """Per-report BLEU counts, shape (n, 2*4+2): clipped matches 1..4, candidate n-grams 1..4, hyp length, ref length.

    Uses pycocoevalcap's own ``cook_refs``/``cook_test`` (one reference per report,
    so its "closest" effective reference length is that reference's length).
    """
    hyps, gts = _prepare(preds, refs, normalize)
    stats = np.empty((len(hyps), 2 * BLEU_N + 2), dtype=np.float64)
    for i, (hyp, ref) in enumerate(zip(hyps, gts)):
        cooked = cook_test(hyp, cook_refs([ref], n=BLEU_N), eff="closest", n=BLEU_N)
        stats[i, :BLEU_N] = cooked["correct"]
        stats[i, BLEU_N : 2 * BLEU_N] = cooked["guess"]
        stats[i, 2 * BLEU_N] = cooked["testlen"]
        stats[i, 2 * BLEU_N + 1] = cooked["reflen"]
    return stats


def bleu_from_sums(sums: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 from summed :func:`bleu_statistics`, shape (..., 10) → (..., 4); pycocoevalcap's formula."""
    sums = np.asarray(sums, dtype=np.float64)
    correct, guess = sums[..., :BLEU_N], sums[..., BLEU_N : 2 * BLEU_N]
    testlen, reflen = sums[..., 2 * BLEU_N], sums[..., 2 * BLEU_N + 1]
    log_p = np.log((correct + _TINY) / (guess + _SMALL))
    order = np.arange(1, BLEU_N + 1)
    bleus = np.exp(np.cumsum(log_p, axis=-1) / order)
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    brevity = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)
    return bleus * brevity[..., None]


def bleu(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> dict[str, float]:
    """Corpus BLEU-1..4 (pycocoevalcap ``Bleu(4)``, one reference per report) as ``{"BLEU-1": ..., "BLEU-4": ...}``."""
    values = bleu_from_sums(bleu_statistics(preds, refs, normalize).sum(axis=0))
    return {f"BLEU-{k + 1}": float(v) for k, v in enumerate(values)}


def rouge_l_per_report(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> np.ndarray:
    """ROUGE-L per report: pycocoevalcap's LCS F-measure with β=1.2 over space-split tokens."""
    hyps, gts = _prepare(preds, refs, normalize)
    scorer = Rouge()
    return np.array([scorer.calc_score([h], [r]) for h, r in zip(hyps, gts)], dtype=np.float64)


def rouge_l(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> float:
    """ROUGE-L averaged over reports (pycocoevalcap ``Rouge``)."""
    return float(rouge_l_per_report(preds, refs, normalize).mean())


def cider_per_report(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> np.ndarray:
    """CIDEr per report (pycocoevalcap ``Cider``, i.e. CIDEr-D: clipped TF-IDF n-grams 1..4, length penalty σ=6, ×10).

    Document frequencies come from the whole reference set, so a bootstrap of the
    mean of these per-report scores holds the IDF weights fixed (an approximation;
    the CI of CIDEr is therefore slightly too narrow).
    """
    hyps, gts = _prepare(preds, refs, normalize)
    keys = range(len(hyps))
    _, scores = Cider().compute_score({k: [gts[k]] for k in keys}, {k: [hyps[k]] for k in keys})
    return np.asarray(scores, dtype=np.float64)


def java_available() -> bool:
    """METEOR's scorer is a Java jar; it runs only where ``java`` is on the PATH."""
    return shutil.which("java") is not None


def meteor_per_report(preds: Sequence[str], refs: Sequence[str], normalize: bool = True) -> np.ndarray | None:
    """METEOR 1.5 per report via pycocoevalcap's jar, or None (with a one-line message) when Java is absent.

    pycocoevalcap's corpus METEOR is not the mean of per-report scores (the jar
    aggregates statistics); rrgkit reports the mean of per-report scores so it can
    be bootstrapped, and names it "METEOR" with that definition.
    """
    if not java_available():
        print("METEOR skipped: no `java` on PATH (pycocoevalcap's METEOR is a Java jar)", file=sys.stderr)
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    hyps, gts = _prepare(preds, refs, normalize)
    keys = range(len(hyps))
    scorer = Meteor()
    try:
        _, scores = scorer.compute_score({k: [gts[k]] for k in keys}, {k: [hyps[k]] for k in keys})
    finally:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
    return np.asarray(scores, dtype=np.float64)
