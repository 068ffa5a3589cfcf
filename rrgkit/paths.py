"""Where things live: the project root, and the data, runs, models and profile folders under it.

One rule for relative paths: a relative path written in a config, a profile or a ``key=value``
override is relative to the **project root** (the repository; ``$RRGKIT_ROOT`` overrides it), so
a notebook running in ``notebooks/``, ``rrgkit train`` started from the repository and a test in a
temporary folder all read the same files. Paths typed as command-line arguments (``--config``,
``--out``, ``--run``) are ordinary paths, relative to the working directory. Configs keep the
relative form they were written with, which keeps run keys the same on every machine; code
resolves them with :func:`resolve` where it opens a file.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """``$RRGKIT_ROOT``, else the repository holding this package (where ``pyproject.toml`` is), else the cwd."""
    if os.environ.get("RRGKIT_ROOT"):
        return Path(os.environ["RRGKIT_ROOT"]).expanduser().resolve()
    repo = PACKAGE_DIR.parent
    return repo if (repo / "pyproject.toml").exists() else Path.cwd()


def resolve(path: str | Path) -> Path:
    """An absolute path as it is; a relative one (after ``~`` expansion) under :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def relative(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (for configs, run keys and pages), else absolute."""
    absolute = Path(path).expanduser().resolve()
    try:
        return str(absolute.relative_to(project_root()))
    except ValueError:
        return str(absolute)


def data_root() -> Path:
    """Datasets and converted models: ``$RRGKIT_DATA`` or ``data/``."""
    return resolve(os.environ.get("RRGKIT_DATA", "data"))


def models_root() -> Path:
    """Converted models and trained tokenizers: ``$RRGKIT_MODELS`` or ``<data root>/models``."""
    return resolve(os.environ["RRGKIT_MODELS"]) if os.environ.get("RRGKIT_MODELS") else data_root() / "models"


def runs_root(profile: str | None = None) -> Path:
    """Training runs: ``$RRGKIT_RUNS`` or ``runs/``; with ``profile``, that profile's folder under it."""
    root = resolve(os.environ.get("RRGKIT_RUNS", "runs"))
    return root / profile if profile else root


def profile_dir(root: Path | None = None) -> Path:
    """The profiles of the book at ``root`` (default: the project root): ``notebooks/profiles/``."""
    return (root or project_root()) / "notebooks" / "profiles"


def build_dir(profile: str, root: Path | None = None) -> Path:
    """Executed notebooks and build records of one profile: ``_build/<profile>/``."""
    return (root or project_root()) / "_build" / profile
