"""The bundled configs load, the paper's config builds with stand-in weights, and pretraining runs."""

import json
from pathlib import Path

import pytest
import torch

from rrgkit.training.config import load_config
from rrgkit.training.pretrain import info_nce, lm_corpus, load_pretrain_config, pretrain_contrastive, pretrain_lm

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["smoke", "full", "paper"])
def test_bundled_training_configs_are_valid(name):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    phases = config.schedule.phases
    assert [p.name for p in phases] == ["stage1", "stage2"]
    assert "vision" not in phases[0].train and phases[0].epochs == 1


def test_paper_config_builds_with_tiny_stand_in_weights(tmp_path):
    """ResNet50 at 480 px → 225 visual tokens, gradient checkpointing, a GPT-2-structured LM from a local folder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from rrgkit.models.lm import load_tokenizer
    from rrgkit.models.rrg import build_model

    torch.set_num_threads(1)
    tokenizer = load_tokenizer("gpt2-scratch-tiny")
    folder = tmp_path / "gpt2-stand-in"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=64, n_head=2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = load_config(REPO / "configs" / "paper.yaml", [f"model.lm.name={folder}"])
    assert config.data.image_size == 480 and config.optim.batch_size == 16
    assert [p.epochs for p in config.schedule.phases] == [1, 49]
    model = build_model(config.model)
    assert model.encoder.n_tokens(480) == 225
    assert model.soft_prompts(torch.rand(1, 1, 480, 480)).shape[:2] == (1, 10)
    model.set_trainable({"mapper", "lora"})
    loss = model(torch.rand(1, 1, 480, 480), ["The heart is normal in size."])
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in model.parameter_groups()["vision"])


def test_info_nce_prefers_matched_pairs():
    x = torch.eye(4)
    scale = torch.tensor(3.0)
    assert info_nce(x, x, scale) < info_nce(x, x.roll(1, 0), scale)


def test_pretrain_config_errors():
    with pytest.raises(ValueError, match="unknown key 'optim.lrr'"):
        load_pretrain_config("lm", None, ["out=x", "optim.lrr=1"])
    with pytest.raises(ValueError, match="data.manifest"):
        load_pretrain_config("contrastive", None, ["out=x"])
    with pytest.raises(ValueError, match="unknown pretraining kind"):
        load_pretrain_config("mlm", None, [])


def test_lm_corpus_drops_evaluation_reports(tmp_path):
    import pandas as pd

    from rrgkit.data.manifest import write_manifest
    from rrgkit.labels import CHEXPERT_OBSERVATIONS

    texts, counts = lm_corpus({"iu_reports": True, "manifest": None, "exclude_manifest": None})
    assert counts["iu"] == counts["empty"] + len(texts) and all(t.strip() for t in texts)
    held_out = texts[:3]
    rows = [{"id": f"x{i}", "images": "a.png", "views": "PA", "findings": t, "impression": "", "comparison": "",
             "split": "test", "source": "test", **{c: None for c in CHEXPERT_OBSERVATIONS}} for i, t in enumerate(held_out)]
    path = write_manifest(pd.DataFrame(rows), tmp_path / "manifest.csv")
    kept, counts = lm_corpus({"iu_reports": True, "manifest": None, "exclude_manifest": str(path)})
    assert not set(held_out) & set(kept)
    assert counts["excluded_eval_reports"] == sum(t in set(held_out) for t in texts) == len(texts) - len(kept)


def test_pretrained_lm_folder_loads_as_model_lm_name(tmp_path, monkeypatch):
    import rrgkit.training.pretrain as pretrain
    from rrgkit.models.rrg import build_model

    torch.set_num_threads(1)
    config = load_pretrain_config("lm", None, [f"out={tmp_path}", "optim.epochs=3", "optim.batch_size=32",
                                               "optim.lr=3e-3", "max_length=24", "data.val_frac=0.05"])
    texts, counts = lm_corpus(config.data)
    monkeypatch.setattr(pretrain, "lm_corpus", lambda data_cfg: (texts[:96], counts))  # a slice keeps it fast
    summary = pretrain_lm(config, progress=False)
    assert summary["loss_last_epoch"] < summary["loss_first_epoch"]
    assert json.loads((tmp_path / "pretrain.json").read_text())["kind"] == "lm"
    model = build_model({"encoder": {"name": "resnet-tiny"}, "mapper": {"n_heads": 4},
                         "lm": {"name": str(tmp_path / "model"), "lora": None}})
    assert model.lm.config.n_layer == 2


def test_contrastive_pretraining_writes_loadable_encoder_weights(tmp_path):
    from test_training_integration import write_synthetic_manifest

    from rrgkit.models.rrg import build_model

    torch.set_num_threads(1)
    manifest = write_synthetic_manifest(tmp_path / "data", n=32)
    config = load_pretrain_config("contrastive", None, [f"out={tmp_path / 'run'}", f"data.manifest={manifest}",
                                                        "data.image_size=32", "encoder.name=resnet-tiny",
                                                        "optim.epochs=3", "optim.batch_size=8", "text.max_length=16"])
    summary = pretrain_contrastive(config, progress=False)
    assert summary["steps"] == 3 * (22 // 8)
    weights = tmp_path / "run" / "encoder.safetensors"
    model = build_model({"encoder": {"name": "resnet-tiny", "weights": str(weights)}, "mapper": {"n_heads": 4},
                         "lm": {"name": "gpt2-scratch-tiny", "lora": None}})
    from safetensors.torch import load_file

    saved = load_file(str(weights))
    assert all(torch.equal(saved[k], v) for k, v in model.encoder.backbone.state_dict().items())


def test_label_targets_count_uncertain_as_positive_and_blank_as_negative():
    from rrgkit.training.pretrain import label_targets

    labels = torch.tensor([[1.0, -1.0, 0.0, float("nan")]])
    assert label_targets(labels).tolist() == [[1.0, 1.0, 0.0, 0.0]]


def test_labels_pretraining_learns_and_reports_validation_auroc(tmp_path):
    from test_training_integration import write_synthetic_manifest

    from rrgkit.training.pretrain import pretrain_labels

    torch.set_num_threads(1)
    manifest = write_synthetic_manifest(tmp_path / "data", n=40)
    config = load_pretrain_config("labels", None, [f"out={tmp_path / 'run'}", f"data.manifest={manifest}",
                                                   "data.image_size=32", "encoder.name=resnet-tiny",
                                                   "optim.epochs=4", "optim.batch_size=7"])
    summary = pretrain_labels(config, progress=False)
    assert summary["steps"] == 4 * 4  # 28 training studies in batches of 7
    assert summary["loss_last_epoch"] < summary["loss_first_epoch"]
    assert set(summary["val_auroc"]) <= {"No Finding", "Cardiomegaly", "Pleural Effusion", "Edema"}
    assert summary["val_auroc"] and all(0.0 <= v <= 1.0 for v in summary["val_auroc"].values())
    assert (tmp_path / "run" / "encoder.safetensors").is_file()


def test_pretrained_overrides_fit_the_fine_tuning_model_and_are_reused(tmp_path, monkeypatch):
    from test_training_integration import tiny_config, write_synthetic_manifest

    import rrgkit.experiments.pretrained as pretrained
    from rrgkit.models.rrg import build_model

    torch.set_num_threads(1)
    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path / "runs"))
    manifest = write_synthetic_manifest(tmp_path / "data", n=32)
    config = tiny_config(manifest, tmp_path / "unused")
    encoder_cfg = tmp_path / "labels.yaml"
    encoder_cfg.write_text(f"data: {{manifest: {manifest}}}\nencoder: {{name: resnet50}}\noptim: {{epochs: 1, batch_size: 8}}\n")
    overrides, summaries = pretrained.pretrained_overrides(config, "test", encoder=("labels", str(encoder_cfg)))
    assert summaries["encoder"]["config"]["encoder"]["name"] == config.model.encoder.name  # not the file's resnet50
    assert summaries["encoder"]["config"]["data"]["image_size"] == config.data.image_size
    weights = overrides["model"]["encoder"]["weights"]
    assert Path(weights).is_file() and str(tmp_path / "runs" / "test" / "pretrain-labels") in weights
    build_model(config.updated(overrides).model)

    def fail(*args, **kwargs):
        raise AssertionError("a finished pretraining run must be reused")

    monkeypatch.setitem(pretrained.PRETRAIN, "labels", fail)
    again, _ = pretrained.pretrained_overrides(config, "test", encoder=("labels", str(encoder_cfg)))
    assert again == overrides
    with pytest.raises(ValueError, match="labels or contrastive|labels, contrastive"):
        pretrained.pretrained_overrides(config, "test", encoder=("mae", str(encoder_cfg)))


@pytest.mark.slow
def test_kill_9_during_pretraining_then_resume_gives_the_same_encoder(tmp_path):
    """A pretraining killed with SIGKILL after a checkpoint and resumed ends with bit-identical weights."""
    import os
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file
    from test_training_integration import write_synthetic_manifest

    manifest = write_synthetic_manifest(tmp_path / "data", n=40)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def command(out, *extra):
        return [sys.executable, "-m", "rrgkit.cli", "pretrain", "labels", f"out={out}", f"data.manifest={manifest}",
                "data.image_size=32", "encoder.name=resnet-tiny", "optim.epochs=8", "optim.batch_size=4",
                "checkpoint.every_steps=3", "--no-progress", *extra]

    done = subprocess.run(command(tmp_path / "a"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    victim = subprocess.Popen(command(tmp_path / "b"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = tmp_path / "b" / "checkpoints" / "last" / "progress.json"
    deadline = time.monotonic() + 300
    while not progress.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()  # SIGKILL: no handler runs, no file is closed cleanly
    assert victim.wait() == -9, "the run finished before it could be killed"
    assert not (tmp_path / "b" / "pretrain.json").exists()
    resumed = subprocess.run(command(tmp_path / "b", "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (load_file(str(tmp_path / run / "encoder.safetensors")) for run in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logs = [(tmp_path / run / "log.csv").read_text().splitlines() for run in ("a", "b")]
    assert [r.split(",")[:4] for r in logs[0]] == [r.split(",")[:4] for r in logs[1]]
