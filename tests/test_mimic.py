"""MIMIC-CXR-JPG adapter on a fixture tree in the exact PhysioNet layout (synthetic text)."""

import gzip
import json

import pandas as pd
import pytest

from fixtures.make_fixtures import MIMIC_EXPECTED, make_mimic_tree
from rrgkit.cli import main
from rrgkit.data.curate_cli import curate
from rrgkit.data.manifest import ManifestError, image_paths, read_manifest
from rrgkit.data.mimic import load_mimic
from rrgkit.data.mimic_sections import section_report


def test_sectioner_normalises_variants_keeps_last_and_collapses_whitespace():
    text = " FINDINGS: old.\n COMPARISONS:  No prior.\n FINDING:   Mild\n\n  cardiomegaly.\n CONCLUSION: Cardiomegaly.\n IMPRESSIONS: Final."
    sections = section_report(text)
    assert sections["findings"] == "Mild cardiomegaly."
    assert sections["comparison"] == "No prior."
    assert sections["impression"] == "Final."


def test_sectioner_ignores_lower_case_colons_and_reports_absent_sections_as_empty():
    sections = section_report(" FINDINGS: Tube at 3:00 position, note: stable.\n")
    assert sections["findings"] == "Tube at 3:00 position, note: stable."
    assert sections["impression"] == "" and sections["comparison"] == ""


@pytest.mark.parametrize("separate_reports", [False, True])
def test_each_study_fails_the_expected_rule_and_keeps_the_expected_image(tmp_path, separate_reports):
    reports = tmp_path / "reports" if separate_reports else None
    root = make_mimic_tree(tmp_path / "mimic", reports)
    record = curate("mimic-cxr", root, tmp_path / "out", reports_root=reports)
    manifest = read_manifest(tmp_path / "out")
    kept = {sid: img for sid, (rule, img) in MIMIC_EXPECTED.items() if rule == "kept"}
    assert sorted(manifest["id"]) == sorted(kept)
    for row, sid in enumerate(manifest["id"]):
        path = image_paths(manifest, row)[0]
        assert path.stem == kept[sid] and path.exists()
    dropped = {s["step"]: s["dropped"] for s in record["funnel"]}
    for rule in ("findings", "frontal", "no_prior"):
        assert dropped[rule] == sum(r == rule for r, _ in MIMIC_EXPECTED.values())
    assert record["funnel"][0]["per_split"] == {"train": 5, "val": 2, "test": 3}
    assert set(manifest["source"]) == {"mimic-cxr"}
    assert json.loads((tmp_path / "out" / "curation.json").read_text())["funnel"] == record["funnel"]


def test_problem_files_are_counted_and_logged_not_silently_dropped(tmp_path):
    _, skips = load_mimic(make_mimic_tree(tmp_path / "mimic"))
    reasons = {(s["id"], s["reason"]) for s in skips}
    assert reasons == {("s50000008", "non-UTF-8 report"), ("s50000009", "missing image"), ("s50000010", "unreadable image")}


def test_header_variant_report_is_sectioned(tmp_path):
    frame, _ = load_mimic(make_mimic_tree(tmp_path / "mimic"))
    row = frame.set_index("id").loc["s50000007"]
    assert row["findings"] == "Mild cardiomegaly. Small left effusion."
    assert row["impression"] == "Cardiomegaly." and row["comparison"] == "No prior studies."


def test_missing_column_names_the_file_and_the_column(tmp_path):
    root = make_mimic_tree(tmp_path / "mimic")
    meta = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv").drop(columns="ViewPosition")
    meta.to_csv(root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    with pytest.raises(ManifestError, match=r"metadata\.csv.*ViewPosition"):
        load_mimic(root)


def test_missing_table_and_unknown_split_are_clear_errors(tmp_path):
    root = make_mimic_tree(tmp_path / "mimic")
    with gzip.open(root / "mimic-cxr-2.0.0-split.csv.gz", "rt") as fh:
        split = pd.read_csv(fh)
    split.loc[0, "split"] = "holdout"
    split.to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    (root / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    with pytest.raises(ManifestError, match="holdout"):
        load_mimic(root)
    root = make_mimic_tree(tmp_path / "mimic2")
    (root / "mimic-cxr-2.0.0-chexpert.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="chexpert"):
        load_mimic(root)


def test_cli_prints_the_funnel_and_one_line_errors(tmp_path, capsys):
    root = make_mimic_tree(tmp_path / "mimic")
    assert main(["data", "curate", "mimic-cxr", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "no_prior" in out and "85,802" in out
    assert main(["data", "curate", "mimic-cxr", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_resize_cache_writes_small_images_and_a_valid_manifest(tmp_path, capsys):
    from PIL import Image

    root = make_mimic_tree(tmp_path / "mimic")
    assert main(["data", "curate", "mimic-cxr", "--root", str(root), "--out", str(tmp_path / "out"), "--resize", "4"]) == 0
    resized = read_manifest(tmp_path / "out" / "resized-4")
    assert sorted(resized["id"]) == sorted(read_manifest(tmp_path / "out")["id"])
    for row in range(len(resized)):
        with Image.open(image_paths(resized, row)[0]) as img:
            assert max(img.size) == 4


def test_wrong_reports_root_is_an_error_not_a_silent_empty_manifest(tmp_path):
    root = make_mimic_tree(tmp_path / "mimic", tmp_path / "reports")
    with pytest.raises(FileNotFoundError, match="reports-root"):
        load_mimic(root, tmp_path / "reports" / "files")
