"""Profiles: one YAML file per compute budget (``smoke``, ``full``, ``paper``), data not code.

A profile has a ``notebooks`` section (papermill parameters per notebook, keyed by
notebook stem) and may have other sections (for example ``train``) read by the
library. Profiles live in ``notebooks/profiles/``; a path to any YAML also works.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = REPO_ROOT / "notebooks" / "profiles"


class ProfileError(ValueError):
    """A profile is missing or malformed; the message names the file."""


def profile_path(name: str | Path) -> Path:
    """Resolve a profile name (``smoke``) or a YAML path to an existing file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        path = candidate
    else:
        path = PROFILE_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise ProfileError(f"profile {str(name)!r} not found at {path}; known profiles: {', '.join(known)}")
    return path


def load_profile(name: str | Path) -> dict:
    """Load a profile as a dict; its ``name`` defaults to the file stem."""
    path = profile_path(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: must be a mapping with a 'notebooks' section")
    data.setdefault("name", path.stem)
    notebooks = data.setdefault("notebooks", {})
    if not isinstance(notebooks, dict) or not all(isinstance(v, dict) or v is None for v in notebooks.values()):
        raise ProfileError(f"{path}: 'notebooks' must map notebook names to parameter mappings")
    data["notebooks"] = {k: (v or {}) for k, v in notebooks.items()}
    data["_path"] = str(path)
    return data


def notebook_parameters(profile: dict, notebook_stem: str) -> dict:
    """Papermill parameters for one notebook: the profile name plus that notebook's section."""
    return {"profile": profile["name"], **profile["notebooks"].get(notebook_stem, {})}
