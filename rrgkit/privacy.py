"""Privacy guard: credentialed report text and images (MIMIC-CXR) are shown only after an explicit opt-in.

Two layers, because one can be bypassed by accident:

* :func:`guard_display` / :func:`display_guarded` run inside notebooks; they refuse to show content from a
  credentialed source unless the run sets ``show_credentialed_text=True``.
* Every output made by :func:`display_guarded` carries the marker ``{"rrgkit": {"source", "opt_in"}}`` in
  its display metadata; :func:`scan_notebook_for_credentialed` finds credentialed outputs in an executed
  notebook, so the book build can refuse to publish them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rrgkit.data.manifest import CREDENTIALED_SOURCES

OPT_IN = "show_credentialed_text"
MARKER = "rrgkit"


class PrivacyError(RuntimeError):
    """Credentialed content would be displayed or published without the opt-in (the CLI prints it as one line)."""


def sources_of(frame_or_source: pd.DataFrame | str) -> set[str]:
    """The data sources behind a manifest frame (its ``source`` column) or a source name."""
    if isinstance(frame_or_source, pd.DataFrame):
        if "source" not in frame_or_source.columns:
            raise PrivacyError("frame has no 'source' column, so its privacy status is unknown; use a manifest frame")
        return set(frame_or_source["source"].astype(str))
    return {str(frame_or_source)}


def guard_display(frame_or_source: pd.DataFrame | str, allow_credentialed: bool) -> str:
    """Raise :class:`PrivacyError` for credentialed content without opt-in; return the source label."""
    sources = sources_of(frame_or_source)
    credentialed = sorted(sources & CREDENTIALED_SOURCES)
    if credentialed and not allow_credentialed:
        raise PrivacyError(
            f"refusing to display text or images from credentialed source(s) {credentialed}; "
            f"set the notebook parameter {OPT_IN}=True (papermill: -p {OPT_IN} True) only for private runs "
            "whose outputs are never published"
        )
    return credentialed[0] if credentialed else ",".join(sorted(sources))


def display_guarded(obj: Any, frame_or_source: pd.DataFrame | str, allow_credentialed: bool) -> None:
    """Display ``obj`` (a DataFrame, a figure, text) in a notebook, guarded and marked with its source.

    For a matplotlib figure, call ``plt.close(fig)`` first: ``plt.show()`` would display an unmarked copy.
    """
    from IPython.display import display

    source = guard_display(frame_or_source, allow_credentialed)
    display(obj, metadata={MARKER: {"source": source, "opt_in": bool(allow_credentialed)}})


def _marker(output: dict) -> dict | None:
    meta = output.get("metadata") or {}
    if MARKER in meta:
        return meta[MARKER]
    for value in meta.values():  # IPython nests metadata per mime type for some outputs
        if isinstance(value, dict) and MARKER in value:
            return value[MARKER]
    return None


def scan_notebook_for_credentialed(nb: Any) -> list[str]:
    """Problems (one line each) for outputs of an executed notebook that show credentialed content without opt-in.

    ``nb`` is an ``nbformat`` notebook (or its dict). An empty list means the notebook may be published.
    """
    problems = []
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            mark = _marker(output)
            if mark and mark.get("source") in CREDENTIALED_SOURCES and not mark.get("opt_in"):
                problems.append(f"cell {index}: output shows {mark['source']} content without {OPT_IN}=True")
    return problems


def assert_publishable(nb: Any, where: str) -> None:
    """Raise :class:`PrivacyError` naming ``where`` when :func:`scan_notebook_for_credentialed` finds problems.

    This is the check the book build runs on every executed notebook.
    """
    problems = scan_notebook_for_credentialed(nb)
    if problems:
        raise PrivacyError(f"{where}: credentialed content would be published: {'; '.join(problems)}; "
                           f"run on a non-credentialed dataset, or opt in with {OPT_IN}=True for a private build")
