"""The report writer: label vector recoverable from the text, blanks never mentioned, varied phrasing."""

import re

import numpy as np
import pytest

from rrgkit.data.curation import comparison_cites_prior
from rrgkit.data.report_writer import COMPARISON_NONE, COMPARISON_PRIOR, IMPRESSION_NORMAL, P_PRIOR, write_report
from rrgkit.data.sampling import sample_studies
from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.phantom.state import Finding, Study

# A deliberately simple keyword reader, independent of the writer's tables: which observation a
# sentence names and with which polarity (uncertain before negative before positive).
MENTIONS = {
    "Enlarged Cardiomediastinum": r"mediastin",
    "Cardiomegaly": r"cardiomegaly|heart|cardiac|cardiomediastinal",
    "Lung Opacity": r"opacit",
    "Lung Lesion": r"nodule|\bmass\b|lesion",
    "Edema": r"edema",
    "Consolidation": r"consolidation",
    "Pneumonia": r"pneumonia|infection",
    "Atelectasis": r"atelectasis",
    "Pneumothorax": r"pneumothora",
    "Pleural Effusion": r"effusion",
    "Pleural Other": r"pleural (?:thickening|calcification|plaque)|calcified pleural",
    "Fracture": r"fracture|osseous",
    "Support Devices": r"\btubes?\b|\blines?\b|catheter|pacemaker|sternotomy|devices?\b|picc|wires",
}
UNCERTAIN = r"possibl|\bmay\b|cannot be excluded|questionable"
NEGATIVE = r"^no\b|there (?:is|are) no\b|\bnormal\b|not enlarged|unremarkable"


def read_labels(text: str) -> np.ndarray:
    """1 / 0 / -1 / NaN per observation; 2 marks contradicting sentences."""
    out = np.full(len(CHEXPERT_OBSERVATIONS), np.nan)
    for sentence in re.split(r"(?<=\.)\s+", text.lower()):
        value = -1.0 if re.search(UNCERTAIN, sentence) else 0.0 if re.search(NEGATIVE, sentence) else 1.0
        for obs, pattern in MENTIONS.items():
            if re.search(pattern, sentence):
                i = CHEXPERT_OBSERVATIONS.index(obs)
                out[i] = value if np.isnan(out[i]) or out[i] == value else 2.0
    return out


@pytest.fixture(scope="module")
def written():
    studies = sample_studies(600, seed=11)
    rng = np.random.default_rng(5)
    return studies, [write_report(s, rng) for s in studies]


def test_labels_are_recoverable_from_findings_and_impression(written):
    studies, reports = written
    for study, report in zip(studies, reports):
        read = read_labels(report["findings"] + " " + report["impression"])
        assert np.array_equal(read[1:], study.labels[1:], equal_nan=True), (study.labels, report)


def test_blank_labels_are_never_mentioned_even_if_in_the_image(written):
    studies, reports = written
    hidden = 0
    for study, report in zip(studies, reports):
        for obs in PATHOLOGIES:
            if np.isnan(study.labels[CHEXPERT_OBSERVATIONS.index(obs)]):
                hidden += bool(study.findings_of(obs))
                assert not re.search(MENTIONS[obs], (report["findings"] + " " + report["impression"]).lower())
    assert hidden > 0


def test_no_finding_and_impression(written):
    studies, reports = written
    normal = [s.labels[0] == 1.0 for s in studies]
    assert 0 < sum(normal) < len(studies)
    for is_normal, report in zip(normal, reports):
        assert (report["impression"] in IMPRESSION_NORMAL) == is_normal
        assert ("lungs are clear" in report["findings"].lower()) <= is_normal
        assert report["findings"] and report["impression"]
    only_normal = Study("n", np.array([1.0] + [np.nan] * 13))
    assert all(write_report(only_normal, np.random.default_rng(i))["findings"] for i in range(30))


def test_comparison_sometimes_cites_a_prior(written):
    _, reports = written
    cites = np.array([comparison_cites_prior(r["comparison"]) for r in reports])
    assert abs(cites.mean() - P_PRIOR) < 0.06
    assert all(comparison_cites_prior(c) for c in COMPARISON_PRIOR)
    assert not any(comparison_cites_prior(c) for c in COMPARISON_NONE)


def test_phrasing_is_diverse_and_deterministic(written):
    studies, reports = written
    sentences = [s for r in reports for s in re.split(r"(?<=\.)\s+", r["findings"])]
    assert len(set(sentences)) > 150
    again = [write_report(s, np.random.default_rng(5)) for s in studies[:1]]
    assert again[0] == reports[0]
    assert write_report(studies[3], np.random.default_rng(1)) != write_report(studies[3], np.random.default_rng(2))


def test_finding_details_reach_the_text():
    labels = np.full(14, np.nan)
    for obs in ("Pleural Effusion", "Pneumothorax", "Support Devices"):
        labels[CHEXPERT_OBSERVATIONS.index(obs)] = 1.0
    study = Study("s", labels, (Finding("Pleural Effusion", severity=0.9, laterality="bilateral", zone="lower"),
                                Finding("Pneumothorax", severity=0.1, laterality="left", zone="upper"),
                                Finding("Support Devices", laterality=None, kind="et_tube"),
                                Finding("Support Devices", laterality="left", kind="pacemaker")))
    for seed in range(10):
        text = write_report(study, np.random.default_rng(seed))["findings"].lower()
        assert re.search(r"large bilateral (?:pleural )?effusions", text)
        assert re.search(r"(?:small|tiny) left (?:apical )?pneumothorax", text)
        assert "carina" in text and re.search(r"left(?:-sided| chest wall dual-chamber)? pacemaker", text)


def test_every_observation_is_rendered_and_mentioned_in_1000_studies():
    from rrgkit.evaluation.labeler import label_reports
    from rrgkit.phantom.render import render_study

    studies = sample_studies(1000, seed=11)
    rng = np.random.default_rng(0)
    labels = label_reports([write_report(s, rng)["findings"] for s in studies])
    for name in PATHOLOGIES:
        carriers = [s for s in studies if s.findings_of(name)]
        assert carriers, f"{name} never drawn in 1,000 studies"
        image = render_study(carriers[0], 64)
        assert image.shape == (64, 64) and np.isfinite(image).all()
        assert np.isfinite(labels[:, CHEXPERT_OBSERVATIONS.index(name)]).any(), f"{name} never mentioned"
