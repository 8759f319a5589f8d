"""Write files so that a reader never sees half of one.

Every output odflow produces is a Snakemake target; a file left half-written by a crash or
Ctrl+C would look complete to the next run.  So outputs go to a temporary name in the same
directory (same filesystem, so the final ``os.replace`` is atomic) and are renamed only
once complete; on any failure the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from odflow.errors import OdflowError

log = logging.getLogger(__name__)

#: What ``tempfile.mkstemp`` puts between our prefix and suffix: 8 of ``[a-z0-9_]``.
_RANDOM_PART = r"[a-z0-9_]{8}"


def temporary_path_for(path: str | os.PathLike) -> Path:
    """A fresh, unused temporary name beside ``path`` (the file itself is not created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)
    return Path(tmp)


def stale_temporaries(directory: str | os.PathLike, name_pattern: str) -> list[Path]:
    """Files in ``directory`` named as ``temporary_path_for`` names them for a target whose
    name matches the regular expression ``name_pattern`` (anchored; use ``re.escape``).

    Only our own ``.<target>.<8 random chars>.tmp`` names match, never a user's file.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"\.(?:{name_pattern})\.{_RANDOM_PART}\.tmp")
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file())


def remove_stale_temporaries(directory: str | os.PathLike, name_pattern: str) -> list[Path]:
    """Remove what a killed run (``kill -9``, power loss) left of its temporary files.

    A stage calls this before it writes, for its own target names only: Snakemake runs one
    job per output at a time, so a matching file belongs to no live writer.
    """
    removed = []
    for path in stale_temporaries(directory, name_pattern):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
            log.info("removed %s, left by an interrupted earlier run", path)
    return removed


def check_not_folder(path: str | os.PathLike) -> None:
    """``OdflowError`` when an output path is an existing folder (``-o out/`` meant as
    ``-o out/train.record``), checked before the work: ``os.replace`` fails only at the end."""
    if Path(path).is_dir():
        raise OdflowError(f"{path} is a folder; odflow writes a file there: give a file "
                          "name (or move the folder away)")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds.

    A folder at ``path`` is an ``OdflowError`` before anything is written (``-o out/`` for
    ``-o out/train.record``): ``os.replace`` would fail only after all the work.
    """
    target = Path(path)
    check_not_folder(target)
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

