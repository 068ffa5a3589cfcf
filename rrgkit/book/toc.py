"""Read the Jupyter Book table of contents in order."""

from __future__ import annotations

from pathlib import Path

import yaml


def toc_entries(toc_file: Path) -> list[str]:
    """Every ``file`` entry of a ``_toc.yml`` (root first), in reading order, without suffix."""
    if not toc_file.exists():
        raise FileNotFoundError(f"{toc_file}: no table of contents; the book needs a _toc.yml at the project root")
    toc = yaml.safe_load(toc_file.read_text()) or {}
    if "root" not in toc:
        raise ValueError(f"{toc_file}: missing 'root:' entry")
    entries = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k in ("parts", "chapters")})
    return [str(Path(e).with_suffix("")) if Path(e).suffix else e for e in entries]


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in ``root/_toc.yml``, in reading order."""
    notebooks = []
    for entry in toc_entries(root / "_toc.yml"):
        candidate = root / f"{entry}.ipynb"
        if candidate.exists():
            notebooks.append(candidate)
        elif not (root / f"{entry}.md").exists():
            raise FileNotFoundError(f"{root / '_toc.yml'}: entry {entry!r} has no .ipynb or .md file")
    return notebooks
