"""The common manifest schema and the readers of the bundled real data."""

import numpy as np
import pandas as pd
import pytest

from rrgkit.data.chexpert_rows import load_chexpert_rows
from rrgkit.data.manifest import COLUMNS, ManifestError, read_manifest, write_manifest
from rrgkit.data.iu_xray import ReportParseError, load_iu_reports
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def _row(i, **kw):
    row = {c: "" for c in COLUMNS}
    row.update(id=f"s{i}", images=f"images/{i}.png|images/{i}l.png", views="PA|LATERAL", findings="Clear lungs.", split="train", source="phantom")
    row.update({o: np.nan for o in CHEXPERT_OBSERVATIONS})
    row.update(kw)
    return row


def test_manifest_roundtrip(tmp_path):
    frame = pd.DataFrame([_row(0, **{"Cardiomegaly": 1.0, "Edema": -1.0}), _row(1, **{"Cardiomegaly": 0.0})])
    path = write_manifest(frame, tmp_path / "manifest.csv")
    back = read_manifest(tmp_path)
    assert list(back.columns) == list(COLUMNS)
    assert back.loc[0, "Cardiomegaly"] == 1.0 and back.loc[0, "Edema"] == -1.0
    assert np.isnan(back.loc[0, "Fracture"]) and back.loc[1, "Cardiomegaly"] == 0.0
    assert back.attrs["root"] == str(path.parent.resolve())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["findings"]), "missing columns"),
        (lambda f: f.assign(Edema=2.0), "outside 1/0/-1"),
        (lambda f: f.assign(split="validate"), "unknown split"),
        (lambda f: f.assign(id="same"), "duplicate ids"),
        (lambda f: f.assign(views="PA"), "image and view counts differ"),
    ],
)
def test_bad_manifests_are_named(tmp_path, change, message):
    frame = change(pd.DataFrame([_row(0), _row(1)]))
    with pytest.raises(ManifestError, match=message):
        write_manifest(frame, tmp_path / "manifest.csv")


def test_missing_manifest_says_how_to_build_one(tmp_path):
    with pytest.raises(ManifestError, match="rrgkit data build"):
        read_manifest(tmp_path)


def test_iu_reports_from_the_wheel():
    reports = load_iu_reports()
    assert len(reports) == 3955
    assert reports["uid"].is_unique
    assert (reports["findings"] != "").sum() > 3000
    assert reports["findings"].str.contains("XXXX").any()


def test_malformed_report_xml_names_the_file(tmp_path):
    (tmp_path / "1.xml").write_text("<eCitation><uId id='CXR1'/>")
    with pytest.raises(ReportParseError, match="1.xml"):
        load_iu_reports(tmp_path)


def test_chexpert_rows_from_the_wheel():
    rows = load_chexpert_rows()
    assert len(rows) == 223414
    assert set(np.unique(rows["Edema"].dropna())) <= {-1.0, 0.0, 1.0}


def test_chexpert_rows_with_a_wrong_column_are_named(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"Path": ["a"], "Sex": ["F"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing columns"):
        load_chexpert_rows(path)
