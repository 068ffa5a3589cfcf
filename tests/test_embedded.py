"""The embedded datasets: phantom and iu-phantom folders (manifest, PNGs, funnel, build record) and their CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from rrgkit.cli import main
from rrgkit.data.curation import comparison_cites_prior
from rrgkit.data.embedded import BuildFolderError, build_iu_phantom, build_phantom, load_studies, most_common_report
from rrgkit.data.manifest import SEP, image_paths, read_manifest
from rrgkit.labels import CHEXPERT_OBSERVATIONS

pytest.importorskip("rrgkit.phantom.render")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    return build_phantom(out, n=40, size=64, seed=3)


def test_phantom_folder_follows_the_schema(phantom):
    frame = read_manifest(phantom)
    assert set(frame["source"]) == {"phantom"} and set(frame["split"]) == {"train", "val", "test"}
    assert all(v in ("PA|LATERAL", "AP|LATERAL") for v in frame["views"])
    for row in range(len(frame)):
        for path in image_paths(frame, row):
            with Image.open(path) as img:
                assert img.mode == "L" and img.size == (64, 64)
                assert np.asarray(img).std() > 5  # an image, not a blank
    assert not frame["comparison"].map(comparison_cites_prior).any()
    assert (frame["findings"].str.len() > 0).all()


def test_funnel_accounts_for_every_study(phantom):
    record = json.loads((phantom.parent / "curation.json").read_text())
    steps = {s["step"]: s for s in record["funnel"]}
    assert steps["input"]["kept"] == 40 and steps["no_prior"]["dropped"] > 0
    assert steps["no_prior"]["kept"] == len(read_manifest(phantom))
    assert sum(steps["input"]["per_split"].values()) == 40 and steps["input"]["per_split"]["train"] == 28
    rendered = {p.name for p in (phantom.parent / "images").iterdir()}
    assert len(rendered) == 2 * steps["no_prior"]["kept"]  # dropped studies are never rendered


def test_load_studies_redraws_the_built_state(phantom, tmp_path):
    frame = read_manifest(phantom)
    studies = load_studies(phantom.parent)
    assert len(studies) == 40 and set(frame["id"]) <= set(studies)
    for row in frame.itertuples():
        study = studies[row.id]
        assert row.views.split(SEP)[0] == study.view
        assert np.array_equal(frame.loc[row.Index, list(CHEXPERT_OBSERVATIONS)].to_numpy(float), study.labels, equal_nan=True)
    with pytest.raises(FileNotFoundError, match="rrgkit data build"):
        load_studies(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "build.json").write_text((phantom.parent / "build.json").read_text().replace('"seed": 3', '"seed": 4'))
    (copy / "manifest.csv").write_bytes(phantom.read_bytes())
    with pytest.raises(RuntimeError, match="differs from the built one"):
        load_studies(copy)


def test_reuse_rebuild_and_determinism(phantom, tmp_path):
    stamp = (phantom.parent / "build.json").stat().st_mtime_ns
    assert build_phantom(phantom.parent, n=40, size=64, seed=3) == phantom
    assert (phantom.parent / "build.json").stat().st_mtime_ns == stamp
    twin = build_phantom(tmp_path / "twin", n=40, size=64, seed=3)
    assert twin.read_bytes() == phantom.read_bytes()
    first = read_manifest(twin)["images"].iloc[0].split(SEP)[0]
    assert (twin.parent / first).read_bytes() == (phantom.parent / first).read_bytes()
    with pytest.raises(BuildFolderError, match=r"holds the build phantom n=40 size=64 seed=3, not the one asked for \(phantom n=12 size=64 seed=4 frontal-only\)"):
        build_phantom(tmp_path / "twin", n=12, size=64, seed=4, lateral=False)
    other = build_phantom(tmp_path / "twin", n=12, size=64, seed=4, lateral=False, force=True)
    frame = read_manifest(other)
    assert set(frame["views"]) <= {"PA", "AP"} and len(list((tmp_path / "twin" / "images").iterdir())) == len(frame)
    assert json.loads((tmp_path / "twin" / "build.json").read_text())["config"]["n"] == 12


def test_refuses_a_foreign_folder_and_bad_values(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        build_phantom(tmp_path, n=5, size=64, seed=0)
    with pytest.raises(ValueError, match="outside"):
        build_phantom(tmp_path / "x", n=5, size=4, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        build_phantom(tmp_path / "x", n=0, size=64, seed=0)


def test_iu_phantom_keeps_real_reports(tmp_path):
    pytest.importorskip("rrgkit.evaluation.labeler")
    from rrgkit.data.iu_xray import load_iu_reports

    frame = read_manifest(build_iu_phantom(tmp_path / "iu", size=64, seed=0, n=40))
    studies = load_studies(tmp_path / "iu")
    assert all(np.array_equal(studies[uid].labels, frame.loc[i, list(CHEXPERT_OBSERVATIONS)].to_numpy(float), equal_nan=True)
               for i, uid in enumerate(frame["id"]))
    reports = load_iu_reports().set_index("uid")
    assert set(frame["source"]) == {"iu-phantom"} and set(frame["views"]) == {"PA|LATERAL"}
    assert all(reports.loc[uid, "findings"] == f and reports.loc[uid, "impression"] == i
               for uid, f, i in zip(frame["id"], frame["findings"], frame["impression"]))
    funnel = {s["step"]: s for s in json.loads((tmp_path / "iu" / "curation.json").read_text())["funnel"]}
    assert funnel["input"]["kept"] == 40 and funnel["findings"]["dropped"] > 0
    assert (frame["No Finding"] == 1).any() and (frame.drop(columns="No Finding").iloc[:, 6:19] == 1).any().any()


def test_cli(tmp_path, capsys):
    assert main(["data", "build", "phantom", "--out", str(tmp_path / "c"), "--n", "8", "--size", "64", "--no-lateral"]) == 0
    assert "no_prior" in capsys.readouterr().out and (tmp_path / "c" / "manifest.csv").exists()
    assert main(["data", "build", "phantom", "--out", str(tmp_path / "d")]) == 2
    assert "--n" in capsys.readouterr().err


def test_most_common_report_takes_the_modal_label_vector_first():
    import pandas as pd

    nan = float("nan")
    labels = [dict.fromkeys(CHEXPERT_OBSERVATIONS, nan) for _ in range(5)]
    for row in labels[:3]:
        row["No Finding"] = 1.0
    labels[3]["Edema"] = labels[4]["Edema"] = 1.0
    texts = ["Clear.", "Lungs clear.", "Lungs clear.", "Edema.", "Edema."]  # "Edema." is the most common text
    frame = pd.DataFrame([{"findings": t, "split": "train", **lab} for t, lab in zip(texts, labels)])
    assert most_common_report(frame) == "Lungs clear."
    with pytest.raises(ValueError, match="no 'test' reports"):
        most_common_report(frame, "test")


def test_bundled_configs_never_build_two_datasets_into_one_folder():
    """A folder holding another build is refused, so two bundled configs must not build different sets in one folder
    (configs/full.yaml once shared data/phantom/full with the data chapter's larger set)."""
    import yaml

    from rrgkit.paths import profile_dir, project_root

    REPO_ROOT, PROFILE_DIR = project_root(), profile_dir()
    builds: dict[str, set] = {}
    for path in sorted((REPO_ROOT / "configs").rglob("*.yaml")):
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        if data.get("build"):
            spec = data["build"]
            key = (spec["dataset"], spec.get("n"), spec.get("size", data.get("image_size")), spec.get("seed", 0))
            builds.setdefault(str(data["manifest"]).rsplit("/", 1)[0], set()).add((key, path.name))
    for path in sorted(PROFILE_DIR.glob("*.yaml")):  # the data chapter builds data/phantom/<profile> (its seed: 0)
        chapter = yaml.safe_load(path.read_text())["notebooks"]["01_data"]
        key = ("phantom", chapter["n_studies"], chapter["image_size"], 0)
        builds.setdefault(f"data/phantom/{path.stem}", set()).add((key, f"01_data ({path.name})"))
    shared = {folder: users for folder, users in builds.items() if len({key for key, _ in users}) > 1}
    assert not shared
