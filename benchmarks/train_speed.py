"""Training and generation speed of two git revisions side by side: the working tree ("this") against REV ("base").

What it measures. Training throughput in samples/s of real ``rrgkit train`` runs on one phantom set built once
(overall and per schedule phase, so a frozen-encoder phase and an all-trainable phase show separately), read from
each run's per-step ``log.csv`` (validation and the end-of-run test are not in it), the wall time of every run's
process (imports, validation and test included), and generation speed in reports/s: the validation split of one
trained run written by each revision's own ``generate_reports`` at its configured eval batch size, timed inside the
process (what a validation pass costs, not process start-up).

Why this way. The library's API changes between revisions, so the command line is the interface both share: every run is a ``python -m rrgkit.cli`` process with ``PYTHONPATH`` and the working directory set to its own
tree, REV being checked out into a temporary ``git worktree``. The machine is shared and noisy, so absolute
numbers drift, and the second run of a pair was seen to run faster; runs alternate base, this, this, base, ...
and the result is the ratio this/base of each pair, with the 1-minute load average before and after each case to show how noisy it was. One untimed
1-step warm-up per revision and model (bytecode, model files made once, page cache) comes first.

Usage::

    .venv/bin/python benchmarks/train_speed.py --against REV [--cases grid,grid-frozen,03,smollm2,generate]
        [--repeats 2] [--threads 2] [--epochs 3] [--n-studies 600] [--smollm2-steps 6] [--json OUT] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

THIS_TREE = Path(__file__).resolve().parents[1]
SCHEDULES = "configs/experiments/schedules-full.yaml"
FINETUNE = "configs/experiments/finetune-full.yaml"
ALL_CASES = ("grid", "grid-frozen", "03", "smollm2", "generate")
GENERATE_SPLIT = "val"
GENERATE_SNIPPET = r"""
import json, sys, time
import yaml
try:
    from rrgkit.training.generation import generate_reports, load_run_model
except ImportError:  # revisions before the training core was split
    from rrgkit.training.evaluate import generate_reports, load_run_model
from rrgkit.data.loader import ManifestDataset
run, manifest, config_file, split = sys.argv[1:5]
batch = yaml.safe_load(open(config_file))["eval"]["batch_size"]
saved = json.load(open(run + "/config.json"))
model, _ = load_run_model(run)
data = ManifestDataset(manifest, split, saved["data"]["image_size"], cache=True)
for i in range(len(data)):
    data[i]
tic = time.perf_counter()
rows = generate_reports(model, data, None, batch, saved["eval"]["max_new_tokens"], progress=False)
print(json.dumps({"rows": len(rows), "seconds": time.perf_counter() - tic, "batch": batch}))
"""
STDERR_LINES = 15


@dataclass(frozen=True)
class Tree:
    """One revision's source tree."""

    label: str  # "base" or "this"
    path: Path
    commit: str


@dataclass(frozen=True)
class Case:
    """A training command: a config file relative to the tree, overrides, and an optional crash-simulator stop."""

    config: str
    overrides: tuple[str, ...]
    stop_after: int = 0

    @property
    def model_key(self) -> tuple[str, ...]:
        """Runs with the same key build the same model, so one warm-up serves them all."""
        return (self.config, *(o for o in self.overrides if o.startswith("model.")))


@dataclass(frozen=True)
class Result:
    """One finished process."""

    command: list[str]
    returncode: int
    wall_s: float
    stderr: str


# ---------------------------------------------------------------------------------------------- pure parts


def step_samples(log: pd.DataFrame, samples_per_step: int, train_size: int) -> pd.Series:
    """Samples of each logged optimizer step: full steps, except the remainder at the last step of an epoch."""
    steps_per_epoch = -(-train_size // samples_per_step)
    position = log.groupby("epoch", sort=False).cumcount() + 1
    last = train_size - (steps_per_epoch - 1) * samples_per_step
    return pd.Series(samples_per_step, index=log.index).where(position < steps_per_epoch, last)


def log_throughput(log: pd.DataFrame, samples_per_step: int, train_size: int) -> dict:
    """Samples/s of a ``log.csv`` (total samples / total step seconds), overall and per phase in order of appearance.

    A row's seconds are its samples / its ``samples_per_s``.
    """
    samples = step_samples(log, samples_per_step, train_size)
    frame = pd.DataFrame({"phase": log["phase"], "samples": samples, "seconds": samples / log["samples_per_s"]})

    def summary(part: pd.DataFrame) -> dict:
        total, seconds = int(part["samples"].sum()), float(part["seconds"].sum())
        return {"steps": len(part), "samples": total, "seconds": seconds, "samples_per_s": total / seconds}

    return {**summary(frame), "phases": {name: summary(part) for name, part in frame.groupby("phase", sort=False)}}


def pair_ratios(base: list[float], this: list[float]) -> dict:
    """Medians of each revision and the ratio this/base of each (base, this) pair: min, median, max."""
    if len(base) != len(this) or not base:
        raise ValueError(f"need as many base as this values (at least one), got {len(base)} and {len(this)}")
    ratios = [t / b for b, t in zip(base, this)]
    return {"base": statistics.median(base), "this": statistics.median(this), "ratios": ratios,
            "ratio_min": min(ratios), "ratio_median": statistics.median(ratios), "ratio_max": max(ratios)}


# ---------------------------------------------------------------------------------------------- processes


def git(*args: str) -> str:
    """Run git in this tree; return stdout stripped."""
    return subprocess.run(["git", "-C", str(THIS_TREE), *args], check=True, capture_output=True, text=True).stdout.strip()


def child_env(tree: Tree, threads: int, stop_after: int = 0) -> dict[str, str]:
    """The environment of a revision's process: its own tree first on the path, fixed threads, offline hub."""
    env = {**os.environ, "PYTHONPATH": str(tree.path), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("RRGKIT_MODELS", str(THIS_TREE / "data" / "models"))  # one store of made-once models for both
    env.pop("RRGKIT_STOP_AFTER_STEPS", None)
    if stop_after:
        env["RRGKIT_STOP_AFTER_STEPS"] = str(stop_after)
    return env


def run_cli(tree: Tree, args: list[str], threads: int, stop_after: int = 0) -> Result:
    """``python -m rrgkit.cli ARGS`` in ``tree``, timed as a whole process."""
    command = [sys.executable, "-m", "rrgkit.cli", *args]
    tic = time.perf_counter()
    proc = subprocess.run(command, cwd=tree.path, env=child_env(tree, threads, stop_after), capture_output=True,
                          text=True)
    return Result(command, proc.returncode, time.perf_counter() - tic, proc.stderr)


def train_ok(result: Result, log: pd.DataFrame | None, stop_after: int) -> bool:
    """A training run finished, or the crash simulator stopped it as asked: after exactly ``stop_after`` logged steps."""
    return result.returncode == 0 or bool(stop_after and log is not None and len(log) == stop_after)


def report_failure(what: str, result: Result) -> str:
    """Print the command and the last stderr lines of a failed process; return a one-line reason."""
    print(f"  FAILED {what} (exit {result.returncode}): {shlex.join(result.command)}")
    for line in result.stderr.strip().splitlines()[-STDERR_LINES:]:
        print(f"    | {line}")
    return f"{what}: exit {result.returncode}"


def check_import(tree: Tree, threads: int) -> int:
    """Abort unless ``rrgkit`` imports from ``tree`` under its environment; return torch's thread count there."""
    code = "import rrgkit, torch; print(rrgkit.__file__); print(torch.get_num_threads())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tree.path, env=child_env(tree, threads),
                          capture_output=True, text=True)
    lines = proc.stdout.split()
    if proc.returncode or len(lines) != 2 or not Path(lines[0]).resolve().is_relative_to(tree.path.resolve()):
        got = lines[0] if proc.returncode == 0 and lines else (proc.stderr.strip().splitlines() or ["nothing"])[-1]
        sys.exit(f"train_speed: the {tree.label} revision does not import rrgkit from {tree.path} (got {got}); "
                 "an installed copy must not shadow PYTHONPATH, or the comparison would be meaningless")
    return int(lines[1])


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------- cases


def training_cases(epochs: int, smollm2_steps: int) -> dict[str, Case]:
    """The training cases, identical for both revisions; config files are read from each revision's own tree."""
    return {
        "grid": Case(SCHEDULES, ("schedule.preset=two-stage", f"schedule.epochs={epochs}")),
        "grid-frozen": Case(SCHEDULES, ("schedule.preset=frozen", f"schedule.epochs={epochs}")),
        "03": Case(FINETUNE, ("schedule.preset=two-stage", f"schedule.epochs={epochs}")),
        "smollm2": Case(FINETUNE, ("model.lm.name=smollm2-135m", "model.lm.lora={}", "schedule.preset=one-stage"),
                        stop_after=smollm2_steps),
        # the run that `generate` reads, trained once by the base revision
        "generate": Case(FINETUNE, ("schedule.preset=two-stage", "schedule.epochs=2")),
    }


def order(trees: tuple[Tree, Tree], repeat: int) -> tuple[Tree, Tree]:
    """Base first in odd repeats, this first in even ones (A B B A ...): a second-run advantage cancels out."""
    return trees if repeat % 2 else trees[::-1]


class Bench:
    """Runs the cases of one comparison and collects their results."""

    def __init__(self, trees: tuple[Tree, Tree], work: Path, manifest: Path, threads: int) -> None:
        self.trees, self.work, self.manifest, self.threads = trees, work, manifest, threads
        self.train_size = int((pd.read_csv(manifest, usecols=["split"])["split"] == "train").sum())

    def train(self, tree: Tree, case: Case, out: Path, stop_after: int) -> tuple[Result, pd.DataFrame | None]:
        """One ``rrgkit train`` run into ``out``; its log (None if there is none)."""
        common = [f"data.manifest={self.manifest}", "data.build=null", "eval.max_val_reports=16", "eval.meteor=false",
                  "eval.backends=false", "checkpoint.every_steps=100000", f"out={out}"]
        result = run_cli(tree, ["train", "--config", str(tree.path / case.config), *case.overrides, *common,
                                "--no-progress"], self.threads, stop_after)
        log_file = out / "log.csv"
        return result, pd.read_csv(log_file) if log_file.exists() else None

    def warm_up(self, case: Case, key: int) -> str | None:
        """One untimed 1-step run of ``case`` per revision; the failure reason, or None."""
        for tree in self.trees:
            out = self.work / "warm-up" / f"{key}-{tree.label}"
            result, log = self.train(tree, case, out, stop_after=1)
            if not train_ok(result, log, 1):
                return report_failure(f"warm-up of {tree.label}", result)
        return None

    def training(self, case: Case, name: str, repeats: int) -> dict:
        """Pairs of runs, base first in odd repeats and this first in even ones; throughput from each run's log."""
        runs: list[dict] = []
        for repeat in range(1, repeats + 1):
            for tree in order(self.trees, repeat):
                out = self.work / "runs" / name / f"{tree.label}-{repeat}"
                result, log = self.train(tree, case, out, case.stop_after)
                if not train_ok(result, log, case.stop_after) or log is None or log.empty:
                    return {"status": "failed", "reason": report_failure(f"{tree.label} run {repeat}", result),
                            "runs": runs}
                optim = json.loads((out / "config.json").read_text())["optim"]
                measured = log_throughput(log, optim["batch_size"] * optim["grad_accum"], self.train_size)
                runs.append({"revision": tree.label, "repeat": repeat, "wall_s": result.wall_s, **measured})
                print(f"  {tree.label} {repeat}/{repeats}: {measured['samples_per_s']:.2f} samples/s over "
                      f"{measured['steps']} steps, process {result.wall_s:.1f} s", flush=True)
        return {"status": "ok", "runs": runs, **summarise(runs)}

    def generate(self, case: Case, repeats: int, run: Path | None) -> dict:
        """Reports/s of validation-style generation (the split's reports, greedy) with each revision's code.

        Timed inside the process (model and images loaded first), with the eval batch size each revision's
        ``finetune-full.yaml`` sets: what a validation pass costs, not process start-up. The run is
        ``--generate-run`` or one trained here by the base revision.
        """
        if run is None:
            run = self.work / "runs" / "generate" / "base-run"
            result, _ = self.train(self.trees[0], case, run, stop_after=0)
            if result.returncode:
                return {"status": "failed", "reason": report_failure("base training of the run to generate with", result),
                        "runs": []}
        manifest = self.manifest if run.is_relative_to(self.work) else Path(
            json.loads((run / "config.json").read_text())["data"]["manifest"])
        if not manifest.is_absolute():
            manifest = THIS_TREE / manifest
        runs: list[dict] = []
        for repeat in range(1, repeats + 1):
            for tree in order(self.trees, repeat):
                tic = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", GENERATE_SNIPPET, str(run), str(manifest),
                                       str(tree.path / FINETUNE), GENERATE_SPLIT], cwd=tree.path,
                                      env=child_env(tree, self.threads), capture_output=True, text=True)
                result = Result(["generate snippet", str(run)], proc.returncode, time.perf_counter() - tic, proc.stderr)
                if proc.returncode:
                    return {"status": "failed", "reason": report_failure(f"{tree.label} generate {repeat}", result),
                            "runs": runs}
                timed = json.loads(proc.stdout.strip().splitlines()[-1])
                rate = timed["rows"] / timed["seconds"]
                runs.append({"revision": tree.label, "repeat": repeat, "wall_s": result.wall_s, "rows": timed["rows"],
                             "samples_per_s": rate, "phases": {}})
                print(f"  {tree.label} {repeat}/{repeats}: {timed['rows']} reports in {timed['seconds']:.1f} s "
                      f"(batch {timed['batch']}), {rate:.2f} reports/s", flush=True)
        return {"status": "ok", "runs": runs, **summarise(runs)}


def summarise(runs: list[dict]) -> dict:
    """Pairwise ratios of the overall rate, of each phase's rate, and medians of the wall time."""
    base = [r for r in runs if r["revision"] == "base"]
    this = [r for r in runs if r["revision"] == "this"]
    phases = {name: pair_ratios([r["phases"][name]["samples_per_s"] for r in base],
                                [r["phases"][name]["samples_per_s"] for r in this])
              for name in base[0]["phases"] if all(name in r["phases"] for r in base + this)}
    return {"samples_per_s": pair_ratios([r["samples_per_s"] for r in base], [r["samples_per_s"] for r in this]),
            "phases": phases, "wall_s": pair_ratios([r["wall_s"] for r in base], [r["wall_s"] for r in this])}


# ---------------------------------------------------------------------------------------------- output


def format_table(results: dict[str, dict]) -> str:
    """case | base samples/s | this samples/s | ratio (median [min, max]) | wall s | load | per phase."""
    header = ["case", "base samples/s", "this samples/s", "ratio this/base", "wall s base/this", "load 1m",
              "per phase: base -> this (ratio)"]
    rows = []
    for name, res in results.items():
        load = f"{res['load_before']:.2f}->{res['load_after']:.2f}"
        label = f"{name} (reports/s)" if name == "generate" else name
        if res["status"] != "ok":
            rows.append([label, "-", "-", res["status"].upper(), "-", load, res.get("reason", "")])
            continue
        rate, wall = res["samples_per_s"], res["wall_s"]
        phases = "; ".join(f"{p} {s['base']:.2f} -> {s['this']:.2f} ({s['ratio_median']:.3f})"
                           for p, s in res["phases"].items())
        rows.append([label, f"{rate['base']:.2f}", f"{rate['this']:.2f}",
                     f"{rate['ratio_median']:.3f} [{rate['ratio_min']:.3f}, {rate['ratio_max']:.3f}]",
                     f"{wall['base']:.1f}/{wall['this']:.1f}", load, phases])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def busy_cases(results: dict[str, dict], threads: int) -> list[str]:
    """Cases during which the 1-minute load exceeded the CPUs (or our threads) by more than one core's worth."""
    limit = max(os.cpu_count() or 1, threads) + 1
    return [name for name, res in results.items() if max(res["load_before"], res["load_after"]) > limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, metavar="REV", help="git revision to compare with (the base)")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {','.join(ALL_CASES)}")
    parser.add_argument("--repeats", type=int, default=2, help="(base, this) pairs per case")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS / MKL_NUM_THREADS of every run")
    parser.add_argument("--epochs", type=int, default=3, help="schedule.epochs of grid, grid-frozen and 03 (>= 2)")
    parser.add_argument("--n-studies", type=int, default=600, help="phantom studies (128 px) built once for all runs")
    parser.add_argument("--smollm2-steps", type=int, default=6, help="optimizer steps of the smollm2 case")
    parser.add_argument("--json", type=Path, help="also write everything here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary worktree, data and runs")
    parser.add_argument("--generate-run", type=Path, help="a finished run folder for the generate case (default: "
                        "train a short one with the base revision on the benchmark's data)")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown or not cases:
        parser.error(f"unknown case(s) {unknown}; choose from {','.join(ALL_CASES)}")
    if args.repeats < 1 or args.threads < 1 or args.epochs < 2 or args.smollm2_steps < 1:
        parser.error("--repeats, --threads and --smollm2-steps must be positive and --epochs at least 2")

    base_commit = git("rev-parse", "--verify", f"{args.against}^{{commit}}")
    this = Tree("this", THIS_TREE, git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain") else ""))
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="rrgkit-train-speed-"))
    base = Tree("base", work / "base", base_commit)
    git("worktree", "add", "--detach", str(base.path), base_commit)
    try:
        threads = {tree.label: check_import(tree, args.threads) for tree in (base, this)}
        print(f"base {base.commit} ({args.against}) in {base.path}\nthis {this.commit} in {this.path}\n"
              f"cpu: {cpu_model()}, {os.cpu_count()} logical CPUs; torch threads base {threads['base']}, "
              f"this {threads['this']} (--threads {args.threads})", flush=True)
        data = work / "data"
        built = run_cli(this, ["data", "build", "phantom", "--out", str(data), "--n", str(args.n_studies),
                               "--size", "128", "--seed", "0"], args.threads)
        if built.returncode:
            report_failure("building the phantom data", built)
            sys.exit("train_speed: could not build the benchmark data")
        bench = Bench((base, this), work, data / "manifest.csv", args.threads)
        print(f"data: {args.n_studies} phantom studies, {bench.train_size} in the train split", flush=True)

        defined = training_cases(args.epochs, args.smollm2_steps)
        warm: dict[tuple[str, ...], str | None] = {}
        results: dict[str, dict] = {}
        for name in cases:
            case = defined[name]
            load_before = os.getloadavg()[0]
            print(f"{name}: {case.config} {' '.join(case.overrides)} (load {load_before:.2f})", flush=True)
            if case.model_key not in warm:
                warm[case.model_key] = bench.warm_up(case, len(warm))
            if warm[case.model_key]:
                result = {"status": "failed", "reason": warm[case.model_key], "runs": []}
            elif name == "generate":
                result = bench.generate(case, args.repeats, args.generate_run)
            else:
                result = bench.training(case, name, args.repeats)
            results[name] = {**result, "load_before": load_before, "load_after": os.getloadavg()[0]}
            print(f"  {results[name]['status']}; load {load_before:.2f} -> {results[name]['load_after']:.2f}", flush=True)

        print(f"\nthis/base, {args.repeats} pair(s) per case, {args.threads} threads, {args.epochs} epochs, "
              f"{args.n_studies} studies; base {base.commit[:10]}, this {this.commit[:10]}")
        print(format_table(results))
        busy = busy_cases(results, args.threads)
        if busy:
            print(f"WARNING: other processes kept the machine busy during {', '.join(busy)} (1-minute load above "
                  f"{max(os.cpu_count() or 1, args.threads) + 1}); those ratios are dominated by noise: rerun on a "
                  "quiet machine or with more --repeats")
        print(f"total {(time.perf_counter() - started) / 60:.1f} min")
        if args.json:
            args.json.write_text(json.dumps({
                "against": args.against, "base_commit": base.commit, "this_commit": this.commit,
                "threads": args.threads, "torch_threads": threads, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
                "settings": {"cases": cases, "repeats": args.repeats, "epochs": args.epochs,
                             "n_studies": args.n_studies, "train_size": bench.train_size,
                             "smollm2_steps": args.smollm2_steps},
                "busy_cases": busy, "total_s": time.perf_counter() - started, "cases": results}, indent=2))
    finally:
        if args.keep:
            print(f"kept {work} (base worktree {base.path}; remove it with `git worktree remove --force {base.path}`)")
        else:
            git("worktree", "remove", "--force", str(base.path))
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
