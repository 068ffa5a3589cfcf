"""Training throughput (samples/s) of the CPU profile models, fp32 vs bf16 autocast.

Times full optimizer steps as the training loop does them (forward, backward,
gradient clipping, AdamW) with every group trainable, on random images and
phantom-style reports of ~60 tokens. Usage::

    .venv/bin/python benchmarks/train_speed.py [--steps 3] [--batch-size 8] [--threads 2] [--json OUT]

The machine is shared, so numbers vary with what else runs; report the thread count.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rrgkit.models.rrg import build_model
from rrgkit.seed import seed_everything
from rrgkit.training.optim import build_optimizer

MODELS = {
    "smoke: resnet-tiny@64 + gpt2-scratch-tiny": (64, {
        "encoder": {"name": "resnet-tiny"}, "mapper": {"n_heads": 4},
        "lm": {"name": "gpt2-scratch-tiny", "lora": None}, "max_report_tokens": 64}),
    "full: resnet18-half@128 + smollm2-135m LoRA r=8": (128, {
        "encoder": {"name": "resnet18-half"}, "lm": {"name": "smollm2-135m"}, "max_report_tokens": 96}),
}
REPORT = ("The heart is mildly enlarged. There is a small left pleural effusion with adjacent atelectasis. "
          "No pneumothorax. Mild interstitial edema. Right internal jugular catheter terminates in the low SVC.")


def time_steps(model_cfg: dict, image_size: int, batch_size: int, steps: int, precision: str) -> float:
    """Samples per second over ``steps`` optimizer steps after one warm-up step."""
    seed_everything(0)
    model = build_model(model_cfg)
    model.train()
    model.set_trainable({"vision", "mapper", "lora"})
    lr = {"vision": 1e-4, "mapper": 1e-4, "lora": 1e-4}
    optimizer = build_optimizer(model.parameter_groups(), {"lr": lr, "weight_decay": 0.01})
    params = [p for group in model.parameter_groups().values() for p in group]
    images = torch.rand(batch_size, 1, image_size, image_size)
    reports = [REPORT] * batch_size
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
            loss = model(images, reports)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("smoke", "full"), help="benchmark one model")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, (size, cfg) in MODELS.items():
        if args.only and not name.startswith(args.only):
            continue
        for precision in ("fp32", "bf16"):
            rate = time_steps(cfg, size, args.batch_size, args.steps, precision)
            rows.append({"model": name, "precision": precision, "samples_per_s": rate,
                         "s_per_step": args.batch_size / rate, "batch_size": args.batch_size})
    width = max(len(r["model"]) for r in rows)
    print(f"{'model':<{width}}  precision  samples/s  s/step  (batch {args.batch_size}, {args.threads} threads)")
    for r in rows:
        print(f"{r['model']:<{width}}  {r['precision']:<9}  {r['samples_per_s']:9.2f}  {r['s_per_step']:6.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "steps": args.steps, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
