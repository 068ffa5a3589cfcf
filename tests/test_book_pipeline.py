"""The book pipeline fails loudly: a raising notebook or a warning names the notebook and cell."""

import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from rrgkit.book.build import TIMES_MARKER, BookBuildError, build_book


def _notebook(path: Path, body: str, params: str = 'profile = "smoke"\nn = 1') -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), nbformat.v4.new_code_cell(params), nbformat.v4.new_code_cell(body)]
    cells[1].metadata["tags"] = ["parameters"]
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "notebooks" / "profiles").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: 'off'\n")
    (tmp_path / "book" / "index.md").write_text(f"# Front\n\n{TIMES_MARKER}\n")
    (tmp_path / "notebooks" / "profiles" / "t.yaml").write_text("notebooks:\n  a_ok:\n    n: 3\n")
    _notebook(tmp_path / "notebooks" / "a_ok.ipynb", "print('n is', n)")
    return tmp_path


def _toc(root: Path, *stems: str) -> None:
    chapters = "\n".join(f"  - file: notebooks/{s}" for s in stems)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/index\nchapters:\n{chapters}\n")


def test_good_notebook_is_executed_with_profile_parameters(project):
    _toc(project, "a_ok")
    result = build_book("t", project, html=False)
    assert [r.name for r in result.runs] == ["a_ok"]
    executed = nbformat.read(project / "_build" / "t" / "src" / "notebooks" / "a_ok.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "n is 3" in outputs
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("remove-cell" in c.metadata["tags"] for c in injected)
    assert "profile **t**" in executed.cells[1].source
    front = (project / "_build" / "t" / "src" / "book" / "index.md").read_text()
    assert "| a_ok |" in front and TIMES_MARKER not in front


def test_raising_notebook_fails_and_is_named(project):
    _notebook(project / "notebooks" / "b_bad.ipynb", "raise RuntimeError('boom in the story')")
    _toc(project, "a_ok", "b_bad")
    with pytest.raises(BookBuildError, match=r"notebook b_bad failed in cell 2 \(`raise RuntimeError.*`\): RuntimeError: boom in the story"):
        build_book("t", project, html=False)


def test_warning_in_a_notebook_fails_the_build(project):
    _notebook(project / "notebooks" / "c_warn.ipynb", "import warnings\nwarnings.warn('careful', UserWarning)")
    _toc(project, "a_ok", "c_warn")
    with pytest.raises(BookBuildError, match=r"c_warn printed a warning in cell 2 \(`import warnings`\): .*UserWarning: careful"):
        build_book("t", project, html=False)


def test_profile_parameter_the_notebook_does_not_declare_is_refused(project):
    (project / "notebooks" / "profiles" / "t.yaml").write_text("notebooks:\n  a_ok:\n    m: 3\n")
    _toc(project, "a_ok")
    with pytest.raises(BookBuildError, match=r"does not declare parameters \['m'\]"):
        build_book("t", project, html=False)


def test_cli_exits_nonzero_and_names_the_notebook(project):
    import subprocess

    _notebook(project / "notebooks" / "b_bad.ipynb", "1 / 0")
    _toc(project, "a_ok", "b_bad")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "rrgkit"), "book", "--profile", "t", "--root", str(project), "--no-html"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "b_bad" in proc.stderr and "ZeroDivisionError" in proc.stderr
