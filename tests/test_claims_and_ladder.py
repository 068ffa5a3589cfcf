"""Cells, claims and the LM ladder: paired per seed, verdicts by the rule, learning rate chosen in the frozen setting."""

import json

import numpy as np
import pandas as pd
import pytest
from test_experiments import _labels, _write_run

from rrgkit.experiments.claims import cell_summary, claim, claims_table
from rrgkit.experiments.ladder import choose_learning_rate, lr_variants, parse_rungs, rung_config, size_pairs
from rrgkit.training.config import parse_config

SENTENCE = {"Cardiomegaly": "The heart is enlarged.", "Pleural Effusion": "There is a large right pleural effusion.",
            None: "The lungs are clear."}


def _grid(tmp_path, good_seeds=(0, 1, 2, 3, 4)):
    """Cell "good" names every true finding; cell "bad" says the lungs are clear; cell "same" equals "bad"."""
    truth = ["Cardiomegaly", "Pleural Effusion", None] * 10
    ids = [f"s{i:02d}" for i in range(len(truth))]
    refs = [SENTENCE[t] for t in truth]
    labels = {i: _labels(t) for i, t in zip(ids, truth)}
    rows = []
    for seed in good_seeds:
        good = list(refs)
        good[seed] = SENTENCE[None]  # each seed misses a different finding: some seed-to-seed spread
        for cell, texts in (("good", good), ("bad", [SENTENCE[None]] * len(ids)), ("same", [SENTENCE[None]] * len(ids))):
            run = _write_run(tmp_path / f"{cell}{seed}", ids, texts, refs)
            rows.append({"variant": cell, "seed": seed, "run": run, "converged": seed != 4})
    return pd.DataFrame(rows), labels


def test_claims_follow_the_rule_and_say_whether_cells_beat_text_only(tmp_path):
    runs, labels = _grid(tmp_path)
    better = claim(runs, "good", "bad", labels, "good beats bad", text_only=0.5, n_boot=300)  # bad: F1 1/3
    assert better.verdict.verdict == "replicates" and better.n_seeds == 5 and better.verdict.ci_low > 0
    assert better.a_beats_text_only and not better.b_beats_text_only
    assert better.unconverged_runs == 2  # seed 4 of both cells
    assert claim(runs, "bad", "good", labels, "bad beats good", n_boot=300).verdict.verdict == "contradicts"
    assert claim(runs, "good", "bad", labels, "good loses", direction=-1, n_boot=300).verdict.verdict == "contradicts"
    same = claim(runs, "same", "bad", labels, "same beats bad", n_boot=300)
    assert same.verdict.verdict == "equivalent" and same.verdict.diff == 0
    table = claims_table([better, same])
    assert list(table["verdict"]) == ["replicates", "equivalent"] and table.loc[0, "a beats text only"] == "yes"
    with pytest.raises(ValueError, match="no runs of cell"):
        claim(runs, "good", "missing", labels, "x")


def test_cell_summary_gives_seed_spread_and_an_interval(tmp_path):
    runs, labels = _grid(tmp_path)
    summary = cell_summary(runs, labels, metrics=["F1-CXP-14", "ROUGE-L"], n_boot=300).set_index(["cell", "metric"])
    good = summary.loc[("good", "F1-CXP-14")]
    assert good["seeds"] == 5 and good["sd"] > 0 and good["ci_low"] < good["mean"] < good["ci_high"]
    assert summary.loc[("bad", "F1-CXP-14"), "sd"] == 0
    assert good["not converged"] == 1


def test_rungs_parse_and_name_bad_entries():
    rungs = parse_rungs([{"name": "tiny", "lm": "gpt2-scratch-tiny", "pretrain_lm": "configs/pretrain_lm.yaml",
                          "lrs": ["1e-3", 3e-3], "seeds": [0, 1]},
                         {"name": "tiny-full", "lm": "gpt2-scratch-tiny", "lora": None}])
    assert rungs[0].lrs == (1e-3, 3e-3) and rungs[0].tuning == "LoRA r=8" and rungs[1].tuning == "full fine-tuning"
    with pytest.raises(ValueError, match=r"rungs\[0\]: needs name and lm"):
        parse_rungs([{"name": "x", "lm": "y", "epochs": 3}])
    with pytest.raises(ValueError, match="unique"):
        parse_rungs([{"name": "x", "lm": "y"}, {"name": "x", "lm": "z"}])


def test_size_pairs_compare_rungs_adapted_alike():
    rungs = parse_rungs([{"name": "tiny", "lm": "a"}, {"name": "tiny-ft", "lm": "a", "lora": None},
                         {"name": "mini", "lm": "b"}, {"name": "mini-ft", "lm": "b", "lora": None},
                         {"name": "smol", "lm": "c"}])
    assert [(s.name, b.name) for s, b in size_pairs(rungs)] == [("tiny", "mini"), ("tiny-ft", "mini-ft"), ("mini", "smol")]
    assert size_pairs(rungs[:2]) == []


def test_rung_config_sets_lora_on_a_pretrained_lm_and_refuses_it_on_a_random_one(tmp_path):
    base = parse_config({"data": {"manifest": "m/manifest.csv"}})
    (rung,) = parse_rungs([{"name": "smol", "lm": "smollm2-135m"}])
    config, summary = rung_config(base, rung, "test")
    assert config.model.lm.name == "smollm2-135m" and config.model.lm.lora.r == 8 and summary == {}
    (scratch,) = parse_rungs([{"name": "tiny", "lm": "gpt2-scratch-tiny"}])  # no pretraining: LoRA cannot work
    with pytest.raises(ValueError, match="LoRA does not apply"):
        rung_config(base, scratch, "test")


def test_learning_rate_is_chosen_on_validation_in_the_frozen_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path / "runs"))
    seen = []

    def train(config, resume=False, progress=True):
        seen.append((config.schedule.preset, config.optim.lr["mapper"], config.optim.lr["lora"], config.optim.lr["vision"]))
        best = {1e-3: 0.4, 3e-3: 0.5, 1e-2: 0.5}[config.optim.lr["mapper"]]
        metrics = {"best_epoch": 2, "epochs_run": 4, "converged": True, "best_val": best,
                   "metrics": {m: {"value": 0.0} for m in ("F1-CXP-14", "F1-CXP-5", "BLEU-4", "ROUGE-L")}}
        (config.out_path / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr("rrgkit.training.finetune.train", train)
    base = parse_config({"data": {"manifest": "m/manifest.csv"}, "optim": {"lr": {"vision": 1e-4}}})
    lr, runs = choose_learning_rate(base, [1e-3, 3e-3, 1e-2], "test", "lr")
    assert lr == 3e-3  # best validation score; the tie with 1e-2 goes to the smaller rate
    assert {s[0] for s in seen} == {"frozen"} and all(s[1] == s[2] and s[3] == 1e-4 for s in seen)
    assert list(runs["lr"]) == [1e-3, 3e-3, 1e-2]
    assert set(lr_variants([1e-3])) == {"lr 0.001"}
    everything = lr_variants([5e-5], ["vision", "mapper", "lora"])["lr 5e-05"]["optim"]["lr"]
    assert everything == {"vision": 5e-5, "mapper": 5e-5, "lora": 5e-5}  # the paper's one rate for all
    assert np.isclose(runs.set_index("lr").loc[3e-3, "best_val"], 0.5)
