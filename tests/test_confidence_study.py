"""Confidence, per-finding confidence, Figure 4's examples and the report browser, on one tiny trained run."""

import html
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from test_training_integration import tiny_config, write_synthetic_manifest

from rrgkit.analysis.finding_statements import finding_statements
from rrgkit.book.report_browser import ReportBrowser, examples_html
from rrgkit.data.manifest import read_manifest, write_manifest
from rrgkit.evaluation.verdicts import VERDICTS
from rrgkit.experiments import confidence_study as study
from rrgkit.experiments.finding_probe import finding_scores, statement_log_probs
from rrgkit.experiments.report_examples import report_examples
from rrgkit.experiments.study_view import END, RunViewer
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.privacy import PrivacyError
from rrgkit.training.finetune import train

CELL = "tiny · two-stage"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-stage run of the tiny model on 40 synthetic studies (8 test, 4 validation), its labels and statements."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("confidence")
    manifest = write_synthetic_manifest(folder / "data")
    run = folder / "run"
    train(tiny_config(manifest, run, "schedule.epochs=3"), progress=False)
    frame = read_manifest(manifest)
    labels = dict(zip(frame["id"], frame[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=float)))
    statements = finding_statements(frame.loc[frame.split == "train", "findings"])
    runs = pd.DataFrame([{"variant": CELL, "seed": 0, "run": str(run), "converged": True}])
    return run, manifest, labels, statements, runs


def test_statement_log_probs_sum_each_sentences_tokens_for_each_image(tiny):
    model = RunViewer(tiny[0]).model.eval()
    dataset = RunViewer(tiny[0]).dataset
    images = torch.stack([dataset[i]["image"] for i in range(3)])
    sentences = ["The heart is enlarged.", "No pleural effusion.", "Mild pulmonary edema is present."]
    logp = statement_log_probs(model, images, sentences, rows=2)  # chunks that split one image's sentences
    assert logp.shape == (3, 3) and np.all(logp < 0)
    for i in range(3):
        for k, sentence in enumerate(sentences):
            assert logp[i, k] == pytest.approx(statement_log_probs(model, images[i:i + 1], [sentence])[0, 0], abs=1e-4)
    # with the end-of-report token cut off (report longer than max_report_tokens) the sum is minus the loss times the tokens
    tokens = len(model.report_ids([sentences[2]])[0]) - 1
    model.max_report_tokens = tokens - 1
    loss = model(images[:1], [sentences[2]]).item()
    assert statement_log_probs(model, images[:1], [sentences[2]])[0, 0] == pytest.approx(-(tokens - 1) * loss, rel=1e-5)


def test_finding_scores_are_cached_and_defined_where_both_sentences_exist(tiny, monkeypatch):
    run, _, _, statements, _ = tiny
    scores = finding_scores(run, statements, ["test"])["test"]
    assert scores.log_odds.shape == (8, len(PATHOLOGIES)) and list(scores.ids) == [f"s{i}" for i in range(32, 40)]
    both = statements.affirm.map(lambda s: isinstance(s, str)) & statements.deny.map(lambda s: isinstance(s, str))
    assert both.tolist() == [name == "Pleural Effusion" for name in PATHOLOGIES]  # the synthetic reports deny only effusion
    assert np.all(np.isfinite(scores.log_odds[:, both.to_numpy()])) and np.all(np.isnan(scores.log_odds[:, ~both.to_numpy()]))
    monkeypatch.setattr("rrgkit.training.generation.load_run_model", lambda run: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(finding_scores(run, statements, ["test"])["test"].log_odds, scores.log_odds)


def test_probe_run_rewrites_reports_and_the_tables_read_it(tiny):
    run, _, labels, statements, _ = tiny
    probe = study.probe_run(str(run), CELL, 0, statements, labels)
    assert probe.temperature > 0 and set(probe.thresholds) == {"Pleural Effusion"}
    assert len(probe.reports) == 8 and len(probe.pairs) == 8 * len(PATHOLOGIES)
    reference = dict(zip(probe.reports.id, probe.reports.reference))
    calibration = study.calibration_table([probe])
    assert calibration.pairs.tolist() == [8] and 0 <= calibration["ECE after"].iloc[0] <= 1
    assert set(study.probe_pairs([probe]).observation) == {"Pleural Effusion"}
    comparison = study.edit_comparison([probe], labels, reference, n_boot=50).set_index("a − b")
    assert comparison.loc["generated − encoder + classifier", "diff"] <= 0  # the "classifier" here writes the references
    assert set(comparison.verdict) <= set(VERDICTS)
    recall = study.recall_table([probe], labels, reference)
    assert list(recall.columns) == ["cell", "observation", "support", "generated", "edited", "encoder + classifier"]
    assert list(study.edit_comparison([probe], labels, None, n_boot=50)["a − b"]) == ["edited − generated"]
    assert set(recall.observation) <= set(PATHOLOGIES)
    flags = study.flagging_table([probe], n_boot=50)
    assert list(flags.score) == ["AC (Eq. 4)", study.FINDING_CONFIDENCE, f"{study.FINDING_CONFIDENCE} − AC"]


def test_flagging_compares_both_confidences_on_the_same_stated_findings():
    pairs = pd.DataFrame({"study": ["a", "a", "b", "c"], "report": [0, 0, 1, 2],
                          "observation": ["Cardiomegaly", "Edema", "Cardiomegaly", "Cardiomegaly"],
                          "log_odds": [2.0, -1.0, 0.5, np.nan], "present": [True, False, False, True],
                          "stated": [True, True, True, True]})
    reports = pd.DataFrame({"id": ["a", "b", "c"], "AC": [0.9, 0.5, 0.7]})
    probes = [study.ProbeRun(CELL, seed, 1.0, {}, reports, pairs) for seed in (0, 1)]
    outcomes = study.flagging_outcomes(probes)
    assert outcomes.outcome.tolist() == ["TP", "FP", "FP", "TP"] * 2 and outcomes.n_reports.unique().tolist() == [3]
    flags = study.flagging_table(probes, n_boot=50).set_index("score")
    # rows with a finding confidence: a/Cardiomegaly TP (AC .9, conf .88), a/Edema FP (.9, .27), b FP (.5, .62)
    assert flags.loc["AC (Eq. 4)", "AUROC"] == pytest.approx(0.75)  # tie with a's own FP, win over b's
    assert flags.loc[study.FINDING_CONFIDENCE, "AUROC"] == pytest.approx(1.0)
    assert flags.loc[f"{study.FINDING_CONFIDENCE} − AC", "AUROC"] == pytest.approx(0.25)
    assert flags.seeds.tolist() == [2, 2, 2]


def _written_runs(tmp_path):
    """Two seeds' test reports of three studies, with known average confidences."""
    texts = {"heart": "The heart is enlarged.", "edema": "Mild pulmonary edema is present."}
    written = {0: [("x", "heart", 0.9), ("y", "heart", 0.4), ("z", "edema", 0.3)],
               1: [("x", "heart", 0.8), ("y", "edema", 0.7), ("z", "heart", 0.2)]}
    rows = []
    for seed, reports in written.items():
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "preds_test.jsonl").write_text("".join(
            json.dumps({"id": i, "generated": texts[k], "reference": "-", "token_prob_mean": ac}) + "\n"
            for i, k, ac in reports))
        rows.append({"variant": CELL, "seed": seed, "run": str(folder), "converged": seed == 0})
    labels = {i: np.full(14, np.nan) for i in "xyz"}
    labels["x"][CHEXPERT_OBSERVATIONS.index("Cardiomegaly")] = 1
    labels["y"][CHEXPERT_OBSERVATIONS.index("Edema")] = 1
    labels["z"][0] = 1
    return pd.DataFrame(rows), labels


def test_headline_outcomes_separability_and_the_c6_verdict(tmp_path):
    runs, labels = _written_runs(tmp_path)
    outcomes = study.headline_outcomes(runs, labels)
    assert outcomes.outcome.tolist() == ["TP", "FP", "FP", "TP", "FP", "TP"]  # seed 0: x, y, z; seed 1: x, z, y
    assert outcomes.study.tolist() == ["x", "y", "z", "x", "z", "y"] and outcomes.n_reports.unique().tolist() == [3]
    table = study.separability_table(outcomes, n_boot=100).set_index("observation")
    assert table.loc["all", "AUROC"] == 1.0 and table.loc["all", "seeds"] == 2  # every TP above every FP, in both seeds
    assert table.loc["all", ["TP", "FP"]].tolist() == [3, 3]
    assert table.loc["Cardiomegaly", "seeds"] == 2 and np.isnan(table.loc["Edema", "AUROC"])  # edema: no seed has both
    silent = study.separability_table(outcomes.iloc[:0], cells=[CELL], n_boot=10)
    assert silent[["observation", "TP", "FP"]].values.tolist() == [["all", 0, 0]] and np.isnan(silent.AUROC.iloc[0])
    per_seed = study.seed_separability(outcomes, n_boot=100).query("observation == 'all'")
    assert per_seed.seed.tolist() == [0, 1] and per_seed.AUROC.tolist() == [1.0, 1.0]
    assert study.seed_separability(outcomes.iloc[:0]).empty
    result = study.confidence_claim(outcomes, runs, CELL, n_boot=100)
    assert result.claim == f"C6 ({CELL})" and result.verdict.verdict == "contradicts"  # AC separates them here
    assert result.verdict.diff == pytest.approx(0.5) and result.unconverged_runs == 1 and result.n_seeds == 2


def test_examples_are_picked_by_rule_and_rendered(tiny):
    _, _, labels, _, runs = tiny
    examples = report_examples(runs, labels)
    assert examples.pick.tolist() == ["worst", "median", "best"]
    assert examples.F1.is_monotonic_increasing
    page = examples_html(examples, "Figure 4 (test profile)")
    assert page.count("<tr>") == 4 and html.escape(examples.reference.iloc[0]) in page


def test_the_browser_shows_what_the_run_wrote_for_the_study_picked(tiny):
    run = tiny[0]
    browser = ReportBrowser({"tiny": run})
    browser.widget()
    study_id = browser.study_ids[3]
    browser.study_picker.value = study_id  # what a click does: the callback renders the study
    shown = browser.display.value
    written = {json.loads(line)["id"]: json.loads(line) for line in (run / "preds_test.jsonl").read_text().splitlines()}
    view = browser.viewer("tiny").view(study_id)
    assert view.generated == written[study_id]["generated"]  # the browser regenerates exactly the tested report
    assert np.mean(view.probs) == pytest.approx(written[study_id]["token_prob_mean"], abs=1e-6)
    assert study_id in shown and html.escape(written[study_id]["reference"]) in shown
    assert shown.count('<span title="p = ') == len(view.pieces) == len(view.alpha)
    assert view.pieces[-1] == END or len(view.pieces) == 8  # ends at EOS unless cut at max_new_tokens
    assert 'src="data:image/png;base64,' in shown


def test_the_browser_refuses_credentialed_data_without_the_opt_in(tiny, tmp_path):
    run, manifest, *_ = tiny
    private = tmp_path / "run"
    shutil.copytree(run, private)
    frame = read_manifest(manifest).assign(source="mimic-cxr")
    (tmp_path / "images").symlink_to(manifest.parent / "images")
    write_manifest(frame, tmp_path / "manifest.csv")
    config = json.loads((private / "config.json").read_text())
    config["data"]["manifest"] = str(tmp_path / "manifest.csv")
    (private / "config.json").write_text(json.dumps(config))
    with pytest.raises(PrivacyError, match="show_credentialed_text"):
        ReportBrowser({"private": private})
    assert ReportBrowser({"private": private}, allow_credentialed=True).study_ids


def test_the_confidence_plots_label_their_axes():
    import matplotlib.pyplot as plt  # conftest selects the Agg backend

    from rrgkit.experiments import plots

    auroc = pd.DataFrame({"cell": ["a", "b"], "AUROC": [0.6, np.nan], "ci_low": [0.5, np.nan], "ci_high": [0.7, np.nan]})
    pairs = pd.DataFrame({"present": [True, False, True, False], "before": [0.9, 0.8, 0.3, 0.1], "after": [0.7, 0.6, 0.4, 0.2]})
    recall = pd.DataFrame({"observation": ["Edema", "Fracture"], "generated": [0.1, np.nan], "edited": [0.5, np.nan]})
    axes = [plots.plot_auroc(auroc, margin=0.1), plots.plot_reliability(pairs, n_bins=5),
            plots.plot_recall(recall, ["generated", "edited"]), plots.plot_confidence(pd.DataFrame(columns=["AC"]))]
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    assert any("ECE" in t.get_text() for t in axes[1].get_legend().get_texts())
    plt.close("all")
