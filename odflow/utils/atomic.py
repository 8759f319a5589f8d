"""Write files so that a reader never sees half of one.

Every output odflow produces is a Snakemake target; a file left half-written by a crash or
Ctrl+C would look complete to the next run.  So outputs go to a temporary name in the same
directory (same filesystem, so the final ``os.replace`` is atomic) and are renamed only
once complete; on any failure the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def temporary_path_for(path: str | os.PathLike) -> Path:
    """A fresh, unused temporary name beside ``path`` (the file itself is not created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)
    return Path(tmp)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    tmp = temporary_path_for(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Like ``open(path, mode)`` for writing, but all-or-nothing."""
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_open writes files; mode {mode!r} does not")
    with atomic_output(path) as tmp, open(tmp, mode.replace("x", "w"), **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)

