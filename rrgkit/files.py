"""How every rrgkit command writes a file: never over one of its inputs, never half a file.

A command's output path is checked against its inputs before any work starts
(``--out reports.csv`` for ``label reports.csv`` would replace the reports with their
labels), and the output is written to a temporary file in the same folder and renamed
into place, so a killed or failed command leaves the previous file intact, never a
truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths, or (both existing) one inode via links."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_output_over_inputs(out: str | Path, inputs: Iterable[str | Path], flag: str = "--out") -> None:
    """Raise ``ValueError`` if ``out`` is one of ``inputs`` (through any spelling, symlink or hard link) or a folder."""
    out = Path(out)
    for source in inputs:
        if _same_file(out, Path(source)):
            raise ValueError(f"{flag} {out} is the input file {source}; writing there would destroy it, "
                             f"so give {flag} a new file name")
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; give {flag} a file path inside it, e.g. {out / 'out'}{out.suffix}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and one rename; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the output gets the mode open() would give it
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # also on Ctrl-C: no stray temporary file
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
