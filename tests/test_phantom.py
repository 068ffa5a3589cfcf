"""The phantom renderer: shape, determinism, and that each sign appears where (and as strongly as) it should.

Convention under test: on a frontal film image left is the patient's RIGHT.
"""

from __future__ import annotations

import numpy as np
import pytest

from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.phantom.anatomy import sample_anatomy
from rrgkit.phantom.render import render_study
from rrgkit.phantom.signs import adjust_anatomy
from rrgkit.phantom.state import DEVICE_KINDS, Finding, Patient, Study

SEEDS = (0, 1, 2)
SIZE = 128
LABELS = np.full(len(CHEXPERT_OBSERVATIONS), np.nan)


def study(*findings: Finding, seed: int = 0, view: str = "PA", **patient) -> Study:
    return Study("t", LABELS, tuple(findings), Patient(**patient), view, seed)


def sign_of(finding: Finding, seed: int, view: str = "PA", size: int = SIZE) -> np.ndarray:
    """Absolute difference a finding makes to the same patient's film (noise is identical)."""
    with_sign = render_study(study(finding, seed=seed, view=view), size)
    return np.abs(with_sign - render_study(study(seed=seed, view=view), size))


def mass_fraction(diff: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)) -> float:
    return float(diff[rows, cols].sum() / diff.sum())


@pytest.mark.parametrize("size", [64, 128, 512])
@pytest.mark.parametrize("view", ["PA", "AP", "LATERAL"])
def test_shape_dtype_range(size: int, view: str) -> None:
    findings = (Finding("Pleural Effusion", severity=0.7), Finding("Support Devices", kind="pacemaker"))
    img = render_study(study(*findings, seed=3), size, view)
    assert img.shape == (size, size) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert img.std() > 0.1  # a film, not a blank


def test_deterministic_and_seed_dependent() -> None:
    s = study(Finding("Lung Lesion", severity=0.6), Finding("Edema", severity=0.4), seed=5)
    assert np.array_equal(render_study(s), render_study(s))
    assert np.abs(render_study(s) - render_study(study(*s.findings, seed=6))).mean() > 0.01


@pytest.mark.parametrize("size, view", [(32, None), (600, None), (128, "OBLIQUE")])
def test_bad_arguments_raise(size: int, view: str | None) -> None:
    with pytest.raises(ValueError, match="size|view"):
        render_study(study(), size, view)


def test_negative_seed_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        render_study(study(seed=-1))


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Lung Lesion kind 'blob'.*nodule"):
        render_study(study(Finding("Lung Lesion", kind="blob")))


def test_same_lesion_in_both_views() -> None:
    """Findings come from the study seed, not the view: the lateral film shows the same lesion height."""
    f = Finding("Lung Lesion", severity=1.0, kind="mass", laterality="left", zone="upper")
    rows = np.arange(SIZE)
    centres = [float((sign_of(f, 4, v).sum(axis=1) * rows).sum() / sign_of(f, 4, v).sum()) for v in ("PA", "LATERAL")]
    assert abs(centres[0] - centres[1]) < 0.08 * SIZE


LATERALISED = [p for p in PATHOLOGIES if p not in ("Cardiomegaly", "Enlarged Cardiomediastinum", "Support Devices")]


@pytest.mark.parametrize("observation", LATERALISED)
def test_laterality_puts_the_sign_on_the_correct_side(observation: str) -> None:
    """Patient right → image left on a frontal film, for every lateralised sign."""
    half = SIZE // 2
    for seed in SEEDS:
        right = sign_of(Finding(observation, severity=0.8, laterality="right", zone="middle"), seed)
        left = sign_of(Finding(observation, severity=0.8, laterality="left", zone="middle"), seed)
        assert right.sum() > 0 and left.sum() > 0
        assert mass_fraction(right, cols=slice(0, half)) > 0.75, (observation, seed)
        assert mass_fraction(left, cols=slice(half, None)) > 0.75, (observation, seed)


def test_effusion_is_basal_and_grows_upwards() -> None:
    for seed in SEEDS:
        small = sign_of(Finding("Pleural Effusion", severity=0.2, laterality="right"), seed)
        large = sign_of(Finding("Pleural Effusion", severity=0.9, laterality="right"), seed)
        assert mass_fraction(small, rows=slice(SIZE // 2, None), cols=slice(0, SIZE // 2)) > 0.9
        top = [np.nonzero((d > 0.05).any(axis=1))[0].min() for d in (small, large)]
        assert top[1] < top[0] - 0.1 * SIZE  # the fluid level rises with severity


def test_zone_moves_the_sign() -> None:
    rows = np.arange(SIZE)[:, None]
    for seed in SEEDS:
        up = sign_of(Finding("Consolidation", severity=0.7, laterality="right", zone="upper"), seed)
        low = sign_of(Finding("Consolidation", severity=0.7, laterality="right", zone="lower"), seed)
        assert (up * rows).sum() / up.sum() < (low * rows).sum() / low.sum() - 0.15 * SIZE


SEVERITY_OBSERVATIONS = [p for p in PATHOLOGIES if p != "Support Devices"]


@pytest.mark.parametrize("observation", SEVERITY_OBSERVATIONS)
def test_severity_is_monotone(observation: str) -> None:
    for seed in SEEDS:
        findings = [Finding(observation, severity=s, laterality="left", zone="lower") for s in (0.15, 0.5, 0.95)]
        mags = [sign_of(f, seed).sum() for f in findings]
        assert mags[0] < mags[1] < mags[2], (observation, seed, mags)


@pytest.mark.parametrize("observation", SEVERITY_OBSERVATIONS + ["Support Devices"])
def test_uncertain_is_subtler_than_positive(observation: str) -> None:
    kind = "central_line" if observation == "Support Devices" else None
    for seed in SEEDS:
        pos, unc = (
            sign_of(Finding(observation, certainty=c, severity=0.7, laterality="right", kind=kind), seed).sum()
            for c in ("positive", "uncertain")
        )
        assert 0 < unc < pos, (observation, seed)


def test_mild_signs_are_subtle_and_severe_signs_obvious() -> None:
    """Calibration: at 128 px a mild sign's summed contrast is a small fraction of a severe one's."""
    for observation in ("Lung Opacity", "Consolidation", "Edema", "Pneumothorax", "Lung Lesion"):
        mild = sign_of(Finding(observation, severity=0.05, laterality="left"), 1)
        severe = sign_of(Finding(observation, severity=1.0, laterality="left"), 1)
        assert mild.sum() < 0.25 * severe.sum(), observation
        assert mild.max() < 0.12, observation  # a few noise sd (≈ 0.02) on a few pixels


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_every_device_kind_is_drawn(kind: str) -> None:
    for view in ("PA", "LATERAL"):
        diff = sign_of(Finding("Support Devices", kind=kind), 0, view)
        assert diff.max() > 0.1, (kind, view)


def test_devices_go_where_they_belong() -> None:
    half, dome_row = SIZE // 2, int(0.7 * SIZE)
    ng = sign_of(Finding("Support Devices", kind="ng_tube"), 0)
    assert (ng[dome_row:] > 0.05).any()  # an NG tube ends below the diaphragm
    et = sign_of(Finding("Support Devices", kind="et_tube"), 0)
    assert not (et[int(0.35 * SIZE) :] > 0.05).any()  # an ET tube ends above the carina
    pacer = sign_of(Finding("Support Devices", kind="pacemaker"), 0)
    # the generator sits in the patient's left upper chest: image upper right
    assert mass_fraction(pacer, rows=slice(0, half), cols=slice(half, None)) > 0.5


def test_cardiomegaly_widens_the_heart() -> None:
    normal = sample_anatomy(Patient(), "PA", np.random.default_rng(0))
    ctrs = [adjust_anatomy(normal, study(Finding("Cardiomegaly", severity=s))).ctr for s in (0.0, 0.5, 1.0)]
    assert 0.5 < ctrs[0] < ctrs[1] < ctrs[2]
    rows = slice(int(0.55 * SIZE), int(0.68 * SIZE))
    for seed in SEEDS:
        films = [render_study(study(*f, seed=seed)) for f in ((), (Finding("Cardiomegaly", severity=0.9),))]
        bright = [(film[rows] > 0.55).sum() for film in films]
        assert bright[1] > bright[0] * 1.05


def test_effusion_hides_basal_consolidation() -> None:
    """Fluid replaces lung air, so a consolidation behind a large effusion barely changes the film."""
    cons = Finding("Consolidation", severity=0.8, laterality="right", zone="lower")
    eff = Finding("Pleural Effusion", severity=1.0, laterality="right")
    for seed in SEEDS:
        alone = sign_of(cons, seed).sum()
        behind = np.abs(render_study(study(eff, cons, seed=seed)) - render_study(study(eff, seed=seed))).sum()
        assert behind < 0.5 * alone


def test_edema_lowers_nodule_contrast() -> None:
    nodule = Finding("Lung Lesion", severity=0.8, laterality="right", zone="perihilar")
    edema = Finding("Edema", severity=1.0, kind="alveolar")
    for seed in SEEDS:
        clear = np.abs(render_study(study(nodule, seed=seed)) - render_study(study(seed=seed))).max()
        hazy = np.abs(render_study(study(edema, nodule, seed=seed)) - render_study(study(edema, seed=seed))).max()
        assert hazy < clear


def test_lateral_view_differs_and_shows_posterior_effusion() -> None:
    for seed in SEEDS:
        pa, lat = render_study(study(seed=seed)), render_study(study(seed=seed), view="LATERAL")
        assert np.abs(pa - lat).mean() > 0.05
        eff = sign_of(Finding("Pleural Effusion", severity=0.5, laterality="bilateral"), seed, "LATERAL")
        assert mass_fraction(eff, rows=slice(SIZE // 2, None), cols=slice(SIZE // 2, None)) > 0.6  # posterior sulcus


def _mediastinal_centre(img: np.ndarray) -> float:
    band = img[int(0.25 * SIZE) : int(0.45 * SIZE)].mean(axis=0)
    weight = np.clip(band - np.percentile(band, 75), 0, None)
    return float((weight * np.arange(SIZE)).sum() / weight.sum())


def test_rotation_shifts_the_mediastinum() -> None:
    for seed in SEEDS:
        centres = [_mediastinal_centre(render_study(study(seed=seed, rotation=r))) for r in (-1.0, 1.0)]
        assert centres[1] - centres[0] > 0.03 * SIZE


def test_poor_inspiration_raises_the_domes() -> None:
    """Poor inspiration: less dark lung above the diaphragm (fewer ribs visible)."""
    for seed in SEEDS:
        dark = [(render_study(study(seed=seed, inspiration=i)) < 0.35).sum() for i in (0.0, 1.0)]
        assert dark[0] < 0.85 * dark[1]


def test_lateral_cardiomegaly_fills_the_retrosternal_space() -> None:
    """On the lateral film the enlarged heart grows forwards, into the clear space behind the sternum."""
    for seed in SEEDS:
        diff = sign_of(Finding("Cardiomegaly", severity=0.9), seed, "LATERAL")
        assert mass_fraction(diff, cols=slice(0, SIZE // 2)) > 0.6
