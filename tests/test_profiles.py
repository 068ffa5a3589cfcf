"""Profiles are data: every section names a book notebook and only parameters it declares."""

import pytest

from rrgkit.book.build import declared_parameters
from rrgkit.book.toc import toc_notebooks
from rrgkit.paths import profile_dir, project_root
from rrgkit.profiles import ProfileError, load_profile, notebook_parameters

REPO_ROOT = project_root()
PROFILE_DIR = profile_dir()

PROFILES = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def test_the_four_profiles_exist():
    assert {"smoke", "full", "long", "paper"} <= set(PROFILES)


GRID = "04_one_vs_two_stage"
READERS = ("06_attention", "07_soft_prompts", "08_confidence", "09_qualitative")
"""Chapters that read the grid of 04 (its runs, reused) rather than train their own."""
GRID_KEYS = ("train_config", "overrides", "dataset", "pretrain_encoder", "rungs", "schedules", "epochs", "workers")
"""The parameters that make :func:`rrgkit.experiments.schedule_study.run_ladder` find 04's runs."""


def test_long_is_full_plus_the_larger_rungs_and_the_shifted_encoder():
    full, long = load_profile("full")["notebooks"], load_profile("long")["notebooks"]
    same = set(full) - {GRID, *READERS}
    assert {k: long[k] for k in same} == {k: full[k] for k in same} and set(long) == set(full)
    for reader in READERS:  # they follow 04's rungs, which long extends
        assert {k: v for k, v in long[reader].items() if k != "rungs"} == {k: v for k, v in full[reader].items() if k != "rungs"}
    extra = long["04_one_vs_two_stage"]["rungs"][len(full["04_one_vs_two_stage"]["rungs"]):]
    assert [r["lm"] for r in extra] == ["gpt2-scratch-mini", "gpt2-scratch-mini", "smollm2-135m"]
    assert all(len(r["seeds"]) >= 5 for r in extra)
    assert "shifted_encoder" in long["04_one_vs_two_stage"] and "shifted_encoder" not in full["04_one_vs_two_stage"]


@pytest.mark.parametrize("name", PROFILES)
def test_chapters_that_read_the_grid_ask_for_exactly_its_runs(name):
    notebooks = load_profile(name)["notebooks"]
    for reader in READERS:
        assert reader in notebooks, f"{name}.yaml: no section for {reader}"
        assert {k: notebooks[reader].get(k) for k in GRID_KEYS} == {k: notebooks[GRID].get(k) for k in GRID_KEYS}, (
            f"{name}.yaml: {reader} must ask for the grid of {GRID} (use its anchors)")


def test_chapters_that_read_the_grid_default_to_its_defaults():
    """Run as they stand (JupyterLab, "Run All"), 08 and 09 read the runs 04 trains with its own defaults."""
    import papermill

    notebooks = {nb.stem: nb for nb in toc_notebooks(REPO_ROOT)}
    grid = papermill.inspect_notebook(str(notebooks[GRID]))
    for reader in READERS:
        declared = papermill.inspect_notebook(str(notebooks[reader]))
        for key in GRID_KEYS:
            assert declared[key]["default"] == grid[key]["default"], f"{reader}: default {key} differs from {GRID}'s"


@pytest.mark.parametrize("name", PROFILES)
def test_profile_sections_match_notebook_parameters(name):
    profile = load_profile(name)
    notebooks = {nb.stem: nb for nb in toc_notebooks(REPO_ROOT)}
    for stem, params in profile["notebooks"].items():
        assert stem in notebooks, f"{name}.yaml: section {stem!r} names no notebook in _toc.yml"
        unknown = set(notebook_parameters(profile, stem)) - declared_parameters(notebooks[stem])
        assert not unknown, f"{name}.yaml: {stem} does not declare {sorted(unknown)}"


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="known profiles: .*smoke"):
        load_profile("no-such-profile")


def test_malformed_profile_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebooks: [1, 2]\n")
    with pytest.raises(ProfileError, match="bad.yaml"):
        load_profile(bad)
