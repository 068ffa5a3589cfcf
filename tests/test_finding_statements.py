"""Sentence-level statements of findings, report edits, and the rule that picks Figure 4's examples."""

import numpy as np
import pytest

from rrgkit.analysis.finding_statements import edit_report, finding_statements, sentence_labels, split_sentences
from rrgkit.analysis.qualitative import finding_marks, pick_examples, report_f1
from rrgkit.evaluation.labeler import label_report
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES

TRAIN = ["The heart is enlarged. No pleural effusion.", "The heart is enlarged. No pneumothorax.",
         "There is a small right pleural effusion. No pneumothorax.", "No pleural effusion or pneumothorax.",
         "Mild pulmonary edema is present. The heart is enlarged."]


def test_sentences_split_at_stops_but_not_inside_numbers():
    assert split_sentences("Tube 3.5 cm above the carina. No effusion;  no edema?  ") == [
        "Tube 3.5 cm above the carina.", "No effusion;", "no edema?"]
    assert split_sentences("") == [] and split_sentences(None) == []
    labels = sentence_labels(["The heart is enlarged.", "No pleural effusion."])
    assert labels.shape == (2, 13)
    assert labels[0, PATHOLOGIES.index("Cardiomegaly")] == 1 and labels[1, PATHOLOGIES.index("Pleural Effusion")] == 0


def test_statements_are_the_most_frequent_sentences_that_say_one_thing():
    table = finding_statements(TRAIN).set_index("observation")
    assert table.loc["Cardiomegaly", "affirm"] == "The heart is enlarged." and table.loc["Cardiomegaly", "affirm_count"] == 3
    assert table.loc["Pleural Effusion", "affirm"] == "There is a small right pleural effusion."
    # a tie of once each with "No pleural effusion or pneumothorax." (which may deny more): the shorter sentence wins
    assert table.loc["Pleural Effusion", "deny"] == "No pleural effusion."
    assert table.loc["Pneumothorax", "deny"] == "No pneumothorax." and table.loc["Pneumothorax", "deny_count"] == 2
    assert not isinstance(table.loc["Pneumothorax", "affirm"], str) and table.loc["Pneumothorax", "affirm_count"] == 0


def _states(*names):
    states = np.zeros(len(PATHOLOGIES), dtype=bool)
    states[[PATHOLOGIES.index(n) for n in names]] = True
    return states


def test_edit_adds_what_is_decided_drops_what_is_not_and_leaves_what_it_cannot_write():
    statements = finding_statements(TRAIN)
    text = "The heart is enlarged. No pleural effusion. Mild pulmonary edema is present."
    edited = edit_report(text, _states("Pleural Effusion", "Edema"), statements)
    assert edited == "Mild pulmonary edema is present. There is a small right pleural effusion."
    labels = label_report(edited)
    index = {name: CHEXPERT_OBSERVATIONS.index(name) for name in ("Cardiomegaly", "Pleural Effusion", "Edema")}
    assert labels[index["Pleural Effusion"]] == 1 and labels[index["Edema"]] == 1 and np.isnan(labels[index["Cardiomegaly"]])
    assert edit_report(text, _states("Cardiomegaly", "Edema"), statements) == text  # already says exactly that
    assert edit_report("No acute disease.", _states("Pneumothorax"), statements) == "No acute disease."  # no sentence to add
    with pytest.raises(ValueError, match="13 booleans"):
        edit_report(text, np.zeros(14, dtype=bool), statements)


def test_uncertain_statements_follow_the_policy():
    statements = finding_statements(TRAIN)
    hedged = "There may be mild pulmonary edema."
    assert edit_report(hedged, _states(), statements, uncertain="positive") == ""  # a stated (hedged) edema is dropped
    assert edit_report(hedged, _states(), statements, uncertain="negative") == hedged  # under uneg it states nothing


def test_marks_report_f1_and_the_picking_rule():
    nan = np.nan
    ref = np.full((4, 14), nan)
    pred = np.full((4, 14), nan)
    cardio, effusion = CHEXPERT_OBSERVATIONS.index("Cardiomegaly"), CHEXPERT_OBSERVATIONS.index("Pleural Effusion")
    ref[0, [cardio, effusion]] = 1
    pred[0, cardio] = 1  # one agreement, one miss: F1 2/3
    ref[1, cardio] = 1
    pred[1, [cardio]] = -1  # hedged: agreement under upos, a miss under uneg
    ref[2, 0] = 1  # a normal study the prediction misses (No Finding): F1 0, but no pathology, so never picked
    pred[3, effusion] = 1
    ref[3, cardio] = 1  # a miss and a hallucination: F1 0
    marks = finding_marks(pred, ref)
    assert marks[0, cardio] == "agreement" and marks[0, effusion] == "miss" and marks[3, effusion] == "hallucination"
    assert finding_marks(pred, ref, uncertain="negative")[1, cardio] == "miss"
    f1 = report_f1(pred, ref)
    assert f1 == pytest.approx([2 / 3, 1.0, 0.0, 0.0])
    assert report_f1(np.full((1, 14), nan), np.full((1, 14), nan)) == pytest.approx([1.0])  # neither states anything
    picked = pick_examples(f1, ref, ["a", "b", "c", "d"])
    assert picked == {"worst": 3, "median": 0, "best": 1}
