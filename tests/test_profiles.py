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


REUSE_04 = ("06_attention", "07_soft_prompts")
"""Chapters that analyse chapter 04's runs: their profile sections take 04's values (YAML anchors)."""
LADDER_KEYS = ("train_config", "overrides", "dataset", "pretrain_encoder", "rungs", "schedules", "epochs")
"""The parameters that make :func:`rrgkit.experiments.schedule_study.run_ladder` find 04's runs."""


def _defaults(stem: str) -> dict:
    import ast

    import papermill

    return {k: ast.literal_eval(v["default"]) for k, v in papermill.inspect_notebook(str(REPO_ROOT / "notebooks" / f"{stem}.ipynb")).items()}


def test_long_is_full_plus_the_smollm2_rung_and_the_shifted_encoder():
    full, long = load_profile("full")["notebooks"], load_profile("long")["notebooks"]
    own = ("04_one_vs_two_stage", *REUSE_04)  # the ladder's chapters follow 04's rungs, which long extends
    assert {k: v for k, v in long.items() if k not in own} == {k: v for k, v in full.items() if k not in own}
    for stem in REUSE_04:
        assert {k: v for k, v in long[stem].items() if k != "rungs"} == {k: v for k, v in full[stem].items() if k != "rungs"}
    extra = long["04_one_vs_two_stage"]["rungs"][len(full["04_one_vs_two_stage"]["rungs"]):]
    assert [r["lm"] for r in extra] == ["smollm2-135m"] and len(extra[0]["seeds"]) >= 5
    assert "shifted_encoder" in long["04_one_vs_two_stage"] and "shifted_encoder" not in full["04_one_vs_two_stage"]


@pytest.mark.parametrize("name", PROFILES)
def test_profile_sections_match_notebook_parameters(name):
    profile = load_profile(name)
    notebooks = {nb.stem: nb for nb in toc_notebooks(REPO_ROOT)}
    for stem, params in profile["notebooks"].items():
        assert stem in notebooks, f"{name}.yaml: section {stem!r} names no notebook in _toc.yml"
        unknown = set(notebook_parameters(profile, stem)) - declared_parameters(notebooks[stem])
        assert not unknown, f"{name}.yaml: {stem} does not declare {sorted(unknown)}"


@pytest.mark.parametrize("name", PROFILES)
def test_the_analysis_chapters_reuse_chapter_04s_runs(name):
    sections = load_profile(name)["notebooks"]
    defaults = {stem: _defaults(stem) for stem in ("04_one_vs_two_stage", *REUSE_04)}
    ladder = {key: sections["04_one_vs_two_stage"].get(key, defaults["04_one_vs_two_stage"][key]) for key in LADDER_KEYS}
    for stem in REUSE_04:
        assert stem in sections, f"{name}.yaml: no section for {stem}"
        assert {key: sections[stem].get(key, defaults[stem][key]) for key in LADDER_KEYS} == ladder, \
            f"{name}.yaml: {stem} would not find chapter 04's runs"


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="known profiles: .*smoke"):
        load_profile("no-such-profile")


def test_malformed_profile_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebooks: [1, 2]\n")
    with pytest.raises(ProfileError, match="bad.yaml"):
        load_profile(bad)
