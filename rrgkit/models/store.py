"""Model files made once on first use — a converted checkpoint, a trained tokenizer — safe under parallel processes."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from rrgkit.paths import models_root


def made_once(name: str, marker: str, make: Callable[[Path], None]) -> Path:
    """``<models_root>/<name>``, made by ``make(folder)`` the first time (when ``marker`` is missing in it).

    ``make`` writes into a temporary folder that is then renamed into place, under a file lock, so
    that parallel processes neither make it twice nor see half a folder; a killed maker's leftovers
    are removed by the next one.
    """
    target = models_root() / name
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / marker).exists():  # another process may have finished meanwhile
            for stale in target.parent.glob(f"{name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = target.with_name(f"{name}.tmp-{os.getpid()}")
            make(tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
    return target
