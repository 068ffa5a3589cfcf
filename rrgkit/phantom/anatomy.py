"""Per-patient chest anatomy, drawn in normalised coordinates so that every image size shows the same film.

Conventions (shared by :mod:`rrgkit.phantom.signs` and :mod:`rrgkit.phantom.render`):

* ``x, y`` lie in [0, 1]: x runs left → right and y top → bottom of the *displayed* image.
* Frontal films (PA/AP) are displayed as if facing the patient, so **image left is the patient's
  RIGHT**. A side's ``sign`` is -1 for the patient's right (image left of the spine) and +1 for
  the patient's left.
* The lateral film is displayed with the patient facing image left: anterior is image left and
  the spine is on the right. Depth ``z`` in [0, 1] runs anterior → posterior, so a finding has one
  3-D place ``(x, y, z)`` that both views project.
* Densities are in soft-tissue-thickness units: the renderer adds tissue, bone and extra density
  and subtracts lung air; fluid in the lung (``fill``) replaces air, which is what makes a heart
  border or a dome vanish next to it (the silhouette sign) without any special case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from rrgkit.phantom.state import Patient

_VESSEL_BANK, _VESSEL_BANK_SEED = 24, 20231204

SIDES = (-1, 1)
"""Side signs: -1 the patient's right (image left on a frontal film), +1 the patient's left."""


@dataclass(frozen=True)
class RibBreak:
    """A rib fracture: cortical gap (and, when displaced, a step) on posterior rib ``rib`` of one side."""

    sign: int
    rib: int
    u: float  # position along the rib as a fraction of the hemithorax half-width
    step: float  # displacement of the distal fragment, as a fraction of the rib spacing
    gap: float  # depth of the lucent fracture line, 0..1
    callus: float  # density of healing callus around the break


@dataclass(frozen=True)
class Anatomy:
    """The geometry of one patient's chest (normalised units; see the module docstring)."""

    view: str
    spine_x: float
    med_x: float  # mediastinal centre; rotation moves it off the spine
    half_width: float  # thoracic cage half-width at the costophrenic angles
    apex_y: float
    dome_y: tuple[float, float]  # dome peaks, (patient right, patient left): the right is higher
    rib_spacing: float
    rib_top: float  # y of the first posterior rib at the spine
    ctr: float  # cardiothoracic ratio as projected (AP and poor inspiration inflate it)
    ctr_projection: float  # projected / true CTR for this film
    med_half_width: float  # superior mediastinum
    knob_r: float  # aortic knob radius (grows with age: unfolding aorta)
    carina_y: float
    clavicle_y: float
    clavicle_heads: tuple[float, float]  # distance of each clavicle head from the spinous processes
    tissue: float  # soft-tissue thickness (habitus)
    breast: float
    nipples: tuple[float, float]  # nipple shadow density per side (0 = not seen)
    nipple_xy: tuple[float, float]  # (distance from the spine, y)
    scapula: float  # how far the scapulae project over the lungs (AP ≫ PA)
    lung_fill: float  # how much of the chest depth the lungs fill (inspiration)
    vessel_gain: float
    heart_shape: tuple[float, float, float]  # (tilt, height/width ratio, vertical offset): normal variation
    rotation: float  # -1..1: the hemithorax turned away from the detector looks more lucent
    age: float
    fractures: tuple[RibBreak, ...] = field(default=())

    def side_x(self, sign: int, u: float, y: float) -> float:
        """x of a point at fraction ``u`` of the hemithorax width on side ``sign`` at height ``y``."""
        return self.spine_x + sign * u * float(cage_half_width(self, np.float32(y)))

    def dome_at(self, sign: int) -> float:
        """Dome peak height on side ``sign`` (-1 patient right, +1 patient left)."""
        return self.dome_y[0] if sign < 0 else self.dome_y[1]

    def zone_y(self, sign: int, zone: str | None, rng: np.random.Generator) -> float:
        """A height inside the lung for a zone (upper / middle / lower / perihilar / diffuse / None)."""
        top, bottom = self.apex_y + 0.04, self.dome_at(sign) - 0.01
        span = {"upper": (0.0, 0.33), "middle": (0.33, 0.62), "lower": (0.62, 0.95), "perihilar": (0.4, 0.6)}
        lo, hi = span.get(zone or "diffuse", (0.05, 0.9))
        return top + (bottom - top) * float(rng.uniform(lo, hi))


@dataclass
class Layers:
    """The density layers of one film, filled by anatomy and findings, composed by the renderer."""

    tissue: np.ndarray
    air: np.ndarray
    fill: np.ndarray
    bone: np.ndarray
    dense: np.ndarray
    lung: np.ndarray
    markings: np.ndarray  # where lung markings (vessels) are visible: pneumothorax removes them
    vessels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    vessel_blur: float = 0.0  # extra vessel blur (edema makes vessel outlines indistinct)


def _layers(
    size: int,
    tissue: np.ndarray,
    air: np.ndarray,
    bone: np.ndarray,
    dense: np.ndarray,
    lung: np.ndarray,
    vessels: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Layers:
    """Layers with every field a full, writable (size, size) float32 array (signs add to them in place)."""
    full = [np.array(np.broadcast_to(a, (size, size)), dtype=np.float32) for a in (tissue, air, bone, dense, lung)]
    zeros, ones = np.zeros((size, size), np.float32), np.ones((size, size), np.float32)
    return Layers(full[0], full[1], zeros, full[2], full[3], full[4], ones, vessels)


@lru_cache(maxsize=8)
def pixel_axes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as a row ``x`` (1, size) and a column ``y`` (size, 1), float32."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, :], c[:, None]


def ramp(t: np.ndarray, width: float) -> np.ndarray:
    """A soft step 0 → 1 across ``width`` centred on t = 0 (cheaper than a sigmoid, smooth after blur)."""
    return np.clip(t * (1.0 / width) + 0.5, 0.0, 1.0)


def cage_half_width(anat: Anatomy, y: np.ndarray) -> np.ndarray:
    """Inner half-width of the rib cage at height ``y``: narrow rounded apex, widest at the angles."""
    span = max(anat.dome_y[0] + 0.08 - anat.apex_y, 0.2)
    t = np.clip((y - anat.apex_y + 0.03) / span, 0.0, 1.0)
    return anat.half_width * (0.3 + 0.7 * np.sqrt(t) * (1.15 - 0.15 * t))


def sample_anatomy(patient: Patient, view: str, rng: np.random.Generator) -> Anatomy:
    """Draw one patient's geometry: Patient fields set the nuisances, ``rng`` the individual variation."""
    r = rng.uniform(-1.0, 1.0, size=16).tolist()  # python floats: float64 scalars would promote every array
    rot = float(np.clip(patient.rotation, -1.0, 1.0))
    insp = float(np.clip(patient.inspiration, 0.0, 1.0))
    ap = view == "AP"
    apex = 0.115 + 0.012 * r[0]
    dome_r = 0.575 + 0.15 * insp + 0.015 * r[1] - (0.02 if ap else 0.0)  # supine AP films inspire less
    dome_l = dome_r + 0.022 + 0.01 * abs(r[2])
    half_width = (0.345 + 0.02 * r[3]) * (1.0 + 0.03 * (patient.habitus - 0.5))
    ctr = float(np.clip(0.445 + 0.04 * rng.standard_normal(), 0.36, 0.52))  # normal adults: 0.45 ± 0.04, borderline 0.5
    # Poor inspiration makes the heart look wider; on an AP film it is far from the detector and magnified.
    projection = (1.0 + 0.16 * (0.7 - insp)) * (1.1 if ap else 1.0)
    spacing = 0.057 + 0.003 * r[5]
    age = float(np.clip(patient.age, 18, 95))
    breast = float(np.clip(patient.breast, 0.0, 1.0))
    nipple_p = 0.5 if patient.sex == "F" else 0.3
    nipples = tuple(float(0.05 + 0.05 * rng.random()) if rng.random() < nipple_p else 0.0 for _ in SIDES)
    return Anatomy(
        view=view,
        spine_x=0.5 + 0.006 * r[6],
        med_x=0.5 + 0.006 * r[6] + 0.03 * rot,
        half_width=float(half_width),
        apex_y=float(apex),
        dome_y=(float(dome_r), float(dome_l)),
        rib_spacing=float(spacing),
        rib_top=float(apex + 0.01 + 0.006 * r[7]),
        ctr=ctr * projection,
        ctr_projection=projection,
        med_half_width=float(0.05 + 0.008 * r[8] + 0.006 * (age - 18) / 77 + (0.006 if ap else 0.0)),
        knob_r=float(0.022 + 0.014 * (age - 18) / 77 + 0.003 * r[9]),
        carina_y=float(0.31 + 0.015 * r[10] - 0.03 * (0.7 - insp)),
        clavicle_y=float(0.175 + 0.012 * r[11] + (0.02 if ap else 0.0)),
        clavicle_heads=(float(0.035 - 0.028 * rot), float(0.035 + 0.028 * rot)),
        tissue=float(0.85 + 0.35 * patient.habitus),
        breast=breast,
        nipples=nipples,  # type: ignore[arg-type]
        nipple_xy=(float(0.2 + 0.03 * r[12]), float(dome_r - 0.09 + 0.03 * r[13])),
        scapula=0.85 if ap else 0.0,
        lung_fill=float(0.75 + 0.25 * insp),
        vessel_gain=float(1.0 + 0.15 * r[14]),
        heart_shape=(0.6 + 0.1 * r[15], float(0.66 + 0.05 * rng.standard_normal()), 0.015 * r[4]),
        rotation=rot,
        age=age,
    )


def sample_polyline(points: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along a polyline of (n, k) vertices, for splatting thin structures."""
    seg = np.sqrt(((points[1:] - points[:-1]) ** 2).sum(axis=1))
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, dist[-1] + 1e-9, step)
    return np.stack([np.interp(t, dist, points[:, j]) for j in range(points.shape[1])], axis=1)


def splat(target: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray | float) -> None:
    """Add point masses at normalised (x, y) into ``target`` (in place); points off the image are dropped."""
    size = target.shape[0]
    xi = (np.asarray(x) * size).astype(np.int64)
    yi = (np.asarray(y) * size).astype(np.int64)
    ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), xi.shape)[ok]
    counts = np.bincount(yi[ok] * size + xi[ok], weights=w, minlength=size * size)
    target += counts.reshape(size, size).astype(np.float32)


def add_blob(
    target: np.ndarray, cx: float, cy: float, rx: float, ry: float, amp: float, angle: float = 0.0, sharp: float = 2.0
) -> None:
    """Add a (rotated) super-Gaussian blob in place, computed only over its bounding box.

    ``sharp`` = 2 is a Gaussian (ill-defined margin); larger values give a well-defined edge.
    """
    size = target.shape[0]
    reach = 2.2 * max(rx, ry)
    x0, x1 = max(int((cx - reach) * size), 0), min(int((cx + reach) * size) + 1, size)
    y0, y1 = max(int((cy - reach) * size), 0), min(int((cy + reach) * size) + 1, size)
    if x0 >= x1 or y0 >= y1:
        return
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) / size - np.float32(cx)
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) / size - np.float32(cy)
    c, s = float(np.cos(angle)), float(np.sin(angle))
    u = (xs[None, :] * c + ys[:, None] * s) * float(1.0 / rx)
    v = (-xs[None, :] * s + ys[:, None] * c) * float(1.0 / ry)
    r2 = np.minimum(u * u + v * v, 30.0)
    target[y0:y1, x0:x1] += float(amp) * np.exp(-(r2 if sharp == 2.0 else r2 ** (sharp / 2.0)))


def vessel_tree(
    rng: np.random.Generator,
    hx: float,
    hy: float,
    sign: int,
    scale_y: float,
    step: float,
    roots: int = 6,
    generations: int = 7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (x, y, weight) of a branching pulmonary vessel tree growing out of a hilum.

    Each vessel continues as a slightly curved trunk that gives off a thinner side branch, so markings
    are densest at the hilum and fade (thinner, weaker) towards the periphery, as on a real film;
    ``scale_y`` < 1 crowds them vertically (poor inspiration).
    """
    angles = np.linspace(-1.8, 1.6, roots) + rng.normal(0.0, 0.12, roots)
    ang = np.where(sign > 0, angles, np.pi - angles)  # grow laterally on either side
    sx, sy = np.full(roots, hx), np.full(roots, hy)
    length = np.full(roots, 0.05) * rng.uniform(0.8, 1.2, roots)
    weight = np.ones(roots)
    out_x, out_y, out_w = [], [], []
    for _ in range(generations):
        k = len(ang)
        ex = sx + length * np.cos(ang)
        ey = sy + length * np.sin(ang) * scale_y
        bend = rng.normal(0.0, 0.12, k) * length  # a gentle curve through a displaced midpoint
        cx, cy = (sx + ex) / 2 - bend * np.sin(ang), (sy + ey) / 2 + bend * np.cos(ang) * scale_y
        n = max(2, int(np.ceil(length.max() / step)))
        t = np.linspace(0.0, 1.0, n)[None, :]
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
        out_x.append((a * sx[:, None] + b * cx[:, None] + c * ex[:, None]).ravel())
        out_y.append((a * sy[:, None] + b * cy[:, None] + c * ey[:, None]).ravel())
        out_w.append(np.repeat(weight * length / n, n))
        side = rng.choice((-1.0, 1.0), k)
        trunk = ang + rng.normal(0.0, 0.12, k) - side * 0.1
        branch = ang + side * rng.uniform(0.45, 0.9, k)
        ang = np.concatenate([trunk, branch])
        sx, sy = np.concatenate([ex, ex]), np.concatenate([ey, ey])
        length = np.concatenate([length * rng.uniform(0.75, 0.95, k), length * rng.uniform(0.5, 0.8, k)])
        weight = np.concatenate([weight * 0.8, weight * 0.5])
    return np.concatenate(out_x), np.concatenate(out_y), np.concatenate(out_w)


@lru_cache(maxsize=8)
def _vessel_bank(size: int, lateral: bool) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """A fixed bank of vessel trees (relative to their hilum, growing towards +x) for one image size.

    Growing a tree costs more than the rest of the film, so patients draw a tree from this bank and
    rotate, scale and mirror it: plenty of variety at a fraction of the cost.
    """
    rng = np.random.default_rng(_VESSEL_BANK_SEED)
    return tuple(vessel_tree(rng, 0.0, 0.0, 1, 1.0, 0.5 / size, roots=5 if lateral else 6) for _ in range(_VESSEL_BANK))


def _patient_vessels(
    rng: np.random.Generator, size: int, hx: float, hy: float, sign: int, scale_y: float, lateral: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hilum's vessel tree: a bank tree, jittered in angle and scale, mirrored to side ``sign``."""
    tx, ty, tw = _vessel_bank(size, lateral)[int(rng.integers(_VESSEL_BANK))]
    angle, scale = float(rng.normal(0.0, 0.12)), float(rng.uniform(0.9, 1.12))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return hx + sign * (c * tx - s * ty), hy + (s * tx + c * ty) * scale_y, tw


def _ribs(anat: Anatomy, x: np.ndarray, y: np.ndarray, hw: np.ndarray) -> np.ndarray:
    """Posterior and anterior ribs as periodic bands along curved rib lines, with fractures."""
    dx = x - anat.spine_x
    u = np.abs(dx) / hw
    s = anat.rib_spacing
    # Posterior ribs leave the spine nearly horizontal and curve down laterally.
    post_line = y - anat.rib_top - (0.075 * u * u * np.sqrt(u) - 0.012 * u)
    phase = post_line / s
    for br in anat.fractures:
        near = np.clip(1.0 - np.abs(phase - (br.rib + 0.5)) / 0.75, 0.0, 1.0) * (np.sign(dx) == br.sign)
        phase = phase + br.step * near * ramp(u - br.u, 0.004) * ramp(br.u + 0.1 - u, 0.08)  # a local step
    d = np.abs(phase - np.floor(phase) - 0.5) * 2.0  # 0 at a rib's centre line, 1 midway between ribs
    band = ramp(0.44 - d, 0.08)
    post = band * (0.55 + 0.45 * d * d / 0.19)  # cortex brighter than the medulla
    post = post * ramp(phase + 0.2, 0.3) * ramp(11.5 - phase, 0.5)
    for br in anat.fractures:
        dist = np.abs(u - br.u) * hw
        near = np.clip(1.0 - np.abs(phase - (br.rib + 0.5)) / 0.6, 0.0, 1.0) * (np.sign(dx) == br.sign)
        post = post * (1.0 - br.gap * near * np.exp(-np.minimum((dist / (0.002 + 0.004 * br.gap)) ** 2, 30.0)))
        if br.callus > 0:
            post = post + br.callus * near * np.exp(-np.minimum((dist / 0.012) ** 2, 30.0))
    # Anterior ribs run from the lateral wall obliquely down towards the sternum, and fade medially
    # (the costal cartilage is not seen).
    ant_phase = (y - anat.rib_top - 0.07 - 0.11 * (1.0 - u)) / (1.25 * s)
    da = np.abs(ant_phase - np.floor(ant_phase) - 0.5) * 2.0
    ant = ramp(0.4 - da, 0.1) * ramp(u - 0.3, 0.12) * ramp(ant_phase + 0.3, 0.3) * ramp(6.5 - ant_phase, 0.5)
    cage = ramp(1.04 - u, 0.03) * ramp(y - anat.apex_y + 0.04, 0.02)
    return (0.12 * post + 0.06 * ant) * cage


def _clavicles(anat: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two S-shaped clavicles; rotation makes the heads unequally far from the spinous processes."""
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape), np.float32)
    for i, sign in enumerate(SIDES):
        v = (sign * (x - anat.spine_x) - anat.clavicle_heads[i]) / 0.3
        centre = anat.clavicle_y - 0.075 * v + 0.022 * np.sin(np.pi * np.clip(v, 0, 1)) * (1 - v)
        thick = 0.013 + 0.005 * ramp(0.1 - v, 0.1)
        d2 = ((y - centre) / (thick * 1.3)) ** 2
        out += np.exp(-np.minimum(d2 * d2, 30.0)) * (ramp(v, 0.02) * ramp(1.02 - v, 0.05))
    return 0.22 * out


def _spine(anat: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Thoracic spine: a column with vertebral end-plates and pedicles, seen through the mediastinum."""
    dx = np.abs(x - anat.spine_x)
    column = ramp(0.033 - dx, 0.01)
    p = (y - anat.rib_top + 0.02) / (anat.rib_spacing * 0.8)
    frac = p - np.floor(p)
    plates = np.exp(-(((frac - 0.5) / 0.12) ** 2))
    pedicle = np.exp(-(((dx - 0.024) / 0.006) ** 2)) * np.exp(-(((frac - 0.25) / 0.18) ** 2))
    return column * (0.16 + 0.06 * plates) + 0.06 * pedicle


def _heart_mask(anat: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Heart and mediastinum silhouette (soft mask, 1 = opaque), width set by the projected CTR."""
    width = anat.ctr * 2.0 * anat.half_width
    # An oblique ellipse (long axis towards the apex, lower right of the image), its bottom under the domes.
    angle, ratio, offset = anat.heart_shape
    c, s = float(np.cos(angle)), float(np.sin(angle))
    long = 0.5 * width / np.sqrt(c * c + (ratio * s) ** 2)
    cx = anat.med_x + 0.14 * width
    cy = anat.dome_y[1] - 0.035 + offset
    ex = ((x - cx) * c + (y - cy) * s) / long
    ey = (-(x - cx) * s + (y - cy) * c) / (ratio * long)
    heart = ramp(1.0 - np.sqrt(ex * ex + ey * ey), 0.05)
    dx = x - anat.med_x
    w = anat.med_half_width
    med = ramp(w * (1.0 + 0.25 * (dx > 0)) - np.abs(dx), 0.012) * ramp(anat.dome_y[1] - y, 0.02)
    kx, ky = anat.med_x + w * 1.05, anat.carina_y - 0.02
    knob = ramp(anat.knob_r - np.sqrt((x - kx) ** 2 + (y - ky) ** 2), 0.012)
    return np.maximum(np.maximum(heart, med), knob)


def _mimics(
    anat: Anatomy, rng: np.random.Generator, x: np.ndarray, y: np.ndarray, hw: np.ndarray, dense: np.ndarray
) -> np.ndarray:
    """Normal findings that mimic disease, so that no single local cue gives a label away.

    End-on vessels and costal-cartilage calcifications look like nodules, cardiophrenic fat pads like
    basal opacity, and a skin fold (common on AP films) like a pneumothorax edge. Adds to ``dense`` in
    place and returns extra bone density.
    """
    for sign in SIDES:  # end-on vessels near the hila
        for _ in range(int(rng.integers(1, 5))):
            cx = anat.med_x + sign * float(rng.uniform(0.08, 0.2))
            cy, amp = anat.carina_y + float(rng.uniform(0.03, 0.2)), float(rng.uniform(0.03, 0.08))
            add_blob(dense, cx, cy, 0.006, 0.006, amp, sharp=3.0)
    for sign in SIDES:  # fat pads in the cardiophrenic angles, larger with habitus
        if rng.random() < 0.3 + 0.5 * (anat.tissue - 0.85) / 0.35:
            fx = anat.med_x + (0.21 if sign > 0 else -0.09) * anat.ctr / 0.45
            add_blob(dense, fx, anat.dome_at(sign) - 0.01, 0.04, 0.03, float(rng.uniform(0.04, 0.1)) * anat.tissue)
    if anat.age > 50 and rng.random() < 0.5:  # calcified costal cartilage at the anterior rib ends
        for _ in range(int(rng.integers(2, 7))):
            sign = int(rng.choice(SIDES))
            cy = float(rng.uniform(anat.apex_y + 0.15, anat.dome_y[0] - 0.05))
            cx, amp = anat.side_x(sign, float(rng.uniform(0.25, 0.45)), cy), float(rng.uniform(0.04, 0.1))
            add_blob(dense, cx, cy, 0.008, 0.005, amp, angle=float(rng.normal(0.4 * sign, 0.3)), sharp=3.0)
    extra = np.float32(0.0)
    if rng.random() < (0.35 if anat.view == "AP" else 0.05):  # skin fold: an edge, not a line, across the lateral lung
        sign = int(rng.choice(SIDES))
        edge = anat.spine_x + sign * (float(rng.uniform(0.65, 0.9)) * hw + 0.02 * np.sin(y * float(rng.uniform(8, 16))))
        t = sign * (x - edge)
        rows = ramp(y - anat.apex_y - 0.1, 0.05) * ramp(anat.dome_at(sign) - y, 0.05)
        extra = 0.05 * ramp(t, 0.004) * ramp(0.04 - t, 0.03) * rows
    return extra


def draw_frontal(anat: Anatomy, size: int, rng: np.random.Generator) -> Layers:
    """Normal frontal (PA/AP) anatomy for one patient: body, lungs, mediastinum, bones, vessels."""
    x, y = pixel_axes(size)
    hw = cage_half_width(anat, y)
    dx = x - anat.spine_x
    # Body: an elliptic torso whose soft tissue grows with habitus, shoulders and neck on top.
    body_hw = anat.half_width * 1.12 + 0.035 * anat.tissue + 0.06 * ramp(0.2 - y, 0.12)
    neck = ramp(0.07 - np.abs(dx), 0.02)
    t = np.clip(1.0 - (dx / body_hw) ** 2, 0.0, 1.0)
    torso = np.sqrt(t) * ramp(y - 0.11 + 0.07 * t, 0.05)
    tissue = anat.tissue * np.maximum(torso, neck * 0.7)
    # Lungs: inside the cage, above the domes; air thickness falls off towards the chest wall.
    left = dx < 0
    peak = np.where(left, np.float32(anat.dome_y[0]), np.float32(anat.dome_y[1]))
    peak_x = anat.spine_x + np.where(left, np.float32(-0.45), np.float32(0.45)) * anat.half_width
    dome = peak + 0.26 * ((x - peak_x) / anat.half_width) ** 2
    u = np.abs(dx) / hw
    lung = ramp(0.96 - u, 0.04) * ramp(dome - y, 0.012) * ramp(y - anat.apex_y, 0.03)
    opaque = _heart_mask(anat, x, y)
    air = lung * (1.0 - opaque) * anat.lung_fill * 0.78 * np.sqrt(np.clip(1.05 - u * u, 0.0, 1.0))
    air *= 1.0 + 0.07 * anat.rotation * np.sign(dx)
    # Trachea and main bronchi: a darker air column down to the carina.
    tx = x - anat.med_x + 0.004
    trachea = ramp(0.012 - np.abs(tx), 0.006) * ramp(anat.carina_y - y, 0.01) * ramp(y - 0.03, 0.03)
    air = air + 0.22 * trachea
    for sign, slope in ((-1, 0.9), (1, 0.6)):
        bx = x - anat.med_x - sign * (y - anat.carina_y) * slope
        rows = ramp(y - anat.carina_y, 0.01) * ramp(anat.carina_y + 0.06 - y, 0.02)
        air = air + 0.12 * ramp(0.009 - np.abs(bx), 0.005) * rows
    # Gastric bubble under the left dome.
    gx, gy = anat.spine_x + 0.16, anat.dome_y[1] + 0.06
    air = air + 0.25 * ramp(1.0 - np.sqrt(((x - gx) / 0.05) ** 2 + ((y - gy) / 0.03) ** 2), 0.3)
    ribs = _ribs(anat, x, y, hw) * (0.35 + 0.65 * ramp(dome + 0.04 - y, 0.06))  # lower ribs fade into the abdomen
    bone = ribs + _clavicles(anat, x, y) + _spine(anat, x, y)
    # Scapulae: lateral to the lungs on a PA film, over the upper lungs on an AP film.
    medial = 1.08 - 0.35 * anat.scapula - 0.2 * ramp(y - 0.3, 0.2)
    rows = ramp(y - 0.14, 0.03) * ramp(0.47 - y, 0.06)
    border = np.exp(-np.minimum(((u - medial) / 0.02) ** 2, 30.0))
    bone = bone + (0.09 * ramp(u - medial, 0.03) * ramp(1.35 - u, 0.05) + 0.05 * border) * rows
    # Breast shadows: lower-zone densities with a sharp inferior border; nipples mimic nodules.
    dense = np.zeros((size, size), np.float32)
    if anat.breast > 0:
        bx = (np.abs(dx) - 0.24) / 0.17
        by = (y - anat.nipple_xy[1] + 0.01) / 0.16
        r2 = bx * bx + by * by
        dense += anat.breast * 0.32 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) * ramp(y - anat.nipple_xy[1] + 0.12, 0.12)
    for i, sign in enumerate(SIDES):
        if anat.nipples[i] > 0:
            nx, ny = anat.spine_x + sign * anat.nipple_xy[0], anat.nipple_xy[1]
            add_blob(dense, nx, ny, 0.011, 0.011, anat.nipples[i], sharp=4.0)
    bone = bone + _mimics(anat, rng, x, y, hw, dense)
    # Hila and vessel trees.
    scale_y = (anat.dome_y[0] - anat.apex_y) / 0.6
    vessels = []
    for sign in SIDES:
        hx = anat.med_x + sign * (0.075 if sign < 0 else 0.085)
        hy = anat.carina_y + (0.1 if sign < 0 else 0.08)
        add_blob(dense, hx, hy, 0.02, 0.035, 0.1, sharp=2.0)
        vx, vy, vw = _patient_vessels(rng, size, hx, hy, sign, scale_y)
        vessels.append((vx, vy, vw * anat.vessel_gain))
    return _layers(size, tissue, air, bone, dense, lung, vessels)


LATERAL_FRONT, LATERAL_BACK = 0.2, 0.74
"""Image x of the anterior chest wall and of the front of the vertebral bodies on a lateral film."""


def lateral_x(z: float | np.ndarray) -> float | np.ndarray:
    """Image x on a lateral film of depth ``z`` (0 anterior chest wall, 1 front of the spine)."""
    return LATERAL_FRONT + z * (LATERAL_BACK - LATERAL_FRONT)


def lateral_dome(anat: Anatomy, x: np.ndarray, sign: int) -> np.ndarray:
    """A hemidiaphragm on the lateral film: high anteriorly, deepest in the posterior sulcus."""
    z = (x - LATERAL_FRONT) / (LATERAL_BACK - LATERAL_FRONT)
    return anat.dome_at(sign) - 0.02 + 0.09 * (z - 0.35) ** 2 + 0.09 * np.clip(z - 0.75, 0, None) ** 1.5 * 4


def draw_lateral(anat: Anatomy, size: int, rng: np.random.Generator) -> Layers:
    """Normal lateral anatomy: spine posterior, heart anterior, both domes, retrosternal clear space."""
    x, y = pixel_axes(size)
    z = (x - LATERAL_FRONT) / (LATERAL_BACK - LATERAL_FRONT)
    # Body: anterior skin to the back; the raised arms add soft tissue over the upper chest.
    front = LATERAL_FRONT - 0.03 - 0.03 * anat.tissue + 0.06 * ramp(0.2 - y, 0.15)
    back = 0.92 + 0.02 * anat.tissue
    body = ramp(x - front, 0.02) * ramp(back - x, 0.02) * ramp(y - 0.04, 0.04)
    arms = 0.35 * ramp(0.32 - y, 0.12) * ramp(x - 0.3, 0.1) * ramp(0.85 - x, 0.1)
    tissue = (1.1 * anat.tissue * body + arms).astype(np.float32)
    domes = [lateral_dome(anat, x, sign) for sign in SIDES]
    dome = np.maximum(domes[0], domes[1])
    lung = ramp(z + 0.02, 0.04) * ramp(1.07 - z, 0.04) * ramp(dome - y, 0.012) * ramp(y - anat.apex_y + 0.02, 0.04)
    # Heart: anterior and inferior, resting on the domes; its size follows the CTR.
    grow = (anat.ctr - 0.45) / 0.2
    hcx, hcy = lateral_x(0.3 - 0.06 * grow), anat.dome_y[1] - 0.07
    hrx, hry = 0.17 + 0.09 * grow, 0.13 + 0.04 * grow
    c, s = 0.8, -0.6  # the long axis runs from the upper back to the lower front
    ex, ey = ((x - hcx) * c + (y - hcy) * s) / hrx, (-(x - hcx) * s + (y - hcy) * c) / hry
    heart = ramp(1.0 - np.sqrt(ex * ex + ey * ey), 0.08)
    # Great vessels and aorta: a band rising from the heart, arching back over the hilum.
    ao = np.exp(-np.minimum(((x - lateral_x(0.42) - 0.25 * (anat.carina_y - y)) / 0.03) ** 2, 30.0))
    ao = ao * ramp(y - anat.carina_y + 0.09, 0.03) * ramp(hcy - y, 0.05)
    arch_r = np.sqrt((x - lateral_x(0.6)) ** 2 + ((y - anat.carina_y + 0.02) / 0.8) ** 2)
    arch = np.exp(-np.minimum(((arch_r - 0.07) / 0.018) ** 2, 30.0)) * ramp(anat.carina_y - 0.04 - y, 0.03)
    opaque = np.clip(heart + 0.6 * ao + 0.6 * arch, 0.0, 1.0)
    air = lung * (1.0 - opaque) * anat.lung_fill * 0.7
    # Trachea: oblique air column down to the carina.
    tx = x - lateral_x(0.55) + 0.22 * (anat.carina_y - y)
    air = air + 0.25 * ramp(0.013 - np.abs(tx), 0.006) * ramp(anat.carina_y - y, 0.01) * ramp(y - 0.05, 0.03)
    gx, gy = lateral_x(0.45), anat.dome_y[1] + 0.06
    air = air + 0.2 * ramp(1.0 - np.sqrt(((x - gx) / 0.06) ** 2 + ((y - gy) / 0.03) ** 2), 0.3)
    # Spine: vertebral bodies with discs behind the lungs, posterior elements further back.
    sx = x - LATERAL_BACK
    p = (y - anat.rib_top + 0.02) / (anat.rib_spacing * 0.8)
    frac = p - np.floor(p)
    bodies = ramp(sx, 0.008) * ramp(0.075 - sx, 0.008) * (0.55 + 0.45 * ramp(0.4 - np.abs(frac - 0.5), 0.08))
    bodies = bodies * (1.0 + 0.6 * (np.exp(-((sx / 0.006) ** 2)) + np.exp(-(((sx - 0.075) / 0.006) ** 2))))
    posterior = 0.5 * ramp(sx - 0.09, 0.02) * ramp(0.16 - sx, 0.02)
    bone = 0.2 * (bodies + posterior) * ramp(y - 0.05, 0.04)
    # Sternum anteriorly; posterior ribs as oblique, double (left and right) contours.
    sternum = ramp(0.014 - np.abs(x - front - 0.03 - 0.03 * ramp(y - 0.3, 0.3)), 0.006)
    bone = bone + 0.2 * sternum * ramp(y - 0.2, 0.02) * ramp(0.58 - y, 0.03)
    for shift in (0.0, 0.012):
        rp = (y - anat.rib_top - shift + 0.1 * z) / anat.rib_spacing
        d = np.abs(rp - np.floor(rp) - 0.5) * 2.0
        ribs = ramp(0.4 - d, 0.1) * ramp(z - 0.45, 0.2) * ramp(1.15 - z, 0.05)
        bone = bone + 0.045 * ribs * ramp(dome + 0.05 - y, 0.03)
    # Scapulae over the upper posterior chest.
    scap = ramp(0.07 - np.abs(x - lateral_x(0.85) + 0.1 * (y - 0.3)), 0.02)
    bone = bone + 0.08 * scap * ramp(y - 0.15, 0.03) * ramp(0.45 - y, 0.05)
    dense = np.zeros((size, size), np.float32)
    higher = np.minimum(domes[0], domes[1])  # the higher dome's contour, seen through the lung
    dense += 0.06 * np.exp(-np.minimum(((y - higher) / 0.006) ** 2, 30.0)) * lung
    if anat.breast > 0:
        r = np.sqrt(((x - front) / 0.07) ** 2 + ((y - anat.nipple_xy[1]) / 0.12) ** 2)
        dense += anat.breast * 0.35 * ramp(1.0 - r, 0.3)
    # Hilum and vessels.
    hx, hy = lateral_x(0.58), anat.carina_y + 0.08
    add_blob(dense, hx, hy, 0.05, 0.04, 0.05)
    scale_y = (anat.dome_y[0] - anat.apex_y) / 0.6
    vessels = [_patient_vessels(rng, size, hx, hy, sign, scale_y, lateral=True) for sign in SIDES]
    vessels = [(vx, vy, vw * anat.vessel_gain * 0.4) for vx, vy, vw in vessels]
    return _layers(size, tissue, air, bone, dense, lung, vessels)
