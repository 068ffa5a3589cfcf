"""How fast is scoring? Pairs/s of each NLG metric, bootstrap time, BERTScore-MiniLM pairs/s.

Pairs are real IU X-ray findings (bundled), each scored against a different
report. Run: ``.venv/bin/python benchmarks/metrics_speed.py [--n 500] [--n-boot 1000] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rrgkit.data.iu_xray import load_iu_reports  # noqa: E402
from rrgkit.evaluation import backends, clinical, nlg  # noqa: E402
from rrgkit.evaluation.labeler import label_reports  # noqa: E402
from rrgkit.evaluation.score import metric_statistics, score_reports  # noqa: E402
from rrgkit.evaluation.stats import bootstrap_ci  # noqa: E402


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="report pairs (default 500, a typical test split)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--bertscore-n", type=int, default=100, help="pairs for the BERTScore-MiniLM timing (default 100)")
    parser.add_argument("--meteor", action="store_true", help="also time METEOR (starts a Java process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    texts = [t for t in load_iu_reports()["findings"] if t]
    if len(texts) < 2 * args.n:
        raise SystemExit(f"--n {args.n} needs {2 * args.n} non-empty IU reports; only {len(texts)} exist")
    preds, refs = texts[: args.n], texts[args.n : 2 * args.n]
    rows = []

    def add(name: str, seconds: float, pairs: int | None = None) -> None:
        rows.append({"step": name, "seconds": seconds, "pairs_per_s": pairs / seconds if pairs else None})

    add("normalize_report (both sides)", _timed(lambda: [nlg.normalize_report(t) for t in preds + refs])[1], args.n)
    add("BLEU-1..4 statistics", _timed(lambda: nlg.bleu_statistics(preds, refs))[1], args.n)
    add("ROUGE-L", _timed(lambda: nlg.rouge_l_per_report(preds, refs))[1], args.n)
    add("CIDEr", _timed(lambda: nlg.cider_per_report(preds, refs))[1], args.n)
    if args.meteor and nlg.java_available():
        add("METEOR (incl. JVM start)", _timed(lambda: nlg.meteor_per_report(preds, refs))[1], args.n)
    (pred_l, ref_l), seconds = _timed(lambda: (label_reports(preds), label_reports(refs)))
    add("labeler (both sides)", seconds, args.n)
    stats = metric_statistics(preds, refs, pred_labels=pred_l, ref_labels=ref_l, meteor=False, backends=False)
    _, seconds = _timed(lambda: [bootstrap_ci(s, args.n, n_boot=args.n_boot) for s in stats.values()])
    add(f"bootstrap {args.n_boot}x, all {len(stats)} metrics", seconds)
    _, seconds = _timed(lambda: clinical.per_observation(pred_l, ref_l, n_boot=args.n_boot))
    add(f"per-observation table, {args.n_boot}x CIs", seconds)
    _, seconds = _timed(lambda: score_reports(preds, refs, n_boot=args.n_boot, meteor=False, backends=False))
    add("score_reports end to end (no METEOR, no models)", seconds, args.n)
    _, seconds = _timed(backends._minilm)
    add("BERTScore-MiniLM model load", seconds)
    k = min(args.bertscore_n, args.n)
    add("BERTScore-MiniLM", _timed(lambda: backends.bertscore_minilm(preds[:k], refs[:k]))[1], k)

    print(f"{'step':<48} {'seconds':>8} {'pairs/s':>9}")
    for r in rows:
        rate = f"{r['pairs_per_s']:9.0f}" if r["pairs_per_s"] else f"{'':>9}"
        print(f"{r['step']:<48} {r['seconds']:8.3f} {rate}")
    print(f"n={args.n} pairs, {args.threads} torch thread(s), {platform.processor() or platform.machine()}")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "n_boot": args.n_boot, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
