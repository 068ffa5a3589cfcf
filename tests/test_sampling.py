"""Label sampling: real CheXpert label rows realised as phantom findings, deterministically."""

import numpy as np
import pandas as pd
import pytest

from rrgkit.data.sampling import (
    DEVICE_PRIORS,
    UNREPORTED_PROBABILITY,
    default_pool,
    label_pool,
    normalise_no_finding,
    sample_studies,
    study_from_labels,
)
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.phantom.state import DEVICE_KINDS, Study

IDX = {o: i for i, o in enumerate(CHEXPERT_OBSERVATIONS)}


@pytest.fixture(scope="module")
def studies() -> list[Study]:
    return sample_studies(3000, seed=7)


def test_same_seed_same_studies_and_other_seed_differs():
    a, b, c = sample_studies(20, 3), sample_studies(20, 3), sample_studies(20, 4)
    assert [(s.findings, s.patient, s.view, s.seed) for s in a] == [(s.findings, s.patient, s.view, s.seed) for s in b]
    assert all(np.array_equal(x.labels, y.labels, equal_nan=True) for x, y in zip(a, b))
    assert [s.findings for s in a] != [s.findings for s in c]


def test_label_rows_are_real_chexpert_rows(studies):
    pool = default_pool()
    real = {tuple(np.nan_to_num(r, nan=9.0)) for r in pool[list(PATHOLOGIES)].to_numpy(dtype=float)}
    assert all(tuple(np.nan_to_num(s.labels[1:], nan=9.0)) in real for s in studies[:300])


def test_prevalence_matches_the_real_rows(studies):
    pool = default_pool()
    sampled = np.stack([s.labels for s in studies])
    for obs in ("Pleural Effusion", "Support Devices", "Lung Opacity", "Edema", "Cardiomegaly"):
        real = float((pool[obs] == 1).mean())
        assert abs(float((sampled[:, IDX[obs]] == 1).mean()) - real) < 0.035, obs
    assert abs(np.mean([s.view == "AP" for s in studies]) - float((pool["AP/PA"] == "AP").mean())) < 0.035


def test_no_finding_follows_chexpert_rule(studies):
    counted = [IDX[o] for o in PATHOLOGIES if o != "Support Devices"]
    for s in studies:
        abnormal = np.isin(s.labels[counted], (1.0, -1.0)).any()
        assert (s.labels[0] == 1.0) != abnormal and (s.labels[0] == 1.0 or np.isnan(s.labels[0]))


def test_findings_realise_the_labels(studies):
    unreported = {obs: 0 for obs in UNREPORTED_PROBABILITY}
    for s in studies:
        for obs in PATHOLOGIES:
            value, found = s.labels[IDX[obs]], s.findings_of(obs)
            if value == 1.0:
                assert found and all(f.certainty == "positive" for f in found)
            elif value == -1.0:
                assert found and all(f.certainty == "uncertain" and f.severity <= 0.3 for f in found)
            elif value == 0.0:
                assert not found
            elif found:  # blank: only a documented minor observation, mild
                assert obs in UNREPORTED_PROBABILITY and all(f.severity <= 0.3 for f in found)
                unreported[obs] += 1
    for obs, p in UNREPORTED_PROBABILITY.items():
        blank = sum(np.isnan(s.labels[IDX[obs]]) for s in studies)
        assert abs(unreported[obs] - p * blank) < 4 * np.sqrt(p * blank) + 1, obs


def test_severity_is_mostly_mild_with_a_severe_tail(studies):
    severities = np.array([f.severity for s in studies for f in s.findings if f.certainty == "positive"])
    assert np.mean(severities < 0.4) > 0.5 and np.mean(severities > 0.7) > 0.02


def test_observation_priors(studies):
    devices = [f for s in studies for f in s.findings_of("Support Devices")]
    assert devices and {f.kind for f in devices} <= set(DEVICE_KINDS) == set(DEVICE_PRIORS["AP"])
    ap_et = np.mean([any(f.kind == "et_tube" for f in s.findings) for s in studies if s.view == "AP" and s.labels[IDX["Support Devices"]] == 1])
    pa_et = np.mean([any(f.kind == "et_tube" for f in s.findings) for s in studies if s.view == "PA" and s.labels[IDX["Support Devices"]] == 1])
    assert ap_et > 3 * pa_et
    assert {f.zone for s in studies for f in s.findings_of("Pneumothorax")} == {"upper"}
    eff_edema = [s.finding("Pleural Effusion").laterality == "bilateral" for s in studies
                 if s.labels[IDX["Pleural Effusion"]] == 1 and s.labels[IDX["Edema"]] == 1]
    assert np.mean(eff_edema) > 0.6
    assert all(f.laterality == "bilateral" for s in studies for f in s.findings_of("Edema"))


def test_confounders_are_common(studies):
    patients = [s.patient for s in studies]
    assert np.mean([p.inspiration < 0.35 for p in patients]) > 0.15
    assert np.mean([abs(p.rotation) > 0.3 for p in patients]) > 0.1
    assert all(p.breast == 0.0 for p in patients if p.sex == "M")
    assert np.mean([p.breast > 0.2 for p in patients if p.sex == "F"]) > 0.5
    ap = np.mean([p.inspiration for s, p in zip(studies, patients) if s.view == "AP"])
    pa = np.mean([p.inspiration for s, p in zip(studies, patients) if s.view == "PA"])
    assert ap < pa


def test_study_from_labels_and_errors():
    labels = np.full(14, np.nan)
    labels[IDX["Pneumothorax"]] = 1.0
    study = study_from_labels("x", labels, np.random.default_rng(0), view="PA", sex="F", age=40)
    assert study.finding("Pneumothorax").laterality in ("left", "right", "bilateral")
    assert np.isnan(study.labels[0]) and study.patient.sex == "F" and study.patient.age == 40
    assert normalise_no_finding(np.full(14, np.nan))[0] == 1.0
    with pytest.raises(ValueError, match="14 entries"):
        study_from_labels("x", np.zeros(5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 1"):
        sample_studies(0, 0)
    with pytest.raises(ValueError, match="lack columns"):
        label_pool(pd.DataFrame({"Sex": ["Male"]}))


def test_custom_rows_are_the_only_source():
    rows = default_pool().iloc[:1]
    studies = sample_studies(5, 0, rows=rows)
    assert all(np.array_equal(s.labels[1:], rows[list(PATHOLOGIES)].to_numpy(float)[0], equal_nan=True) for s in studies)
