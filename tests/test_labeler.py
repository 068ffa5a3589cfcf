"""The rule-based CheXpert labeler: CheXpert's rules on small texts, robustness, CLI, agreement with hand labels."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrgkit.cli import main
from rrgkit.evaluation.label_cli import label_table
from rrgkit.evaluation.labeler import label_report, label_reports
from rrgkit.evaluation.mesh import hand_label_selection, hand_labels, positive_agreement
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def labels(text: str) -> dict[str, float]:
    """The non-blank labels of one text, by observation name."""
    return {name: v for name, v in zip(CHEXPERT_OBSERVATIONS, label_report(text)) if not math.isnan(v)}


@pytest.mark.parametrize("text, name", [
    ("No pneumothorax.", "Pneumothorax"),
    ("There is no evidence of pleural effusion.", "Pleural Effusion"),
    ("Lungs are clear without focal consolidation.", "Consolidation"),
    ("Negative for acute displaced rib fracture.", "Fracture"),
    ("Pneumothorax is not seen.", "Pneumothorax"),
    ("The previously seen effusion has resolved.", "Pleural Effusion"),
    ("Interval removal of the endotracheal tube.", "Support Devices"),
    ("The heart is normal in size.", "Cardiomegaly"),
    ("Heart size is within normal limits.", "Cardiomegaly"),
    ("Normal heart size.", "Cardiomegaly"),
    ("The heart is not enlarged.", "Cardiomegaly"),
    ("The mediastinum is unremarkable.", "Enlarged Cardiomediastinum"),
])
def test_negation(text, name):
    assert labels(text)[name] == 0


def test_negation_reaches_through_a_list_of_findings():
    got = labels("No focal consolidation, large pleural effusion, or pneumothorax.")
    assert got["Consolidation"] == got["Pleural Effusion"] == got["Pneumothorax"] == 0
    assert labels("No acute, displaced rib fractures.")["Fracture"] == 0


def test_negation_stops_at_a_new_clause():
    assert labels("No acute disease, stable cardiomegaly.")["Cardiomegaly"] == 1
    assert labels("No pneumothorax but there is a small effusion.")["Pleural Effusion"] == 1
    assert labels("No effusion, possible pneumonia.") == {"Pleural Effusion": 0, "Pneumonia": -1}


def test_no_change_in_a_finding_is_positive():
    assert labels("No change in the moderate left pleural effusion.")["Pleural Effusion"] == 1
    assert labels("Cardiomegaly without change.")["Cardiomegaly"] == 1


@pytest.mark.parametrize("text, name", [
    ("Possible small left effusion.", "Pleural Effusion"),
    ("Findings may represent atelectasis.", "Atelectasis"),
    ("Opacity suspicious for pneumonia.", "Pneumonia"),
    ("Atelectasis versus pneumonia in the left base.", "Pneumonia"),
    ("Atelectasis versus pneumonia in the left base.", "Atelectasis"),
    ("Borderline cardiomegaly.", "Cardiomegaly"),
    ("Heart size is at the upper limits of normal.", "Cardiomegaly"),
    ("Left basilar opacity, likely atelectasis.", "Atelectasis"),
    ("Pneumonia?", "Pneumonia"),
])
def test_uncertainty(text, name):
    assert labels(text)[name] == -1


@pytest.mark.parametrize("text", [
    "Pneumonia cannot be excluded.",
    "Cannot exclude pneumonia.",
    "Pneumonia is not ruled out.",
    "An early pneumonia is not excluded.",
])
def test_uncertainty_that_wraps_a_negation_is_uncertain(text):
    assert labels(text)["Pneumonia"] == -1


def test_hedged_cause_keeps_the_finding_positive():
    got = labels("Bibasilar opacities may represent atelectasis or pneumonia.")
    assert got["Lung Opacity"] == 1 and got["Atelectasis"] == got["Pneumonia"] == -1


def test_double_mentions_follow_chexpert_aggregation():
    assert labels("No effusion on the right. Small left effusion.")["Pleural Effusion"] == 1  # 1 beats 0
    assert labels("Possible effusion. Small left effusion.")["Pleural Effusion"] == 1  # 1 beats -1
    assert labels("No right effusion. Possible left effusion.")["Pleural Effusion"] == -1  # -1 beats 0


def test_heart_failure_makes_cardiomegaly_uncertain():
    assert labels("Findings consistent with CHF.") == {"Edema": 1, "Cardiomegaly": -1}


def test_cardiomediastinal_silhouette():
    assert labels("Cardiomediastinal silhouette is within normal limits.") == {
        "No Finding": 1, "Enlarged Cardiomediastinum": 0, "Cardiomegaly": 0}
    assert labels("Enlarged cardiomediastinal silhouette.") == {"Enlarged Cardiomediastinum": 1}
    assert labels("Heart size is stable.") == {"No Finding": 1}  # no qualifier, no label


def test_no_finding():
    assert labels("The heart is normal in size. The lungs are clear.") == {"No Finding": 1, "Cardiomegaly": 0}
    assert labels("Stable sternotomy wires. No pneumothorax.") == {
        "No Finding": 1, "Pneumothorax": 0, "Support Devices": 1}  # devices do not count
    assert "No Finding" not in labels("Mild cardiomegaly.")
    assert "No Finding" not in labels("Possible pneumonia.")
    assert "No Finding" not in labels("Calcified granuloma in the right upper lobe.")  # other abnormality
    assert labels("No emphysema.") == {"No Finding": 1}


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_all_blank(text):
    assert np.isnan(label_report(text)).all()


def test_non_english_and_garbage_do_not_crash():
    for text in ("Das Herz ist vergrößert.", "心脏增大", "!!!???...;;;", "\x00\x01", "a" * 10_000, "1. 2. 3."):
        out = label_report(text)
        assert out.shape == (14,)


def test_iu_anonymisation_and_numbered_impressions():
    got = labels("XXXX XXXX sternotomy wires. Heart size normal. 1. No acute disease. 2. Mild XXXX atelectasis.")
    assert got == {"Support Devices": 1, "Cardiomegaly": 0, "Atelectasis": 1}


def test_r2gen_lowercase_and_mimic_style():
    r2gen = "the heart is enlarged . there is no pneumothorax . small left pleural effusion ."
    assert labels(r2gen) == {"Cardiomegaly": 1, "Pneumothorax": 0, "Pleural Effusion": 1}
    mimic = "FINDINGS: ___ tube tip is 4 cm above the carina. No pneumothorax.\nIMPRESSION: Moderate pulmonary edema."
    assert labels(mimic) == {"Support Devices": 1, "Pneumothorax": 0, "Edema": 1}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_14_valid_labels(text):
    out = label_report(text)
    assert out.shape == (14,) and out.dtype == float
    assert all(math.isnan(v) or v in (1.0, 0.0, -1.0) for v in out)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["no", "not", "pneumonia", "effusion", "heart", "is", "enlarged", "normal",
                                 "may", "cannot", "exclude", ",", ".", "xxxx", "tube", "and", "versus", "?"]),
                max_size=25))
def test_any_report_like_word_salad_gives_14_valid_labels(words):
    out = label_report(" ".join(words))
    assert out.shape == (14,) and all(math.isnan(v) or v in (1.0, 0.0, -1.0) for v in out)


def test_label_reports_is_row_wise_label_report():
    texts = ["Mild cardiomegaly.", "", "No pneumothorax."]
    out = label_reports(texts)
    assert out.shape == (3, 14)
    np.testing.assert_array_equal(out[1], label_report(""))
    np.testing.assert_array_equal(out[2], label_report(texts[2]))
    assert label_reports([]).shape == (0, 14)


def test_label_table_keeps_order_and_ids():
    frame = pd.DataFrame({"id": ["b", "a", "c"], "text": ["Mild cardiomegaly.", None, "No pneumothorax."]})
    out = label_table(frame, "text", "id")
    assert list(out.columns) == ["id", *CHEXPERT_OBSERVATIONS]
    assert list(out["id"]) == ["b", "a", "c"]
    assert out.loc[0, "Cardiomegaly"] == 1 and out.loc[1].iloc[1:].isna().all()
    with pytest.raises(ValueError, match=r"no column 'report'.*\['id', 'text'\]"):
        label_table(frame, "report", "id", "in.csv")


def test_cli_csv_and_jsonl(tmp_path, capsys):
    csv_in = tmp_path / "in.csv"
    frame = pd.DataFrame({"study": ["s1", "s2"], "report": ["Small left effusion.", "Normal heart size."]})
    frame.to_csv(csv_in, index=False)
    out = tmp_path / "out.csv"
    assert main(["label", str(csv_in), "--text-column", "report", "--id-column", "study", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["study"]) == ["s1", "s2"] and table.loc[0, "Pleural Effusion"] == 1
    assert table.loc[1, "Cardiomegaly"] == 0

    jsonl_in = tmp_path / "in.jsonl"
    jsonl_in.write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate(["No effusion.", ""])))
    assert main(["label", str(jsonl_in), "--text-column", "text", "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist() == [0, 1]

    assert main(["label", str(csv_in), "--text-column", "findings", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(csv_in) in err and "'report'" in err
    assert main(["label", str(tmp_path / "missing.csv"), "--text-column", "x", "--out", str(out)]) == 2


@pytest.fixture(scope="module")
def iu_reports():
    from rrgkit.assets import AssetMissingError
    from rrgkit.data.iu_xray import load_iu_reports

    try:
        return load_iu_reports()
    except AssetMissingError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def hand_set(iu_reports):
    selection = hand_label_selection(iu_reports)
    predicted = label_reports((selection["findings"] + " " + selection["impression"]).tolist())
    reference = hand_labels()[list(CHEXPERT_OBSERVATIONS)].to_numpy()
    return selection, predicted, reference


def test_hand_labels_are_the_documented_selection(iu_reports):
    assert hand_labels()["uid"].tolist() == hand_label_selection(iu_reports)["uid"].tolist()


# Measured 2026-11-23: micro-F1 on positives 0.985 on the 120 development reports (0.939 before the
# rules were tuned on them) and 0.909 on the 30 held-out reports. Thresholds sit a little below.
@pytest.mark.parametrize("groups, threshold", [(("random", "enriched"), 0.96), (("holdout",), 0.85)])
def test_agreement_with_hand_labels_on_positives(hand_set, groups, threshold):
    selection, predicted, reference = hand_set
    rows = selection["group"].isin(groups).to_numpy()
    table = positive_agreement(predicted[rows], reference[rows])
    assert table.loc["micro", "f1"] >= threshold, table


def test_phantom_reports_round_trip():
    """The phantom report writer states its labels in words; the labeler must read them back."""
    from rrgkit.data.report_writer import write_report
    from rrgkit.data.sampling import sample_studies

    studies = sample_studies(300, seed=3)
    rng = np.random.default_rng(1)
    reports = [write_report(s, rng) for s in studies]
    texts = [r["findings"] + " " + r["impression"] for r in reports]
    table = positive_agreement(label_reports(texts), np.array([s.labels for s in studies]))
    # Measured 2026-11-23 on 1,000 studies: positives micro-F1 1.000, exact label rows 99.7 %
    # (the rest: the writer's "No acute osseous abnormality" means Fracture 0, which CheXpert does not read).
    assert table.loc["micro", "f1"] >= 0.99, table
