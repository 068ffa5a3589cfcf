"""Generated reports as HTML for the book (Fig. 4's table) and an ipywidgets browser of one run's test studies.

Static pages get HTML strings (:func:`examples_html`, :func:`study_html`); JupyterLab gets
:class:`ReportBrowser`, whose callback renders the same HTML for the study and run picked. Both
refuse credentialed data (MIMIC-CXR) without the opt-in of :mod:`rrgkit.privacy`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

from rrgkit.analysis.qualitative import MARKS, finding_marks
from rrgkit.experiments.study_view import RunViewer, StudyView
from rrgkit.labels import CHEXPERT_OBSERVATIONS
from rrgkit.privacy import guard_display

MARK_COLOURS = dict(zip(MARKS, ("#1b9e77", "#d95f02", "#d62728"), strict=True))
"""Agreement green, miss orange, hallucination red."""
ALPHA_TOP = 2.0
"""Attention allocations at or above this (twice the prompt's share of the context) get the darkest underline."""


def _chip(text: str, mark: str) -> str:
    return (f'<span style="background:{MARK_COLOURS[mark]};color:white;border-radius:3px;padding:0 4px;margin:1px;'
            f'display:inline-block;font-size:85%">{html.escape(text)}</span>')


def findings_html(marks: Mapping[str, str]) -> str:
    """The labeler's findings of a report pair as coloured chips, one per observation either report states."""
    return " ".join(_chip(f"{name}: {mark}", mark) for name, mark in marks.items()) or "<i>none stated by either</i>"


def legend_html(tokens: bool = True) -> str:
    """What the colours of the chips (and, with ``tokens``, of the tokens) mean."""
    text = (f"Findings: {' '.join(_chip(m, m) for m in MARKS)} (the labeler on the generated text against the "
            "reference labels).")
    if tokens:
        text += (" Tokens: background from red (probability 0) to green (1); underline from light to dark blue as the "
                 f"token's attention allocation α to the visual prompt (Eq. 2, mean over layers) goes from 0 to "
                 f"{ALPHA_TOP:g} or more (1 = attention in proportion to the prompt's share of the context); hover over "
                 "a token for its numbers.")
    return f"<p style='font-size:85%'>{text}</p>"


def examples_html(examples: pd.DataFrame, title: str) -> str:
    """Fig. 4's table: per picked example, the cell, pick, report F1, reference, generated report and marked findings."""
    top = "style='vertical-align:top;text-align:left'"
    rows = [f"<tr><td {top}>{html.escape(r.cell)}<br><b>{r.pick}</b><br>{html.escape(str(r.study))}<br>report F1 "
            f"{100 * r.F1:.0f}</td><td {top}>{html.escape(r.reference)}</td>"
            f"<td {top}>{html.escape(r.generated) or '<i>(empty)</i>'}</td><td {top}>{findings_html(r.marks)}</td></tr>"
            for r in examples.itertuples()]
    head = "".join(f"<th style='text-align:left;width:{w}'>{name}</th>" for name, w in
                   (("cell, pick, study", "14%"), ("reference", "34%"), ("generated", "30%"), ("findings", "22%")))
    return (f"<div><p><b>{html.escape(title)}</b></p><table style='font-size:85%;table-layout:fixed;width:100%'>"
            f"<tr>{head}</tr>{''.join(rows)}</table>{legend_html(tokens=False)}</div>")


def _image_tag(path: Path, size: int) -> str:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" width="{size}" height="{size}" alt="frontal image">'


def tokens_html(view: StudyView) -> str:
    """The generated report token by token: background = probability, underline = attention allocation α."""
    probability, attention = colormaps["RdYlGn"], colormaps["Blues"]
    spans = []
    for piece, p, a in zip(view.pieces, view.probs, view.alpha, strict=True):
        spans.append(f'<span title="p = {p:.2f}, α = {a:.2f}" style="background:{to_hex(probability(p))};'
                     f'border-bottom:4px solid {to_hex(attention(0.2 + 0.8 * min(a / ALPHA_TOP, 1.0)))};'
                     f'white-space:pre">{html.escape(piece)}</span>')
    return "".join(spans)


def study_html(view: StudyView, run_name: str, image_px: int = 256) -> str:
    """One study: image, reference, the run's report as coloured tokens, its marked findings and the legend."""
    marks = finding_marks(view.generated_labels[None], view.reference_labels[None])[0]
    found = {o: m for o, m in zip(CHEXPERT_OBSERVATIONS, marks, strict=True) if m}
    ac = float(np.mean(view.probs)) if len(view.probs) else float("nan")
    return (f"<div><p><b>{html.escape(view.study_id)}</b>, {html.escape(run_name)}: {len(view.pieces)} tokens, "
            f"AC (Eq. 4) {ac:.2f}</p><table><tr><td style='vertical-align:top'>{_image_tag(view.image_file, image_px)}</td>"
            f"<td style='vertical-align:top;text-align:left'><p><b>Reference</b><br>{html.escape(view.reference)}</p>"
            f"<p><b>Generated</b><br>{tokens_html(view)}</p><p>{findings_html(found)}</p></td></tr></table>"
            f"{legend_html()}</div>")


class ReportBrowser:
    """Pick a run and one of its test studies; see the study as :func:`study_html` renders it.

    ``runs`` maps a name (e.g. ``"gpt2-tiny · two-stage, seed 0"``) to a run folder. Models load on first
    use. :meth:`widget` builds the ipywidgets view; changing either picker calls :meth:`update`, which
    renders into ``self.display``, so a test can drive it with a study id and read what it shows.
    """

    def __init__(self, runs: Mapping[str, str | Path], allow_credentialed: bool = False, image_px: int = 256) -> None:
        if not runs:
            raise ValueError("ReportBrowser needs at least one run")
        self.runs = {name: Path(run) for name, run in runs.items()}
        self.allow_credentialed = allow_credentialed
        self.image_px = image_px
        self._viewers: dict[str, RunViewer] = {}
        self.study_ids = self.viewer(next(iter(self.runs))).study_ids
        self.run_picker = self.study_picker = self.display = None

    def viewer(self, name: str) -> RunViewer:
        """The run's viewer, loading its model the first time; refuses credentialed data without the opt-in."""
        if name not in self._viewers:
            viewer = RunViewer(self.runs[name])
            guard_display(viewer.dataset.frame, self.allow_credentialed)
            self._viewers[name] = viewer
        return self._viewers[name]

    def html(self, name: str, study_id: str) -> str:
        """What the browser shows for run ``name`` and ``study_id``."""
        return study_html(self.viewer(name).view(study_id), name, self.image_px)

    def widget(self):
        """Two pickers (run, test study) above the rendered study, for JupyterLab."""
        import ipywidgets as widgets

        self.run_picker = widgets.Dropdown(options=list(self.runs), description="run")
        self.study_picker = widgets.Dropdown(options=self.study_ids, description="study")
        self.display = widgets.HTML()
        for picker in (self.run_picker, self.study_picker):
            picker.observe(self.update, names="value")
        self.update()
        return widgets.VBox([widgets.HBox([self.run_picker, self.study_picker]), self.display])

    def update(self, change: Mapping | None = None) -> None:
        """The pickers' callback: render the picked run and study into ``self.display``."""
        self.display.value = self.html(self.run_picker.value, self.study_picker.value)
