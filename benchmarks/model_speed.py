"""How fast are the CPU-profile models? Train-step time, greedy generation time, and matmul utilisation.

Models: resnet18-half at 128 px + query mapper (10 queries) + either SmolLM2-135M
with LoRA (r=8 on q, v) or a from-scratch GPT-2, tiny or mini (trained in full, 2,048-token report vocabulary).
A train step is forward + backward + AdamW on a batch (default 16) with a 10-token
soft prompt, the text prompt and 64 report tokens (real IU X-ray findings,
truncated), in fp32 and under bf16 autocast. Generation is greedy (KV cache),
80 new tokens at batch 1 and at the batch size (EOS cannot stop it early: it is masked).
Utilisation is the step's FLOPs (counted with torch's FlopCounterMode, and
the 6·params·tokens rule of thumb for the LM) over the time, as a fraction of
the GFLOP/s that one large fp32 ``torch.matmul`` reaches on this machine.

Run: ``.venv/bin/python benchmarks/model_speed.py [--threads 2] [--reps 3] [--batch 16] [--models smollm2 gpt2-tiny] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from rrgkit.data.iu_xray import load_iu_reports  # noqa: E402
from rrgkit.models.rrg import build_model  # noqa: E402

MODELS = {
    "smollm2": {"name": "smollm2-135m"},
    "gpt2-tiny": {"name": "gpt2-scratch-tiny"},
    "gpt2-mini": {"name": "gpt2-scratch-mini"},  # the training chapter's LM on the full profile
}
IMAGE_SIZE, REPORT_TOKENS, NEW_TOKENS = 128, 64, 80


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Achieved GFLOP/s of an n×n fp32 matmul (best of ``reps``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def long_reports(tokenizer, n: int, min_tokens: int) -> list[str]:
    """``n`` real IU findings, consecutive ones joined until each has at least ``min_tokens`` tokens."""
    texts = iter(t for t in load_iu_reports()["findings"] if t)
    reports = []
    while len(reports) < n:
        report = next(texts)
        while len(tokenizer(" " + report, add_special_tokens=False)["input_ids"]) < min_tokens:
            report += " " + next(texts)
        reports.append(report)
    return reports


def bench_model(key: str, reps: int, batch_size: int) -> dict:
    torch.manual_seed(0)
    model = build_model(
        {
            "encoder": {"name": "resnet18-half"},
            "mapper": {"kind": "query", "n_queries": 10},
            "lm": MODELS[key],
            "max_report_tokens": REPORT_TOKENS,
        }
    )
    counts = model.count_parameters()
    images = torch.randn(batch_size, 1, IMAGE_SIZE, IMAGE_SIZE)
    reports = long_reports(model.tokenizer, batch_size, REPORT_TOKENS)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=1e-5)

    def step(autocast: bool) -> None:
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with context:
            loss = model(images, reports)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    model.train()
    with FlopCounterMode(display=False) as counter:
        step(False)  # also the warm-up
    flops = counter.get_total_flops()
    lm_params = counts["lora"] + counts["lm_base"]
    tokens = batch_size * (10 + len(model.prompt_ids) + REPORT_TOKENS)
    row = {
        "model": f"resnet18-half@{IMAGE_SIZE} + query + {MODELS[key]['name']}",
        "trainable": counts["trainable"],
        "total": counts["total"],
        "step_gflop_counted": flops / 1e9,
        "step_gflop_6PT": 6 * lm_params * tokens / 1e9,
    }
    for name, autocast in (("fp32", False), ("bf16", True)):
        if autocast:
            step(autocast)  # warm-up (fp32 was warmed by the counted step)
        row[f"step_s_{name}"] = statistics.median(_seconds(lambda: step(autocast)) for _ in range(reps))
        print(f"  {key}: train step {name} {row[f'step_s_{name}']:.2f} s", file=sys.stderr, flush=True)

    # Generation: mask EOS so every report has exactly NEW_TOKENS tokens.
    eos, model.eos_id = model.eos_id, -1
    try:
        for batch in (1, batch_size):
            model.generate(images[:batch], max_new_tokens=2)
            seconds = _seconds(lambda: model.generate(images[:batch], max_new_tokens=NEW_TOKENS))
            row[f"gen_s_per_report_b{batch}"] = seconds / batch
            print(f"  {key}: generation batch {batch}: {seconds / batch:.2f} s/report", file=sys.stderr, flush=True)
    finally:
        model.eos_id = eos
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reps", type=int, default=3, help="timed train steps per setting (median; default 3)")
    parser.add_argument("--batch", type=int, default=16, help="train and generation batch size (default 16)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    peak = matmul_gflops()
    rows = [bench_model(key, args.reps, args.batch) for key in args.models]
    for r in rows:
        r["utilisation_fp32"] = r["step_gflop_counted"] / r["step_s_fp32"] / peak
    header = f"{'model':<44} {'trainable':>10} {'step fp32':>9} {'step bf16':>9} {'gen b1':>8} {f'gen b{args.batch}':>8} {'GFLOP':>7} {'6PT':>7} {'util':>6}"
    print(header)
    for r in rows:
        print(
            f"{r['model']:<44} {r['trainable']:>10,} {r['step_s_fp32']:>8.2f}s {r['step_s_bf16']:>8.2f}s "
            f"{r['gen_s_per_report_b1']:>7.2f}s {r[f'gen_s_per_report_b{args.batch}']:>7.2f}s "
            f"{r['step_gflop_counted']:>7.0f} {r['step_gflop_6PT']:>7.0f} {r['utilisation_fp32']:>6.1%}"
        )
    print(
        f"step: batch {args.batch}, 10 soft + prompt + {REPORT_TOKENS} report tokens; gen: s/report for {NEW_TOKENS} greedy tokens; "
        f"util: counted FLOPs / fp32 step time / matmul peak {peak:.1f} GFLOP/s; "
        f"{args.threads} torch thread(s), {platform.processor() or platform.machine()}"
    )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "batch": args.batch, "matmul_gflops": peak, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
