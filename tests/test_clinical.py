"""Clinical-efficacy F1: hand-computed cases, sklearn parity, and the named conventions."""

import numpy as np
import pytest
from sklearn.metrics import classification_report, f1_score

from rrgkit.evaluation import clinical
from rrgkit.labels import CHEXPERT_OBSERVATIONS, FIVE_OBSERVATIONS

NAN = np.nan


def _row(**values):
    row = np.full(len(CHEXPERT_OBSERVATIONS), NAN)
    for name, v in values.items():
        row[CHEXPERT_OBSERVATIONS.index(name.replace("_", " "))] = v
    return row


# Hand example. Reference / prediction per report:
#   r0: ref Cardiomegaly=1, Edema=-1     pred Cardiomegaly=1, Edema=0
#   r1: ref No Finding=1                 pred No Finding=1
#   r2: ref Pleural Effusion=1           pred Pleural Effusion=-1, Atelectasis=1
REF = np.stack([_row(Cardiomegaly=1, Edema=-1), _row(No_Finding=1), _row(Pleural_Effusion=1)])
PRED = np.stack([_row(Cardiomegaly=1, Edema=0), _row(No_Finding=1), _row(Pleural_Effusion=-1, Atelectasis=1)])


def test_hand_computed_micro():
    # uncertain positive: TP = Cardiomegaly, No Finding, Effusion = 3; FP = Atelectasis = 1; FN = Edema = 1
    assert clinical.f1_scores(PRED, REF, uncertain="positive") == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # uncertain negative: TP = Cardiomegaly, No Finding = 2; FP = Atelectasis = 1; FN = Effusion = 1
    assert clinical.f1_scores(PRED, REF, uncertain="negative") == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # over the five: upos TP = Cardiomegaly, Effusion; FP = Atelectasis; FN = Edema
    assert clinical.f1_scores(PRED, REF, FIVE_OBSERVATIONS) == pytest.approx(4 / 6)


def test_hand_computed_macro_counts_empty_observations_as_zero():
    # upos per observation F1: No Finding 1, Cardiomegaly 1, Effusion 1, Edema 0, Atelectasis 0, 9 others empty → 0
    assert clinical.f1_scores(PRED, REF, average="macro") == pytest.approx(3 / 14)
    assert clinical.f1_scores(PRED, REF, FIVE_OBSERVATIONS, average="macro") == pytest.approx(2 / 5)


def test_hand_computed_example_f1():
    # r0: tp1 fn1 → 2/3; r1: 1; r2: tp1 fp1 → 2/3
    assert clinical.f1_scores(PRED, REF, average="example") == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    # a report with no positives in either scores 1
    empty = np.stack([_row(Edema=0)])
    assert clinical.f1_scores(empty, empty, average="example") == 1.0


@pytest.mark.parametrize("uncertain", ["positive", "negative"])
def test_matches_sklearn_and_f1chexbert_classification_report(uncertain):
    rng = np.random.default_rng(0)
    values = np.array([1.0, 0.0, -1.0, NAN])
    ref, pred = values[rng.integers(0, 4, (300, 14))], values[rng.integers(0, 4, (300, 14))]
    # rare class with no positives anywhere, to exercise the zero-division convention
    ref[:, 11] = pred[:, 11] = 0
    y_true, y_pred = clinical.binarize(ref, uncertain).astype(int), clinical.binarize(pred, uncertain).astype(int)
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    assert clinical.f1_scores(pred, ref, uncertain=uncertain) == pytest.approx(report["micro avg"]["f1-score"], abs=1e-12)
    assert clinical.f1_scores(pred, ref, uncertain=uncertain, average="macro") == pytest.approx(report["macro avg"]["f1-score"], abs=1e-12)
    assert clinical.f1_scores(pred, ref, uncertain=uncertain, average="example") == pytest.approx(
        f1_score(y_true, y_pred, average="samples", zero_division=1.0), abs=1e-12
    )
    table = clinical.per_observation(pred, ref, uncertain=uncertain)
    for j, obs in enumerate(CHEXPERT_OBSERVATIONS):
        if obs == "Pleural Other":
            assert np.isnan(table.loc[j, "f1"]) and table.loc[j, "support"] == 0
        else:
            assert table.loc[j, "f1"] == pytest.approx(report[str(j)]["f1-score"])
            assert table.loc[j, "support"] == report[str(j)]["support"]


def test_variants_are_named_and_headline_is_micro_upos():
    variants = clinical.f1_variants(PRED, REF)
    assert len(variants) == 2 * 3 * 2 + 2
    assert {"F1-CXP-14-micro-upos", "F1-CXP-5-macro-uneg", "F1-CXP-14-example-upos", "F1-CXP-14", "F1-CXP-5"} <= set(variants)
    assert variants["F1-CXP-14"].value() == variants["F1-CXP-14-micro-upos"].value()
    assert variants["F1-CXP-14-micro-uneg"].value() == clinical.f1_scores(PRED, REF, uncertain="negative")


def test_per_observation_ci_brackets_point():
    rng = np.random.default_rng(1)
    ref = rng.choice([1.0, NAN], size=(200, 14))
    pred = np.where(rng.random((200, 14)) < 0.8, ref, rng.choice([1.0, NAN], size=(200, 14)))
    table = clinical.per_observation(pred, ref, n_boot=200)
    assert (table["f1_ci_low"] <= table["f1"]).all() and (table["f1"] <= table["f1_ci_high"]).all()
    assert {"precision_ci_low", "recall_ci_high"} <= set(table.columns)


def test_auc_per_observation():
    ref = np.stack([_row(Edema=1), _row(Edema=0), _row(Edema=1), _row()])
    scores = np.zeros((4, 14))
    scores[:, CHEXPERT_OBSERVATIONS.index("Edema")] = [0.9, 0.1, 0.7, 0.8]
    auc = clinical.auc_per_observation(scores, ref)
    assert auc["Edema"] == pytest.approx(0.75)
    assert np.isnan(auc["Cardiomegaly"])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: clinical.f1_scores(PRED[:, :5], REF), r"shape \(n, 14\)"),
        (lambda: clinical.f1_scores(PRED, REF[:2]), "differ in shape"),
        (lambda: clinical.f1_scores(PRED * 2, REF), "allowed: 1"),
        (lambda: clinical.f1_scores(PRED, REF, uncertain="ignore"), "uncertain must be one of"),
        (lambda: clinical.f1_scores(PRED, REF, average="weighted"), "average must be one of"),
        (lambda: clinical.f1_scores(PRED, REF, observations=("Nodule",)), "unknown"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
