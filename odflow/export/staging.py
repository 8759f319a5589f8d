"""Build an output directory beside its target and move it into place only when complete.

An export is several files that belong together (a frozen graph and a checkpoint of different
weights would be a silent bug), and Snakemake treats an existing output as done.  So the export
is written to a hidden sibling directory; the previous export, if any, is replaced only after
the new one is complete, and a failure leaves the target as it was.  What a killed export left
(``.<target>.*.tmp/`` staging and ``.<target>.*.old/`` holders, our own names) is removed by the
next one.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from odflow.errors import OdflowError

log = logging.getLogger(__name__)


def check_replaceable(target: Path, patterns: Iterable[str]) -> None:
    """Refuse to replace a directory holding anything an export does not write.

    Replacing means deleting: ``--output_directory ckpt`` by mistake must not take the training
    checkpoints with it.
    """
    if not target.exists():
        return
    if not target.is_dir():
        raise OdflowError(f"--output_directory {target} exists and is not a directory")
    patterns = list(patterns)
    foreign = sorted(entry.name for entry in target.iterdir()
                     if not any(fnmatch.fnmatchcase(entry.name, p) for p in patterns))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OdflowError(
            f"--output_directory {target} exists and holds files an export does not write "
            f"({shown}); an export replaces the whole directory, so choose a new or empty one")


@contextlib.contextmanager
def staged_directory(target: str | os.PathLike,
                     replaceable: Iterable[str] = ("*",)) -> Iterator[Path]:
    """Yield an empty sibling directory of ``target``; it becomes ``target`` if the block succeeds.

    ``replaceable``: glob patterns of the entries an existing ``target`` may hold.
    """
    target = Path(target)
    check_replaceable(target, replaceable)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    _give_usual_permissions(staging)
    try:
        yield staging
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_leftovers(target: Path) -> list[Path]:
    """Remove the staging and holder directories a killed export of ``target`` left behind."""
    removed = []
    for pattern in (f".{target.name}.*.tmp", f".{target.name}.*.old"):
        for leftover in target.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                log.info("removing %s, left by an interrupted export", leftover)
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
    return removed


def _give_usual_permissions(directory: Path) -> None:
    """``mkdtemp`` makes a private (0700) directory; the export should be like any other."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    previous = holder / target.name
    os.rename(target, previous)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(previous, target)
        os.rmdir(holder)
        raise
    shutil.rmtree(holder, ignore_errors=True)
