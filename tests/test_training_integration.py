"""The training loop with the real pieces: phantom data, the RRG model, the labeler and the scorer.

A tiny model (resnet-tiny encoder at 32 px, a 2-layer from-scratch GPT-2) on 40
synthetic studies keeps every run to seconds on one core.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import rrgkit.models.rrg as rrg
from rrgkit.cli import main
from rrgkit.training.config import load_config
from rrgkit.training.engine import TrainingInterrupted
from rrgkit.training.finetune import train

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "data.image_size=32", "model.encoder.name=resnet-tiny", "model.mapper={kind: query, n_heads: 4, dropout: 0.0}",
    "model.lm={name: gpt2-scratch-tiny, lora: null}", "model.max_report_tokens=24", "optim.batch_size=8",
    "optim.lr={vision: 5.0e-3, mapper: 5.0e-3, lora: 5.0e-3}", "eval.max_new_tokens=8", "eval.max_val_reports=4",
    "checkpoint.every_steps=2", "schedule.preset=two-stage", "schedule.epochs=2", "eval.meteor=false",
    "eval.backends=false",
]


REPORTS = {  # image brightness level → (findings, positive CheXpert column)
    0: ("The lungs are clear. No pleural effusion.", "No Finding"),
    1: ("The heart is enlarged. No pleural effusion.", "Cardiomegaly"),
    2: ("There is a small right pleural effusion.", "Pleural Effusion"),
    3: ("Mild pulmonary edema is present.", "Edema"),
}


def write_synthetic_manifest(folder: Path, n: int = 40) -> Path:
    """``n`` studies whose report is a function of the image's brightness (independent of the phantom renderer)."""
    from PIL import Image

    from rrgkit.data.manifest import write_manifest
    from rrgkit.labels import CHEXPERT_OBSERVATIONS

    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        level = i % 4
        pixels = np.clip(rng.normal(40 + 60 * level, 20, (64, 64)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"s{i}.png")
        findings, positive = REPORTS[level]
        split = "train" if i < 0.7 * n else "val" if i < 0.8 * n else "test"
        row = {"id": f"s{i}", "images": f"images/s{i}.png", "views": "PA", "findings": findings, "impression": "",
               "comparison": "", "split": split, "source": "test"}
        row.update({name: (1.0 if name == positive else np.nan) for name in CHEXPERT_OBSERVATIONS})
        rows.append(row)
    return write_manifest(pd.DataFrame(rows), folder / "manifest.csv")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    torch.set_num_threads(1)
    return write_synthetic_manifest(tmp_path_factory.mktemp("data"))


def tiny_config(manifest, out, *extra):
    return load_config(REPO / "configs" / "smoke.yaml", [f"data.manifest={manifest}", "data.build=null",
                                                         f"out={out}", *TINY, *extra])


class Spy:
    """Wraps build_model: per forward call, records encoder state/mode and which groups got gradients."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        real = rrg.build_model
        monkeypatch.setattr(rrg, "build_model", lambda cfg: self.instrument(real(cfg)))

    def instrument(self, model):
        for group, params in model.parameter_groups().items():
            for p in params:
                p.register_hook(lambda g, group=group: self.calls[-1]["grads"].add(group) or g)

        def record(cached: bool) -> None:
            state = {k: v.clone() for k, v in model.encoder.state_dict().items()}
            self.calls.append({"grads": set(), "encoder_training": model.encoder.training, "state": state,
                               "cached": cached})

        def before_forward(module, args):  # before the encoder runs: BatchNorm statistics move in train mode
            module.in_forward = True
            if module.training:  # generation runs in eval mode and never calls forward
                record(cached=False)

        def after_forward(module, args, output):
            module.in_forward = False

        loss_from_tokens = model.loss_from_tokens

        def from_cached_tokens(tokens, reports):  # the loss of a step that reads the frozen encoder's cached output
            if not getattr(model, "in_forward", False):
                record(cached=True)
            return loss_from_tokens(tokens, reports)

        model.loss_from_tokens = from_cached_tokens
        model.register_forward_pre_hook(before_forward)
        model.register_forward_hook(after_forward)
        return model


RESUME_EXTRA = ("model.mapper={kind: query, n_heads: 4, dropout: 0.1}", "optim.grad_accum=2", "optim.batch_size=4")


@pytest.fixture(scope="module")
def reference_run(manifest, tmp_path_factory):
    """One two-stage run through ``rrgkit train`` with the model instrumented; shared by several tests."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = Spy(monkeypatch)
        args = [f"data.manifest={manifest}", "data.build=null", f"out={out}", *TINY, *RESUME_EXTRA]
        code = main(["train", "--config", str(REPO / "configs" / "smoke.yaml"), "--no-progress", *args])
    assert code == 0
    return out, spy.calls, json.loads((out / "metrics.json").read_text())


def test_two_stage_freezes_then_unfreezes_the_real_encoder(reference_run):
    _, calls, metrics = reference_run
    steps = len(calls) // 2  # one epoch per stage
    stage1, stage2 = calls[:steps], calls[steps:]
    assert len(stage2) == steps
    assert all(c["grads"] == {"mapper", "lora"} for c in stage1)
    assert all(c["cached"] for c in stage1) and not any(c["cached"] for c in stage2)  # frozen encoder: features cached
    assert all(c["grads"] == {"vision", "mapper", "lora"} for c in stage2)
    assert not any(c["encoder_training"] for c in stage1) and all(c["encoder_training"] for c in stage2)
    before, after_stage1 = calls[0]["state"], stage2[0]["state"]
    assert any("running_mean" in k for k in before)
    for key in before:  # weights and BatchNorm buffers bit-identical through stage 1
        assert torch.equal(before[key], after_stage1[key]), key
    end = stage2[-1]["state"]
    assert any(not torch.equal(before[k], end[k]) for k in before if "running_mean" in k)
    assert any(not torch.equal(before[k], end[k]) for k in before if k.endswith("weight"))
    for name in ("BLEU-4", "ROUGE-L", "F1-CXP-14", "F1-CXP-5"):
        assert 0.0 <= metrics["metrics"][name]["value"] <= 1.0


def test_loss_decreases(reference_run):
    out, _, _ = reference_run
    losses = [float(r.split(",")[3]) for r in (out / "log.csv").read_text().splitlines()[1:]]
    assert np.mean(losses[-2:]) < 0.75 * np.mean(losses[:2]), losses


def _final(run: Path):
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("timing")
    return metrics, load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def test_resume_after_a_crash_ends_with_the_same_metrics_and_weights(reference_run, manifest, tmp_path, monkeypatch):
    reference, _, metrics = reference_run
    monkeypatch.setenv("RRGKIT_STOP_AFTER_STEPS", str(metrics["total_steps"] // 2 + 1))  # mid-epoch 2, past a checkpoint
    with pytest.raises(TrainingInterrupted):
        train(tiny_config(manifest, tmp_path, *RESUME_EXTRA), progress=False)
    monkeypatch.delenv("RRGKIT_STOP_AFTER_STEPS")
    train(tiny_config(manifest, tmp_path, *RESUME_EXTRA), resume=True, progress=False)
    (metrics_a, weights_a), (metrics_b, weights_b) = _final(reference), _final(tmp_path)
    assert metrics_a == metrics_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert (reference / "preds_test.jsonl").read_text() == (tmp_path / "preds_test.jsonl").read_text()
    untimed = [[{k: v for k, v in h.items() if not k.endswith("seconds")} for h in json.loads((p / "history.json").read_text())["history"]]
               for p in (reference, tmp_path)]
    assert untimed[0] == untimed[1]


def test_generate_reproduces_the_test_predictions(reference_run, tmp_path):
    run, _, _ = reference_run
    out = tmp_path / "preds.jsonl"
    assert main(["generate", "--run", str(run), "--split", "test", "--out", str(out), "--no-progress"]) == 0
    regenerated = [json.loads(line) for line in out.read_text().splitlines()]
    written = [json.loads(line) for line in (run / "preds_test.jsonl").read_text().splitlines()]
    assert [r["generated"] for r in regenerated] == [r["generated"] for r in written]


def test_cli_errors_are_one_line(manifest, tmp_path, capsys):
    config = str(REPO / "configs" / "smoke.yaml")
    assert main(["train", "--config", config, "optim.lr.visoin=1"]) == 2
    assert "optim.lr.visoin" in capsys.readouterr().err
    assert main(["train", "--config", config, "schedule.preset=three-stage"]) == 2
    assert "three-stage" in capsys.readouterr().err
    offline = [f"data.manifest={manifest}", "data.build=null", f"out={tmp_path}", *TINY,
               "model.lm.name=nobody/not-a-cached-model"]
    assert main(["train", "--config", config, "--no-progress", *offline]) == 2
    err = capsys.readouterr().err
    assert "nobody/not-a-cached-model" in err and "HF_HUB_OFFLINE" in err
    assert main(["generate", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert "config.json" in capsys.readouterr().err
