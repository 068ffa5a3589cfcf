"""The training loop against a stand-in model that keeps the RRGModel contract.

The stand-in (a conv + BatchNorm "encoder", a linear "mapper", a linear "lora" head
and a frozen "base LM") records, at every forward call, which groups received
gradients in the previous backward, whether the encoder was in train mode and
the encoder's full state, so the tests can check the schedule exactly. Data,
labeler and scorer are stand-ins too; the real components are exercised in
test_training_integration.py.
"""

import json
import math
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rrgkit.training.config import load_config
from rrgkit.training.engine import TrainingInterrupted, epoch_batches, epoch_order
from rrgkit.training.finetune import train

WORDS = ["normal", "cardiomegaly", "effusion", "edema"]
LABEL_COLUMN = {"normal": 0, "cardiomegaly": 2, "effusion": 10, "edema": 5}
N_TRAIN = 24


@dataclass
class Generation:
    texts: list
    token_ids: list
    token_probs: list


class StandIn(torch.nn.Module):
    built: list = []

    def __init__(self, dropout: float):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.mapper = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(4, 8))
        self.head = torch.nn.Linear(8, len(WORDS))
        self.base = torch.nn.Linear(8, 8).requires_grad_(False)
        self.calls: list[dict] = []
        for group, params in self.parameter_groups().items():
            for p in params:
                p.register_hook(lambda g, group=group: self.calls[-1]["grads"].add(group) or g)
        StandIn.built.append(self)

    def parameter_groups(self):
        return {"vision": list(self.encoder.parameters()), "mapper": list(self.mapper.parameters()),
                "lora": list(self.head.parameters())}

    def set_trainable(self, groups):
        for name, params in self.parameter_groups().items():
            for p in params:
                p.requires_grad_(name in groups)
        if "vision" not in groups:
            self.encoder.eval()

    def _logits(self, tokens):
        return self.head(self.base(self.mapper(tokens)))

    def forward(self, images, reports):
        self._record(reports, cached=False)  # before the encoder runs (BatchNorm statistics move in train mode)
        return self._loss(self.encoder(images), reports)

    def loss_from_tokens(self, tokens, reports):
        self._record(reports, cached=True)
        return self._loss(tokens, reports)

    def _record(self, reports, cached):
        state = {k: v.clone() for k, v in self.encoder.state_dict().items()}
        self.calls.append({"grads": set(), "encoder_training": self.encoder.training, "encoder_state": state,
                           "cached": cached, "reports": list(reports)})

    def _loss(self, tokens, reports):
        target = torch.tensor([WORDS.index(r.split()[0]) if r.split()[0] in WORDS else 0 for r in reports])
        return torch.nn.functional.cross_entropy(self._logits(tokens), target)

    @torch.no_grad()
    def generate(self, images=None, max_new_tokens=8, num_beams=1, output_scores=False, output_attentions=False,
                 visual_tokens=None):
        probs = self._logits(self.encoder(images) if visual_tokens is None else visual_tokens).softmax(-1)
        best = probs.argmax(-1).tolist()
        return Generation([f"{WORDS[k]} seen." for k in best], [[k] for k in best],
                          [np.array([float(probs[j, k])]) for j, k in enumerate(best)])


class Data(torch.utils.data.Dataset):
    def __init__(self, manifest, split, image_size, views="frontal", augment=False, cache=True):
        import pandas as pd

        n = {"train": N_TRAIN, "val": 8, "test": 8}[split]
        gen = torch.Generator().manual_seed(len(split))
        self.items = []
        for i in range(n):
            word = WORDS[i % 4]
            labels = torch.full((14,), math.nan)
            labels[LABEL_COLUMN[word]] = 1.0
            image = torch.rand(1, image_size, image_size, generator=gen) * 0.2 + 0.25 * (i % 4)
            self.items.append({"id": f"{split}{i}", "image": image, "findings": f"{word} seen." + " really" * (i % 5),
                               "impression": "", "labels": labels})
        self.frame = pd.DataFrame([{k: it[k] for k in ("id", "findings", "impression")} for it in self.items])
        self.labels = torch.stack([it["labels"] for it in self.items])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate_reports(batch):
    return {"id": [b["id"] for b in batch], "image": torch.stack([b["image"] for b in batch]),
            "findings": [b["findings"] for b in batch], "impression": [b["impression"] for b in batch],
            "labels": torch.stack([b["labels"] for b in batch])}


def label_reports(texts):
    out = np.full((len(texts), 14), np.nan)
    for row, text in enumerate(texts):
        out[row, LABEL_COLUMN[text.split()[0]]] = 1
    return out


def score_reports(preds, refs, ref_labels=None, seed=0, meteor=True, backends=True):
    from rrgkit.evaluation.clinical import f1_scores

    value = float(f1_scores(label_reports(preds), ref_labels))
    return {"n": len(preds), "metrics": {"F1-CXP-14": {"value": value, "ci_low": value, "ci_high": value}}}


MODULES = {
    "rrgkit.models.rrg": {"build_model": lambda cfg: StandIn(cfg.mapper.dropout)},
    "rrgkit.data.loader": {"ManifestDataset": Data, "collate_reports": collate_reports, "check_images": lambda datasets: None},
    "rrgkit.evaluation.labeler": {"label_reports": label_reports},
    "rrgkit.evaluation.score": {"score_reports": score_reports},
}


def install(setitem=sys.modules.__setitem__):
    for name, attrs in MODULES.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        setitem(name, module)


@pytest.fixture
def standins(monkeypatch):
    install(lambda name, module: monkeypatch.setitem(sys.modules, name, module))
    StandIn.built.clear()
    monkeypatch.delenv("RRGKIT_STOP_AFTER_STEPS", raising=False)
    torch.set_num_threads(1)


def config(out, *extra):
    return load_config(None, ["data.manifest=unused.csv", "data.image_size=12", f"out={out}", "optim.batch_size=4",
                              "optim.lr={vision: 0.05, mapper: 0.05, lora: 0.05}", "optim.warmup_steps=1",
                              "eval.max_val_reports=8", "checkpoint.every_steps=4", *extra])


def test_epoch_order_is_seeded_and_batches_cover_every_item():
    assert epoch_order(10, 0, 1) == epoch_order(10, 0, 1) != epoch_order(10, 0, 2)
    assert [b for b in epoch_batches(10, 4, 3, 0)] == [epoch_order(10, 3, 0)[i:i + 4] for i in (0, 4, 8)]
    assert sorted(i for b in epoch_batches(10, 4, 3, 0) for i in b) == list(range(10))
    assert [len(b) for b in epoch_batches(10, 4, 3, 0, world=2)] == [4, 4, 2]
    assert [len(b) for b in epoch_batches(9, 4, 3, 0, world=2)] == [4, 4, 2]  # padded so each process gets one
    assert [len(b) for b in epoch_batches(10, 4, 3, 0, full_only=True)] == [4, 4]


def test_length_buckets_pad_less_and_stay_a_seeded_shuffle():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 300, size=1000).tolist()
    plain = epoch_batches(1000, 16, 0, 0)
    bucketed = epoch_batches(1000, 16, 0, 0, lengths)
    assert bucketed == epoch_batches(1000, 16, 0, 0, lengths) != epoch_batches(1000, 16, 0, 1, lengths)
    assert sorted(i for b in bucketed for i in b) == list(range(1000)) and len(bucketed) == len(plain)

    def padded(batches):  # tokens a batch computes: its size times its longest item
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(bucketed) < 0.7 * padded(plain)
    first_items = [b[0] for b in bucketed[:8]]
    assert sorted(lengths[i] for i in first_items) != [lengths[i] for i in first_items]  # batch order is shuffled


@pytest.mark.parametrize("preset", ["frozen", "one-stage", "two-stage", "long-stage", "curriculum"])
def test_groups_receiving_gradients_follow_the_schedule(standins, tmp_path, preset):
    train(config(tmp_path, f"schedule.preset={preset}", "schedule.epochs=3"), progress=False)
    model = StandIn.built[0]
    steps = N_TRAIN // 4
    per_epoch = [model.calls[e * steps:(e + 1) * steps] for e in range(len(model.calls) // steps)]
    # grads of call i are recorded during call i's backward
    seen = [set().union(*(c["grads"] for c in calls)) for calls in per_epoch]
    expected = {
        "frozen": [{"mapper", "lora"}] * 3,
        "one-stage": [{"vision", "mapper", "lora"}] * 3,
        "two-stage": [{"mapper", "lora"}] + [{"vision", "mapper", "lora"}] * 2,
        "long-stage": [{"mapper", "lora"}] * 3 + [{"vision", "mapper", "lora"}] * 3,
        "curriculum": [{"mapper"}, {"mapper", "lora"}, {"vision", "mapper", "lora"}],
    }[preset]
    assert seen == expected


def test_two_stage_keeps_encoder_bit_identical_in_stage_one(standins, tmp_path):
    train(config(tmp_path, "schedule.preset=two-stage", "schedule.epochs=2"), progress=False)
    model = StandIn.built[0]
    steps = N_TRAIN // 4
    initial = model.calls[0]["encoder_state"]
    assert any(k.endswith("running_mean") for k in initial)
    stage1, stage2 = model.calls[:steps], model.calls[steps:]
    assert not any(c["encoder_training"] for c in stage1)  # BatchNorm in eval mode while frozen
    first_of_stage2 = stage2[0]["encoder_state"]
    for key, value in initial.items():  # weights AND BatchNorm buffers untouched by stage 1
        assert torch.equal(value, first_of_stage2[key]), key
    assert all(c["encoder_training"] for c in stage2)
    assert not torch.equal(stage2[-1]["encoder_state"]["1.running_mean"], initial["1.running_mean"])
    assert not torch.equal(stage2[-1]["encoder_state"]["0.weight"], initial["0.weight"])


def test_loss_decreases_and_outputs_are_written(standins, tmp_path):
    metrics = train(config(tmp_path, "schedule.preset=one-stage", "schedule.epochs=6", "model.mapper.dropout=0.0",
                           "optim.lr={vision: 0.02, mapper: 0.02, lora: 0.02}"), progress=False)
    losses = [float(line.split(",")[3]) for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert len(losses) == 6 * N_TRAIN // 4
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6])  # the stand-in plateaus near ln 2
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert metrics["best_epoch"] == 1 + int(np.argmax([h["F1-CXP-14"] for h in history]))
    preds = [json.loads(line) for line in (tmp_path / "preds_test.jsonl").read_text().splitlines()]
    assert len(preds) == 8 and set(preds[0]) == {"id", "generated", "reference", "token_prob_mean"}
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == metrics["metrics"]


def _final(run: Path) -> tuple[dict, dict]:
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("timing")
    return metrics, load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.parametrize("preset", ["two-stage", "frozen"])  # frozen: resumed in an epoch that reads cached features
def test_resume_after_a_crash_gives_the_same_run(standins, tmp_path, monkeypatch, preset):
    extra = (f"schedule.preset={preset}", "schedule.epochs=3", "optim.grad_accum=2", "model.mapper.dropout=0.2")
    train(config(tmp_path / "a", *extra), progress=False)
    monkeypatch.setenv("RRGKIT_STOP_AFTER_STEPS", "5")  # mid-epoch 2 (3 steps per epoch), after a checkpoint at 4
    with pytest.raises(TrainingInterrupted):
        train(config(tmp_path / "b", *extra), progress=False)
    with pytest.raises(RuntimeError, match="--resume"):
        train(config(tmp_path / "b", *extra), progress=False)
    monkeypatch.delenv("RRGKIT_STOP_AFTER_STEPS")
    with pytest.raises(ValueError, match=r"config differs .*\['optim'\]"):
        train(config(tmp_path / "b", *extra, "optim.grad_clip=0.5"), resume=True, progress=False)
    train(config(tmp_path / "b", *extra), resume=True, progress=False)
    (metrics_a, params_a), (metrics_b, params_b) = _final(tmp_path / "a"), _final(tmp_path / "b")
    assert metrics_a == metrics_b
    assert params_a.keys() == params_b.keys() and all(torch.equal(params_a[k], params_b[k]) for k in params_a)
    log_a, log_b = ([r.split(",")[:4] for r in (p / "log.csv").read_text().splitlines()] for p in (tmp_path / "a", tmp_path / "b"))
    assert log_a == log_b
    untimed = [[{k: v for k, v in h.items() if not k.endswith("seconds")} for h in json.loads((p / "history.json").read_text())["history"]]
               for p in (tmp_path / "a", tmp_path / "b")]
    assert untimed[0] == untimed[1]


RUNNER = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import test_training_loop as t
t.install()
from rrgkit.training.finetune import train
train(t.config({out!r}, *{extra!r}), progress=False)
"""


@pytest.mark.slow
def test_two_processes_give_the_same_loss_curve(tmp_path):
    """Same global batch on 2 gloo processes as on 1: same losses (vision frozen: BatchNorm is per process)."""
    extra = ("schedule.preset=frozen", "schedule.epochs=2", "model.mapper.dropout=0.0")
    logs = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        script = tmp_path / f"run{procs}.py"
        script.write_text(RUNNER.format(tests=str(Path(__file__).parent), out=str(out), extra=extra))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--master_port",
               str(29500 + procs + os.getpid() % 1000), str(script)]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        logs[procs] = [float(r.split(",")[3]) for r in (out / "log.csv").read_text().splitlines()[1:]]
    assert len(logs[1]) == len(logs[2]) == 2 * N_TRAIN // 4
    np.testing.assert_allclose(logs[1], logs[2], rtol=1e-4, atol=1e-5)


def test_precision_can_change_between_runs_in_one_process(standins, tmp_path):
    """bf16 autocast after an fp32 run in the same process (accelerate's global state must not pin it)."""
    first = train(config(tmp_path / "fp32", "schedule.preset=frozen", "schedule.epochs=1"), progress=False)
    second = train(config(tmp_path / "bf16", "schedule.preset=frozen", "schedule.epochs=1", "optim.precision=bf16"),
                   progress=False)
    losses = {p: [float(r.split(",")[3]) for r in (tmp_path / p / "log.csv").read_text().splitlines()[1:]]
              for p in ("fp32", "bf16")}
    assert all(math.isfinite(v) for v in losses["bf16"]) and first["total_steps"] == second["total_steps"]
    assert losses["bf16"] != losses["fp32"]  # autocast really ran the layers in bfloat16
    np.testing.assert_allclose(losses["bf16"][0], losses["fp32"][0], rtol=0.05)


def test_frozen_encoder_features_are_cached_and_change_nothing(standins, tmp_path):
    extra = ("schedule.preset=two-stage", "schedule.epochs=3", "model.mapper.dropout=0.0")
    train(config(tmp_path / "cached", *extra), progress=False)
    train(config(tmp_path / "uncached", *extra, "data.cache=false"), progress=False)
    cached, uncached = StandIn.built[0].calls, StandIn.built[1].calls
    steps = N_TRAIN // 4
    assert all(c["cached"] for c in cached[:steps]) and not any(c["cached"] for c in cached[steps:])
    assert not any(c["cached"] for c in uncached)
    losses = {k: [float(r.split(",")[3]) for r in (tmp_path / k / "log.csv").read_text().splitlines()[1:]]
              for k in ("cached", "uncached")}
    np.testing.assert_allclose(losses["cached"], losses["uncached"], rtol=1e-5)


def test_patience_stops_a_run_that_stopped_improving(standins, tmp_path, monkeypatch):
    import rrgkit.training.finetune as finetune

    scores = iter([0.5, 0.6, 0.55, 0.58, 0.7, 0.9])
    monkeypatch.setattr(finetune.FineTuneTask, "validate", lambda self, phase: {"F1-CXP-14": next(scores)})
    metrics = train(config(tmp_path, "schedule.preset=one-stage", "schedule.epochs=6", "eval.patience=2"),
                    progress=False)
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]  # epochs 3 and 4 did not beat epoch 2
    assert metrics["best_epoch"] == 2 and metrics["stopped_early"] and metrics["converged"]
    assert metrics["epochs_run"] == 4 and all(h["seconds"] > 0 for h in history)


def test_a_run_whose_best_epoch_is_its_last_is_not_converged(standins, tmp_path, monkeypatch):
    import rrgkit.training.finetune as finetune

    scores = iter([0.1, 0.2, 0.3])
    monkeypatch.setattr(finetune.FineTuneTask, "validate", lambda self, phase: {"F1-CXP-14": next(scores)})
    metrics = train(config(tmp_path, "schedule.preset=one-stage", "schedule.epochs=3"), progress=False)
    assert metrics["best_epoch"] == 3 and not metrics["converged"] and not metrics["stopped_early"]


def test_batches_follow_report_length(standins, tmp_path):
    train(config(tmp_path, "schedule.preset=one-stage", "schedule.epochs=1", "model.mapper.dropout=0.0",
                 "data.bucketing=true"), progress=False)
    batches = [c["reports"] for c in StandIn.built[0].calls]
    spread = [max(map(len, b)) - min(map(len, b)) for b in batches]
    assert len(batches) == N_TRAIN // 4 and max(spread) <= len(" really")  # similar lengths share a batch


def test_batches_mix_report_lengths_by_default(standins, tmp_path):
    train(config(tmp_path, "schedule.preset=one-stage", "schedule.epochs=1", "model.mapper.dropout=0.0"), progress=False)
    batches = [c["reports"] for c in StandIn.built[0].calls]
    assert max(max(map(len, b)) - min(map(len, b)) for b in batches) > len(" really")


def test_same_seed_same_metrics(standins, tmp_path):
    extra = ("schedule.preset=two-stage", "schedule.epochs=2", "model.mapper.dropout=0.2", "seed=3")
    first, second = (train(config(tmp_path / name, *extra), progress=False) for name in ("a", "b"))
    for metrics in (first, second):
        metrics.pop("timing")
    assert first == second
    logs = [[r.split(",")[:4] for r in (tmp_path / name / "log.csv").read_text().splitlines()] for name in ("a", "b")]
    assert logs[0] == logs[1]
    train(config(tmp_path / "c", *extra[:-1], "seed=4"), progress=False)
    other_log = [r.split(",")[:4] for r in (tmp_path / "c" / "log.csv").read_text().splitlines()]
    assert other_log != logs[0], "another seed must change the run (data order, dropout)"


def _long_stage_with_scores(scores: list[float], out, monkeypatch) -> tuple[dict, list[dict]]:
    """A long-stage run (4 + 4 epochs, patience 2) whose validation returns ``scores`` in turn."""
    import rrgkit.training.finetune as finetune

    feed = iter(scores)
    monkeypatch.setattr(finetune.FineTuneTask, "validate", lambda self, phase: {"F1-CXP-14": next(feed)})
    metrics = train(config(out, "schedule.preset=long-stage", "schedule.epochs=4", "eval.patience=2"), progress=False)
    return metrics, json.loads((out / "history.json").read_text())["history"]


def test_patience_ends_a_long_stage_1_early_and_gives_stage_2_its_own(standins, tmp_path, monkeypatch):
    # stage 1 peaks at epoch 2 and stalls; stage 2 improves once, then stalls
    metrics, history = _long_stage_with_scores([0.3, 0.5, 0.4, 0.45, 0.6, 0.55, 0.58, 0.9], tmp_path, monkeypatch)
    assert [(h["epoch"], h["phase"]) for h in history] == [(1, "stage1"), (2, "stage1"), (3, "stage1"), (4, "stage1"),
                                                          (5, "stage2"), (6, "stage2"), (7, "stage2")]
    assert metrics["best_epoch"] == 5 and metrics["stopped_early"] and metrics["converged"]
    log = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert len(log) == 7 * N_TRAIN // 4


def test_a_stalled_stage_1_jumps_to_stage_2(standins, tmp_path, monkeypatch):
    metrics, history = _long_stage_with_scores([0.5, 0.4, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95], tmp_path, monkeypatch)
    assert [h["epoch"] for h in history] == [1, 2, 3, 5, 6, 7, 8]  # epoch 4 of stage 1 skipped
    assert metrics["best_epoch"] == 8 and not metrics["converged"] and not metrics["stopped_early"]
