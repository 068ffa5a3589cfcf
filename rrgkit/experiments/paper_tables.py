"""The paper's own numbers, typed once into ``data/lu2023_tables.yaml`` with where each comes from.

The chapters print them beside their tables as context: MIMIC-CXR with the CheXbert labeler is a
different benchmark from this book's, so no number of the paper is ever compared with one of ours.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

FILE = Path(__file__).with_name("data") / "lu2023_tables.yaml"


@lru_cache(maxsize=1)
def paper_data() -> dict:
    """The whole data file: tables, the figure's claim, the claims the book tests (C1-C5, C5b, C6, C7)."""
    return yaml.safe_load(FILE.read_text())


def paper_table(name: str) -> pd.DataFrame:
    """``table_1`` or ``table_2`` as a DataFrame; ``attrs`` carry its source, place and caption."""
    data = paper_data()
    if name not in data or "rows" not in data[name]:
        raise KeyError(f"no table {name!r} in {FILE.name}; tables: {[k for k, v in data.items() if isinstance(v, dict) and 'rows' in v]}")
    table = pd.DataFrame(data[name]["rows"], columns=data[name]["columns"])
    table.attrs.update(source=data["source"], where=data[name]["where"], caption=data[name]["caption"])
    return table


def paper_claim(name: str) -> dict:
    """One claim the book tests (``C1``-``C5``, ``C5b``, ``C7``): its text and, where pairwise, its cells."""
    claims = paper_data()["claims"]
    if name not in claims:
        raise KeyError(f"no claim {name!r}; claims: {sorted(claims)}")
    return claims[name]
