"""Notebooks in git carry no outputs and follow the book's conventions."""

import re
from pathlib import Path

import nbformat
import pytest

from rrgkit.book.toc import toc_notebooks
from rrgkit.paths import project_root

REPO_ROOT = project_root()

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
DEFINITION = re.compile(r"^\s*(?:async\s+def|def|class)\s+\w+", re.MULTILINE)


def test_there_are_notebooks_and_all_are_in_the_toc():
    assert NOTEBOOKS, "no notebooks found"
    in_toc = {p.resolve() for p in toc_notebooks(REPO_ROOT)}
    missing = [p.name for p in NOTEBOOKS if p.resolve() not in in_toc]
    assert not missing, f"notebooks not listed in _toc.yml: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_title_and_parameters(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), f"{path.name}: first cell must be a '# Title' markdown cell"
    h1 = [c for c in nb.cells if c.cell_type == "markdown" and any(line.startswith("# ") for line in c.source.splitlines())]
    assert len(h1) == 1, f"{path.name}: exactly one H1 heading expected (the page title)"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: exactly one cell tagged 'parameters' expected"
    assert "profile" in params[0].source, f"{path.name}: the parameters cell must define `profile`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_function_or_class(path: Path):
    """Notebooks keep story, parameters and plots; what a chapter computes lives in the library, with a test."""
    nb = nbformat.read(path, as_version=4)
    found = [(i, m.group().strip()) for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for m in DEFINITION.finditer(c.source)]
    assert not found, f"{path.name}: move {found} into rrgkit (with a docstring and a test) and import it"
