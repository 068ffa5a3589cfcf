"""Split a MIMIC-CXR free-text report into sections, as the dataset authors' ``section_parser.py`` does.

Headers are upper-case words followed by a colon at the start of a line; variant names are normalised
(FINDING -> findings, CONCLUSION -> impression, ...), the LAST section of each name is kept (addenda
restate sections), and whitespace is collapsed.
"""

from __future__ import annotations

import re

HEADER = re.compile(r"(?m)^[ \t]*([A-Z][A-Z /&()-]*[A-Z)])[ \t]*:")
NORMALISED = {
    "FINDINGS": "findings",
    "FINDING": "findings",
    "FINDINGS AND IMPRESSION": "findings",
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "CONCLUSION": "impression",
    "CONCLUSIONS": "impression",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "INDICATION": "indication",
    "HISTORY": "indication",
    "CLINICAL HISTORY": "indication",
    "EXAMINATION": "examination",
    "TECHNIQUE": "technique",
}
SECTIONS = ("findings", "impression", "comparison", "indication", "examination", "technique")


def section_report(text: str) -> dict[str, str]:
    """The sections of one report, keyed by normalised name; "" for each absent section."""
    found = {name: "" for name in SECTIONS}
    matches = list(HEADER.finditer(text))
    for match, following in zip(matches, [*matches[1:], None]):
        name = NORMALISED.get(re.sub(r"\s+", " ", match.group(1)).strip())
        if name is None:
            continue
        end = following.start() if following is not None else len(text)
        found[name] = re.sub(r"\s+", " ", text[match.end():end]).strip()
    return found
