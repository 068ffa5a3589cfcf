"""The encoder + classifier reference point: micro-F1 thresholds and reports written from its decisions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rrgkit.experiments.image_classifier import classifier_reports, micro_f1_thresholds
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def _micro_f1(probabilities: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> float:
    pred = probabilities >= thresholds
    return 2 * (pred & truth).sum() / (pred.sum() + truth.sum())


def test_thresholds_separate_each_column_and_go_below_one_half_where_positives_score_low():
    rng = np.random.default_rng(0)
    truth = rng.random((200, 2)) < 0.4
    probabilities = np.where(truth, [0.8, 0.2], [0.3, 0.1]) + rng.uniform(-0.02, 0.02, (200, 2))
    thresholds = micro_f1_thresholds(probabilities, truth)
    assert 0.3 < thresholds[0] <= 0.8 and 0.1 < thresholds[1] <= 0.2
    assert _micro_f1(probabilities, truth, thresholds) == pytest.approx(1.0)
    assert _micro_f1(probabilities, truth, np.full(2, 0.5)) < 0.8  # the fixed 0.5 misses column 1 entirely


def test_thresholds_never_do_worse_than_one_half_and_check_shapes():
    rng = np.random.default_rng(1)
    truth = rng.random((300, 5)) < 0.3
    probabilities = np.clip(0.35 * truth + 0.65 * rng.random((300, 5)), 0, 1)
    thresholds = micro_f1_thresholds(probabilities, truth)
    assert _micro_f1(probabilities, truth, thresholds) > _micro_f1(probabilities, truth, np.full(5, 0.5))
    with pytest.raises(ValueError, match="same"):
        micro_f1_thresholds(probabilities, truth[:, :3])


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from rrgkit.data.embedded import build_phantom

    return build_phantom(tmp_path_factory.mktemp("phantom"), n=160, size=64, seed=3)


@pytest.mark.slow
def test_classifier_reports_follow_the_ids_and_say_what_the_classifier_decided(phantom):
    from rrgkit.data.manifest import read_manifest
    from rrgkit.evaluation.labeler import label_reports

    torch.manual_seed(0)
    torch.set_num_threads(1)
    encoder = {"name": "resnet-tiny", "weights": None}
    test_ids = list(read_manifest(phantom).query("split == 'test'")["id"])
    result = classifier_reports(phantom, encoder, 32)
    assert result.ids == test_ids and all(text.strip() for text in result.texts)
    assert set(result.thresholds) <= set(CHEXPERT_OBSERVATIONS) - {"No Finding"} and result.thresholds
    torch.manual_seed(0)
    again = classifier_reports(phantom, encoder, 32, ids=test_ids[::-1])
    assert again.texts == result.texts[::-1]  # same decisions and phrasing, whatever the order asked for
    columns = [CHEXPERT_OBSERVATIONS.index(o) for o in result.thresholds]
    decided = result.test_probabilities[:, columns] >= np.array(list(result.thresholds.values()))
    said = np.isin(label_reports(result.texts)[:, columns], (1.0, -1.0))
    assert (decided == said).mean() > 0.95  # the writer states each decision (the labeler misreads a few)
    with pytest.raises(ValueError, match="not test studies"):
        classifier_reports(phantom, encoder, 32, ids=["nope"])


@pytest.mark.slow
def test_reference_reports_put_the_classifier_between_text_only_and_the_ceiling(phantom):
    from rrgkit.experiments.reference_points import reference_reports, score_on_test

    torch.manual_seed(0)
    classifier = {"encoder": {"name": "resnet-tiny", "weights": None}, "image_size": 32, "views": "frontal"}
    systems = reference_reports(phantom, classifier=classifier)
    assert list(systems) == ["text only", "encoder + classifier", "writer ceiling"]
    scores = score_on_test(phantom, systems, n_boot=20)
    assert scores["writer ceiling"]["metrics"]["F1-CXP-14"]["value"] > 0.9
    assert list(reference_reports(phantom)) == ["text only", "writer ceiling"]


@pytest.mark.slow
def test_classifier_reports_name_an_empty_split(phantom):
    from rrgkit.data.manifest import read_manifest, write_manifest

    frame = read_manifest(phantom)
    frame.loc[frame["split"] == "val", "split"] = "train"
    broken = write_manifest(frame, phantom.parent / "no-val.csv")
    with pytest.raises(ValueError, match="no studies in split 'val'"):
        classifier_reports(broken, {"name": "resnet-tiny", "weights": None}, 32)
