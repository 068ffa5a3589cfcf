"""The paper's curation rules on hand-made manifest frames: which studies survive and which image is kept."""

import numpy as np
import pandas as pd
import pytest

from rrgkit.data.curation import comparison_cites_prior, curate_manifest
from rrgkit.labels import CHEXPERT_OBSERVATIONS

NO_PRIOR = ["", None, np.nan, "None.", "none", "NONE", "None available.", "No prior", "No prior.", "No previous studies.",
            "No prior studies available for comparison.", "There are no prior studies.", "N/A", "n/a", "NA", "Not available.",
            "No comparison.", "No comparison chest x-XXXX.", "None. Clinical history: cough.",
            "No comparison studies are currently available.", "None available for review.", "No prior chest radiographs.", "No prior chest x-rays.", "  none  ", "Nil."]
CITES = ["Chest radiograph from ___.", "___", "Prior study from 2010.", "Compared to previous exam of XXXX.", "XXXX",
         "XXXX, XXXX", "12/03/2010", "PA and lateral chest radiograph from ___", "Comparison with prior of XXXX",
         "None available, compared to chest film of 2009.", "Chest radiographs ___ and ___.", "CT chest ___",
         "Previous radiograph.", "None ; XXXX dated XXXX", "None. Compare to previous.", "Portable AP chest radiograph from earlier the same day."]


@pytest.mark.parametrize("text", NO_PRIOR)
def test_absent_or_negated_comparison_does_not_cite_a_prior(text):
    assert not comparison_cites_prior(text)


@pytest.mark.parametrize("text", CITES)
def test_dates_and_prior_mentions_cite_a_prior(text):
    assert comparison_cites_prior(text)


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["id", "images", "views", "findings", "comparison", "split"])
    frame["impression"] = ""
    frame["source"] = "test"
    for obs in CHEXPERT_OBSERVATIONS:
        frame[obs] = np.nan
    return frame


ROWS = [
    ("pa_lat", "a.jpg|b.jpg", "LATERAL|PA", "clear", "", "train"),
    ("ap_pa", "c.jpg|d.jpg", "AP|PA", "clear", "None.", "train"),
    ("ap_only", "e.jpg|f.jpg", "AP|AP", "clear", "", "val"),
    ("lat_only", "g.jpg", "LATERAL", "clear", "", "test"),
    ("no_findings", "h.jpg", "PA", "", "", "test"),
    ("blank_findings", "i.jpg", "PA", "   ", "", "train"),
    ("nan_findings", "j.jpg", "PA", np.nan, "", "val"),
    ("prior", "k.jpg", "PA", "clear", "Chest radiograph from ___.", "test"),
    ("no_image", "", "", "clear", "", "train"),
]


def test_survivors_and_chosen_frontal_image():
    curated, _ = curate_manifest(_frame(ROWS))
    assert curated["id"].tolist() == ["pa_lat", "ap_pa", "ap_only"]
    assert curated["images"].tolist() == ["b.jpg", "d.jpg", "e.jpg"]
    assert curated["views"].tolist() == ["PA", "PA", "AP"]


def test_keep_lateral_puts_laterals_after_the_frontal():
    curated, _ = curate_manifest(_frame(ROWS), keep_lateral=True)
    assert curated.set_index("id").loc["pa_lat", "images"] == "b.jpg|a.jpg"
    assert curated.set_index("id").loc["pa_lat", "views"] == "PA|LATERAL"
    assert curated.set_index("id").loc["ap_pa", "images"] == "d.jpg"


def test_funnel_accounts_for_every_study_per_step_and_split():
    frame = _frame(ROWS)
    _, funnel = curate_manifest(frame)
    assert [s["step"] for s in funnel] == ["input", "findings", "frontal", "no_prior"]
    assert [(s["kept"], s["dropped"]) for s in funnel] == [(9, 0), (6, 3), (4, 2), (3, 1)]
    for before, after in zip(funnel, funnel[1:]):
        assert after["kept"] + after["dropped"] == before["kept"]
    for step in funnel:
        assert sum(step["per_split"].values()) == step["kept"]
    assert funnel[-1]["per_split"] == {"train": 2, "val": 1, "test": 0}


def test_curation_does_not_modify_its_input():
    frame = _frame(ROWS)
    copy = frame.copy()
    curate_manifest(frame)
    pd.testing.assert_frame_equal(frame, copy)


def test_all_dropped_gives_an_empty_writable_manifest(tmp_path):
    from rrgkit.data.manifest import read_manifest, write_manifest

    curated, funnel = curate_manifest(_frame([r for r in ROWS if r[0] in ("lat_only", "prior")]))
    assert funnel[-1]["kept"] == 0 and len(curated) == 0
    write_manifest(curated, tmp_path / "manifest.csv")
    assert len(read_manifest(tmp_path)) == 0


def test_missing_column_is_a_clear_error():
    from rrgkit.data.manifest import ManifestError

    with pytest.raises(ManifestError, match="comparison"):
        curate_manifest(_frame(ROWS).drop(columns="comparison"))
