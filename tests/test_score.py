"""score_reports / compare_runs / `rrgkit score`: every variant with CIs, and clear errors."""

import json

import numpy as np
import pandas as pd
import pytest

from rrgkit.cli import main
from rrgkit.evaluation import backends
from rrgkit.evaluation.score import compare_runs, format_table, score_reports
from rrgkit.labels import CHEXPERT_OBSERVATIONS

REFS = [
    "The heart is normal in size. No pleural effusion. No pneumothorax.",
    "Moderate cardiomegaly. Small left pleural effusion.",
    "Lungs are clear. No focal consolidation.",
    "Right lower lobe opacity concerning for pneumonia.",
    "Mild pulmonary edema. Possible small bilateral effusions.",
    "No acute cardiopulmonary abnormality.",
]
PREDS = [
    "Heart size is normal. No effusion or pneumothorax.",
    "Cardiomegaly. No pleural effusion.",
    "The lungs are clear.",
    "Right lower lobe consolidation.",
    "Pulmonary edema. Small bilateral pleural effusions.",
    "No acute abnormality.",
]


def _labels(seed, n=len(REFS)):
    return np.random.default_rng(seed).choice([1.0, 0.0, -1.0, np.nan], size=(n, 14))


def test_score_reports_every_variant_with_ci():
    out = score_reports(PREDS, REFS, n_boot=200, ref_labels=_labels(0), pred_labels=_labels(1), meteor=False, backends=False)
    names = set(out["metrics"])
    assert {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr", "F1-CXP-14", "F1-CXP-5", "F1-CXP-5-macro-uneg"} <= names
    for name, m in out["metrics"].items():
        assert m["ci_low"] <= m["value"] + 1e-12 and m["value"] <= m["ci_high"] + 1e-12, name
    assert len(out["per_observation"]) == 14
    assert out["n"] == 6 and out["settings"]["reference_labels"] == "given"
    json.dumps(out, allow_nan=False)  # JSON-ready: undefined table cells are null, not NaN
    assert "BLEU-4" in format_table(out)


def test_identical_reports_score_perfectly_with_labeler():
    out = score_reports(REFS, REFS, ci=False, meteor=False, backends=False)
    for name in ("BLEU-4", "ROUGE-L", "F1-CXP-14", "F1-CXP-14-example-upos"):
        assert out["metrics"][name] == {"value": pytest.approx(1.0)}, name
    # macro: observations never positive score 0 (sklearn / f1chexbert convention), so a perfect system gets present/14
    present = sum(row["support"] > 0 for row in out["per_observation"])
    assert 0 < present < 14
    assert out["metrics"]["F1-CXP-14-macro-upos"]["value"] == pytest.approx(present / 14)
    assert out["settings"]["n_boot"] == 0


def test_compare_runs_identical_is_zero_and_better_system_wins():
    labels = _labels(2)
    same = compare_runs(PREDS, PREDS, REFS, n_boot=200, ref_labels=labels)
    assert all(v["diff"] == 0 and v["ci_low"] == 0 == v["ci_high"] for v in same.values())
    better = compare_runs(REFS, PREDS, REFS, metrics=("BLEU-4", "ROUGE-L"), n_boot=200)
    assert better["ROUGE-L"]["diff"] > 0 and better["ROUGE-L"]["ci_low"] > 0


def test_score_errors():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        score_reports(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reference report.*empty"):
        score_reports(["a"], [" "])
    with pytest.raises(ValueError, match="not a string"):
        score_reports([None], ["a"])
    with pytest.raises(ValueError, match="labels have 2 rows for 6 reports"):
        score_reports(PREDS, REFS, ref_labels=_labels(0, n=2))
    with pytest.raises(ValueError, match="unknown or unavailable metric"):
        compare_runs(PREDS, PREDS, REFS, metrics=("BLEU-7",))


def test_bertscore_minilm_identity_and_order():
    scores = backends.bertscore_minilm(["no pleural effusion.", "mild cardiomegaly.", ""], ["no pleural effusion.", "the lungs are clear.", "x"])
    assert scores[0] == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert 0 < scores[1, 2] < 0.95
    assert scores[2].tolist() == [0.0, 0.0, 0.0]


def test_absent_backends_skip_with_one_line(capsys, monkeypatch):
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    assert backends.chexbert_labels(["a"]) is None
    assert backends.radgraph_f1(["a"], ["b"]) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("skipped: ") for line in lines)


def _write(tmp_path, name, ids, texts, column="findings", **extra):
    frame = pd.DataFrame({"id": ids, column: texts, **extra})
    path = tmp_path / name
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path


def test_cli_round_trip_jsonl_and_csv(tmp_path, capsys):
    ids = [f"s{i}" for i in range(len(REFS))]
    labels = {c: _labels(3)[:, j] for j, c in enumerate(CHEXPERT_OBSERVATIONS)}
    ref = _write(tmp_path, "ref.csv", ids, REFS, **labels)
    pred = _write(tmp_path, "pred.jsonl", ids[::-1], PREDS[::-1], column="report")
    out = tmp_path / "m" / "metrics.json"
    args = ["score", "--pred", str(pred), "--ref", str(ref), "--out", str(out), "--n-boot", "100", "--no-meteor", "--no-backends"]
    assert main(args + ["--text-column", "findings"]) == 2  # pred has no 'findings'
    assert "no text column 'findings'" in capsys.readouterr().err
    assert main(args + ["--ref-labels"]) == 0
    printed = capsys.readouterr().out
    assert "F1-CXP-14" in printed and "95% CI" in printed
    result = json.loads(out.read_text())
    direct = score_reports(PREDS, REFS, n_boot=100, ref_labels=_labels(3), meteor=False, backends=False)
    assert result["metrics"]["BLEU-4"] == pytest.approx(direct["metrics"]["BLEU-4"])  # joined on id, not on order
    assert result["metrics"]["F1-CXP-14"] == pytest.approx(direct["metrics"]["F1-CXP-14"])


def test_cli_mismatched_ids_are_listed(tmp_path, capsys):
    ref = _write(tmp_path, "ref.csv", ["a", "b", "c"], REFS[:3])
    pred = _write(tmp_path, "pred.csv", ["a", "b", "z"], PREDS[:3])
    assert main(["score", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp_path / "m.json"), "--no-ci"]) == 2
    err = capsys.readouterr().err
    assert "1 id(s) only in" in err and "['z']" in err and "['c']" in err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p.write_text("id,findings\na,x\na,y\n"), "appear more than once"),
        (lambda p: p.write_text("uid,findings\na,x\n"), "no 'id' column"),
        (lambda p: None, "no such file"),
    ],
)
def test_cli_bad_files(tmp_path, capsys, setup, message):
    bad = tmp_path / "pred.csv"
    setup(bad)
    ref = _write(tmp_path, "ref.csv", ["a"], REFS[:1])
    assert main(["score", "--pred", str(bad), "--ref", str(ref), "--out", str(tmp_path / "m.json")]) == 2
    assert message in capsys.readouterr().err


def test_meteor_without_java_is_skipped_with_one_line(capsys, monkeypatch):
    from rrgkit.evaluation import nlg
    from rrgkit.evaluation.score import metric_statistics

    monkeypatch.setattr(nlg.shutil, "which", lambda name: None)
    out = metric_statistics(PREDS, REFS, ref_labels=_labels(0), pred_labels=_labels(1), meteor=True, backends=False)
    assert "METEOR" not in out and "BLEU-4" in out
    assert capsys.readouterr().err.strip().startswith("METEOR skipped: no `java`")
