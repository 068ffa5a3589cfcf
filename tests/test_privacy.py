"""The privacy guard: notebooks refuse to show credentialed content without opt-in, and the book check finds leaks."""

import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from rrgkit.privacy import PrivacyError, assert_publishable, guard_display, scan_notebook_for_credentialed


def test_guard_refuses_credentialed_without_opt_in_and_names_the_parameter():
    frame = pd.DataFrame({"source": ["iu-xray", "mimic-cxr"]})
    with pytest.raises(PrivacyError, match="show_credentialed_text=True"):
        guard_display(frame, allow_credentialed=False)
    assert guard_display(frame, allow_credentialed=True) == "mimic-cxr"
    assert guard_display("iu-xray", allow_credentialed=False) == "iu-xray"
    with pytest.raises(PrivacyError, match="source"):
        guard_display(pd.DataFrame({"findings": ["x"]}), allow_credentialed=True)


def _executed(tmp_path, source, opt_in, display=True):
    """A two-cell notebook run for real in a kernel: parameters, then a guarded display."""
    code = (
        "import pandas as pd\nfrom rrgkit.privacy import display_guarded\n"
        f"frame = pd.DataFrame({{'findings': ['Lungs clear.'], 'source': [{source!r}]}})\n"
        + ("display_guarded(frame[['findings']], frame, allow_credentialed=show_credentialed_text)\n" if display else "")
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(f"show_credentialed_text = {opt_in}")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out.ipynb"
    result = subprocess.run([sys.executable, "-m", "papermill", str(path), str(out), "--cwd", str(tmp_path)],
                            capture_output=True, text=True)
    return result, out


@pytest.mark.slow
def test_executed_notebooks_pass_or_fail_the_guard_and_the_book_check(tmp_path):
    result, _ = _executed(tmp_path, "mimic-cxr", opt_in=False)
    assert result.returncode != 0 and "PrivacyError" in result.stderr + result.stdout
    result, out = _executed(tmp_path, "mimic-cxr", opt_in=True)
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(out, as_version=4)
    assert scan_notebook_for_credentialed(executed) == []
    shown = [o for o in executed.cells[1].outputs if o.get("output_type") == "display_data"]
    assert shown[0]["metadata"]["rrgkit"] == {"source": "mimic-cxr", "opt_in": True}
    shown[0]["metadata"]["rrgkit"]["opt_in"] = False  # the same output, published from a run without opt-in
    assert len(scan_notebook_for_credentialed(executed)) == 1
    result, out = _executed(tmp_path, "iu-xray", opt_in=False)
    assert result.returncode == 0 and scan_notebook_for_credentialed(nbformat.read(out, as_version=4)) == []


def test_book_check_flags_marked_credentialed_output_without_opt_in():
    nb = nbformat.v4.new_notebook()
    leak = nbformat.v4.new_output("display_data", data={"text/plain": "Lungs clear."},
                                  metadata={"rrgkit": {"source": "mimic-cxr", "opt_in": False}})
    ok = nbformat.v4.new_output("display_data", data={"text/plain": "x"}, metadata={"rrgkit": {"source": "iu-xray", "opt_in": False}})
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("x", outputs=[ok]), nbformat.v4.new_code_cell("y", outputs=[leak])]
    assert scan_notebook_for_credentialed(nb) == ["cell 2: output shows mimic-cxr content without show_credentialed_text=True"]
    with pytest.raises(PrivacyError, match="book.ipynb"):
        assert_publishable(nb, "book.ipynb")
    nb.cells.pop()
    assert_publishable(nb, "book.ipynb")
