"""NLG metrics: the normalisation is as documented, and BLEU/ROUGE-L match pycocoevalcap exactly."""

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge

from rrgkit.evaluation import nlg

PREDS = [
    "The heart is normal in size. No pleural effusion or pneumothorax.",
    "Mild cardiomegaly. Small left pleural effusion.",
    "Lungs are clear.",
    "There is a 1.9 x 1.8 cm nodule in the right upper lobe, XXXX granuloma.",
    "No acute cardiopulmonary abnormality. Heart size normal.",
    "",
]
REFS = [
    "Heart size is normal. There is no pleural effusion. No pneumothorax.",
    "Cardiomegaly is mild. There is a small left effusion.",
    "The lungs are clear bilaterally. No focal consolidation.",
    "Stable 1.9 cm nodule in the right upper lobe, consistent with granuloma.",
    "Normal heart size. No acute abnormality.",
    "No pneumothorax.",
]


def _coco(preds, refs):
    keys = range(len(preds))
    return {k: [refs[k]] for k in keys}, {k: [preds[k]] for k in keys}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("No effusion.There is a 1.9 x 1.8 cm nodule, XXXX granuloma..", "no effusion . there is a 1.9 x 1.8 cm nodule xxxx granuloma ."),
        ("1. Normal chest. 2. No ___ effusion; right-sided - tube/line", "normal chest . no xxxx effusion right-sided tube line ."),
        ("  Heart   size\nnormal (stable)  ", "heart size normal stable ."),
        ("2 images. 8mm nodule", "2 images . 8mm nodule ."),
        ("", ""),
        (" . . ", ""),
    ],
)
def test_normalize_report_is_documented_behaviour(raw, expected):
    assert nlg.normalize_report(raw) == expected


def test_normalize_rejects_non_strings():
    with pytest.raises(ValueError, match="must be a string"):
        nlg.normalize_report(None)


@pytest.mark.parametrize("normalize", [True, False])
def test_bleu_matches_pycocoevalcap(normalize):
    ours = nlg.bleu(PREDS, REFS, normalize=normalize)
    fix = nlg.normalize_report if normalize else (lambda t: " ".join(t.split()))
    theirs, _ = Bleu(4).compute_score(*_coco([fix(p) for p in PREDS], [fix(r) for r in REFS]), verbose=0)
    assert [ours[f"BLEU-{k}"] for k in range(1, 5)] == pytest.approx(theirs, abs=1e-9)
    assert 0 < ours["BLEU-4"] < ours["BLEU-1"] < 1


def test_bleu_from_resampled_sums_matches_pycocoevalcap_on_the_resample():
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(PREDS), size=len(PREDS) * 2)
    stats = nlg.bleu_statistics(PREDS, REFS)
    ours = nlg.bleu_from_sums(stats[idx].sum(axis=0))
    norm_p = [nlg.normalize_report(PREDS[i]) for i in idx]
    norm_r = [nlg.normalize_report(REFS[i]) for i in idx]
    theirs, _ = Bleu(4).compute_score(*_coco(norm_p, norm_r), verbose=0)
    assert ours == pytest.approx(theirs, abs=1e-9)
    weights = np.bincount(idx, minlength=len(PREDS)).astype(float)[None, :]
    assert nlg.bleu_from_sums(weights @ stats)[0] == pytest.approx(theirs, abs=1e-9)


def test_bleu_brevity_penalty_and_identity():
    assert nlg.bleu(REFS, REFS)["BLEU-4"] == pytest.approx(1.0)
    short = nlg.bleu(["heart size is normal ."], ["heart size is normal . there is no pleural effusion ."])
    assert short["BLEU-1"] == pytest.approx(np.exp(1 - 11 / 5), rel=1e-6)


def test_rouge_l_matches_pycocoevalcap():
    ours = nlg.rouge_l_per_report(PREDS, REFS)
    mean, theirs = Rouge().compute_score(*_coco([nlg.normalize_report(p) for p in PREDS], [nlg.normalize_report(r) for r in REFS]))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert nlg.rouge_l(PREDS, REFS) == pytest.approx(mean, abs=1e-12)


def test_cider_identical_beats_different():
    same = nlg.cider_per_report(REFS, REFS).mean()
    other = nlg.cider_per_report(PREDS, REFS).mean()
    assert same > other >= 0


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        nlg.bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no reports"):
        nlg.rouge_l([], [])


@pytest.mark.slow
@pytest.mark.skipif(not nlg.java_available(), reason="METEOR needs java")
def test_meteor_runs_and_rewards_identity():
    scores = nlg.meteor_per_report(PREDS[:3] + REFS[:3], REFS[:3] + REFS[:3])
    assert scores.shape == (6,)
    assert scores[3:].mean() > scores[:3].mean()


@pytest.mark.parametrize("normalize", [True, False])
def test_non_string_reports_raise(normalize):
    with pytest.raises(ValueError, match="prediction 1 is None"):
        nlg.bleu(["a", None], ["a", "b"], normalize=normalize)
