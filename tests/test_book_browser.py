"""The built book in a real browser: every page loads cleanly, every chapter shows a figure, nothing leaks.

These tests need a built book: ``scripts/test.sh`` (``make test``) sets ``RRGKIT_BOOK_HTML`` after the
smoke build and runs them; without it they are skipped, and with it a missing book fails. Each check is
also run on a deliberately broken copy of a page, to prove it can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from rrgkit.book.browser import PageReport, check_book
from rrgkit.paths import project_root

REPO_ROOT = project_root()

pytestmark = pytest.mark.browser

FRONT = "book/index.html"
CHAPTER = "notebooks/00_overview.html"


@pytest.fixture(scope="module")
def html_dir() -> Path:
    where = os.environ.get("RRGKIT_BOOK_HTML")
    if not where:
        pytest.skip("RRGKIT_BOOK_HTML names no built book; `make test` sets it after the smoke build")
    path = Path(where).resolve()
    if not (path / FRONT).is_file():
        pytest.fail(f"{path}: no built book there (expected {FRONT}); build it with `rrgkit book --profile smoke`")
    return path


@pytest.fixture(scope="module")
def reports(html_dir: Path) -> dict[str, PageReport]:
    screenshots = html_dir.parent / "screenshots"
    shutil.rmtree(screenshots, ignore_errors=True)
    start = time.perf_counter()
    found = check_book(html_dir, screenshots, forbidden=[str(REPO_ROOT)])
    print(f"\nbrowser check: {len(found)} pages in {time.perf_counter() - start:.0f} s; screenshots in {screenshots}")
    return {r.page: r for r in found}


def broken_copy(html_dir: Path, tmp_path: Path) -> Path:
    """A copy of the built book to break on purpose (the original stays as built)."""
    copy = tmp_path / "html"
    shutil.copytree(html_dir, copy)
    return copy


def test_every_page_loads_without_errors(reports):
    problems = [f"{page}: {p}" for page, r in reports.items() for p in r.problems]
    assert not problems, "\n".join(problems)


def test_every_chapter_shows_a_figure(reports):
    chapters = {page: r.figures for page, r in reports.items() if r.chapter}
    assert CHAPTER in chapters, f"no chapter pages found among {sorted(reports)}"
    assert all(chapters.values()), f"chapters without a figure: {[p for p, n in chapters.items() if not n]}"


def test_every_page_has_a_screenshot(reports, html_dir):
    shots = {p.name for p in (html_dir.parent / "screenshots").glob("*.png")}
    missing = [page for page in reports if page != "index.html" and page.replace("/", "__").removesuffix(".html") + ".png" not in shots]
    assert not missing, f"no screenshot for {missing}"


def test_front_page_summarises_the_build(html_dir):
    text = (html_dir / FRONT).read_text()
    assert "95% interval" in text and "Execution times of this build" in text
    assert 'href="../notebooks/03_training.html"' in text and "the model − text only" in text, \
        "the results table has no row of the training chapter"


def test_a_broken_image_is_caught(html_dir, tmp_path):
    copy = broken_copy(html_dir, tmp_path)
    image = re.search(r'src="\.\./(_images/[^"]+)"', (copy / CHAPTER).read_text()).group(1)
    (copy / image).unlink()
    [report] = check_book(copy, pages=[CHAPTER])
    assert any(f"image did not load: ../{image}" == p for p in report.problems), report.problems
    assert any(p.startswith("HTTP 404") for p in report.problems), report.problems


def test_a_broken_link_a_script_error_and_a_machine_path_are_caught(html_dir, tmp_path):
    copy = broken_copy(html_dir, tmp_path)
    page = copy / FRONT
    page.write_text(page.read_text().replace("</body>", '<a href="../notebooks/missing.html">gone</a>'
                                              '<a href="paper.html#no-such-section">gone</a>'
                                              '<script>throw new Error("deliberate")</script>'
                                              f"<p>{REPO_ROOT}/data</p></body>"))
    [report] = check_book(copy, forbidden=[str(REPO_ROOT)], pages=[FRONT])
    text = "\n".join(report.problems)
    assert "notebooks/missing.html does not exist" in text
    assert "no element with id 'no-such-section' in book/paper.html" in text
    assert "JavaScript error: deliberate" in text
    assert f"the page contains {str(REPO_ROOT)!r}" in text


def test_a_chapter_without_figures_is_caught(html_dir, tmp_path):
    copy = broken_copy(html_dir, tmp_path)
    page = copy / CHAPTER
    page.write_text(re.sub(r"<figure.*?</figure>", "", page.read_text(), flags=re.S))
    [report] = check_book(copy, pages=[CHAPTER])
    assert report.chapter and report.figures == 0
