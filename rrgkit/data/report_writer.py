"""Write a MIMIC-CXR-style report (findings, impression, comparison) for a phantom :class:`Study`.

The writer reads the labels, not the image: label 1 gets a positive sentence describing the
matching :class:`Finding` (severity word, side, zone, device and tip), -1 a hedged sentence
("possible", "cannot be excluded", "may"), 0 a pertinent negative (alone or merged with other
negatives, as in "No focal consolidation, pleural effusion, or pneumothorax."), and a blank label
is never mentioned. So the label vector is recoverable from the text under CheXpert semantics.

Vocabulary lives in the tables below, not in code branches. Conventions a labeler needs:
every sentence names only the observations whose labels it states; "cardiomediastinal
silhouette" is used only when both Enlarged Cardiomediastinum and Cardiomegaly are 0 and states
both; "The lungs are clear." and "No acute cardiopulmonary process." appear only when No Finding
is 1; nuisance sentences ("Lung volumes are low.", "The patient is rotated.") name no observation.
"""

from __future__ import annotations

import re

import numpy as np

from rrgkit.labels import CHEXPERT_OBSERVATIONS, PATHOLOGIES
from rrgkit.phantom.state import Finding, Study

# Severity words by level (severity < 0.3, < 0.6, else); adjectives, then adverbs for "{sevly} enlarged".
_DEGREE = (("mild", "minimal"), ("moderate",), ("severe", "marked"))
_SIZE = (("small", "tiny"), ("moderate",), ("large",))
SEVERITY_WORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Enlarged Cardiomediastinum": _DEGREE, "Cardiomegaly": _DEGREE, "Edema": _DEGREE, "Atelectasis": _DEGREE,
    "Consolidation": (("mild", "patchy"), ("moderate",), ("dense", "extensive")),
    "Lung Opacity": (("mild", "faint", "patchy"), ("moderate", "patchy"), ("dense", "extensive")),
    "Lung Lesion": (("small",), ("moderate-sized",), ("large",)),
    "Pneumothorax": _SIZE, "Pleural Effusion": _SIZE,
}
SEVERITY_ADVERBS = (("mildly", "minimally"), ("moderately",), ("severely", "markedly"))
SEVERITY_CUTS = (0.3, 0.6)

# Location phrases by zone: (one side, "{side}" filled in; both sides).
LOCATIONS: dict[str | None, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "upper": (("in the {side} upper lobe", "in the {side} upper lung", "in the {side} upper lung zone"),
              ("in both upper lobes", "in the bilateral upper lungs", "in both upper lung zones")),
    "middle": (("in the {side} mid lung", "in the {side} mid lung zone"), ("in both mid lungs", "in the bilateral mid lung zones")),
    "lower": (("in the {side} lower lobe", "at the {side} lung base", "at the {side} base", "in the {side} lower lung"),
              ("at both lung bases", "in the bilateral lower lobes", "at the lung bases", "in both lower lungs")),
    "perihilar": (("in the {side} perihilar region", "in the {side} parahilar region"), ("in the bilateral perihilar regions", "in both perihilar regions")),
    "diffuse": (("throughout the {side} lung", "diffusely throughout the {side} lung"), ("throughout both lungs", "diffusely in both lungs")),
    None: (("on the {side}",), ("bilaterally",)),
}
ZONE_ADJECTIVES = {"upper": "upper lobe", "middle": "mid lung", "lower": "lower lobe", "perihilar": "perihilar",
                   "diffuse": "diffuse", None: ""}
TIPS = ("in the mid SVC", "in the low SVC", "at the cavoatrial junction")

# Sentences by observation and Finding.kind (None: any other kind). Placeholders (see _context): {sev} {sevly}
# {side} {loc} {zone}, number agreement for bilateral findings {s} {is} {a} {ptx} {opacity}, {kind} {d} {tip}.
POSITIVE: dict[str, dict[str | None, tuple[str, ...]]] = {
    "Enlarged Cardiomediastinum": {None: ("The mediastinum is {sevly} widened.", "{sev} widening of the mediastinum.",
                                          "The mediastinal silhouette is {sevly} enlarged.")},
    "Cardiomegaly": {None: ("{sev} cardiomegaly.", "The heart is {sevly} enlarged.", "There is {sev} cardiomegaly.",
                            "Heart size is {sevly} enlarged.", "{sev} enlargement of the cardiac silhouette.",
                            "The cardiac silhouette is {sevly} enlarged.", "{sev} enlargement of the heart.")},
    "Lung Opacity": {None: ("{sev} {opacity} {loc}.", "There {is} {sev} {opacity} {loc}.", "{sev} airspace {opacity} {loc}.",
                            "{opacity} {is} seen {loc}.", "{sev} {opacity} {is} present {loc}.",
                            "There {is} {sev} airspace {opacity} {loc}.")},
    "Lung Lesion": {"nodule": ("There is a {sev} nodule {loc}.", "A {sev} pulmonary nodule is seen {loc}.",
                               "{sev} nodule {loc}."),
                    "mass": ("There is a {sev} mass {loc}.", "A {sev} mass is present {loc}.", "{sev} {side} lung mass."),
                    None: ("There is a {sev} lesion {loc}.",)},
    "Edema": {"interstitial": ("{sev} interstitial pulmonary edema.", "There is {sev} pulmonary edema.",
                               "{sev} interstitial edema.", "Findings are consistent with {sev} pulmonary edema.",
                               "There is {sev} interstitial edema.", "{sev} pulmonary interstitial edema."),
              "alveolar": ("{sev} alveolar pulmonary edema.", "There is {sev} alveolar edema.", "{sev} pulmonary edema."),
              None: ("{sev} pulmonary edema.", "There is {sev} pulmonary edema.")},
    "Consolidation": {None: ("{sev} consolidation {loc}.", "There is {sev} consolidation {loc}.",
                             "Focal consolidation is seen {loc}.")},
    "Pneumonia": {None: ("{side} {zone} pneumonia.", "Findings are compatible with pneumonia {loc}.",
                         "There is pneumonia {loc}.", "Pneumonia {loc}.")},
    "Atelectasis": {"plate": ("{sev} plate-like atelectasis {loc}.", "Linear atelectasis {loc}.", "There is {sev} atelectasis {loc}.",
                              "{sev} subsegmental atelectasis {loc}.", "Streaky atelectasis {loc}."),
                    "lobar": ("{sev} {side} {zone} atelectasis.", "Atelectasis {loc}.", "There is {sev} atelectasis {loc}."),
                    None: ("{sev} atelectasis {loc}.", "There is {sev} atelectasis {loc}.")},
    "Pneumothorax": {None: ("{sev} {side} {ptx}.", "{sev} {side} apical {ptx}.", "{sev} {side} {ptx} {is} present.",
                            "There {is} {a}{sev} {side} {ptx}.", "There {is} {a}{sev} {side} apical {ptx}.")},
    "Pleural Effusion": {None: ("{sev} {side} pleural effusion{s}.", "There {is} {a}{sev} {side} pleural effusion{s}.",
                                "{sev} {side} effusion{s}.", "{sev} {side} pleural effusion{s} {is} present.",
                                "{a}{sev} {side} pleural effusion{s} {is} seen.")},
    "Pleural Other": {"thickening": ("Pleural thickening {loc}.", "There is {side} pleural thickening.",
                                     "{side} apical pleural thickening."),
                      "plaque": ("Calcified pleural plaques {loc}.", "Pleural calcification {loc}."),
                      None: ("Pleural thickening {loc}.",)},
    "Fracture": {"acute": ("There is a {side} rib fracture.", "Fracture of a {side} rib.", "{side} {zone} rib fracture.",
                           "Acute {side} rib fracture."),
                 "healing": ("Healed {side} rib fracture.", "Healing {side} {zone} rib fracture.",
                             "Old {side} rib fracture."),
                 None: ("There is a {side} fracture.",)},
    "Support Devices": {
        "et_tube": ("Endotracheal tube terminates {d} cm above the carina.", "An endotracheal tube is in standard position, {d} cm above the carina.",
                    "ET tube tip is {d} cm above the carina.", "The endotracheal tube tip is {d} cm above the carina."),
        "ng_tube": ("An enteric tube courses below the diaphragm with its tip in the stomach.", "Nasogastric tube tip is in the stomach.",
                    "An orogastric tube terminates in the stomach.", "A nasogastric tube is in the stomach."),
        "central_line": ("{side} internal jugular central venous catheter terminates {tip}.", "{side} IJ line tip is {tip}.",
                         "A {side} subclavian line ends {tip}.", "A {side} internal jugular catheter terminates {tip}."),
        "picc": ("{side} PICC line tip is {tip}.", "A {side}-sided PICC terminates {tip}.", "The {side} PICC ends {tip}."),
        "pacemaker": ("{side}-sided pacemaker with leads in the right atrium and right ventricle.",
                      "A {side} chest wall dual-chamber pacemaker is in place.", "{side} pacemaker leads terminate in the right ventricle."),
        "sternotomy": ("Median sternotomy wires are intact.", "The patient is status post median sternotomy.",
                       "Sternotomy wires are noted.", "Intact median sternotomy wires."),
        "chest_tube": ("A {side} chest tube is in place.", "{side} chest tube terminates at the apex.", "{side}-sided chest tube is present."),
        None: ("Support devices are in standard position.", "Lines and tubes are in standard position."),
    },
}
UNCERTAIN: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": ("The mediastinum may be slightly widened.", "Possible mediastinal widening.",
                                   "Mediastinal widening cannot be excluded."),
    "Cardiomegaly": ("Possible mild cardiomegaly.", "The heart may be mildly enlarged.", "Mild cardiomegaly cannot be excluded."),
    "Lung Opacity": ("Possible opacity {loc}.", "There may be a subtle opacity {loc}.", "Questionable opacity {loc}.",
                     "Subtle opacity {loc} may be present."),
    "Lung Lesion": ("Possible nodule {loc}.", "A nodule {loc} cannot be excluded.", "Questionable nodule {loc}."),
    "Edema": ("Possible mild pulmonary edema.", "Mild pulmonary edema cannot be excluded.", "There may be mild interstitial edema.",
              "Possible mild interstitial edema."),
    "Consolidation": ("Possible consolidation {loc}.", "Consolidation {loc} cannot be excluded.",
                      "There may be early consolidation {loc}."),
    "Pneumonia": ("Pneumonia cannot be excluded.", "Possible early pneumonia {loc}.", "Findings may represent pneumonia {loc}.",
                  "Infection {loc} cannot be excluded."),
    "Atelectasis": ("Possible atelectasis {loc}.", "Atelectasis {loc} cannot be excluded.", "There may be atelectasis {loc}.",
                    "Subtle atelectasis {loc} is possible.", "Possible minimal atelectasis {loc}."),
    "Pneumothorax": ("Possible tiny {side} apical {ptx}.", "A tiny {side} {ptx} cannot be excluded.",
                     "Questionable small {side} apical {ptx}."),
    "Pleural Effusion": ("Possible small {side} pleural effusion{s}.", "Small {side} pleural effusion{s} cannot be excluded.",
                         "There may be trace {side} pleural effusion{s}.", "Possible trace {side} pleural effusion{s}."),
    "Pleural Other": ("Possible pleural thickening {loc}.", "Questionable {side} pleural thickening."),
    "Fracture": ("Possible {side} rib fracture.", "A {side} rib fracture cannot be excluded.",
                 "Questionable fracture of a {side} rib."),
    "Support Devices": ("A catheter may be present over the {side} chest.", "Possible catheter projecting over the chest.",
                        "A tube may be present."),
}
NEGATIVE: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": ("The mediastinal contours are normal.", "Mediastinal contours are within normal limits.",
                                   "No mediastinal widening.", "Normal mediastinal contours."),
    "Cardiomegaly": ("Heart size is normal.", "The heart is not enlarged.", "No cardiomegaly.", "Normal heart size.",
                     "The heart size is normal.", "The cardiac silhouette is normal in size."),
    "Lung Opacity": ("No focal airspace opacity.", "There is no focal opacity.", "No lung opacities are seen.",
                     "No focal opacity is seen."),
    "Lung Lesion": ("No pulmonary nodules or masses.", "No suspicious nodule is seen.", "There is no lung mass."),
    "Edema": ("No pulmonary edema.", "There is no pulmonary edema.", "No evidence of edema.", "No evidence of pulmonary edema."),
    "Consolidation": ("No focal consolidation.", "There is no consolidation.", "No consolidation is seen.",
                      "There is no focal consolidation."),
    "Pneumonia": ("No evidence of pneumonia.", "No radiographic evidence of pneumonia.", "There is no pneumonia."),
    "Atelectasis": ("No atelectasis.", "No evidence of atelectasis.", "There is no atelectasis."),
    "Pneumothorax": ("No pneumothorax.", "There is no pneumothorax.", "No pneumothorax is seen.", "No evidence of pneumothorax."),
    "Pleural Effusion": ("No pleural effusion.", "There is no pleural effusion.", "No pleural effusions.",
                         "There are no pleural effusions."),
    "Pleural Other": ("No pleural thickening.", "There is no pleural thickening or calcification."),
    "Fracture": ("No acute osseous abnormality.", "No displaced fracture is seen.", "No fracture is identified.",
                 "No acute fracture."),
    "Support Devices": ("No lines or tubes are present.", "No support devices are seen.", "There are no indwelling lines or tubes."),
}
COMBINED_NEGATIVES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("Consolidation", "Pleural Effusion", "Pneumothorax"),
     ("No focal consolidation, pleural effusion, or pneumothorax.", "There is no focal consolidation, pleural effusion or pneumothorax.",
      "No consolidation, effusion, or pneumothorax is seen.", "No focal consolidation, effusion, or pneumothorax is identified.")),
    (("Edema", "Pleural Effusion", "Pneumothorax"), ("No pulmonary edema, pleural effusion, or pneumothorax.",)),
    (("Pleural Effusion", "Pneumothorax"),
     ("No pleural effusion or pneumothorax.", "There is no pleural effusion or pneumothorax.", "No effusion or pneumothorax.",
      "Neither pleural effusion nor pneumothorax is seen.")),
    (("Enlarged Cardiomediastinum", "Cardiomegaly"),
     ("The cardiomediastinal silhouette is within normal limits.", "Heart size and mediastinal contours are normal.",
      "The cardiomediastinal silhouette is normal.", "Normal cardiomediastinal silhouette.")),
    (("Edema", "Consolidation"), ("No pulmonary edema or consolidation.",)),
    (("Lung Opacity", "Consolidation"), ("No focal airspace opacity or consolidation.",)),
)
"""Merged pertinent negatives, tried in this order, each used with probability :data:`P_COMBINE` when all its labels are 0."""
P_COMBINE = 0.7

CLEAR_LUNGS = ("The lungs are clear.", "Lungs are clear.", "The lungs are clear bilaterally.", "Both lungs are clear.")
"""Said only when No Finding is 1 (with probability P_CLEAR_LUNGS, always when nothing else is said)."""
P_CLEAR_LUNGS = 0.85
NUISANCES = {  # said when inspiration < LOW_INSPIRATION or |rotation| > ROTATED; they name no observation.
    "low_volumes": ("Lung volumes are low.", "Low lung volumes.", "The lung volumes are low, crowding the bronchovascular markings."),
    "rotated": ("The patient is rotated.", "Evaluation is limited by patient rotation."),
}
P_NUISANCE = 0.7
LOW_INSPIRATION, ROTATED = 0.3, 0.5

IMPRESSION_NORMAL = ("No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality.", "No acute intrathoracic process.",
                     "Normal chest radiograph.")
IMPRESSION_POSITIVE: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": ("Widened mediastinum.",), "Cardiomegaly": ("{sev} cardiomegaly.",),
    "Lung Opacity": ("{sev} {opacity} {loc}.", "Opacity {loc}."), "Lung Lesion": ("{side} lung {kind}.",),
    "Edema": ("{sev} pulmonary edema.",), "Consolidation": ("Consolidation {loc}.",),
    "Pneumonia": ("{side} {zone} pneumonia.", "Pneumonia {loc}."), "Atelectasis": ("Atelectasis {loc}.",),
    "Pneumothorax": ("{sev} {side} {ptx}.",), "Pleural Effusion": ("{sev} {side} pleural effusion{s}.",),
    "Pleural Other": ("{side} pleural thickening.",), "Fracture": ("{side} rib fracture.",),
}
IMPRESSION_MAX_ITEMS = 3

COMPARISON_NONE = ("None.", "", "", "None available.", "No prior studies.")
COMPARISON_PRIOR = ("Chest radiograph from ___.", "Comparison is made to prior study from ___.", "___.",
                    "Prior chest radiographs dated ___ and ___.", "PA and lateral chest radiograph from ___.")
P_PRIOR = 0.2
"""Fraction of comparison sections that cite a prior study: the paper's curation removes those studies."""

GROUPS = {"devices": ("Support Devices",),
          "lungs": ("Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis"),
          "pleura": ("Pleural Effusion", "Pneumothorax", "Pleural Other"),
          "heart": ("Enlarged Cardiomediastinum", "Cardiomegaly"),
          "bones": ("Fracture",)}
SECTION_ORDERS = (("devices", "lungs", "pleura", "heart", "bones"), ("devices", "heart", "lungs", "pleura", "bones"))
"""The two orders MIMIC-CXR findings commonly follow; abnormal before normal inside a section."""


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _level(severity: float) -> int:
    return int(np.searchsorted(SEVERITY_CUTS, severity, side="right"))


def _context(finding: Finding, rng: np.random.Generator) -> dict[str, str]:
    level = _level(finding.severity)
    bilateral = finding.laterality == "bilateral"
    one, both = LOCATIONS[finding.zone]
    side = finding.laterality or ""
    return {
        "sev": _pick(rng, SEVERITY_WORDS.get(finding.observation, _DEGREE)[level]),
        "sevly": _pick(rng, SEVERITY_ADVERBS[level]),
        "side": side,
        "loc": _pick(rng, both) if bilateral else _pick(rng, one).format(side=side or "right"),
        "zone": ZONE_ADJECTIVES[finding.zone],
        "s": "s" if bilateral else "",
        "is": "are" if bilateral else "is",
        "a": "" if bilateral else "a ",
        "ptx": "pneumothoraces" if bilateral else "pneumothorax",
        "opacity": "opacities" if bilateral else "opacity",
        "kind": finding.kind or "lesion",
        "d": str(int(rng.integers(3, 7))),
        "tip": _pick(rng, TIPS),
    }


def _sentence(template: str, context: dict[str, str]) -> str:
    text = re.sub(r"\s+", " ", template.format(**context)).strip()
    text = re.sub(r"\s+([.,])", r"\1", text)
    return text[0].upper() + text[1:]


def _described(study: Study, observation: str) -> tuple[Finding, ...]:
    """The findings a sentence describes; a default one when the study carries a label but no finding."""
    return study.findings_of(observation) or (Finding(observation),)


def _findings_sentences(study: Study, rng: np.random.Generator) -> list[str]:
    labels = dict(zip(CHEXPERT_OBSERVATIONS, study.labels))
    order = SECTION_ORDERS[int(rng.integers(len(SECTION_ORDERS)))]
    rank = {obs: order.index(group) for group, members in GROUPS.items() for obs in members}
    keyed: list[tuple[int, int, str]] = []  # (section rank, 0 abnormal / 1 normal, sentence)
    for obs in PATHOLOGIES:
        if labels[obs] == 1.0:
            table = POSITIVE[obs]
            findings = _described(study, obs) if obs == "Support Devices" else _described(study, obs)[:1]
            for f in findings:
                keyed.append((rank[obs], 0, _sentence(_pick(rng, table.get(f.kind) or table[None]), _context(f, rng))))
        elif labels[obs] == -1.0:
            keyed.append((rank[obs], 0, _sentence(_pick(rng, UNCERTAIN[obs]), _context(_described(study, obs)[0], rng))))
    negatives = [obs for obs in PATHOLOGIES if labels[obs] == 0.0]
    for members, options in COMBINED_NEGATIVES:
        if all(m in negatives for m in members) and rng.random() < P_COMBINE:
            keyed.append((min(rank[m] for m in members), 1, _pick(rng, options)))
            negatives = [obs for obs in negatives if obs not in members]
    keyed += [(rank[obs], 1, _pick(rng, NEGATIVE[obs])) for obs in negatives]
    if labels["No Finding"] == 1.0 and (rng.random() < P_CLEAR_LUNGS or not keyed):  # a findings section is never empty
        keyed.append((order.index("lungs"), 1, _pick(rng, CLEAR_LUNGS)))
    if study.patient.inspiration < LOW_INSPIRATION and rng.random() < P_NUISANCE:
        keyed.append((order.index("lungs"), -1, _pick(rng, NUISANCES["low_volumes"])))
    if abs(study.patient.rotation) > ROTATED and rng.random() < P_NUISANCE:
        keyed.append((-1, 0, _pick(rng, NUISANCES["rotated"])))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [sentence for _, _, sentence in keyed]


def _impression(study: Study, rng: np.random.Generator) -> str:
    labels = dict(zip(CHEXPERT_OBSERVATIONS, study.labels))
    items = []
    for obs in PATHOLOGIES[:-1]:  # devices stay in the findings
        f = _described(study, obs)[0]
        if labels[obs] == 1.0:
            items.append((-f.severity, _sentence(_pick(rng, IMPRESSION_POSITIVE[obs]), _context(f, rng))))
        elif labels[obs] == -1.0:
            items.append((0.0, _sentence(_pick(rng, UNCERTAIN[obs]), _context(f, rng))))
    if labels["No Finding"] == 1.0 or not items:
        return _pick(rng, IMPRESSION_NORMAL)
    items.sort(key=lambda item: item[0])
    return " ".join(sentence for _, sentence in items[:IMPRESSION_MAX_ITEMS])


def write_report(study: Study, rng: np.random.Generator) -> dict[str, str]:
    """Findings, impression and comparison for ``study``; same study and rng state → same text."""
    findings = " ".join(_findings_sentences(study, rng))
    impression = _impression(study, rng)
    comparison = _pick(rng, COMPARISON_PRIOR) if rng.random() < P_PRIOR else _pick(rng, COMPARISON_NONE)
    return {"findings": findings, "impression": impression, "comparison": comparison}
