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


def _package_copy(tmp_path, monkeypatch):
    """A copy of the rrgkit sources that run keys are computed from."""
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(runs.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runs, "PACKAGE_DIR", pkg)
    return pkg


def test_key_follows_the_code_a_training_run_executes(tmp_path, monkeypatch):
    pkg = _package_copy(tmp_path, monkeypatch)
    before = runs.config_key({"lr": 1})
    (pkg / "book" / "build.py").write_text((pkg / "book" / "build.py").read_text() + "\n# a page edit\n")
    (pkg / "experiments" / "plots.py").write_text((pkg / "experiments" / "plots.py").read_text() + "\n# a plot edit\n")
    assert runs.config_key({"lr": 1}) == before, "the book runner and plots do not change a training run"
    engine = pkg / "training" / "engine.py"
    engine.write_text(engine.read_text() + "\n# a change in the training core\n")
    assert runs.config_key({"lr": 1}) != before
    assert runs.config_key({"lr": 2}) != runs.config_key({"lr": 1})
    after = runs.config_key({"lr": 1})
    (pkg / "training" / "train_cli.py").write_text((pkg / "training" / "train_cli.py").read_text() + "\n# help text\n")
    assert runs.config_key({"lr": 1}) == after, "argument parsing does not change a run"


def test_pretraining_keys_ignore_fine_tuning_code(tmp_path, monkeypatch):
    pkg = _package_copy(tmp_path, monkeypatch)
    before = runs.config_key({"kind": "labels"}, runs.PRETRAINING_SOURCES)
    (pkg / "training" / "finetune.py").write_text((pkg / "training" / "finetune.py").read_text() + "\n#\n")
    assert runs.config_key({"kind": "labels"}, runs.PRETRAINING_SOURCES) == before
    (pkg / "training" / "pretrain.py").write_text((pkg / "training" / "pretrain.py").read_text() + "\n#\n")
    assert runs.config_key({"kind": "labels"}, runs.PRETRAINING_SOURCES) != before


def test_data_builds_ignore_training_code(tmp_path, monkeypatch):
    pkg = _package_copy(tmp_path, monkeypatch)
    before = runs.source_hash(runs.DATA_SOURCES)
    (pkg / "training" / "engine.py").write_text((pkg / "training" / "engine.py").read_text() + "\n#\n")
    assert runs.source_hash(runs.DATA_SOURCES) == before
    (pkg / "phantom" / "render.py").write_text((pkg / "phantom" / "render.py").read_text() + "\n#\n")
    assert runs.source_hash(runs.DATA_SOURCES) != before


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
