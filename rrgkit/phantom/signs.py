"""The visual signature of each of the 13 CheXpert pathologies and of support devices.

Every sign honours the finding's laterality, zone, kind and severity, and is subtle on purpose:
a severity near 0 sits at the level of normal anatomical variation and detector noise, near 1 it
is obvious; ``certainty == "uncertain"`` halves the strength (an equivocal sign). Findings act
through shared layers so that they interact as on a real film: fluid replaces lung air (``fill``),
hiding a heart border, a dome or a basal atelectasis next to it; haze lowers the contrast of a
nodule inside it. Side conventions are those of :mod:`rrgkit.phantom.anatomy` (image left =
patient right on a frontal film).

Each finding gets its own random stream (see :func:`finding_rng`), independent of the view and of
the other findings, so a lesion sits in the same place on the PA and on the lateral film.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from rrgkit.phantom.anatomy import (
    SIDES,
    Anatomy,
    Layers,
    RibBreak,
    add_blob,
    cage_half_width,
    lateral_dome,
    lateral_x,
    pixel_axes,
    ramp,
    sample_polyline,
    splat,
    vessel_tree,
)
from rrgkit.labels import PATHOLOGIES
from rrgkit.phantom.state import DEVICE_KINDS, Finding, Study

_FINDING_STREAM = 31337

FINDING_KINDS: dict[str, tuple[str, ...]] = {
    "Lung Lesion": ("nodule", "mass"),
    "Edema": ("interstitial", "alveolar"),
    "Consolidation": ("segmental", "lobar"),
    "Pneumonia": ("patchy", "lobar"),
    "Atelectasis": ("plate", "lobar"),
    "Pleural Other": ("thickening", "plaque"),
    "Fracture": ("acute", "healing"),
    "Support Devices": DEVICE_KINDS,
}
"""The ``Finding.kind`` values each observation draws differently (None is always allowed: the first is used,
except for Support Devices, where a missing kind draws a random device)."""


def strength(finding: Finding) -> float:
    """Effective severity: an uncertain finding is drawn as an equivocal, half-strength sign."""
    return finding.severity * (0.5 if finding.certainty == "uncertain" else 1.0)


def finding_rng(study: Study, index: int) -> np.random.Generator:
    """The random stream of the ``index``-th finding: keyed by its observation and its rank among that
    observation's findings, so it does not depend on the view or on the other findings of the study."""
    f = study.findings[index]
    rank = sum(g.observation == f.observation for g in study.findings[:index])
    return np.random.default_rng([study.seed, _FINDING_STREAM, PATHOLOGIES.index(f.observation), rank])


def finding_sides(finding: Finding, rng: np.random.Generator, default_bilateral: bool = False) -> tuple[int, ...]:
    """Side signs of a finding: laterality when given, else both sides or one random side."""
    if finding.laterality == "right":
        return (-1,)
    if finding.laterality == "left":
        return (1,)
    if finding.laterality == "bilateral" or default_bilateral:
        return SIDES
    return (int(rng.choice(SIDES)),)


def adjust_anatomy(anat: Anatomy, study: Study) -> Anatomy:
    """Apply the findings that change anatomy itself: heart size, mediastinum, volume loss, rib breaks."""
    changes: dict = {}
    breaks = []
    dome = list(anat.dome_y)
    med_x = anat.med_x
    for index, f in enumerate(study.findings):
        if f.kind is not None and f.kind not in FINDING_KINDS.get(f.observation, ()):
            allowed = FINDING_KINDS.get(f.observation, ())
            raise ValueError(
                f"study {study.id!r}: {f.observation} kind {f.kind!r} is not drawn by the renderer; "
                f"use one of {allowed} or None"
            )
        s = strength(f)
        rng = finding_rng(study, index)
        if f.observation == "Cardiomegaly":
            changes["ctr"] = max(anat.ctr + 0.02, (0.505 + 0.175 * s) * anat.ctr_projection)
        elif f.observation == "Enlarged Cardiomediastinum":
            changes["med_half_width"] = anat.med_half_width * (1.05 + 0.45 * s)
        elif f.observation == "Atelectasis" and f.kind == "lobar":
            for sign in finding_sides(f, rng):
                dome[0 if sign < 0 else 1] -= 0.012 + 0.05 * s  # volume loss pulls the dome up
                med_x += sign * 0.02 * s  # ... and the mediastinum towards the collapse
        elif f.observation == "Fracture":
            for sign in finding_sides(f, rng):
                first, last = {"upper": (1, 3), "middle": (4, 6), "lower": (6, 8)}.get(f.zone or "", (2, 8))
                displaced = f.certainty == "positive"
                breaks.append(
                    RibBreak(
                        sign=sign,
                        rib=int(rng.integers(first, last + 1)),
                        u=float(rng.uniform(0.55, 0.93)),
                        step=float((0.05 + 0.5 * s) * rng.choice((-1, 1))) if displaced else 0.0,
                        gap=float(0.3 + 0.65 * s),
                        callus=float(0.05 + 0.12 * s) if f.kind == "healing" else 0.0,
                    )
                )
    return dataclasses.replace(anat, dome_y=(dome[0], dome[1]), med_x=med_x, fractures=tuple(breaks), **changes)


def _place(
    anat: Anatomy, sign: int, zone: str | None, rng: np.random.Generator, u: tuple[float, float]
) -> tuple[float, float, float]:
    """A 3-D point (x, y, z) inside one lung: zone sets the height, ``u`` the range across the hemithorax."""
    y = anat.zone_y(sign, zone, rng)
    x = anat.side_x(sign, float(rng.uniform(*u)), y)
    return x, y, float(rng.uniform(0.15, 0.85))


def _xy(anat: Anatomy, point: tuple[float, float, float]) -> tuple[float, float]:
    """Project a 3-D point onto this film."""
    x, y, z = point
    return (float(lateral_x(z)), y) if anat.view == "LATERAL" else (x, y)


def _side_frame(anat: Anatomy, size: int, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel (x, y, u, on_side) for one hemithorax of a frontal film; u is the fraction of its width."""
    x, y = pixel_axes(size)
    d = sign * (x - anat.spine_x)
    u = d / cage_half_width(anat, y)
    return x, y, u, (d > 0).astype(np.float32)


def _lesion(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Nodule or mass: solid tissue that displaces lung air (so haze or fluid around it lowers its contrast)."""
    s = strength(f)
    sign = finding_sides(f, rng)[0]
    hidden = f.certainty == "uncertain"  # equivocal: small, and over the hilum / heart / ribs
    point = _place(anat, sign, f.zone, rng, (0.12, 0.45) if hidden else (0.3, 0.85))
    cx, cy = _xy(anat, point)
    blobs = []
    if f.kind == "mass":
        r, amp = 0.035 + 0.045 * s, 0.3 + 0.3 * s
        lobes = rng.normal(0, r / 3, (3, 2))  # a lobulated margin
        blobs = [(cx + dx, cy + dy, r * 0.8, r * 0.75, amp * 0.45) for dx, dy in lobes]
    else:
        r, amp = 0.008 + 0.03 * s, 0.12 + 0.33 * s
    blobs.append((cx, cy, r, r * rng.uniform(0.85, 1.1), amp))
    angle = float(rng.uniform(0, np.pi))
    for bx, by, rx, ry, a in blobs:
        add_blob(layers.fill, bx, by, rx, ry, a, angle=angle, sharp=3.0)
        add_blob(layers.dense, bx, by, rx, ry, 0.15 * a, angle=angle, sharp=3.0)


def _opacity(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Lung opacity: patchy, ill-defined partial filling of the airspaces in one zone."""
    s = strength(f)
    for sign in finding_sides(f, rng):
        cx, cy = _xy(anat, _place(anat, sign, f.zone, rng, (0.35, 0.8)))
        for _ in range(3 + int(4 * s)):
            rx, ry = rng.uniform(0.02, 0.045, 2) * (1.0 + s)
            add_blob(layers.fill, cx + rng.normal(0, 0.03), cy + rng.normal(0, 0.03), rx, ry, 0.08 + 0.3 * s)


def _edema(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Edema: bilateral perihilar haze, Kerley B lines at the bases and blurred vessel outlines."""
    s = strength(f)
    alveolar = 1.4 if f.kind == "alveolar" else (0.7 if f.kind == "interstitial" else 1.0)
    lateral = anat.view == "LATERAL"
    sides = finding_sides(f, rng, default_bilateral=True)
    if len(sides) == 2 or lateral:
        layers.vessel_blur = max(layers.vessel_blur, 0.001 + 0.004 * s)  # indistinct vessel outlines
    else:  # unilateral edema (rare): blur cannot be confined to one side, so fade that side's markings
        x, y, u, side = _side_frame(anat, size, sides[0])
        layers.markings *= 1.0 - 0.35 * s * side
    for sign in sides:
        hx = lateral_x(0.55) if lateral else anat.med_x + sign * 0.085
        hy = anat.carina_y + 0.09
        add_blob(layers.fill, hx, hy, 0.09 + 0.07 * s, 0.1 + 0.06 * s, (0.06 + 0.32 * s) * alveolar)
        dome = anat.dome_at(sign)
        for _ in range(int(1 + 9 * s * (2.0 - alveolar))):  # Kerley B lines at the lateral bases
            y = dome - float(rng.uniform(0.02, 0.13))
            x = lateral_x(rng.uniform(0.2, 0.9)) if lateral else anat.side_x(sign, 0.93, y) - sign * 0.012
            add_blob(layers.dense, x, y, 0.013, 0.0022, 0.03 + 0.05 * s, angle=float(rng.normal(0, 0.1)), sharp=2.0)


def _bronchograms(
    layers: Layers, cx: float, cy: float, radius: float, sign: int, rng: np.random.Generator, depth: float, size: int
) -> None:
    """Air bronchograms: dark branching airways kept open inside a consolidation."""
    bx, by, bw = vessel_tree(rng, cx - sign * radius * 0.8, cy, sign, 1.0, 0.5 / size, roots=3, generations=3)
    keep = (bx - cx) ** 2 + (by - cy) ** 2 < (0.8 * radius) ** 2
    splat(layers.fill, bx[keep], by[keep], -depth * (0.5 * (1.0 + bw[keep] / bw.max())) * 0.35)


def _consolidation(
    layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int, patchy: bool = False
) -> None:
    """Consolidation (dense, well-defined, air bronchograms) or, ``patchy``, pneumonia (focal patchy opacity).

    Lobar consolidation of the middle or lower zone lies against the heart, so it effaces the heart border.
    """
    s = strength(f)
    zone = f.zone or ("lower" if patchy else None)
    for sign in finding_sides(f, rng):
        medial = f.kind == "lobar" and zone in ("middle", "lower")
        cx, cy = _xy(anat, _place(anat, sign, zone, rng, (0.2, 0.45) if medial else (0.35, 0.75)))
        rx, ry = (0.03 + 0.08 * s) * rng.uniform(0.8, 1.2), (0.025 + 0.07 * s) * rng.uniform(0.8, 1.2)
        amp = (0.1 if patchy else 0.15) + (0.7 if patchy else 0.8) * s
        if patchy:  # pneumonia: a focal, patchy airspace opacity
            for _ in range(3):
                px, py = cx + rng.normal(0, rx / 2), cy + rng.normal(0, ry / 2)
                add_blob(layers.fill, px, py, rx * 0.7, ry * 0.7, amp * 0.5, sharp=2.5)
        else:  # consolidation: dense, lobar/segmental, well-defined where it abuts a fissure
            sharp = 6.0 if f.kind == "lobar" else 3.5
            scale = 1.4 if f.kind == "lobar" else 1.0
            add_blob(layers.fill, cx, cy, rx * scale, ry * scale, amp, sharp=sharp)
            if s > 0.45:
                _bronchograms(layers, cx, cy, min(rx, ry) * scale, sign, rng, s, size)


def _atelectasis(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Atelectasis: a plate-like band, or (``kind="lobar"``) a basal wedge with volume loss."""
    s = strength(f)
    for sign in finding_sides(f, rng):
        if f.kind == "lobar":  # a dense wedge at the base by the heart; the dome was raised by adjust_anatomy
            y = anat.dome_at(sign) - 0.05
            cx, cy = _xy(anat, (anat.side_x(sign, 0.3, y), y, 0.6))
            add_blob(layers.fill, cx, cy, 0.05 + 0.05 * s, 0.05 + 0.06 * s, 0.4 + 0.5 * s, angle=sign * 0.5, sharp=3.0)
        else:  # plate-like: a thin, nearly horizontal band
            cx, cy = _xy(anat, _place(anat, sign, f.zone or "lower", rng, (0.3, 0.75)))
            angle = float(rng.normal(0, 0.25))
            add_blob(layers.fill, cx, cy, 0.035 + 0.05 * s, 0.004 + 0.005 * s, 0.25 + 0.65 * s, angle=angle)


def _pneumothorax(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Pneumothorax: an apical/lateral rim of air without lung markings, bounded by a thin pleural line."""
    s = strength(f)
    rim = 0.004 + 0.08 * s**1.5  # width of the air rim between lung edge and chest wall
    for sign in finding_sides(f, rng):
        if anat.view == "LATERAL":  # apical lucency over the upper lung, with a faint pleural line
            x, y = pixel_axes(size)
            inner, side = ramp(y - anat.apex_y - 1.5 * rim, 0.004), np.float32(1.0)
        else:
            x, y, u, side = _side_frame(anat, size, sign)
            inner = ramp((0.94 - u) * cage_half_width(anat, y) - rim, 0.004) * ramp(y - anat.apex_y - 1.5 * rim, 0.004)
        gap = layers.lung * (1.0 - inner) * side
        layers.markings *= 1.0 - gap  # no lung markings beyond the visceral pleura
        layers.air += (0.04 + 0.06 * s) * gap
        layers.fill += 0.1 * s * inner * side * layers.lung  # the collapsing lung is a little denser
        layers.dense += (0.02 + 0.06 * s) * 4.0 * inner * (1.0 - inner) * side * layers.lung  # visceral pleural line


def _effusion(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Pleural effusion: basal fluid with a meniscus; small ones only blunt the angle, large ones hide the dome
    and the heart border (the fluid replaces the air that outlined them)."""
    s = strength(f)
    height = 0.004 + 0.3 * s**1.5  # fluid height above the costophrenic angle: small effusions only blunt it
    soft = 0.015 + 0.03 * s  # the fluid thins upwards: an ill-defined upper edge
    for sign in finding_sides(f, rng):
        if anat.view == "LATERAL":  # posterior costophrenic sulcus fills first
            x, y = pixel_axes(size)
            z = (x - lateral_x(0.0)) / (lateral_x(1.0) - lateral_x(0.0))
            sulcus = lateral_dome(anat, np.float32(lateral_x(1.0)), sign)
            surface = sulcus - height - (0.03 + 0.04 * s) * np.clip(z, 0.0, 1.1) ** 2 + 0.05
            layers.fill += np.clip((y - surface) / soft, 0.0, 1.0) * ramp(z - 0.45 + 0.5 * s, 0.3)
            continue
        x, y, u, side = _side_frame(anat, size, sign)
        angle_y = anat.dome_at(sign) + 0.26 * 0.55**2  # the lateral costophrenic angle
        surface = angle_y - height - (0.02 + 0.05 * s) * np.clip(u, 0.0, 1.0) ** 2  # meniscus: higher laterally
        fluid = np.clip((y - surface) / soft, 0.0, min(1.0, 0.45 + 0.8 * s)) * side * ramp(1.02 - u, 0.03)
        layers.fill += fluid
        layers.dense += 0.12 * s * fluid * ramp(y - anat.dome_at(sign) + 0.03, 0.05)


def _pleural_other(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """Pleural thickening along the chest wall (apical cap in the upper zone), or calcified plaques."""
    s = strength(f)
    for sign in finding_sides(f, rng):
        if f.kind == "plaque":  # calcified plaques along the chest wall
            for _ in range(2 + int(3 * s)):
                y = anat.zone_y(sign, f.zone or "lower", rng)
                cx, cy = _xy(anat, (anat.side_x(sign, 0.92, y), y, float(rng.uniform(0.2, 0.9))))
                angle = float(rng.normal(0, 0.2))
                rx, ry, amp = 0.006 + 0.01 * s, 0.02 + 0.02 * s, 0.08 + 0.25 * s
                add_blob(layers.dense, cx, cy, rx, ry, amp, angle=angle, sharp=3.0)
            continue
        if anat.view == "LATERAL":
            x, y = pixel_axes(size)
            band = ramp(x - lateral_x(1.0) + 0.02 + 0.04 * s, 0.01) * layers.lung
        else:
            x, y, u, side = _side_frame(anat, size, sign)
            band = ramp(u - 0.96 + 0.03 + 0.06 * s, 0.02) * side * layers.lung
        top = anat.zone_y(sign, f.zone or "upper", rng) - 0.1
        layers.fill += (0.3 + 0.5 * s) * band * ramp(y - top, 0.04) * ramp(top + 0.25 - y, 0.04)


def _tube(
    layers: Layers, points: np.ndarray, anat: Anatomy, size: int, width: float, amp: float, holes: float = 0.0
) -> None:
    """Draw a tube or wire along 3-D points (x, y, z) as a band of density.

    ``holes`` > 0 leaves side-hole gaps over that length before the tip (chest tubes).
    """
    xy = np.column_stack([lateral_x(points[:, 2]), points[:, 1]]) if anat.view == "LATERAL" else points[:, :2]
    step = 0.4 / size
    line = sample_polyline(xy, step)
    if holes > 0:  # side holes: gaps over the last `holes` of length
        dist = np.arange(len(line))[::-1] * step
        line = line[~((dist < holes) & (np.mod(dist, 0.025) < 0.008))]
    tangent = np.gradient(line, axis=0)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]]) / (np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12)
    width_px = width * size
    n = max(1, int(np.ceil(width_px / 0.5)))
    weight = amp * 0.4 * max(width_px, 1.0) / n
    for off in np.linspace(-width / 2, width / 2, n) if n > 1 else (0.0,):
        splat(layers.dense, line[:, 0] + off * normal[:, 0], line[:, 1] + off * normal[:, 1], weight)


def _device(layers: Layers, anat: Anatomy, f: Finding, rng: np.random.Generator, size: int) -> None:
    """A support device of ``kind`` (a random one when the kind is missing), on its anatomical course."""
    kind = f.kind or str(rng.choice(DEVICE_KINDS))
    faint = 0.6 if f.certainty == "uncertain" else 1.0
    mx, sx, cy = anat.med_x, anat.spine_x, anat.carina_y
    dome_l = anat.dome_y[1]
    P = np.array
    if kind == "et_tube":
        tip = cy - float(rng.uniform(0.025, 0.07))
        pts = P([[mx - 0.004, -0.02, 0.4], [mx - 0.004, 0.12, 0.5], [mx - 0.004, tip, 0.55]])
        _tube(layers, pts, anat, size, 0.014, 0.3 * faint)
        _tube(layers, pts + [0.004, 0, 0], anat, size, 0.002, 0.9 * faint)
    elif kind == "ng_tube":
        pts = P(
            [
                [mx + 0.006, -0.02, 0.6],
                [mx + 0.01, cy, 0.65],
                [mx + 0.02, dome_l - 0.02, 0.6],  # down the oesophagus, through the hiatus
                [sx + 0.12, dome_l + 0.06, 0.45],
                [sx + 0.17, dome_l + 0.1, 0.4],  # tip in the stomach
            ]
        )
        _tube(layers, pts, anat, size, 0.005, 0.5 * faint)
    elif kind in ("central_line", "picc"):
        sign = finding_sides(f, rng)[0] if f.laterality else -1
        tip_y = cy + float(rng.uniform(0.0, 0.06))
        if kind == "picc":  # from the arm, through the axilla
            start = [[sx + sign * 0.48, 0.3, 0.5], [sx + sign * 0.4, 0.2, 0.5]]
            start.append([sx + sign * 0.2, anat.clavicle_y + 0.02, 0.4])
        elif rng.random() < 0.5:  # internal jugular
            start = [[sx + sign * 0.09, -0.02, 0.45], [sx + sign * 0.07, 0.14, 0.4]]
        else:  # subclavian, under the clavicle
            start = [[sx + sign * 0.26, anat.clavicle_y, 0.3], [sx + sign * 0.1, anat.clavicle_y + 0.03, 0.35]]
        pts = P(start + [[mx - 0.035, cy - 0.05, 0.4], [mx - 0.03, tip_y, 0.42]])
        _tube(layers, pts, anat, size, 0.003 if kind == "picc" else 0.004, 0.55 * faint)
    elif kind == "pacemaker":
        bx, by = sx + 0.2, anat.clavicle_y + 0.06
        if anat.view == "LATERAL":
            add_blob(layers.dense, lateral_x(-0.12), by, 0.012, 0.03, 1.2 * faint, sharp=8.0)
        else:
            add_blob(layers.dense, bx, by, 0.03, 0.022, 1.2 * faint, angle=float(rng.normal(0, 0.2)), sharp=8.0)
        for tip in ([mx - 0.03, dome_l - 0.13, 0.3], [mx + 0.08, dome_l - 0.03, 0.15]):
            via = [[sx + 0.1, anat.clavicle_y + 0.04, 0.3], [mx - 0.035, cy, 0.4], [mx - 0.03, cy + 0.08, 0.4]]
            pts = P([[bx, by, -0.1], *via, tip])
            _tube(layers, pts, anat, size, 0.004, 0.7 * faint)
    elif kind == "sternotomy":
        for y in np.linspace(anat.carina_y - 0.03, anat.dome_y[0] - 0.1, int(rng.integers(5, 8))):
            t = np.linspace(0, 2 * np.pi, 24)
            loop = np.column_stack([mx + 0.012 * np.cos(t), y + 0.005 * np.sin(2 * t), -0.05 + 0.02 * np.cos(t)])
            _tube(layers, loop, anat, size, 0.002, 1.0 * faint)
    else:  # chest_tube: from the lateral lower wall up towards the apex, with side holes
        sign = finding_sides(f, rng)[0]
        ys = [anat.dome_at(sign) + 0.02, anat.dome_at(sign) - 0.06, 0.35, anat.apex_y + 0.07]
        us = [1.15, 0.95, 0.75, 0.55]
        pts = P([[anat.side_x(sign, u, y), y, 0.5] for u, y in zip(us, ys)])
        _tube(layers, pts, anat, size, 0.013, 0.2 * faint, holes=0.08)
        _tube(layers, pts, anat, size, 0.002, 0.6 * faint, holes=0.08)


_SIGNS: dict[str, Callable[[Layers, Anatomy, Finding, np.random.Generator, int], None]] = {
    "Lung Lesion": _lesion,
    "Lung Opacity": _opacity,
    "Edema": _edema,
    "Consolidation": _consolidation,
    "Pneumonia": lambda layers, anat, f, rng, size: _consolidation(
        layers, anat, f, rng, size, patchy=f.kind != "lobar"
    ),
    "Atelectasis": _atelectasis,
    "Pneumothorax": _pneumothorax,
    "Pleural Effusion": _effusion,
    "Pleural Other": _pleural_other,
    "Support Devices": _device,
}
"""Signs drawn into the layers; Cardiomegaly, Enlarged Cardiomediastinum and Fracture change the anatomy instead."""


def draw_findings(layers: Layers, anat: Anatomy, study: Study, size: int) -> None:
    """Draw every finding of ``study`` into ``layers`` (in place)."""
    for index, f in enumerate(study.findings):
        sign = _SIGNS.get(f.observation)
        if sign is not None:
            sign(layers, anat, f, finding_rng(study, index), size)
