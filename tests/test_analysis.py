"""The paper's analyses (Eqs. 2-4) on hand-made inputs whose answers are known."""

import numpy as np
import pytest

from rrgkit.analysis.confidence import average_confidence, positive_outcomes, separability
from rrgkit.analysis.prompt_attention import allocation_by_layer, attention_allocation
from rrgkit.analysis.prompt_similarity import cosine_matrix, delta, image_dependent_share, label_classes, single_label_subset


def test_uniform_attention_gives_allocation_one():
    k, lengths = 10, np.array([15.0, 16.0, 17.0])
    mass = (k / lengths)[:, None].repeat(2, axis=1)  # uniform attention over the context
    table = attention_allocation([mass], [lengths], n_prompt=k)
    assert np.allclose(table.alpha, 1.0)
    summary = allocation_by_layer(table)
    assert list(summary.layer) == [0, 1] and np.allclose(summary.alpha_mean, 1.0)


def test_attention_shapes_are_checked():
    with pytest.raises(ValueError, match="report 0"):
        attention_allocation([np.ones((3, 2))], [np.ones(4)], n_prompt=10)


def test_delta_is_positive_when_classes_cluster():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 5, 8)) + 2.0  # a shared component, as soft prompts have
    prompts = np.concatenate([centres[0] + 0.1 * rng.normal(size=(4, 5, 8)), centres[1] + 0.1 * rng.normal(size=(4, 5, 8))])
    classes = ["a"] * 4 + ["b"] * 4
    sim = cosine_matrix(prompts)
    assert np.allclose(np.diag(sim), 1.0)
    assert delta(sim, classes) > 0.1
    shuffled = delta(sim, ["a", "b"] * 4)
    assert shuffled < delta(sim, classes)


def test_delta_needs_pairs_and_a_positive_baseline():
    with pytest.raises(ValueError, match="two samples"):
        delta(np.eye(2), ["a", "b"])
    opposed = np.array([[1.0, 0.9, -0.5], [0.9, 1.0, -0.5], [-0.5, -0.5, 1.0]])
    with pytest.raises(ValueError, match="no meaning"):
        delta(opposed, ["a", "a", "b"])


def test_label_classes_and_single_label_subset():
    labels = np.full((3, 14), np.nan)
    labels[0, 2] = 1  # Cardiomegaly
    labels[1, [2, 10]] = 1
    labels[2, 0] = 1
    labels[2, 5] = -1  # uncertain is not positive
    assert label_classes(labels) == ["Cardiomegaly", "Cardiomegaly+Pleural Effusion", "No Finding"]
    assert list(single_label_subset(labels)) == [0, 2]


def test_confidence_outcomes_and_auroc():
    ac = average_confidence([np.array([0.9, 0.8]), np.array([0.5]), np.array([])])
    assert np.isclose(ac[0], 0.85) and np.isnan(ac[2])
    predicted = np.full((3, 14), np.nan)
    reference = np.full((3, 14), np.nan)
    predicted[[0, 1], 2] = 1
    reference[0, 2] = 1
    outcomes = positive_outcomes(ac, predicted, reference)
    assert list(outcomes.outcome) == ["TP", "FP"]
    table = separability(outcomes, n_reports=3, n_boot=50).set_index("observation")
    assert table.loc["all", "AUROC"] == 1.0 and table.loc["Cardiomegaly", "n_FP"] == 1


def test_image_dependent_share_is_zero_for_a_constant_prompt_and_one_without_a_common_part():
    rng = np.random.default_rng(0)
    common = rng.normal(size=(1, 10, 8))
    assert image_dependent_share(np.repeat(common, 5, axis=0)) == pytest.approx(0.0, abs=1e-12)
    centred = rng.normal(size=(6, 10, 8))
    centred -= centred.mean(axis=0)
    assert image_dependent_share(centred) == pytest.approx(1.0)
    small = common + 0.01 * centred
    assert 0 < image_dependent_share(small) < 1e-3 < image_dependent_share(common + centred)
    with pytest.raises(ValueError, match="at least two"):
        image_dependent_share(common)
