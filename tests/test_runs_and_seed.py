"""Run directories are keyed by config and library source; seeding is reproducible."""

import json

import torch

from rrgkit import runs
from rrgkit.seed import seed_everything


def test_cached_run_reuses_finished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path))
    calls = []

    def work(path):
        calls.append(path)
        return {"f1": 0.5}

    first = runs.cached_run("smoke", "exp", {"lr": 1e-4}, work)
    again = runs.cached_run("smoke", "exp", {"lr": 1e-4}, work)
    other = runs.cached_run("smoke", "exp", {"lr": 5e-5}, work)
    forced = runs.cached_run("smoke", "exp", {"lr": 1e-4}, work, force=True)
    assert first == again == other == forced == {"f1": 0.5}
    assert len(calls) == 3
    assert calls[0] != calls[1]
    assert json.loads((calls[0] / "config.json").read_text()) == {"lr": 1e-4}


def test_key_changes_when_library_source_changes(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(runs, "PACKAGE_DIR", pkg)
    before = runs.config_key({"lr": 1})
    (pkg / "a.py").write_text("x = 2\n")
    assert runs.config_key({"lr": 1}) != before


def test_unfinished_run_is_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path))

    def crash(path):
        raise KeyboardInterrupt

    try:
        runs.cached_run("smoke", "exp", {"a": 1}, crash)
    except KeyboardInterrupt:
        pass
    assert runs.cached_run("smoke", "exp", {"a": 1}, lambda p: {"ok": 1}) == {"ok": 1}


def test_seed_everything_is_reproducible():
    seed_everything(3)
    a = torch.randn(5)
    rng_a = seed_everything(3).random(3)
    seed_everything(3)
    b = torch.randn(5)
    rng_b = seed_everything(3).random(3)
    assert torch.equal(a, b)
    assert (rng_a == rng_b).all()
