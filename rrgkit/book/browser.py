"""Open every page of a built book in headless Chromium and say what a reader would find broken.

Sphinx's strict build proves the sources are consistent, not that the pages work: an image can be
missing from ``_images``, a theme script can throw, a link can point at a page that was never built,
and a chapter can print the build machine's paths. This module serves the HTML on 127.0.0.1 (as
GitHub Pages would serve it), loads each page in the system's Chromium through Playwright (which
never downloads a browser here) and reports, per page: JavaScript errors, failed same-origin
requests, images that did not load, internal links whose file or anchor is missing, forbidden text
(the repository's absolute path) in the page or its downloadable notebook, and how many figures it
shows (a chapter must show every figure its executed notebook made). A full-page screenshot of each
page is saved for people to look at.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag

CHROMIUM_ENV = "RRGKIT_CHROMIUM"
SKIP_DIRS = {"_static", "_sources", "_images"}
ID_RE = re.compile(r"""\bid=["']([^"']+)["']""")
REDIRECT_RE = re.compile(r"""<meta\s+http-equiv=["']refresh["']\s+content=["'][^"']*url=([^"']+)["']""", re.IGNORECASE)

# Waits for every image to settle (lazy ones included) and returns the sources of those that failed.
BROKEN_IMAGES_JS = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 10000);
  })));
  return images.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute("src"));
}"""


@dataclass
class PageReport:
    """What one page showed in the browser."""

    page: str  # path relative to the HTML folder, e.g. notebooks/03_training.html
    chapter: bool  # built from a notebook (its .ipynb is downloadable from _sources)
    figures: int = 0
    problems: list[str] = field(default_factory=list)
    links: set[str] = field(default_factory=set)  # same-origin link targets, relative to the HTML folder


def find_chromium() -> str:
    """The Chromium binary: ``$RRGKIT_CHROMIUM`` or Debian's ``chromium`` on PATH."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    if not found:
        raise FileNotFoundError(f"no Chromium found: install Debian's chromium (bash scripts/ensure-chromium.sh) "
                                f"or set {CHROMIUM_ENV} to a Chromium binary")
    return found


def book_pages(html_dir: Path) -> list[str]:
    """Every HTML page of the book, relative to ``html_dir``, in a stable order (assets excluded)."""
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if not SKIP_DIRS & set(p.relative_to(html_dir).parts))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Requests are checked by the browser; the log would only drown the test output."""


@contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on a free loopback port for the duration of the block; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _target_file(html_dir: Path, rel: str) -> Path:
    path = html_dir / unquote(rel)
    return path / "index.html" if rel.endswith("/") or rel == "" else path


def notebook_figures(path: Path) -> int:
    """How many figures (image outputs) an executed notebook holds."""
    import nbformat

    from rrgkit.book.build import is_figure

    nb = nbformat.read(path, as_version=4)
    return sum(is_figure(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def check_links(html_dir: Path, reports: Sequence[PageReport]) -> None:
    """Add a problem to each page for every internal link whose file, or anchor in it, does not exist."""
    ids: dict[Path, set[str]] = {}
    for report in reports:
        for link in sorted(report.links):
            rel, fragment = urldefrag(link)
            target = _target_file(html_dir, rel)
            if not target.is_file():
                report.problems.append(f"link to {link}: {rel or 'index'} does not exist")
                continue
            if fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(ID_RE.findall(target.read_text(errors="replace")))
                if unquote(fragment) not in ids[target]:
                    report.problems.append(f"link to {link}: no element with id {fragment!r} in {rel}")


def check_book(html_dir: Path, screenshots: Path | None = None, forbidden: Sequence[str] = (),
               pages: Sequence[str] | None = None) -> list[PageReport]:
    """Load ``pages`` (default: every page) of the book in ``html_dir`` in Chromium; one report per page.

    ``forbidden`` strings must appear neither in a page nor in its downloadable notebook. With
    ``screenshots``, a full-page PNG of each page is written there.
    """
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    pages = list(pages) if pages is not None else book_pages(html_dir)
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    current: list[PageReport] = []
    with serve(html_dir) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium())
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def problem(text: str, url: str = base) -> None:
            """Note a problem on the page being checked when it concerns the book itself (same origin)."""
            if url.startswith(base):
                current[-1].problems.append(text.replace(base, ""))

        page.on("pageerror", lambda error: problem(f"JavaScript error: {error}"))
        page.on("console", lambda msg: msg.type == "error" and problem(f"console error: {msg.text}", msg.location.get("url") or base))
        page.on("requestfailed", lambda request: problem(f"request failed: {request.url} ({request.failure})", request.url))
        page.on("response", lambda response: response.status >= 400 and problem(f"HTTP {response.status} for {response.url}", response.url))
        # The book must work offline: requests that leave the machine are refused, not waited for.
        page.route(re.compile(r"^(?!" + re.escape(base) + r")"), lambda route: route.abort())
        for rel in pages:
            source = html_dir / "_sources" / Path(rel).with_suffix(".ipynb")
            report = PageReport(rel, chapter=source.is_file())
            current.append(report)
            redirect = REDIRECT_RE.search((html_dir / rel).read_text(errors="replace"))
            if redirect:  # a redirect stub (the site's root): its target must exist, and is checked as a page itself
                report.links.add((Path(rel).parent / redirect.group(1)).as_posix().removeprefix("./"))
                continue
            page.goto(base + rel, wait_until="load")
            report.problems += [f"image did not load: {src}" for src in page.evaluate(BROKEN_IMAGES_JS)]
            report.figures = page.evaluate("document.querySelectorAll('figure img').length")
            report.links |= {href[len(base):] for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
                             if href.startswith(base)}
            texts = {"the page": page.content()}
            if report.chapter:
                texts["its downloadable notebook"] = source.read_text(errors="replace")
                made = notebook_figures(source)
                if report.figures != made:
                    report.problems.append(f"shows {report.figures} of the {made} figures its notebook made")
            report.problems += [f"{where} contains {text!r}" for text in forbidden for where, body in texts.items() if text in body]
            if screenshots is not None:
                page.screenshot(path=str(screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)
        browser.close()
    check_links(html_dir, current)
    return current
