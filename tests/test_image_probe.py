"""The image probe: runs end to end on a tiny phantom set, is seeded, and names bad arguments."""

import numpy as np
import pytest

from rrgkit.data.embedded import build_phantom
from rrgkit.experiments.image_probe import _auroc_with_ci, image_probe


def test_auroc_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 50), rng.normal(0, 1, 200)]
    positive = np.r_[np.ones(50, bool), np.zeros(200, bool)]
    result = _auroc_with_ci(scores, positive, ~positive, n_boot=200, seed=0)
    assert result["ci_low"] < result["auroc"] < result["ci_high"] and result["auroc"] > 0.6
    assert np.isnan(_auroc_with_ci(scores, np.zeros(250, bool), ~positive, 10, 0)["auroc"])


def test_probe_runs_and_is_deterministic(tmp_path):
    manifest = build_phantom(tmp_path / "ph", n=60, size=64, seed=0)
    first = image_probe(manifest, 64, epochs=1, seed=0, n_boot=10)
    second = image_probe(manifest, 64, epochs=1, seed=0, n_boot=10)
    assert len(first) == 26 and set(first.label) == {"positive (1)", "uncertain (-1)"}
    assert first.equals(second)
    with pytest.raises(ValueError, match="epochs"):
        image_probe(manifest, 64, epochs=0)
