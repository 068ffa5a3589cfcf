"""The rule vocabulary of :mod:`rrgkit.evaluation.labeler`: mention phrases, negation and uncertainty cues.

Phrases follow the CheXpert labeler's mention lists (Irvin et al. 2019, Sec. 2.2) with the
deviations listed here, so that a reader can audit every choice in one place:

* **Heart and mediastinum need a qualifier.** CheXpert treats a bare "heart size" or
  "mediastinal contour" as a positive mention ("heart size is stable" -> Cardiomegaly 1).
  We only label them when qualified: enlarged/widened/prominent -> 1, normal/unremarkable/within
  normal limits/not enlarged -> 0, borderline/top-normal/upper limits of normal -> -1.
  "Cardiomediastinal silhouette is normal" -> Cardiomegaly 0 *and* Enlarged Cardiomediastinum 0;
  an *enlarged* cardiomediastinal silhouette is Enlarged Cardiomediastinum only.
* **Granuloma is not a Lung Lesion** (as in CheXpert): a calcified granuloma is a healed,
  benign finding; it only blanks No Finding (see :data:`OTHER_FINDINGS`). A "nodule" is a
  Lung Lesion whatever its cause, as in CheXpert.
* **Congestion is Edema** (CheXpert's edema list has vascular and pulmonary congestion, heart
  failure, CHF, indistinctness, vascular prominence), and a positive or uncertain "chf"/"heart
  failure" also makes Cardiomegaly uncertain (CheXpert's exception).
* **"density"/"densities" is a Lung Opacity** (CheXpert only lists "increased density"), except
  for bone, metallic, soft-tissue and calcified densities. "nodular opacity/density" is both a
  Lung Lesion and a Lung Opacity, as in CheXpert. "scar"/"scarring" is a Lung Opacity unless pleural.
* **"fibrosis" is Pleural Other**, a CheXpert quirk kept for comparability.
* **Blunting of the costophrenic angle is a Pleural Effusion mention** (CheXpert only counts it
  against No Finding).
* **Support devices** extend CheXpert's list with sternotomy (wires), surgical clips, sutures,
  staples, stents, leads, stimulators and a line/tube "tip" (in IU reports the device word is
  often anonymised: "right chest XXXX with tip in the SVC").
* **"lungs are clear"** yields nothing: like CheXpert, only explicit mentions are labelled.
* **Hedges**: "X or Y" is *not* uncertain (CheXpert does not read it so); "X and/or Y", "favored",
  "versus", "may", "possible", "likely", "suspicious for", "cannot exclude", "?" are.

Not matched: CheXpert classifies mentions on a dependency parse (NegBio patterns); these are
clause-level regular expressions, so a cue reaches every mention in its clause (a negation
crosses a comma only through a list of findings), and long-distance or nested constructions
("no X but Y which may be Z") can be misread.
"""

from __future__ import annotations

# Words that may sit between a heart/mediastinum subject and its qualifier
# ("the heart is again normal in size"); a closed list keeps "heart is enlarged and lungs are normal" apart.
# A hedge inside the span ("the heart may be enlarged") makes the mention uncertain.
_FILL = (
    r"(?:(?:is|are|was|were|be|appears?|remains?|seems?|again|stable|and|the|pulmonary|vasculature|vascularity|"
    r"hila|hilar|mediastinal|mediastinum|contours?|silhouettes?|size|sizes|overall|otherwise|also|grossly|"
    r"currently|now|still|unchanged|xxxx|in|of|at|within|to|near|slightly|mildly|moderately|markedly|severely|"
    r"significantly|minimally|somewhat|very|aortic|aorta|heart|cardiac|bony|osseous|structures|lungs?|"
    r"may|might|could|possibly|probably|likely)\s*,?\s+){0,8}?"
)
_HEART = r"(?:heart|cardiac)(?:\s+(?:size|silhouette|shadow|contours?|diameter))?"
_MEDIA = r"(?:mediastinum|mediastinal(?:\s+(?:silhouette|contours?|width|configuration|shadow))?)"
_CARDIOMEDIA = (
    r"(?:(?:cardio[- ]?mediastinal|cardiothymic)(?:\s+(?:silhouettes?|contours?|shadow|size|width|structures))?"
    r"|cardiomediastinum)"
)
_NORMAL = r"(?:normal|unremarkable|within\s+normal\s+limits|not\s+(?:\w+\s+)?(?:enlarged|widened))"
_BORDER = (
    r"(?:borderline|top[- ]normal|top\s+of\s+normal|high[- ]normal|upper\s+(?:limits?|range)\s+(?:of\s+)?normal"
    r"|upper[- ]normal)"
)
_ENLARGED = r"(?:enlarged|enlargement|large|increased|widened|wide|prominent)"

# Each observation: ordered (kind, regex) pairs. kind "neg"/"unc" fixes the label whatever the context;
# "men" is a plain mention, labelled by the negation and uncertainty cues around it. Earlier entries win
# when matches overlap.
MENTIONS: dict[str, list[tuple[str, str]]] = {
    "Enlarged Cardiomediastinum": [
        ("unc", rf"\b(?:{_CARDIOMEDIA}|{_MEDIA})\s*,?\s+{_FILL}{_BORDER}"),
        ("neg", rf"\b(?:{_CARDIOMEDIA}|{_MEDIA})\s*,?\s+{_FILL}{_NORMAL}"),
        ("neg", rf"\b(?:normal|unremarkable)\s+{_FILL}(?:{_CARDIOMEDIA}|{_MEDIA})"),
        ("men", r"\bwidened\s+mediastinum|\bmediastinal\s+(?:widening|prominence|enlargement)"
                r"|\b(?:widening|prominence|enlargement)\s+of\s+(?:the\s+)?mediastinum"),
        ("men", rf"\b(?:enlarged|widened|prominent|wide)\s+(?:{_CARDIOMEDIA}|{_MEDIA})"),
        ("men", rf"\b(?:{_CARDIOMEDIA}|{_MEDIA})\s*,?\s+{_FILL}{_ENLARGED}"),
    ],
    "Cardiomegaly": [
        ("unc", rf"\b{_HEART}\s*,?\s+{_FILL}{_BORDER}"),
        ("unc", rf"\b{_BORDER}\s+(?:{_HEART}|cardiomegaly)"),
        ("neg", rf"\b(?:{_HEART}|{_CARDIOMEDIA})\s*,?\s+{_FILL}{_NORMAL}"),
        ("neg", rf"\b(?:normal|unremarkable)(?:[- ]sized?)?\s+(?:{_HEART}|{_CARDIOMEDIA})"),
        ("neg", r"\bheart\s+(?:is\s+)?(?:of\s+)?normal\s+size"),
        ("men", r"\bcardiomegaly|\bcardiac\s+enlargement|\benlargement\s+of\s+the\s+(?:heart|cardiac\s+silhouette)"),
        ("men", rf"\b(?:enlarged|large|prominent)\s+{_HEART}"),
        ("men", rf"\b{_HEART}\s*,?\s+{_FILL}{_ENLARGED}"),
    ],
    "Lung Opacity": [
        ("men", r"\bopaci\w*|\bdecreased\s+translucency|\bair[- ]?space\s+(?:disease|process|opacit\w*)"),
        ("men", r"\binfiltrat\w*|\binterstitial\s+(?:marking|pattern|lung|prominence|opacit)\w*|\breticul\w*"),
        ("men", r"\b(?:peribronchial|bronchial\s+wall|airway\s+wall)\s+thickening|\bhaziness|\bhazy"),
        # Lookbehinds come after the first letters so that they only run where the word matched.
        ("men", r"\bscar(?<!pleural\sscar)(?<!pleural-scar)(?<!parenchymal\sscar)(?:s|ring|red)?\b"
                r"|\bparenchymal(?<!pleural-parenchymal)(?<!pleuro-parenchymal)(?<!pleural\sparenchymal)\s+scar\w*"),
        ("men", r"\bdensit(?<!bone\sdensit)(?<!bony\sdensit)(?<!osseous\sdensit)(?<!metallic\sdensit)"
                r"(?<!metal\sdensit)(?<!tissue\sdensit)(?<!calcified\sdensit)(?<!calcific\sdensit)(?:y|ies)\b"),
    ],
    "Lung Lesion": [
        ("men", r"\bnodul\w*|\bmass(?:es)?\b(?!\s+effect)|\blump|\bcavitary\s+lesion|\bcarcinoma|\bneoplasm"),
        ("men", r"\btumou?r|\bmalignan\w*|\b(?:lung|pulmonary|parenchymal|cavitary|nodular|spiculated)\s+lesions?"),
    ],
    "Edema": [
        ("men", r"\bedema(?:tous)?|\boedema|\bheart\s+failure|\bchf\b|\bcongestion"),
        ("men", r"\bcongestive|\bindistinct\w*\s+(?:\w+\s+)?vascul\w*|\bvascular\s+indistinct\w*|\bindistinctness"
                r"|\bvascular\s+prominence|\bcephalization|\bkerley"),
    ],
    "Consolidation": [
        ("men", r"\bconsolidat\w*"),
    ],
    "Pneumonia": [
        ("men", r"\b(?:broncho)?pneumonias?\b|\binfection(?<!granulomatous\sinfection)s?\b|\binfectious\b"
                r"|\bpneumonitis"),
    ],
    "Atelectasis": [
        ("men", r"\batelecta\w*"
                r"|\bcollapse(?<!vertebral\scollapse)(?<!compression\scollapse)(?<!body\scollapse)[ds]?\b"),
    ],
    "Pneumothorax": [
        ("men", r"\b(?:hydro|hemo|haemo)?pneumothora\w*|\bptx\b"),
    ],
    "Pleural Effusion": [
        ("men", r"\beffusion(?<!pericardial\seffusion)(?<!joint\seffusion)s?\b|\bpleural\s+fluid|\bhydrothorax"),
        ("men", r"\bblunting\s+of\s+the\s+(?:\w+\s+){0,4}?costophrenic|\bblunted\s+(?:\w+\s+){0,3}?costophrenic"
                r"|\bcostophrenic\s+(?:\w+\s+)?blunt(?:ing|ed)"),
    ],
    "Pleural Other": [
        ("men", r"\bpleural(?:[- ]based)?\s+thickening|\bthickening\s+of\s+the\s+pleura|\bpleural\s+plaques?"),
        ("men", r"\bfibrothorax|\bfibrosis|\bfibrotic|\bpleural\s+scar\w*|\bpleur(?:o|al)[- ]?parenchymal\s+scar\w*"),
        ("men", r"\bpleuro-?pericardial\s+scar\w*|\bpleural\s+calcification\w*|\bcalcified\s+pleura\w*"),
    ],
    "Fracture": [
        ("men", r"\bfractur\w*|\bfx\b"),
    ],
    "Support Devices": [
        ("men", r"\bpace(?:r|maker)s?\b|\bpacing\b|\ba?icds?\b|\bdefib\w*|\bpiccs?\b|\bport-?a-?cath|\bmediport"),
        ("men", r"\b(?:central|venous|jugular|subclavian|arterial|midline|swan|ij|dialysis|picc)\s+(?:venous\s+)?"
                r"(?:line|catheter)s?"),
        ("men", r"\bcatheters?\b|\btubes?\b|\bett\b|\bngt?\b|\bogt\b|\bdobhoff|\bcannula|\bdrains?\b|\bvalves?\b"),
        ("men", r"\bsternotomy\b|\bsternal\s+(?:wires?|sutures?)|\bsurgical\s+(?:wires?|sutures?|clips?)|\bclips\b|\bstaples\b|\bstents?\b"),
        ("men", r"\bhardware|\barthroplast\w*|\bprosthe\w*|\bdevices?\b|\bcoils?\b|\bscrews?\b|\bplates?\b(?![- ]?like)"
                r"|\bapparatus|\bleads?\b|\bport\b|\bgenerator\b"
                r"|\bstimulator|\boccluder|\bsutures?\b|\btips?\b"),
    ],
}
"""Mention regexes per observation (No Finding is derived, not mentioned)."""

OTHER_FINDINGS = (
    r"\bemphysema\w*|\bgranulom\w*|\bcalcifi\w*|\b(?:dextro|levo|kypho|roto)?scolio\w*|\barthrit\w*|\btortu\w*"
    r"|\becta(?:tic|sia)|\bdegenera\w*|\bhyperinflat\w*|\bhyperexpan\w*"
    r"|\bcopd\b|\bhernia\w*|\bkyphosis|\bkyphotic|\bosteophyt\w*|\batherosclero\w*|\belevat\w*|\beventration"
    r"|\bdeformit\w*|\bvolume\s+loss|\bbullae|\bbullous|\baspiration|\bcontusion|\bosteopenia|\bmetasta\w*"
    r"|\bpneumomediastinum|\bpneumoperitoneum|\binflam\w*|\bhypertension|\bprominen\w*|\bbullet|\bthoracentesis"
    r"|\bbronchitis|\bbronchiolitis|\bhemorrhage|\bhematoma|\bradiopaque|\barthropathy|\bcuffing|\bthickening"
    r"|\bairways?\s+disease|\basthma|\bbronchospasm|\bosteodystrophy|\bcephalization|\bplaques?\b|\bbronchiectasis"
)
"""Abnormalities outside the 13 observations; a positive or uncertain one blanks No Finding (CheXpert)."""

# Cues. A negation cue before a mention negates it within its clause; a post cue after it.
PRE_NEGATION = (
    r"\bno\b(?!\s+(?:(?:significant|interval|appreciable|substantial|definite|major|gross|visible|"
    r"radiographic|other)\s+)*(?:change|increase|decrease|worsening|progression|improvement)\b)"
    r"|\bnot\b(?!\s+(?:only|(?:\w+\s+)?changed))|\bwithout\b(?!\s+(?:\w+\s+)?change)|\bfree\s+of|\bnegative\s+for"
    r"|\bclear\s+of|\babsence\s+of|\bresolution\s+of|\bresolved\b|\bremoval\s+of|\brather\s+than|\bneither\b"
    r"|\bnor\b|\bden(?:y|ies)\b"
)
POST_NEGATION = (
    r"\bnot\s+(?:\w+\s+)?(?:seen|identified|present|visualized|visualised|demonstrated|appreciated|noted|evident"
    r"|visible|detected|enlarged|widened)\b(?!\s+(?:on|in)\s+(?:the\s+)?(?:prior|previous))"
    r"|\b(?:is|are|has|have|was|were)\s+(?:\w+\s+)?(?:absent|resolved|removed|cleared)\b"
    r"|\bno\s+longer\b|\bresolved\b|\babsent\b|\b(?:is|are|been)\s+(?:excluded|ruled\s+out)\b"
)
UNCERTAIN_NEGATION = (
    r"\bcan\s*not\s+(?:be\s+)?(?:entirely\s+|completely\s+|totally\s+|definitely\s+)?"
    r"(?:exclude|excluded|rule[sd]?\s+out|ruled\s+out)"
    r"|\bnot\s+(?:be\s+)?(?:entirely\s+|completely\s+|totally\s+|definitely\s+)?(?:excluded|ruled\s+out)"
    r"|\bno\s+(?:definite\s+)?(?:evidence\s+)?(?:\w+\s+){0,2}?(?:can\s+be|is)\s+excluded"
    r"|\bdifficult\s+to\s+(?:entirely\s+|completely\s+)?(?:exclude|rule\s+out)|\bcould\s+not\s+be\s+excluded"
)
"""Uncertainty that wraps a negation word ("cannot exclude", "not ruled out"): -1, checked before negation."""
PRE_UNCERTAINTY = (
    r"\bmay\b|\bmight\b|\bcould\b|\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bsuspicious|\bsuspect\w*"
    r"|\bconcern\w*|\bquestion\w*|\bequivocal|\bindeterminate|\bsuggest\w*|\bborderline|\bversus\b|\bvs\b"
    r"|\bdifferential|\bconsider\w*|\buncertain|\bpresum\w*|\bapparent\b|\bperhaps|\brule\s+out|\br/o\b|\?"
    r"|\bfavou?r\w*|\band/or\b"
)
POST_UNCERTAINTY = (
    r"\W*(?:\?|versus\b|vs\b|or\s+\w+\s*\?|and/or\b|(?:[\w-]+\s+){0,6}?(?:(?:is|are|was|were|be|appears?|seems?)\s+"
    r"(?:also\s+)?(?:possible|possibly|likely|probable|suspected|questioned|questionable|uncertain|equivocal)\b"
    r"|(?:may|might|could)\s+be\s+present))"
)
"""Matched at the start of the text after a mention: the hedge must follow the mention itself."""

# Clause boundaries: sentence ends, semicolons, contrastive conjunctions, and a comma or "and" that opens a new
# clause. Every alternative starts at one non-word character (the character class up front lets ``re`` skip ahead).
CLAUSE_BREAK = (
    r"[^a-z0-9_](?:(?<=\.)(?!\d)|(?<=[;!])(?=\s)|(?<=:)(?=\s)"
    r"|(?<=\s)(?:but|however|although|though|whereas|except|apart\s+from|aside\s+from|otherwise)\b"
    r"|(?<=,)\s*(?:and\s+)?(?=(?:there|the|this|these|that|it|which|stable|unchanged|persistent|again"
    r"|redemonstrat\w*"
    r"|likely|possibly|possible|probably|may|could|suggest\w*|consistent|compatible"
    r"|increased|decreased|improved|worsened)\b)"
    r"|(?<=\s)and\s+(?=(?:there|the)\b))"
)
