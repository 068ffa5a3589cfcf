"""The structured state of one phantom study: the contract between sampler, renderer and report writer.

The sampler (:mod:`rrgkit.data.sampling`) draws a :class:`Study`; the renderer
(:mod:`rrgkit.phantom.render`) draws its pixels; the report writer
(:mod:`rrgkit.data.report_writer`) describes it. Because all three read the same
state, the label vector is exact ground truth for both image and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES

CERTAINTIES = ("positive", "uncertain")
LATERALITIES = ("left", "right", "bilateral")
ZONES = ("upper", "middle", "lower", "perihilar", "diffuse")
VIEWS = ("PA", "AP", "LATERAL")
DEVICE_KINDS = ("et_tube", "ng_tube", "central_line", "picc", "pacemaker", "sternotomy", "chest_tube")


@dataclass(frozen=True)
class Finding:
    """One observation that is (possibly) visible.

    ``certainty == "uncertain"`` is CheXpert's -1: the renderer draws an equivocal sign
    (low severity, partly hidden) and the writer hedges. ``kind`` names a subtype where
    radiology has one (a device from :data:`DEVICE_KINDS`; ``"nodule"``/``"mass"``;
    ``"plate"``/``"lobar"`` atelectasis; ``"interstitial"``/``"alveolar"`` edema; ...).
    """

    observation: str
    certainty: str = "positive"
    severity: float = 0.5
    laterality: str | None = None
    zone: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.observation not in PATHOLOGIES:
            raise ValueError(f"Finding.observation must be one of {PATHOLOGIES}, got {self.observation!r}")
        if self.certainty not in CERTAINTIES:
            raise ValueError(f"Finding.certainty must be one of {CERTAINTIES}, got {self.certainty!r}")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"Finding.severity must lie in [0, 1], got {self.severity}")
        if self.laterality is not None and self.laterality not in LATERALITIES:
            raise ValueError(f"Finding.laterality must be one of {LATERALITIES} or None, got {self.laterality!r}")
        if self.zone is not None and self.zone not in ZONES:
            raise ValueError(f"Finding.zone must be one of {ZONES} or None, got {self.zone!r}")


@dataclass(frozen=True)
class Patient:
    """Anatomy and acquisition nuisances: the confounders a reader must see through.

    All in [0, 1] unless stated: ``habitus`` thin → obese (soft tissue), ``inspiration``
    poor → good (poor inspiration crowds vessels and widens the heart), ``rotation`` in
    [-1, 1] (shifts the mediastinum, asymmetric clavicles), ``exposure`` under → over,
    ``noise`` detector noise, ``breast`` shadow density (0 for most men).
    """

    sex: str = "M"
    age: int = 60
    habitus: float = 0.5
    inspiration: float = 0.7
    rotation: float = 0.0
    exposure: float = 0.5
    noise: float = 0.3
    breast: float = 0.0


@dataclass(frozen=True)
class Study:
    """One study: the 14-label ground truth, the findings that realise it, the patient and the view.

    An observation may have several findings (an ET tube and a central line are both Support
    Devices). The labels are what the report states; a finding may be in the image while its
    label is blank (radiologists omit minor findings), which the sampler decides and documents.

    ``labels`` has CheXpert's column order (:data:`rrgkit.labels.CHEXPERT_OBSERVATIONS`) with
    values 1 / 0 / -1 / NaN. ``seed`` makes the rendering of nuisance texture reproducible.
    """

    id: str
    labels: np.ndarray
    findings: tuple[Finding, ...] = ()
    patient: Patient = field(default_factory=Patient)
    view: str = "PA"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"Study.view must be one of {VIEWS}, got {self.view!r}")
        if np.shape(self.labels) != (len(CHEXPERT_OBSERVATIONS),):
            raise ValueError(f"Study.labels must have {len(CHEXPERT_OBSERVATIONS)} entries, got shape {np.shape(self.labels)}")

    def finding(self, observation: str) -> Finding | None:
        """The finding for ``observation``, or None when it is not in the image."""
        return next((f for f in self.findings if f.observation == observation), None)

    def findings_of(self, observation: str) -> tuple[Finding, ...]:
        """Every finding for ``observation`` (a study may carry several devices, or two fractures)."""
        return tuple(f for f in self.findings if f.observation == observation)
