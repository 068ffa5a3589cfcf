"""IU X-ray adapter on fixture trees in its three layouts (Open-i XML, Kaggle CSV pair, R2Gen annotation)."""

import pandas as pd
import pytest

from fixtures.make_fixtures import IU_EXPECTED, make_iu_csv_tree, make_iu_openi_tree, make_iu_r2gen_tree
from rrgkit.data.curate_cli import curate
from rrgkit.data.iu_xray import random_split, detect_layout, load_iu_xray
from rrgkit.data.manifest import ManifestError, image_paths, read_manifest


@pytest.mark.parametrize("make, layout", [(make_iu_csv_tree, "csv"), (make_iu_openi_tree, "openi")])
def test_layout_is_detected_and_curation_keeps_the_expected_reports(tmp_path, make, layout):
    root = make(tmp_path / layout)
    assert detect_layout(root) == layout
    record = curate("iu-xray", root, tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert sorted(manifest["id"]) == sorted(k for k, v in IU_EXPECTED.items() if v == "kept")
    dropped = {s["step"]: s["dropped"] for s in record["funnel"]}
    assert dropped == {"input": 0, **{r: sum(v == r for v in IU_EXPECTED.values()) for r in ("findings", "frontal", "no_prior")}}
    assert set(manifest["views"]) == {"PA"} and set(manifest["source"]) == {"iu-xray"}
    assert all(image_paths(manifest, i)[0].exists() for i in range(len(manifest)))
    assert "-1001" in image_paths(manifest, 0)[0].name  # the frontal, not the lateral


def test_r2gen_layout_keeps_its_split_and_logs_missing_images(tmp_path):
    root = make_iu_r2gen_tree(tmp_path / "r2gen")
    frame, skips = load_iu_xray(root)
    assert dict(zip(frame["id"], frame["split"])) == {"CXR1_IM-0001": "train", "CXR4_IM-0004": "val", "CXR5_IM-0005": "test"}
    assert [(s["id"], s["reason"]) for s in skips] == [("CXR5_IM-0005", "missing image")]
    curate("iu-xray", root, tmp_path / "out", keep_lateral=True)
    manifest = read_manifest(tmp_path / "out").set_index("id")
    assert manifest.loc["CXR1_IM-0001", "views"] == "PA|LATERAL" and manifest.loc["CXR5_IM-0005", "views"] == "PA"


def testrandom_split_is_seeded_and_7_1_2():
    names = random_split(1000, seed=0)
    assert names == random_split(1000, seed=0) and names != random_split(1000, seed=1)
    assert pd.Series(names).value_counts().to_dict() == {"train": 700, "test": 200, "val": 100}


def test_missing_image_file_is_logged(tmp_path):
    root = make_iu_csv_tree(tmp_path / "csv")
    (root / "images" / "images_normalized" / "1_IM-0001-1001.dcm.png").unlink()
    frame, skips = load_iu_xray(root)
    assert [(s["id"], s["reason"]) for s in skips] == [("iu-1", "missing image")]
    assert frame.set_index("id").loc["iu-1", "views"] == "LATERAL"


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation.json"):
        load_iu_xray(tmp_path)
    root = make_iu_csv_tree(tmp_path / "csv")
    pd.read_csv(root / "indiana_reports.csv").drop(columns="findings").to_csv(root / "indiana_reports.csv", index=False)
    with pytest.raises(ManifestError, match=r"indiana_reports\.csv.*findings"):
        load_iu_xray(root)
    with pytest.raises(ValueError, match="layout"):
        load_iu_xray(root, layout="kaggle")


def test_openi_tgz_gives_the_same_manifest_as_the_xml_folder(tmp_path):
    import shutil
    import tarfile

    root = make_iu_openi_tree(tmp_path / "openi")
    from_folder, _ = load_iu_xray(root)
    with tarfile.open(root / "NLMCXR_reports.tgz", "w:gz") as tar:
        tar.add(root / "ecgen-radiology", arcname="ecgen-radiology")
    shutil.rmtree(root / "ecgen-radiology")
    assert detect_layout(root) == "openi"
    from_tgz, _ = load_iu_xray(root)
    pd.testing.assert_frame_equal(from_folder, from_tgz)
