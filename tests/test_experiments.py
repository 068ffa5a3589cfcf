"""The experiment layer: config merging, cached grids, seed summaries, paired differences, trace cache."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rrgkit.experiments import grid
from rrgkit.experiments.grid import (
    HEADLINE,
    deep_merge,
    describe_difference,
    headline_table,
    paired_differences,
    run_grid,
    schedule_table,
    summarise,
)
from rrgkit.experiments.trace import Trace, _load, _save, confidence_outcomes, similarity_view, trace_run
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.training.config import parse_config


def test_deep_merge_is_recursive_and_leaves_inputs_alone():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2]}
    update = {"a": {"c": {"d": 3, "f": 4}}, "e": [9]}
    merged = deep_merge(base, update)
    assert merged == {"a": {"b": 1, "c": {"d": 3, "f": 4}}, "e": [9]}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2]}
    merged["a"]["b"] = 99
    assert base["a"]["b"] == 1
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}  # a mapping replaces a scalar


@pytest.fixture
def fake_train(monkeypatch, tmp_path):
    """``train`` replaced by a recorder that writes a finished run's metrics.json from the config's seed."""
    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path / "runs"))
    calls = []

    def train(config, resume=False, progress=True):
        calls.append(config)
        value = 0.1 * config.seed + (0.05 if config.schedule.preset == "two-stage" else 0.0)
        metrics = {"best_epoch": 1, "epochs_run": 2, "converged": True, "metrics": {m: {"value": value} for m in HEADLINE},
                   "timing": {"train_seconds_this_process": 2.0, "test_seconds": 1.0}}
        with open(f"{config.out}/metrics.json", "w") as fh:
            json.dump(metrics, fh)
        return metrics

    monkeypatch.setattr("rrgkit.training.finetune.train", train)
    return calls


BASE = parse_config({"data": {"manifest": "m/manifest.csv"}, "schedule": {"preset": "two-stage", "epochs": 2}})
VARIANTS = {"one-stage": {"schedule": {"preset": "one-stage"}}, "two-stage": {}}


def test_run_grid_trains_each_run_once_and_reuses_finished_runs(fake_train, capsys):
    first = run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[exp] 1 of 4 runs (one-stage, seed 0): trained in") and "min to go" in lines[0]
    assert lines[-1].startswith("[exp] 4 of 4 runs") and "nothing left to train" in lines[-1]
    assert len(fake_train) == 4
    assert {(c.schedule.preset, c.seed) for c in fake_train} == {
        ("one-stage", 0), ("one-stage", 1), ("two-stage", 0), ("two-stage", 1)}
    assert first["run"].nunique() == 4 and (first["seconds"] == 3.0).all()
    assert first.set_index(["variant", "seed"]).loc[("two-stage", 1), "F1-CXP-14"] == pytest.approx(0.15)

    second = run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", progress=True)
    assert capsys.readouterr().out.strip() == "[exp] 4 of 4 runs finished earlier, reused"
    assert len(fake_train) == 4, "a finished run must be read, not retrained"
    pd.testing.assert_frame_equal(first, second)

    killed = first.run.iloc[0]
    (Path(killed) / "metrics.json").unlink()  # a run that never finished is resumed in its own folder
    run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", progress=False)
    assert len(fake_train) == 5 and fake_train[-1].out == killed

    run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", force=True, progress=False)
    assert len(fake_train) == 9, "force must retrain every run"
    run_grid(BASE.updated({"schedule": {"epochs": 3}}), VARIANTS, [0], "smoke", "exp", progress=False)
    assert len(fake_train) == 11, "a changed config is a new run"


def test_run_grid_builds_each_dataset_once_before_any_run(fake_train, monkeypatch):
    built = []
    monkeypatch.setattr("rrgkit.training.finetune.prepare_data", lambda config: built.append(len(fake_train)))
    run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", progress=False)
    assert built == [0], "one build, before the first run (side-by-side workers would race on the folder)"
    run_grid(BASE, VARIANTS, [0, 1], "smoke", "exp", progress=False)
    assert built == [0], "nothing to train, nothing to build"


def test_run_grid_refuses_an_empty_grid(fake_train):
    with pytest.raises(ValueError, match="at least one variant and one seed"):
        run_grid(BASE, VARIANTS, [], "smoke", "exp", progress=False)


def test_summarise_gives_mean_std_and_t_interval_per_variant():
    runs = pd.DataFrame({"variant": ["a", "a", "a", "b", "b", "b"], "seed": [0, 1, 2] * 2,
                         "F1-CXP-14": [0.1, 0.2, 0.3, 0.5, 0.5, 0.5]})
    table = summarise(runs, ["F1-CXP-14"]).set_index("variant")
    assert table.loc["a", "mean"] == pytest.approx(0.2)
    assert table.loc["a", "std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, df=2)
    assert table.loc["a", "ci_low"] == pytest.approx(0.2 - half, abs=1e-5)
    assert table.loc["a", "ci_high"] == pytest.approx(0.2 + half, abs=1e-5)
    assert table.loc["b", "std"] == 0 and table.loc["b", "n"] == 3


def _labels(positive: str | None) -> np.ndarray:
    row = np.zeros(14)
    if positive is None:
        row[0] = 1
    else:
        row[CHEXPERT_OBSERVATIONS.index(positive)] = 1
    return row


def _write_run(folder, ids, generated, references):
    folder.mkdir(parents=True)
    with (folder / "preds_test.jsonl").open("w") as fh:
        for i, g, r in zip(ids, generated, references):
            fh.write(json.dumps({"id": i, "generated": g, "reference": r, "token_prob_mean": 0.5}) + "\n")
    return str(folder)


def test_paired_differences_prefers_the_run_that_names_the_true_findings(tmp_path):
    truth = ["Cardiomegaly", "Pleural Effusion", "Pneumothorax", None] * 5
    sentence = {"Cardiomegaly": "The heart is enlarged.", "Pleural Effusion": "There is a large right pleural effusion.",
                "Pneumothorax": "There is a left pneumothorax.", None: "The lungs are clear."}
    ids = [f"s{i:02d}" for i in range(len(truth))]
    refs = [sentence[t] for t in truth]
    reference_labels = {i: _labels(t) for i, t in zip(ids, truth)}
    rows = []
    for seed in (0, 1):
        good = _write_run(tmp_path / f"good{seed}", ids[::-1], refs[::-1], refs[::-1])  # order must not matter
        bad = _write_run(tmp_path / f"bad{seed}", ids, ["The lungs are clear."] * len(ids), refs)
        rows += [{"variant": "good", "seed": seed, "run": good}, {"variant": "bad", "seed": seed, "run": bad}]
    runs = pd.DataFrame(rows)
    table = paired_differences(runs, "good", "bad", reference_labels, metrics=["F1-CXP-14"], n_boot=200)
    per_seed = table[table.seed.isin([0, 1])]
    assert len(per_seed) == 2 and (per_seed["diff"] > 0.3).all() and (per_seed["ci_low"] > 0).all()
    pooled = table[table.seed == "all (t over seeds)"].iloc[0]
    assert pooled["diff"] == pytest.approx(per_seed["diff"].mean())
    assert pooled["ci_low"] == pytest.approx(pooled["ci_high"])  # identical seeds: zero spread

    reverse = paired_differences(runs, "bad", "good", reference_labels, metrics=["F1-CXP-14"], n_boot=200)
    assert reverse["diff"].iloc[0] == pytest.approx(-table["diff"].iloc[0])
    with pytest.raises(ValueError, match="no seed has both"):
        paired_differences(runs, "good", "missing", reference_labels, metrics=["F1-CXP-14"])


def test_paired_differences_refuses_runs_tested_on_different_studies(tmp_path):
    a = _write_run(tmp_path / "a", ["x", "y"], ["The lungs are clear."] * 2, ["The lungs are clear."] * 2)
    b = _write_run(tmp_path / "b", ["x", "z"], ["The lungs are clear."] * 2, ["The lungs are clear."] * 2)
    runs = pd.DataFrame([{"variant": "a", "seed": 0, "run": a}, {"variant": "b", "seed": 0, "run": b}])
    with pytest.raises(ValueError, match="different studies"):
        paired_differences(runs, "a", "b", {k: _labels(None) for k in "xyz"})
    with pytest.raises(FileNotFoundError, match="preds_test.jsonl"):
        grid.predictions(tmp_path / "nowhere")


def _fabricated_trace(n=12, seed=0):
    rng = np.random.default_rng(seed)
    classes = ["Cardiomegaly", "Edema", None] * (n // 3)
    reference = np.array([_labels(c) for c in classes])
    generated = reference.copy()
    generated[::4] = _labels("Edema")  # some false positives
    # prompts: a shared component plus a class-specific one, so same-class pairs are more similar
    centres = {c: rng.normal(size=(3, 8)) for c in set(classes)}
    prompts = np.stack([5 + centres[c] + 0.1 * rng.normal(size=(3, 8)) for c in classes]).astype(np.float32)
    allocation = pd.DataFrame({"report": [0, 0, 1], "step": [1, 1, 1], "layer": [0, 1, 0], "alpha": [0.5, 1.5, 2.0],
                               "sink": [0.1, 0.6, 0.2], "alpha_no_sink": [0.4, 0.75, np.nan]})
    return Trace(np.array([f"s{i}" for i in range(n)]), reference, generated, rng.uniform(0.2, 0.9, n), prompts, allocation)


def test_trace_cache_round_trip_and_trace_run_reads_the_cache(tmp_path):
    from rrgkit.experiments.trace import TRACE_SOURCES
    from rrgkit.runs import source_hash

    trace = _fabricated_trace()
    cache = tmp_path / f"trace_all_{source_hash(TRACE_SOURCES)[:8]}.npz"
    _save(cache, trace)
    assert not list(tmp_path.glob("*.tmp.npz"))
    for loaded in (_load(cache), trace_run(tmp_path, progress=False)):  # no model needed
        np.testing.assert_array_equal(loaded.ids, trace.ids)
        np.testing.assert_array_equal(loaded.reference_labels, trace.reference_labels)
        np.testing.assert_array_equal(loaded.generated_labels, trace.generated_labels)
        np.testing.assert_allclose(loaded.confidence, trace.confidence)
        np.testing.assert_array_equal(loaded.soft_prompts, trace.soft_prompts)
        pd.testing.assert_frame_equal(loaded.allocation, trace.allocation, check_dtype=False)
        assert loaded.allocation["layer"].dtype.kind == "i" and list(loaded.allocation)[-1] == "alpha_no_sink"
    with pytest.raises(FileNotFoundError, match="config.json"):
        trace_run(tmp_path, max_reports=3, progress=False)  # another cache key: needs the run itself


def test_similarity_view_sorts_by_class_and_finds_the_class_structure():
    similarity, classes, delta = similarity_view(_fabricated_trace())
    assert classes == sorted(classes) and len(classes) == 12
    assert similarity.shape == (12, 12) and np.allclose(np.diag(similarity), 1)
    assert delta > 0
    outcomes = confidence_outcomes(_fabricated_trace())
    assert set(outcomes.outcome) == {"TP", "FP"}
    assert (outcomes.outcome == "FP").sum() == 2  # rows 0 (Cardiomegaly) and 8 (no finding) called Edema


def test_schedule_table_names_the_groups_each_phase_trains():
    table = schedule_table(BASE.updated({"schedule": {"epochs": 3}}).schedule)
    assert table.attrs["paper_name"] == "FT-II"
    assert list(table.index) == ["stage1", "stage2"]
    assert table.loc["stage1", "vision"] == "frozen" and table.loc["stage2", "vision"] == "trains"
    assert table.loc["stage2", "epochs"] == "2-3"
    assert (table["lora"] == "trains").all()


def test_headline_table_and_verdicts_follow_the_numbers():
    score = {"metrics": {m: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6} for m in HEADLINE}}
    table = headline_table({"model": score, "baseline": score})
    assert len(table) == 2 * len(HEADLINE) and set(table.system) == {"model", "baseline"}
    assert describe_difference(0.05, 0.01, 0.09, "a", "b", "F1").endswith("a is better.")
    assert describe_difference(-0.05, -0.09, -0.01, "a", "b", "F1").endswith("b is better.")
    assert "no evidence" in describe_difference(0.01, -0.02, 0.04, "a", "b", "F1")
    assert "no verdict" in describe_difference(0.01, np.nan, np.nan, "a", "b", "F1")


def _manifest(tmp_path):
    from rrgkit.data.manifest import write_manifest

    rows = []
    texts = {"normal": "The lungs are clear.", "effusion": "There is a small left pleural effusion."}
    for i, (kind, split) in enumerate([("normal", "train")] * 3 + [("effusion", "train")] * 2
                                      + [("normal", "test"), ("effusion", "test"), ("effusion", "val")]):
        labels = {o: np.nan for o in CHEXPERT_OBSERVATIONS}
        labels["No Finding" if kind == "normal" else "Pleural Effusion"] = 1.0
        rows.append({"id": f"s{i}", "images": f"images/s{i}.png", "views": "PA", "findings": texts[kind],
                     "impression": "", "comparison": "", **labels, "split": split, "source": "iu-xray"})
    return write_manifest(pd.DataFrame(rows), tmp_path / "data" / "manifest.csv")


def test_reference_points_score_the_modal_report_on_the_runs_test_studies(tmp_path):
    from rrgkit.data.manifest import read_manifest
    from rrgkit.experiments.reference_points import reference_reports, score_on_test, text_only_reports, writer_ceiling_reports

    manifest = _manifest(tmp_path)
    frame = read_manifest(manifest)
    assert text_only_reports(frame) == ["The lungs are clear."] * 2
    assert writer_ceiling_reports(manifest) is None  # not a built phantom folder: no ceiling
    scores = score_on_test(manifest, reference_reports(manifest, ids=["s6", "s5"]), ids=["s6", "s5"], n_boot=50)
    assert list(scores) == ["text only"]
    result = scores["text only"]
    assert result["n"] == 2
    from rrgkit.evaluation.nlg import rouge_l_per_report

    refs = ["There is a small left pleural effusion.", "The lungs are clear."]  # s6, s5
    expected = rouge_l_per_report(["The lungs are clear."] * 2, refs, True)
    assert expected[1] == pytest.approx(1.0) and expected[0] < 1
    assert result["metrics"]["ROUGE-L"]["value"] == pytest.approx(expected.mean())
    with pytest.raises(ValueError, match="not test studies"):
        reference_reports(manifest, ids=["s0"])


def test_experiment_config_keeps_paths_relative_to_the_project_root(tmp_path):
    from rrgkit.experiments.grid import experiment_config
    from rrgkit.paths import project_root

    config = experiment_config("configs/smoke.yaml", ["schedule.epochs=3"])
    assert config.out is None and config.schedule.epochs == 3
    assert config.data.manifest == "data/phantom/smoke/manifest.csv"  # portable run keys
    assert config.data.manifest_path == project_root() / "data" / "phantom" / "smoke" / "manifest.csv"
    manifest = _manifest(tmp_path)
    config = experiment_config("configs/smoke.yaml", dataset=manifest)
    assert config.data.manifest == str(manifest) and config.data.build is None
    with pytest.raises(FileNotFoundError, match="dataset"):
        experiment_config("configs/smoke.yaml", dataset=tmp_path / "nope.csv")


def test_plots_draw_labelled_axes_from_fabricated_results():
    import matplotlib.pyplot as plt  # conftest selects the Agg backend

    from rrgkit.experiments import plots

    log = pd.DataFrame({"step": range(1, 7), "epoch": [1, 1, 1, 2, 2, 2], "phase": ["stage1"] * 3 + ["stage2"] * 3,
                        "loss": [9.0, 8.0, 7.5, 7.0, 6.0, 5.5]})
    history = pd.DataFrame({"epoch": [1, 2, 1, 2], "F1-CXP-14": [0.1, 0.2, 0.15, 0.25], "variant": ["a", "a", "b", "b"]})
    table = headline_table({"model": {"metrics": {m: {"value": 0.3, "ci_low": 0.2, "ci_high": 0.4} for m in HEADLINE}}})
    trace = _fabricated_trace()
    similarity, classes, delta = similarity_view(trace)
    outcomes = confidence_outcomes(trace).assign(variant="a")
    allocation = pd.DataFrame({"layer": [0, 1, 0, 1], "mean": [0.5, 0.7, 0.6, 0.9], "ci_low": [0.4, 0.6, 0.5, 0.8],
                               "ci_high": [0.6, 0.8, 0.7, 1.0], "rung": ["a", "a", "b", "b"]})
    axes = [plots.plot_loss(log), plots.plot_validation(history.query("variant == 'a'")),
            plots.plot_validation(history, hue="variant"), plots.plot_systems(table),
            plots.plot_allocation(allocation, x="layer"), plots.plot_similarity(similarity, classes, f"Δ = {delta:.3f}"),
            plots.plot_confidence(outcomes), plots.plot_prompt_map(np.arange(24.0).reshape(12, 2), classes, "map")]
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in axes[5].get_yticklabels()] == sorted(set(classes))
    plt.close("all")



def test_plot_per_observation_draws_defined_scores_with_their_intervals():
    import matplotlib.pyplot as plt  # conftest selects the Agg backend

    from rrgkit.experiments import plots

    nan = float("nan")
    table = pd.DataFrame({"observation": ["Edema", "Fracture", "Pneumonia"], "support": [4, 0, 2],
                          "f1": [0.5, nan, 1.0], "f1_ci_low": [0.25, nan, 1.0], "f1_ci_high": [0.75, nan, 1.0],
                          "recall": [0.4, nan, 0.5], "recall_ci_low": [0.2, nan, nan], "recall_ci_high": [0.6, nan, nan]})
    ax = plots.plot_per_observation(table, title="by hand")
    assert ax.get_title() == "by hand" and "%" in ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Edema (n=4)", "Fracture (n=0)", "Pneumonia (n=2)"]
    points = ax.containers[0].lines[0].get_xydata()  # Fracture has no F1: not drawn, not drawn at 0
    assert points.tolist() == [[50.0, 0.0], [100.0, 2.0]]
    ax = plots.plot_per_observation(table, columns=("f1", "recall"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f1", "recall"]
    assert ax.containers[1].lines[0].get_xydata().tolist() == [[40.0, 0.2]]  # recall of Pneumonia has no interval
    plt.close("all")


@pytest.mark.slow
def test_two_workers_train_side_by_side_and_match_one_thread_runs(tmp_path, monkeypatch):
    """Runs trained by two single-threaded worker processes are the runs one single-threaded process trains."""
    import torch
    from test_training_integration import tiny_config, write_synthetic_manifest

    from rrgkit.training.finetune import train

    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path / "runs"))
    manifest = write_synthetic_manifest(tmp_path / "data", n=40)
    base = tiny_config(manifest, tmp_path / "unused", "schedule.epochs=2").updated({"out": None})
    variants = {"two-stage": {}, "one-stage": {"schedule": {"preset": "one-stage"}}}
    runs = run_grid(base, variants, [0], "test", "workers", progress=False, workers=2)
    assert len(runs) == 2 and runs.run.nunique() == 2
    torch.set_num_threads(1)
    alone = train(base.updated({"out": str(tmp_path / "alone"), "seed": 0}), progress=False)
    parallel = json.loads((Path(runs.set_index("variant").loc["two-stage", "run"]) / "metrics.json").read_text())
    assert parallel["metrics"]["F1-CXP-14"] == alone["metrics"]["F1-CXP-14"]
    assert parallel["best_val"] == alone["best_val"]
