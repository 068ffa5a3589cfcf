"""How fast is the rule-based CheXpert labeler? Reports/s on the real IU X-ray reports, one core.

Each report is findings + impression (3,425 reports with findings). The best of ``--repeats``
passes is reported, since a shared machine only ever slows a pass down. Both wall-clock and
process CPU time are shown: on a busy machine the CPU-time rate is what one dedicated core gives.
Run: ``.venv/bin/python benchmarks/labeler_speed.py [--repeats 3] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rrgkit.data.iu_xray import load_iu_reports
from rrgkit.evaluation.labeler import label_report, normalise


def _best_of(fn, texts: list[str], repeats: int) -> tuple[float, float]:
    """Fastest of ``repeats`` passes of ``fn`` over ``texts``: (wall seconds, CPU seconds)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for text in texts:
            fn(text)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes over the reports, fastest counts (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    frame = load_iu_reports()
    frame = frame[frame["findings"].str.strip() != ""]
    texts = (frame["findings"] + " " + frame["impression"]).tolist()
    chars = sum(map(len, texts)) / len(texts)
    rows = []
    for step, fn in (("normalise only", normalise), ("label_report", label_report)):
        wall, cpu = _best_of(fn, texts, args.repeats)
        rows.append({"step": step, "wall_s": wall, "cpu_s": cpu, "reports_per_s_wall": len(texts) / wall,
                     "reports_per_s_cpu": len(texts) / cpu, "us_per_report_cpu": 1e6 * cpu / len(texts)})

    print(f"{'step':<16} {'wall s':>7} {'cpu s':>7} {'reports/s wall':>15} {'reports/s cpu':>14} {'us/report':>10}")
    for r in rows:
        print(f"{r['step']:<16} {r['wall_s']:7.3f} {r['cpu_s']:7.3f} {r['reports_per_s_wall']:15.0f} "
              f"{r['reports_per_s_cpu']:14.0f} {r['us_per_report_cpu']:10.1f}")
    machine = platform.processor() or platform.machine()
    print(f"{len(texts)} IU reports, {chars:.0f} characters on average, one process, {machine}")
    if args.json:
        args.json.write_text(json.dumps({"n_reports": len(texts), "mean_chars": chars, "repeats": args.repeats,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
