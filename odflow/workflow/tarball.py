"""Unpack the members of a model-zoo tarball that the pipeline uses, and seed ``ckpt/``.

The zoo tarball (``ssd_mobilenet_v1_coco_2018_01_28.tar.gz``, or a TF2 zoo one such as
``ssd_mobilenet_v2_320x320_coco17_tpu-8.tar.gz``: ``odflow.workflow.layout``) also holds a
frozen graph or a SavedModel that odflow does not need; extracting only named members keeps
the model folder small and, more importantly, refuses members that would land outside it (links,
absolute paths, ``..``), since a tarball is input from the internet.
"""

from __future__ import annotations

import logging
import lzma
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_output, remove_stale_temporaries
from odflow.workflow.layout import TF1, TarballLayout, other_layout_hint

log = logging.getLogger(__name__)

#: Members the pipeline needs from a TF1 zoo tarball, relative to the tarball's top folder.
REQUIRED_MEMBERS = TF1.members
#: Checkpoint files copied into ckpt/ (the seed copies model.ckpt*, never the state file).
CHECKPOINT_FILES = TF1.checkpoint_members


#: File names that ``check_archive_complete`` can verify.
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: What a cut-short or damaged archive raises while it is read (gzip's BadGzipFile and
#: bz2's "Invalid data stream" are OSErrors without an errno; a full disk has one).
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _is_damage(error: BaseException) -> bool:
    return not (isinstance(error, OSError) and error.errno is not None)


def is_tar_name(name: str) -> bool:
    return name.lower().endswith(TAR_SUFFIXES)


def check_archive_complete(path: str | os.PathLike, what: str, fix: str) -> None:
    """Read a tar archive through to its end; ``OdflowError`` if it is cut short or damaged.

    Without a sha256 this is how a truncated download is told from a whole one: every
    member's data is read, then the rest of the compressed stream, so a gzip archive that
    lost only its trailer (its CRC and length) fails too.  ``what`` names the archive in the
    message and ``fix`` says what to do.
    """
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile():
                    source = archive.extractfile(member)
                    if source is not None:
                        while source.read(1 << 20):
                            pass
            stream = archive.fileobj
            if stream is not None:
                while stream.read(1 << 20):
                    pass
    except _READ_ERRORS as error:
        if not _is_damage(error):
            raise
        raise OdflowError(f"{what} is not a complete tar archive ({_describe(error)}). "
                          f"{fix}") from None


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, EOFError) or "unexpected end" in text:
        return f"it is cut short: {text}"
    return text


def _refusal(member: tarfile.TarInfo) -> str | None:
    """Why a member is never extracted, or None for a regular file inside the top folder.

    A tarball comes from the internet: a link could point anywhere on this machine, and a
    ``..`` or absolute name could land outside the model folder (or stand in for the model's
    own files), so such members are refused whatever they are called.
    """
    if member.issym():
        return f"a symbolic link (to {member.linkname})"
    if member.islnk():
        return f"a hard link (to {member.linkname})"
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a path with '..' (outside the tarball's folder)"
    return None


def _members_by_name(archive: tarfile.TarFile, tar_path: Path
                     ) -> tuple[dict[str, tarfile.TarInfo], list[tuple[str, str]]]:
    """(regular files by their path below the top folder, refused members with the reason)."""
    found: dict[str, tarfile.TarInfo] = {}
    refused: list[tuple[str, str]] = []
    for member in archive.getmembers():
        reason = _refusal(member)
        if reason is not None:
            refused.append((member.name, reason))
            continue
        parts = PurePosixPath(member.name).parts
        if not member.isfile() or len(parts) < 2:
            continue
        found["/".join(parts[1:])] = member
    if not found and not refused:
        raise OdflowError(f"{tar_path}: no files under a top-level folder; a model-zoo tarball "
                          "holds <model_name>/pipeline.config, <model_name>/model.ckpt.* ...")
    for name, reason in refused:
        log.warning("%s: member %s is %s; odflow never extracts such members", tar_path, name,
                    reason)
    return found, refused


def _missing_message(tar_path: Path, missing: Sequence[str], available: Sequence[str],
                     refused: Sequence[tuple[str, str]]) -> str:
    """Name the missing members, and the refused members that carry their names (and why)."""
    message = f"{tar_path}: missing {', '.join(missing)}"
    wanted = {PurePosixPath(name).name for name in missing}
    stand_ins = [(name, reason) for name, reason in refused
                 if PurePosixPath(name).name in wanted]
    if stand_ins:
        details = "; ".join(f"{name} is {reason}" for name, reason in stand_ins)
        return (f"{message}: {details}. odflow refuses links, absolute paths and '..' in a "
                "model tarball; repack it with regular files under one top folder "
                "(<model_name>/pipeline.config, <model_name>/model.ckpt.*; tar's "
                "--dereference and --hard-dereference store a link's file itself)")
    return f"{message}; found {', '.join(sorted(available)) or 'no regular files'}"


def extract_model(tar_path: str | os.PathLike, output_dir: str | os.PathLike,
                  members: Sequence[str] | None = None,
                  layout: TarballLayout = TF1) -> list[Path]:
    """Extract ``members`` (paths below the tarball's top folder; default: what ``layout``
    needs) into ``output_dir``, keeping their paths (``checkpoint/ckpt-0.index``)."""
    members = layout.members if members is None else tuple(members)
    tar_path, output_dir = Path(tar_path), Path(output_dir)
    if not tar_path.is_file():
        raise OdflowError(f"{tar_path}: tarball not found")
    try:
        archive = tarfile.open(tar_path, "r:*")  # noqa: SIM115 - closed by the with below
    except _READ_ERRORS as error:
        raise OdflowError(f"{tar_path}: not a readable tar archive ({_describe(error)}); "
                          "delete it and rerun to fetch it again") from None
    written = []
    with archive:
        try:
            available, refused = _members_by_name(archive, tar_path)
            missing = [name for name in members if name not in available]
            if missing:
                message = _missing_message(tar_path, missing, list(available), refused)
                hint = other_layout_hint(layout, set(available))
                raise OdflowError(f"{message}.{hint}" if hint else message)
            for name in members:
                target = output_dir / name
                remove_stale_temporaries(target.parent, re.escape(target.name))
                source = archive.extractfile(available[name])
                if source is None:  # pragma: no cover - isfile() was checked
                    raise OdflowError(f"{tar_path}: cannot read member {name}")
                with source, atomic_output(target) as tmp, open(tmp, "wb") as handle:
                    shutil.copyfileobj(source, handle, 1 << 20)
                written.append(target)
                log.info("extracted %s", target)
        except _READ_ERRORS as error:
            if not _is_damage(error):
                raise OdflowError(f"{tar_path}: cannot extract into {output_dir}: "
                                  f"{error.strerror}") from None
            raise OdflowError(f"{tar_path}: not a complete tar archive ({_describe(error)}); "
                              "delete it and rerun to fetch it again") from None
    return written


def copy_checkpoint(model_dir: str | os.PathLike, ckpt_dir: str | os.PathLike,
                    layout: TarballLayout = TF1) -> list[Path]:
    """Copy the extracted checkpoint (not the ``checkpoint`` state file) into ``ckpt_dir``:
    ``model.ckpt.*`` as they are (TF1), ``checkpoint/ckpt-0.*`` as ``ckpt-0.*`` (TF2).

    Copying the state file too would make training treat the zoo checkpoint as its own
    latest checkpoint and skip fine-tuning.
    """
    pairs = list(zip(layout.checkpoint_members, layout.fine_tune_files, strict=True))
    # Every source is checked before anything is copied: an index without its data file in
    # ckpt/ would be a half-seeded checkpoint that the next step trips over.
    missing = [str(Path(model_dir) / member) for member, _ in pairs
               if not (Path(model_dir) / member).is_file()]
    if missing:
        raise OdflowError(f"{', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not "
                          f"exist; extract the model tarball first (model.layout {layout.name})")
    written = []
    for member, name in pairs:
        source = Path(model_dir) / member
        target = Path(ckpt_dir) / name
        remove_stale_temporaries(target.parent, re.escape(target.name))
        with atomic_output(target) as tmp:
            shutil.copyfile(source, tmp)
        written.append(target)
    return written
