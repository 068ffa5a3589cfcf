"""Execute every notebook of the book with papermill, then build the HTML with Jupyter Book.

The pipeline is strict, like the QuantEcon lectures: an exception or a Python
warning in any notebook fails the build, naming the notebook and the cell, and
``jupyter-book build -W -n --keep-going`` turns Sphinx warnings into errors.
Executed copies go to ``_build/<profile>/src`` (git-ignored); the sources in
``notebooks/`` stay output-free. Before rendering, each executed copy gets its figures numbered and
captioned (from cell metadata), paths inside the repository shown relative to it, and a note on how
it was computed; the front page gets every verdict the chapters recorded
(:mod:`rrgkit.book.results`) and the execution times.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import nbformat

from rrgkit.book import results, timings
from rrgkit.book.toc import toc_notebooks
from rrgkit.paths import build_dir
from rrgkit.privacy import PrivacyError, assert_publishable
from rrgkit.profiles import load_profile, notebook_parameters

TIMES_MARKER = "<!-- rrgkit:execution-times -->"
RESULTS_MARKER = "<!-- rrgkit:results -->"
WARNING_RE = re.compile(r"\b\w*Warning\b:")
COPY_DIRS = ("book",)
COPY_FILES = ("_config.yml", "_toc.yml")


class BookBuildError(RuntimeError):
    """The book could not be built; the message names the notebook and cell, or the Sphinx step."""


@dataclass
class NotebookRun:
    name: str
    seconds: float
    status: str = "ok"


@dataclass
class BookResult:
    html_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)


def git_commit(root: Path) -> str:
    """Short commit of ``root`` with ``-dirty`` when the tree has changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def machine_description() -> str:
    """One line saying what executed the book (OS, CPU count, torch threads)."""
    try:
        import torch

        threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads"
    except ImportError:
        threads = ""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}{threads}"


def declared_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    import papermill

    return set(papermill.inspect_notebook(str(path)).keys())


def check_parameters(path: Path, params: dict, profile_file: str) -> None:
    """Refuse profile keys that the notebook does not declare (a typo would otherwise be ignored)."""
    declared = declared_parameters(path)
    if not declared:
        raise BookBuildError(f"{path.name}: has no cell tagged 'parameters'; every book notebook needs one")
    unknown = sorted(set(params) - declared)
    if unknown:
        raise BookBuildError(f"{profile_file}: notebook {path.stem} does not declare parameters {unknown}; declared: {sorted(declared)}")


def find_warnings(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, text) of every Python warning a cell printed to stderr."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                for line in output.get("text", "").splitlines():
                    if WARNING_RE.search(line):
                        found.append((index, line.strip()))
    return found


def source_cell(nb: nbformat.NotebookNode, index: int) -> str:
    """Describe executed cell ``index`` by its position in the source notebook and its first line."""
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])]
    position = index - sum(1 for i in injected if i < index)
    first = next((line for line in nb.cells[index].source.splitlines() if line.strip()), "") if index < len(nb.cells) else ""
    return f"cell {position} (`{first[:60]}`)"


def provenance_cell(profile: dict, params: dict, commit: str, seconds: float) -> nbformat.NotebookNode:
    """A note at the top of each executed page: how, when and where it was computed."""
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shown = ", ".join(f"`{k}={v!r}`" for k, v in params.items())
    text = (
        "```{admonition} How this page was computed\n:class: note\n"
        f"Executed by `rrgkit book` with profile **{profile['name']}** at commit `{commit}` on {when}, "
        f"in {seconds:.1f} s on {machine_description()}.\n\nParameters: {shown}\n```"
    )
    return nbformat.v4.new_markdown_cell(text)


def is_figure(output: dict) -> bool:
    """Whether a cell output is an image (a matplotlib figure shown by ``plt.show()``)."""
    return output.get("output_type") in ("display_data", "execute_result") and any(m.startswith("image/") for m in output.get("data", {}))


def caption_figures(nb: nbformat.NotebookNode, stem: str) -> None:
    """Give every figure its number and caption from the cell's metadata ``rrgkit.captions`` (one per figure, in order).

    MyST-NB wraps *all* rich outputs of a cell in its figure, tables included, so a cell whose outputs
    mix figures and tables is split here: each figure becomes its own output-only cell with a named,
    captioned figure (names make Sphinx number them), the other outputs stay plain. A cell that shows
    a figure without a caption fails the build, naming the cell.
    """
    cells: list[nbformat.NotebookNode] = []
    number = 0
    for index, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", []) if cell.cell_type == "code" else []
        shown = sum(is_figure(o) for o in outputs)
        if not shown:
            cells.append(cell)
            continue
        captions = list(cell.metadata.get("rrgkit", {}).get("captions", []))
        if len(captions) != shown:
            raise BookBuildError(f"notebook {stem}: {source_cell(nb, index)} shows {shown} figure(s) but has {len(captions)} "
                                 "caption(s); list one caption per figure in the cell metadata rrgkit.captions")
        groups: list[list[dict]] = []
        for output in outputs:
            if is_figure(output) or not groups or is_figure(groups[-1][0]):
                groups.append([output])
            else:
                groups[-1].append(output)
        for k, group in enumerate(groups):
            # MyST-NB skips code cells without source, outputs and all, so a continuation carries a comment
            part = cell if k == 0 else nbformat.v4.new_code_cell("# (outputs of the cell above, continued)",
                                                                 metadata={"tags": ["remove-input"]})
            part.outputs = group
            if is_figure(group[0]):
                number += 1
                part.metadata["mystnb"] = {"figure": {"caption": captions.pop(0), "name": f"{stem}-figure-{number}"}}
            cells.append(part)
    nb.cells = cells


def show_paths_relative(nb: nbformat.NotebookNode, root: Path) -> None:
    """Show paths inside the repository relative to it, in the text outputs and papermill's metadata.

    Library messages and chapters print the absolute paths they work with (run folders, manifests,
    weights); on a published page those would expose the build machine's layout and mean nothing to a
    reader, while the part below the repository is what the reader can find in their own clone.
    """
    prefix = str(root) + os.sep
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if isinstance(output.get("text"), str):
                output["text"] = output["text"].replace(prefix, "")
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = value.replace(prefix, "")
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if isinstance(meta.get(key), str):
            meta[key] = meta[key].replace(prefix, "")


def hide_parameter_cells(nb: nbformat.NotebookNode) -> None:
    """Remove the parameters and injected-parameters cells from the rendered page."""
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")


class _Indented:
    """What a notebook prints, passed on to the terminal as it runs, indented under its notebook's line.

    A full-profile chapter runs for up to an hour; its grid's progress lines ("k of N runs ... about y min to go")
    are how the user running the build plans with it.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.at_line_start = True

    def write(self, text: str) -> None:
        for piece in text.splitlines(keepends=True):
            self.stream.write(("    " if self.at_line_start else "") + piece)
            self.at_line_start = piece.endswith("\n")

    def flush(self) -> None:
        self.stream.flush()


def execute_notebook(source: Path, target: Path, params: dict, profile: dict, commit: str, timeout: int,
                     results_file: Path, root: Path) -> NotebookRun:
    """Run one notebook with papermill (cwd = its folder) and post-process the executed copy.

    The kernel inherits ``RRGKIT_BOOK_RESULTS`` = ``results_file``, where the chapter's
    :func:`rrgkit.book.results.record` calls write their verdicts.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    start = time.perf_counter()
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", results.RESULTS_ENV: str(results_file)}
    env_before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=params,
            cwd=str(source.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
            stdout_file=_Indented(sys.stdout),
        )
    except PapermillExecutionError as exc:
        executed = nbformat.read(target, as_version=4)
        executed.cells = [c for c in executed.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        where = source_cell(executed, exc.cell_index)
        raise BookBuildError(
            f"notebook {source.stem} failed in {where}: {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: {target}"
        ) from None
    finally:
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - start
    nb = nbformat.read(target, as_version=4)
    warnings = find_warnings(nb)
    if warnings:
        cell, text = warnings[0]
        raise BookBuildError(f"notebook {source.stem} printed a warning in {source_cell(nb, cell)}: {text}  ({len(warnings)} warning(s) in all; fix the cause or filter it in the notebook)")
    try:
        assert_publishable(nb, f"notebook {source.stem}")
    except PrivacyError as exc:
        raise BookBuildError(str(exc)) from None
    hide_parameter_cells(nb)
    caption_figures(nb, source.stem)
    show_paths_relative(nb, root)
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, provenance_cell(profile, params, commit, seconds))
    nbformat.write(nb, target)
    return NotebookRun(source.stem, seconds)


def times_table(runs: list[NotebookRun], profile: str, commit: str) -> str:
    """Markdown table of each notebook's execution time for the front page."""
    lines = [
        f"Execution times of this build (profile **{profile}**, commit `{commit}`, {machine_description()}):",
        "",
        "| notebook | time (s) |",
        "| --- | ---: |",
    ]
    lines += [f"| {r.name} | {r.seconds:.1f} |" for r in runs]
    lines.append(f"| **total** | **{sum(r.seconds for r in runs):.1f}** |")
    return "\n".join(lines)


def results_table(verdicts: dict[str, list[results.Verdict]], docs: dict[str, str]) -> str:
    """Markdown table of every verdict the chapters recorded, each row linked to its chapter."""
    rows = [(name, v) for name, found in verdicts.items() for v in found]
    if not rows:
        return "No chapter recorded a verdict in this build."
    lines = [
        "Every verdict the chapters of this build reached: the estimate, its 95% interval and the verdict; a "
        "difference favours one side only when its interval excludes 0 (each chapter explains its comparisons).",
        "",
        "| chapter | " + " | ".join(results.COLUMNS) + " |",
        "| --- " * (len(results.COLUMNS) + 1) + "|",
    ]
    for name, verdict in rows:
        cells = [f"{{doc}}`{name} <{docs[name]}>`"] + [verdict.row()[c].replace("|", "\\|") for c in results.COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stage_sources(root: Path, staging: Path) -> None:
    """Copy the book's prose and configuration into the staging folder."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in COPY_FILES:
        shutil.copy2(root / name, staging / name)
    for name in COPY_DIRS:
        if (root / name).exists():
            shutil.copytree(root / name, staging / name, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))


def write_front_page(staging: Path, runs: list[NotebookRun], profile: str, commit: str, results_table_text: str) -> None:
    """Put the results summary and the execution-times table where the root page has their markers."""
    import yaml

    root_entry = yaml.safe_load((staging / "_toc.yml").read_text())["root"]
    page = staging / f"{Path(root_entry).with_suffix('')}.md"
    text = page.read_text()
    for marker, what in ((RESULTS_MARKER, "results summary"), (TIMES_MARKER, "execution-times table")):
        if marker not in text:
            raise BookBuildError(f"{page}: the root page needs the marker {marker} for the {what}")
    text = text.replace(RESULTS_MARKER, results_table_text)
    page.write_text(text.replace(TIMES_MARKER, times_table(runs, profile, commit)))


def build_book(profile_name: str, root: Path, only: list[str] | None = None, html: bool = True, timeout: int = 7200, log=print) -> BookResult:
    """Execute the book's notebooks with a profile and build the HTML; raise BookBuildError on any failure."""
    root = root.resolve()
    profile = load_profile(profile_name, root)
    notebooks = toc_notebooks(root)
    if only:
        unknown = sorted(set(only) - {nb.stem for nb in notebooks})
        if unknown:
            raise BookBuildError(f"--only {unknown}: not in _toc.yml; notebooks are {[nb.stem for nb in notebooks]}")
        notebooks = [nb for nb in notebooks if nb.stem in only]
    unknown_sections = sorted(set(profile["notebooks"]) - {nb.stem for nb in toc_notebooks(root)})
    if unknown_sections:
        raise BookBuildError(f"{profile['_path']}: sections {unknown_sections} name no notebook in _toc.yml")
    staging = build_dir(profile["name"], root) / "src"
    results_dir = staging.parent / "results"
    stage_sources(root, staging)
    commit = git_commit(root)
    runs: list[NotebookRun] = []
    record_folder = staging.parent
    log(f"profile {profile['name']}: {len(notebooks)} notebook(s); expected time: "
        f"{timings.estimate(timings.load(record_folder), [nb.stem for nb in notebooks])}")
    total_start = time.perf_counter()
    for index, nb in enumerate(notebooks, 1):
        params = notebook_parameters(profile, nb.stem)
        check_parameters(nb, params, profile["_path"])
        log(f"[{index}/{len(notebooks)}] executing {nb.relative_to(root)} (profile {profile['name']}) ...")
        run = execute_notebook(nb, staging / nb.relative_to(root), params, profile, commit, timeout,
                               results_dir / f"{nb.stem}.json", root)
        runs.append(run)
        timings.record(record_folder, nb.stem, run.seconds)
        left = [n.stem for n in notebooks[index:]]
        ahead = f"; still to run: {timings.estimate(timings.load(record_folder), left)}" if left else ""
        log(f"[{index}/{len(notebooks)}] {nb.stem}: {run.seconds:.1f} s (elapsed {time.perf_counter() - total_start:.0f} s)"
            + ahead)
    verdicts = {nb.stem: results.load(results_dir / f"{nb.stem}.json") for nb in notebooks}
    docs = {nb.stem: "/" + nb.relative_to(root).with_suffix("").as_posix() for nb in notebooks}
    write_front_page(staging, runs, profile["name"], commit, results_table(verdicts, docs))
    out = root / "book"
    if html:
        log("building HTML with jupyter-book (warnings are errors) ...")
        cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(out), "-W", "-n", "--keep-going"]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise BookBuildError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    return BookResult(out / "_build" / "html", runs)
