"""Phantom renderer speed: images per second on ONE thread at 64, 128, 256 and 512 px.

Renders a fixed mix of studies (normal films, every pathology at random severity, every device,
PA/AP/lateral) and reports the best and the median of several repeats, because the timing machine
is usually shared. Throughput is given per CPU-second of this process (``time.process_time``: what one
free core would deliver) and per wall-clock second (what you got on this machine today).

Usage: ``python benchmarks/phantom_speed.py [--json OUT] [--repeats 3]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES  # noqa: E402
from rrgkit.phantom.render import render_study  # noqa: E402
from rrgkit.phantom.state import DEVICE_KINDS, LATERALITIES, VIEWS, ZONES, Finding, Patient, Study  # noqa: E402

SIZES = {64: 200, 128: 200, 256: 60, 512: 15}
"""Image size → studies rendered per repeat."""


def benchmark_studies(n: int, seed: int = 0) -> list[Study]:
    """A reproducible mix: a third normal, the rest with 1-3 findings, all views and patient nuisances."""
    rng = np.random.default_rng(seed)
    studies = []
    for i in range(n):
        findings = []
        for _ in range(int(rng.integers(0, 4)) if i % 3 else 0):
            obs = str(rng.choice(PATHOLOGIES))
            findings.append(
                Finding(
                    obs,
                    certainty=str(rng.choice(["positive", "uncertain"])),
                    severity=float(rng.random()),
                    laterality=str(rng.choice(LATERALITIES)),
                    zone=str(rng.choice(ZONES)),
                    kind=str(rng.choice(DEVICE_KINDS)) if obs == "Support Devices" else None,
                )
            )
        labels = np.full(len(CHEXPERT_OBSERVATIONS), np.nan)
        patient = Patient(
            sex=str(rng.choice(["M", "F"])),
            inspiration=float(rng.random()),
            rotation=float(rng.uniform(-1, 1)),
            breast=float(rng.random() * 0.8),
        )
        studies.append(Study(str(i), labels, tuple(findings), patient, str(rng.choice(VIEWS)), seed=i))
    return studies


def measure(size: int, n: int, repeats: int) -> dict:
    """Best and median images/s (per CPU second and per wall second) over ``repeats`` passes of ``n`` studies."""
    studies = benchmark_studies(n)
    render_study(studies[0], size)  # warm caches (grids, vessel bank)
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        for study in studies:
            render_study(study, size)
        cpu.append(n / (time.process_time() - start_cpu))
        wall.append(n / (time.perf_counter() - start_wall))
    return {
        "size": size,
        "images": n,
        "cpu_images_per_s_best": max(cpu),
        "cpu_images_per_s_median": float(np.median(cpu)),
        "wall_images_per_s_median": float(np.median(wall)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(size, n, args.repeats) for size, n in SIZES.items()]
    print(f"{'size':>6} {'images':>7} {'CPU img/s best':>15} {'CPU img/s median':>17} {'wall img/s median':>18}")
    for r in rows:
        print(
            f"{r['size']:>6} {r['images']:>7} {r['cpu_images_per_s_best']:>15.1f} "
            f"{r['cpu_images_per_s_median']:>17.1f} {r['wall_images_per_s_median']:>18.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": 1, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
