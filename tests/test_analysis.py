"""The paper's analyses (Eqs. 2-4) on hand-made inputs whose answers are known."""

import numpy as np
import pytest

from rrgkit.analysis.confidence import average_confidence, positive_outcomes, separability
from rrgkit.analysis.prompt_attention import attention_allocation, report_means
from rrgkit.analysis.prompt_similarity import (
    cosine_matrix,
    delta,
    image_dependent_share,
    label_classes,
    mean_similarity,
    prompt_map,
    single_label_subset,
)


def test_uniform_attention_gives_allocation_one():
    k, lengths = 10, np.array([15.0, 16.0, 17.0])
    mass = (k / lengths)[:, None].repeat(2, axis=1)  # uniform attention over the context
    table = attention_allocation([mass], [lengths], n_prompt=k, sink_attention=[(1 / lengths)[:, None].repeat(2, axis=1)])
    assert np.allclose(table.alpha, 1.0) and np.allclose(table.alpha_no_sink, 1.0)
    per_layer = report_means(table, by="layer")
    assert list(per_layer.index) == [(0, 0), (1, 0)] and np.allclose(per_layer, 1.0)


def test_allocation_without_the_sink_on_hand_computed_attention():
    # N = 4 prompt positions in a context of 10; layer 0 attends uniformly, layer 1 parks 0.6 on position 0
    mass, sink, lengths = np.array([[0.4, 0.7]]), np.array([[0.1, 0.6]]), np.array([10.0])
    table = attention_allocation([mass], [lengths], n_prompt=4, sink_attention=[sink])
    assert list(table.columns) == ["report", "step", "layer", "alpha", "sink", "alpha_no_sink"]
    # alpha = m / (N / L); without the sink: ((m - s) / (1 - s)) / ((N - 1) / (L - 1))
    np.testing.assert_allclose(table.alpha, [0.4 / 0.4, 0.7 / 0.4])  # 1, 1.75: layer 1 seems to favour the image
    np.testing.assert_allclose(table.alpha_no_sink, [1.0, (0.1 / 0.4) / (3 / 9)])  # 1, 0.75: it does not
    np.testing.assert_allclose(table.sink, [0.1, 0.6])
    one_token = attention_allocation([np.array([[0.5]])], [np.array([5.0])], n_prompt=1, sink_attention=[np.array([[0.5]])])
    all_on_sink = attention_allocation([np.array([[1.0]])], [np.array([5.0])], n_prompt=2, sink_attention=[np.array([[1.0]])])
    assert np.isnan(one_token.alpha_no_sink).all() and np.isnan(all_on_sink.alpha_no_sink).all()
    with pytest.raises(ValueError, match="sink"):
        attention_allocation([mass], [lengths], n_prompt=4, sink_attention=[sink[:, :1]])


def test_report_means_weigh_each_report_once():
    # report 0: two steps, alphas per (step, layer) = (1, 3), (5, 7); report 1: one step, (2, 2)
    table = attention_allocation([np.array([[1.0, 3.0], [5.0, 7.0]]), np.array([[2.0, 2.0]])],
                                 [np.full(2, 4.0), np.full(1, 4.0)], n_prompt=4)
    assert report_means(table).tolist() == [4.0, 2.0]
    assert report_means(table, by="step").to_dict() == {(1, 0): 2.0, (1, 1): 2.0, (2, 0): 6.0}
    assert report_means(table, by="layer").to_dict() == {(0, 0): 3.0, (0, 1): 2.0, (1, 0): 5.0, (1, 1): 2.0}
    with pytest.raises(KeyError, match="sink"):
        report_means(table, "sink")


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


def test_delta_and_mean_similarity_on_known_cosines():
    # two classes of identical vectors at cosine 0.6 from each other: same-class pairs 1, different 0.6
    prompts = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.6, 0.8]])
    sim = cosine_matrix(prompts)
    assert delta(sim, ["a", "a", "b", "b"]) == pytest.approx(1 / 0.6 - 1)
    assert mean_similarity(sim) == pytest.approx((2 * 1.0 + 4 * 0.6) / 6)  # 2 same-class and 4 different pairs
    with pytest.raises(ValueError, match="two samples"):
        mean_similarity(np.eye(1))


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
    assert label_classes(labels, "negative") == ["Cardiomegaly", "Cardiomegaly+Pleural Effusion", "No Finding"]
    assert list(single_label_subset(labels, "negative")) == [0, 2]


def test_the_uncertain_policy_decides_the_class_of_uncertain_studies():
    labels = np.full((3, 14), np.nan)
    labels[0, 5] = -1  # uncertain Edema only
    labels[1, [2, 5]] = [1, -1]  # Cardiomegaly, uncertain Edema
    labels[2, 0] = 1  # No Finding
    assert label_classes(labels) == label_classes(labels, "positive") == ["Edema", "Cardiomegaly+Edema", "No Finding"]
    assert label_classes(labels, "negative") == ["No Finding", "Cardiomegaly", "No Finding"]
    assert list(single_label_subset(labels, "positive")) == [0, 2]
    assert list(single_label_subset(labels, "negative")) == [0, 1, 2]
    with pytest.raises(ValueError, match="uncertain must be"):
        label_classes(labels, "ignore")


def test_prompt_map_keeps_separated_classes_apart():
    rng = np.random.default_rng(0)
    common = 50 + rng.normal(size=(1, 4, 6))  # a large shared component, as soft prompts have
    prompts = np.concatenate([common + 1e-3 * (rng.normal(size=(15, 4, 6)) + 3), common + 1e-3 * (rng.normal(size=(15, 4, 6)) - 3)])
    embedding = prompt_map(prompts, seed=0, n_neighbors=5)
    assert embedding.shape == (30, 2)
    first, second = embedding[:15], embedding[15:]
    gap = np.linalg.norm(first.mean(0) - second.mean(0))
    spread = max(np.linalg.norm(first - first.mean(0), axis=1).max(), np.linalg.norm(second - second.mean(0), axis=1).max())
    assert gap > spread
    with pytest.raises(ValueError, match="the same"):
        prompt_map(np.repeat(common, 5, axis=0))


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
