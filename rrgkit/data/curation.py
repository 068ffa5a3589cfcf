"""The paper's curation (Lu et al. 2023, section 4), applied to any manifest-schema frame.

Rules, in order, each a funnel step so every study is accounted for:

1. ``findings``: the FINDINGS section is present and non-empty (it is the generation target).
2. ``frontal``: at least one AP or PA image; ONE frontal image is kept per study, PA before AP
   (PA is the higher-quality standing view). With ``keep_lateral=True`` lateral images follow the
   chosen frontal in the row (the RRG24 multi-view configuration).
3. ``no_prior``: the comparison section does not cite a previous study, because a model that
   sees one image cannot know what changed since an unseen prior.

On MIMIC-CXR the paper reports 85,802 / 682 / 1,259 train / val / test studies after these rules.
"""

from __future__ import annotations

import re

import pandas as pd

from rrgkit.data.manifest import SEP, SPLITS, ManifestError

FRONTAL_ORDER = ("PA", "AP")

# A comparison section that says there is nothing to compare with; matched on the whole
# (lower-cased, punctuation-stripped) text, so "None." counts but "None available, compared to 2010" doesn't.
_NO_PRIOR = re.compile(
    r"^(?:there (?:is|are|were) )?(?:none|no|n/?a|nil|not applicable|not available|unavailable|"
    r"(?:none|nothing)(?: (?:available|provided|given|on file|for comparison|for review|(?:at )?this institution))*|"
    r"no (?:prior|previous|old|comparison|comparable|earlier)s?"
    r"(?: (?:study|studies|exam|exams|examination|examinations|film|films|radiograph|radiographs|"
    r"image|images|imaging|chest radiographs?|chest xrays?|xrays?|cxrs?))?"
    r"(?: (?:is |are |were )?(?:currently )?(?:available|for comparison|for review|on file|provided|found|"
    r"(?:at )?this institution|at the time of (?:this )?dictation))*)$"
)
_PRIOR_HINT = r"\d|x{2,}|_{2,}|prior|previous|compar|dated|from|earlier"


def comparison_cites_prior(text: object) -> bool:
    """True when a comparison section refers to a previous study.

    Rule: empty/absent text, and whole-text negations ("None.", "No prior", "No previous studies",
    "None available", "N/A", ...) do not cite a prior; any other non-empty text does (dates,
    "___" / "XXXX" anonymised dates, "prior", "compared to", "chest radiograph from ...").
    A negation followed by unrelated sentences ("None. Clinical history: ...", common in IU X-ray
    where the sectioning leaks) does not cite a prior either.
    Deciding by the *absence* of a prior is conservative: an unusual phrasing is dropped, not kept.
    """
    if text is None or (isinstance(text, float) and text != text):
        return False
    lowered = re.sub(r"x-x{2,}", "xray", str(text).lower())  # IU anonymises "x-ray" as "x-XXXX"
    head, _, tail = lowered.partition(".")
    if tail.strip() and not re.search(_PRIOR_HINT, tail) and not comparison_cites_prior(head):
        return False  # "None. Clinical history ..." : a negation followed by unrelated text
    norm = re.sub(r"[^a-z/\- ]+", " ", lowered)
    norm = re.sub(r"\s+", " ", norm.replace("-", " ")).strip()
    if not norm:
        # only punctuation/digits left: a bare date like "12/03/2010" or "___" is a prior.
        return bool(re.search(r"[0-9]|_{2,}|x{2,}", str(text), re.IGNORECASE))
    return _NO_PRIOR.match(norm.replace("x ray", "xray")) is None


def _choose_views(images: str, views: str, keep_lateral: bool) -> tuple[str, str] | None:
    """The chosen frontal (PA before AP, first of each) and, optionally, the laterals after it."""
    pairs = list(zip(images.split(SEP), [v.strip().upper() for v in views.split(SEP)]))
    for want in FRONTAL_ORDER:
        frontal = [p for p in pairs if p[1] == want]
        if frontal:
            chosen = [frontal[0]]
            if keep_lateral:
                chosen += [p for p in pairs if p[1] in ("LATERAL", "LL", "RL")]
            return SEP.join(p[0] for p in chosen), SEP.join(p[1] for p in chosen)
    return None


def _step(name: str, kept: pd.DataFrame, dropped: int) -> dict:
    per_split = {s: int((kept["split"] == s).sum()) for s in SPLITS}
    return {"step": name, "kept": int(len(kept)), "dropped": int(dropped), "per_split": per_split}


def curate_manifest(frame: pd.DataFrame, keep_lateral: bool = False) -> tuple[pd.DataFrame, list[dict]]:
    """Apply the paper's curation; return the curated frame and the funnel (one dict per step)."""
    missing = [c for c in ("id", "images", "views", "findings", "comparison", "split") if c not in frame.columns]
    if missing:
        raise ManifestError(f"curate_manifest: frame lacks columns {missing}; give a manifest-schema frame (rrgkit.data.manifest)")
    funnel = [_step("input", frame, 0)]
    findings = frame["findings"].fillna("").astype(str).str.strip()
    kept = frame[findings != ""]
    funnel.append(_step("findings", kept, len(frame) - len(kept)))
    chosen = [_choose_views(str(i), str(v), keep_lateral) for i, v in zip(kept["images"].fillna(""), kept["views"].fillna(""))]
    has_frontal = [c is not None for c in chosen]
    before = len(kept)
    kept = kept[has_frontal].copy()
    kept["images"] = [c[0] for c in chosen if c is not None]
    kept["views"] = [c[1] for c in chosen if c is not None]
    funnel.append(_step("frontal", kept, before - len(kept)))
    before = len(kept)
    kept = kept[~kept["comparison"].map(comparison_cites_prior)]
    funnel.append(_step("no_prior", kept, before - len(kept)))
    return kept.reset_index(drop=True), funnel


def format_funnel(funnel: list[dict]) -> str:
    """The funnel as a plain-text table: kept and dropped after each rule, and kept per split."""
    lines = [f"{'step':<10} {'kept':>8} {'dropped':>8} {'train':>8} {'val':>6} {'test':>6}"]
    for step in funnel:
        s = step["per_split"]
        lines.append(f"{step['step']:<10} {step['kept']:>8} {step['dropped']:>8} {s['train']:>8} {s['val']:>6} {s['test']:>6}")
    return "\n".join(lines)
