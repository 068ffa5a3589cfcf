"""Training configs, schedules and the optimizer: errors are named, presets are the paper's."""

import math

import pytest
import torch

from rrgkit.training.config import ConfigError, load_config, parse_config, parse_override
from rrgkit.training.optim import build_optimizer, lr_factor, set_learning_rates, warmup_steps
from rrgkit.training.schedule import (
    ALL_GROUPS,
    PRESETS,
    Phase,
    ScheduleError,
    label_phrase,
    phase_at_epoch,
    phase_from_dict,
    preset_phases,
    task_targets,
    total_epochs,
)

REQUIRED = ["data.manifest=m.csv", "out=run"]


def test_override_values_are_yaml_typed():
    assert parse_override("optim.batch_size=4") == {"optim": {"batch_size": 4}}
    assert parse_override("data.augment=true") == {"data": {"augment": True}}
    cfg = load_config(None, [*REQUIRED, "optim.lr.vision=2e-5", "schedule.phases=[{epochs: 1, train: [lora]}]"])
    assert cfg.optim.lr["vision"] == pytest.approx(2e-5)
    assert cfg.schedule.explicit and [(p.epochs, p.train) for p in cfg.schedule.phases] == [(1, frozenset({"lora"}))]
    assert cfg.schedule.name == cfg.schedule.paper_name == "custom"


def test_unknown_key_names_path_file_and_allowed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {manifest: m.csv}\nout: run\noptim:\n  lr: {visoin: 1e-4}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "optim.lr.visoin" in message and str(path) in message and "vision" in message
    with pytest.raises(ConfigError, match="'optm'.*allowed keys here: checkpoint, data, eval, model, optim"):
        load_config(None, [*REQUIRED, "optm.lr=1"])


def test_scientific_notation_in_yaml_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {manifest: m.csv}\nout: run\noptim: {lr: {vision: 1e-4, mapper: 5e-5, lora: 5e-5}}\n")
    assert load_config(path).optim.lr == {"vision": 1e-4, "mapper": 5e-5, "lora": 5e-5}


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("optim.precision=fp16", "optim.precision"),
        ("optim.batch_size=0", "optim.batch_size"),
        ("schedule.preset=three-stage", "unknown schedule preset 'three-stage'"),
        ("schedule.phases=[{epochs: 1, train: [decoder]}]", "subset of"),
        ("model.lm.nam=x", "unknown key 'nam'"),
        ("seed=-1", "seed"),
    ],
)
def test_bad_values_are_named(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, [*REQUIRED, override])


def test_a_bad_value_is_blamed_on_where_it_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {manifest: m.csv}\noptim: {batch_size: 4}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["seed=1", "optim.batch_size=0"])
    assert str(err.value).startswith(f"{path} + override 'optim.batch_size=0': optim.batch_size")
    path.write_text("data: {manifest: m.csv}\noptim: {batch_size: -4}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["seed=1"])
    assert str(err.value).startswith(f"{path}: optim.batch_size")


def test_typed_config_round_trips_and_updates():
    cfg = load_config("configs/experiments/finetune-full.yaml")
    assert parse_config(cfg.to_dict()) == cfg
    assert cfg.schedule.paper_name == "FT-II" and [p.epochs for p in cfg.schedule.phases] == [1, 9]
    frozen = cfg.updated({"schedule": {"preset": "frozen"}})
    assert frozen.schedule.paper_name == "Frozen" and cfg.schedule.preset == "two-stage"
    assert cfg.updated(["seed=3"]).seed == 3
    with pytest.raises(ConfigError, match="variant: unknown key 'sed'"):
        cfg.updated({"sed": 3}, "variant")
    assert set(PRESETS) == {"frozen", "one-stage", "two-stage", "long-stage", "curriculum"}


def test_missing_required_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="'data.manifest' is required"):
        load_config(None, ["out=run"])
    with pytest.raises(ConfigError, match="'out' is required"):
        load_config(None, ["data.manifest=m.csv"]).out_path
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_presets_match_the_paper():
    one = preset_phases("one-stage", 5)
    two = preset_phases("two-stage", 5, 1)
    long = preset_phases("long-stage", 5)
    frozen = preset_phases("frozen", 5)
    assert total_epochs(one) == total_epochs(two) == 5  # same total epochs as one-stage
    assert [p.train for p in two] == [frozenset({"mapper", "lora"}), ALL_GROUPS]
    assert [p.epochs for p in two] == [1, 4]
    assert [p.epochs for p in long] == [5, 5]  # Appendix C: the full epochs in each stage
    assert all("vision" not in p.train for p in frozen)
    assert all("lora" in p.train for preset in (one, two, long, frozen) for p in preset)


def test_curriculum_phases():
    phases = preset_phases("curriculum", 6)
    assert [p.name for p in phases] == ["recognition", "reasoning", "reporting"]
    assert [p.data for p in phases] == ["labels", "report", "findings"]
    assert phases[0].train == frozenset({"mapper"}) and phases[-1].train == ALL_GROUPS
    assert total_epochs(phases) == 6
    with pytest.raises(ScheduleError, match="epochs >= 3"):
        preset_phases("curriculum", 2)


def test_two_stage_needs_a_second_stage():
    with pytest.raises(ScheduleError, match="stage1_epochs < epochs"):
        preset_phases("two-stage", 1, 1)


def test_explicit_phases_and_phase_lookup():
    phases = [phase_from_dict(entry, i) for i, entry in enumerate(
        [{"name": "a", "epochs": 2, "train": ["mapper"], "lr_scale": 0.5},
         {"epochs": 1, "train": ["lora", "vision"], "lrs": {"vision": 1e-6}}])]
    assert [phase_at_epoch(phases, e)[0] for e in range(3)] == [0, 0, 1]
    assert phases[0].group_lr("mapper", {"mapper": 1e-4}) == pytest.approx(5e-5)
    assert phases[1].group_lr("vision", {"vision": 1e-4}) == pytest.approx(1e-6)
    with pytest.raises(ScheduleError, match="unknown keys"):
        phase_from_dict({"epochs": 1, "train": ["lora"], "lr": 3}, 0)
    with pytest.raises(ScheduleError, match="positive integer"):
        Phase("x", 0, frozenset({"lora"}))


def test_task_targets():
    nan = math.nan
    labels = [[nan, nan, 1, 0, nan, -1, *[nan] * 8], [1, *[nan] * 13]]
    batch = {"findings": ["Heart is large.", "Clear."], "impression": ["Cardiomegaly.", ""], "labels": labels}
    assert task_targets(batch, "findings") == ["Heart is large.", "Clear."]
    assert task_targets(batch, "report") == ["Heart is large. Cardiomegaly.", "Clear."]
    assert task_targets(batch, "labels") == ["cardiomegaly, possible edema.", "no finding."]
    assert label_phrase([nan] * 14) == "no finding."


def test_warmup_cosine():
    assert warmup_steps(None, 0.1, 100) == 10
    assert warmup_steps(3, 0.1, 100) == 3
    factors = [lr_factor(s, 100, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] < 0.01


def test_optimizer_groups_and_frozen_lr():
    vision, mapper, lora = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = {"vision": list(vision.parameters()), "mapper": list(mapper.parameters()), "lora": list(lora.parameters())}
    lr = {"vision": 1e-5, "mapper": 1e-4, "lora": 2e-4}
    opt = build_optimizer(groups, lr, 0.1)
    assert {g["name"] for g in opt.param_groups} == {f"{n}{s}" for n in ALL_GROUPS for s in ("", ":no_decay")}
    assert all(g["weight_decay"] == 0 for g in opt.param_groups if g["name"].endswith(":no_decay"))
    lrs = set_learning_rates(opt, Phase("s1", 1, frozenset({"mapper", "lora"})), lr, 0.5)
    assert lrs == {"vision": 0.0, "mapper": 5e-5, "lora": 1e-4}
    with pytest.raises(ValueError, match="no learning rate for parameter group"):
        build_optimizer({**groups, "head": list(torch.nn.Linear(2, 2).parameters())}, lr, 0.1)


def test_adamw_leaves_parameters_without_grad_alone():
    """The loop relies on this: a frozen parameter (grad None) gets no state, no step and no weight decay."""
    frozen, trained = torch.nn.Parameter(torch.ones(3, 3)), torch.nn.Parameter(torch.ones(3, 3))
    opt = build_optimizer({"g": [frozen, trained]}, {"g": 0.1}, 0.5)
    trained.grad = torch.ones(3, 3)
    opt.step()
    assert torch.equal(frozen.detach(), torch.ones(3, 3)) and frozen not in opt.state
    assert not torch.equal(trained.detach(), torch.ones(3, 3))


def test_cli_takes_overrides_after_options(capsys):
    from rrgkit.cli import main

    assert main(["pretrain", "contrastive", "--config", "configs/pretrain_contrastive.yaml", "bogus.key=1"]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err
