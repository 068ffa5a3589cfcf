"""Profiles: one YAML file per compute budget (``smoke``, ``full``, ``paper``), data not code.

A profile has a ``notebooks`` section (papermill parameters per notebook, keyed by notebook stem).
Profiles live in ``notebooks/profiles/`` of the book's root (:func:`rrgkit.paths.profile_dir`); a
path to any YAML also works. Every path inside a profile is relative to the project root
(:mod:`rrgkit.paths`), whichever folder a notebook runs in.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rrgkit.paths import profile_dir


class ProfileError(ValueError):
    """A profile is missing or malformed; the message names the file."""


def profile_path(name: str | Path, root: Path | None = None) -> Path:
    """Resolve a profile name (``smoke``, looked up in ``root``'s profile folder) or a YAML path to an existing file."""
    candidate = Path(name)
    folder = profile_dir(root)
    path = candidate if candidate.suffix in (".yaml", ".yml") else folder / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ProfileError(f"profile {str(name)!r} not found at {path}; known profiles: {', '.join(known)}")
    return path


def load_profile(name: str | Path, root: Path | None = None) -> dict:
    """Load a profile as a dict; its ``name`` defaults to the file stem."""
    path = profile_path(name, root)
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
