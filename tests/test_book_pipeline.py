"""The book pipeline fails loudly: a raising notebook or a warning names the notebook and cell."""

import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from rrgkit.book.build import RESULTS_MARKER, TIMES_MARKER, BookBuildError, build_book


def _notebook(path: Path, body: str, params: str = 'profile = "smoke"\nn = 1', body_metadata: dict | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), nbformat.v4.new_code_cell(params), nbformat.v4.new_code_cell(body)]
    cells[1].metadata["tags"] = ["parameters"]
    cells[2].metadata.update(body_metadata or {})
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "notebooks" / "profiles").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: 'off'\n")
    (tmp_path / "book" / "index.md").write_text(f"# Front\n\n{RESULTS_MARKER}\n\n{TIMES_MARKER}\n")
    (tmp_path / "notebooks" / "profiles" / "t.yaml").write_text("notebooks:\n  a_ok:\n    n: 3\n")
    _notebook(tmp_path / "notebooks" / "a_ok.ipynb", "print('n is', n)")
    return tmp_path


def _toc(root: Path, *stems: str) -> None:
    chapters = "\n".join(f"  - file: notebooks/{s}" for s in stems)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/index\nchapters:\n{chapters}\n")


def test_good_notebook_is_executed_with_profile_parameters(project, capsys):
    _toc(project, "a_ok")
    result = build_book("t", project, html=False)
    assert "\n    n is 3\n" in capsys.readouterr().out  # what a notebook prints reaches the terminal as it runs
    assert [r.name for r in result.runs] == ["a_ok"]
    executed = nbformat.read(project / "_build" / "t" / "src" / "notebooks" / "a_ok.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "n is 3" in outputs
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("remove-cell" in c.metadata["tags"] for c in injected)
    assert "profile **t**" in executed.cells[1].source
    front = (project / "_build" / "t" / "src" / "book" / "index.md").read_text()
    assert "| a_ok |" in front and TIMES_MARKER not in front
    assert "No chapter recorded a verdict" in front and RESULTS_MARKER not in front
    assert executed.metadata["papermill"]["input_path"] == "notebooks/a_ok.ipynb"


def test_verdicts_a_chapter_records_reach_the_front_page(project):
    _notebook(project / "notebooks" / "a_ok.ipynb", textwrap.dedent("""\
        from rrgkit.book.results import paired_verdict, record
        record([paired_verdict("model", "baseline", "F1-CXP-14", 0.05, 0.01, 0.09)])
        record([paired_verdict("model", "ceiling", "F1-CXP-14", -0.02, -0.05, 0.01)])
        """))
    _toc(project, "a_ok")
    build_book("t", project, html=False)
    front = (project / "_build" / "t" / "src" / "book" / "index.md").read_text()
    assert "| {doc}`a_ok </notebooks/a_ok>` | model − baseline | F1-CXP-14 | +5.0 points | [+1.0, +9.0] | model better |" in front
    assert "| model − ceiling | F1-CXP-14 | -2.0 points | [-5.0, +1.0] | inconclusive (detects ≥ 4.3 points) |" in front


def test_a_rebuild_replaces_a_chapters_verdicts(project):
    _notebook(project / "notebooks" / "a_ok.ipynb", "from rrgkit.book.results import paired_verdict, record\n"
              "record([paired_verdict('model', 'baseline', 'BLEU-4', n / 100, 0.0, 0.1)])")
    _toc(project, "a_ok")
    build_book("t", project, html=False)
    build_book("t", project, html=False)
    front = (project / "_build" / "t" / "src" / "book" / "index.md").read_text()
    assert front.count("model − baseline") == 1


PLOT = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\n"


def test_a_figure_without_a_caption_fails_the_build(project):
    _notebook(project / "notebooks" / "d_fig.ipynb", PLOT)
    _toc(project, "a_ok", "d_fig")
    with pytest.raises(BookBuildError, match=r"d_fig: cell 2 \(`import matplotlib.pyplot as plt`\) shows 1 figure\(s\) but has 0 caption"):
        build_book("t", project, html=False)


def test_figures_are_numbered_with_captions_and_tables_stay_plain(project):
    body = PLOT + "print('between')\nplt.plot([0, 1])\nplt.show()\nimport pandas as pd\npd.DataFrame({'x': [1]})"
    _notebook(project / "notebooks" / "d_fig.ipynb", body, body_metadata={"rrgkit": {"captions": ["First.", "Second."]}})
    _toc(project, "a_ok", "d_fig")
    build_book("t", project, html=False)
    executed = nbformat.read(project / "_build" / "t" / "src" / "notebooks" / "d_fig.ipynb", as_version=4)
    parts = [c for c in executed.cells if c.cell_type == "code" and c.outputs]
    figures = [c.metadata["mystnb"]["figure"] for c in parts if "mystnb" in c.metadata]
    assert figures == [{"caption": "First.", "name": "d_fig-figure-1"}, {"caption": "Second.", "name": "d_fig-figure-2"}]
    plain = [c for c in parts if "mystnb" not in c.metadata]
    assert [o.output_type for c in plain for o in c.outputs] == ["stream", "execute_result"]
    assert all("remove-input" in c.metadata["tags"] for c in parts[1:])


def test_paths_inside_the_project_are_shown_relative_to_it(project):
    _notebook(project / "notebooks" / "a_ok.ipynb", "import os\nprint(os.path.abspath('../runs/x/metrics.json'))\n"
              "os.path.abspath('../data/m.csv')")
    _toc(project, "a_ok")
    build_book("t", project, html=False)
    executed = nbformat.read(project / "_build" / "t" / "src" / "notebooks" / "a_ok.ipynb", as_version=4)
    outputs = str([c.outputs for c in executed.cells if c.cell_type == "code"])
    assert "runs/x/metrics.json" in outputs and "data/m.csv" in outputs
    assert str(project) not in outputs + str(executed.metadata)


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


def test_timings_give_a_range_and_name_notebooks_without_a_record(tmp_path):
    from rrgkit.book import timings

    assert "no estimate" in timings.estimate({}, ["a", "b"])
    timings.record(tmp_path, "a", 600.0)
    timings.record(tmp_path, "a", 120.0)  # a later build reused its runs
    timings.record(tmp_path, "b", 60.0)
    record = timings.load(tmp_path)
    assert record["a"]["last"] == 120.0 and record["a"]["longest"] == 600.0
    line = timings.estimate(record, ["a", "b", "c"])
    assert line.startswith("3 to 11 min for 2 notebook(s)") and line.endswith("no record yet for c")
    assert timings.estimate(record, ["b"]).startswith("about 1 min")
