"""Descriptive statistics of the data chapters: sentences, report variety and the kinds of phantom study."""

import numpy as np
import pandas as pd
import pytest

from rrgkit.data.describe import STUDY_KINDS, report_variety, split_sentences, study_kind
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.phantom.state import Finding, Patient, Study


def _study(labels: dict[str, float], *findings: Finding, **patient) -> Study:
    vector = np.full(len(CHEXPERT_OBSERVATIONS), np.nan)
    for observation, value in labels.items():
        vector[CHEXPERT_OBSERVATIONS.index(observation)] = value
    return Study("s", vector, findings, Patient(**patient))


def test_split_sentences_splits_after_periods_only():
    assert split_sentences("  Heart is normal. No effusion.  Lungs clear.") == [
        "Heart is normal.", "No effusion.", "Lungs clear."]
    assert split_sentences("Size 2.5 cm nodule.") == ["Size 2.5 cm nodule."]  # no space after the decimal point
    assert split_sentences("") == [] and split_sentences("   ") == []
    assert split_sentences("no final period") == ["no final period"]


def test_report_variety_counts_by_hand():
    texts = pd.Series(["A b. C d e.", "A b.", "A b."])
    variety = report_variety(texts)
    assert variety == {
        "reports": 3,
        "words per report (mean)": pytest.approx((5 + 2 + 2) / 3),
        "sentences per report (mean)": pytest.approx((2 + 1 + 1) / 3),
        "distinct sentences": 2,  # "A b." and "C d e."
        "distinct / all sentences (%)": pytest.approx(100 * 2 / 4),
        "distinct reports (%)": pytest.approx(100 * 2 / 3),
    }


def test_report_variety_of_empty_texts_and_of_nothing():
    variety = report_variety(pd.Series(["", ""]))
    assert variety["sentences per report (mean)"] == 0 and np.isnan(variety["distinct / all sentences (%)"])
    with pytest.raises(ValueError, match="no reports"):
        report_variety(pd.Series([], dtype=str))


@pytest.mark.parametrize("patient", [{"inspiration": 0.2}, {"rotation": -0.6}, {"breast": 0.5}])
def test_a_no_finding_study_with_a_nuisance_is_a_confounder(patient):
    assert study_kind(_study({"No Finding": 1.0}, **patient)) == "confounder"


def test_study_kinds_by_hand():
    assert study_kind(_study({"No Finding": 1.0})) == "normal"
    assert study_kind(_study({"No Finding": 1.0}, breast=0.45, rotation=0.5, inspiration=0.3)) == "normal"  # at the thresholds
    assert study_kind(_study({"Edema": -1.0}, Finding("Edema", "uncertain", 0.2))) == "uncertain"
    severe = _study({"Cardiomegaly": 1.0, "Edema": 1.0}, Finding("Cardiomegaly", severity=0.7), Finding("Edema", severity=0.1))
    assert study_kind(severe) == "severe"
    mild = _study({"Edema": 1.0, "Support Devices": 1.0}, Finding("Edema", severity=0.29),
                  Finding("Support Devices", severity=0.9, kind="picc"))
    assert study_kind(mild) == "mild"  # a device's severity counts for nothing
    assert study_kind(_study({"Edema": 1.0}, Finding("Edema", severity=0.5))) is None  # moderate
    devices_only = _study({"No Finding": 1.0, "Support Devices": 1.0}, Finding("Support Devices", severity=0.9, kind="picc"))
    assert study_kind(devices_only) is None
    assert set(STUDY_KINDS) == {"normal", "mild", "severe", "uncertain", "confounder"}
