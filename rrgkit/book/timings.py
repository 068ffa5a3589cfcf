"""How long each notebook of a profile took, so a build can say up front roughly how long it will take.

``_build/<profile>/timings.json`` keeps, per notebook, its last execution time and the longest one
seen. A build whose runs are cached is far quicker than one from a clean ``runs/``, so the
estimate is a range: the sum of the last times to the sum of the longest ones. Notebooks never
executed in this profile are named, not guessed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

from rrgkit.runs import write_json

FILE = "timings.json"


def load(folder: Path) -> dict[str, dict]:
    """The recorded timings of a profile's build folder (empty when none were recorded)."""
    path = folder / FILE
    return json.loads(path.read_text()) if path.exists() else {}


def record(folder: Path, notebook: str, seconds: float) -> None:
    """Add one notebook's execution time to the record."""
    timings = load(folder)
    previous = timings.get(notebook, {})
    timings[notebook] = {"last": seconds, "longest": max(seconds, previous.get("longest", 0.0)),
                         "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / FILE, timings)


def estimate(timings: dict[str, dict], notebooks: Sequence[str]) -> str:
    """One line: the expected time of ``notebooks`` from the record, and which ones have none."""
    known = [n for n in notebooks if n in timings]
    unknown = [n for n in notebooks if n not in timings]
    if not known:
        return f"no timings recorded for these {len(notebooks)} notebooks yet: no estimate (this build records them)"
    low = sum(timings[n]["last"] for n in known) / 60
    high = sum(timings[n]["longest"] for n in known) / 60
    span = f"about {low:.0f} min" if round(low) == round(high) else f"{low:.0f} to {high:.0f} min"
    line = f"{span} for {len(known)} notebook(s), from earlier builds (fewer when runs are cached)"
    return line + (f"; no record yet for {', '.join(unknown)}" if unknown else "")
