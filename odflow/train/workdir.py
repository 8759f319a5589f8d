"""Housekeeping of a training ``model_dir``: one trainer at a time, no leftovers, nothing deleted.

- ``TrainingLock``: a second training on the same directory would interleave checkpoints and
  the state file.  The lock file holds the owner's pid, host and start time; a lock whose
  process is gone (same host) or whose heartbeat stopped (another host, e.g. a SLURM job
  killed on another node) is stale and taken over.
- ``remove_leftovers``: a ``kill -9`` can leave our temporary files (``.checkpoint.*.tmp``,
  ``.model.ckpt-N.tmp-*``) and a checkpoint the state file does not list (killed between writing
  it and updating the state file, or while pruning).  Temporary files are ours and removed;
  unlisted checkpoints are moved to ``superseded/`` (they might be someone's).
- ``supersede``: checkpoints trained on other inputs are moved, with their events, state file
  and fingerprint, to ``superseded/<UTC time>/``; they are never deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

from odflow import checkpoints
from odflow.errors import OdflowError
from odflow.train.best import BEST_DIR
from odflow.train.fingerprint import FILE_NAME as FINGERPRINT_FILE

log = logging.getLogger(__name__)

LOCK_FILE = ".train.lock"
SUPERSEDED = "superseded"
EVAL_DIRS = ("eval_0",)
#: A lock of another host whose heartbeat is older than this is stale.
STALE_AFTER_SECONDS = 300.0
HEARTBEAT_SECONDS = 30.0

_TEMPORARY = (re.compile(r"^\.checkpoint\..*\.tmp$"), re.compile(r"^\.model\.ckpt-\d+\.tmp-"),
              re.compile(rf"^\.{re.escape(FINGERPRINT_FILE)}\..*\.tmp$"))
_LOCK_TEMPORARY = re.compile(rf"^{re.escape(LOCK_FILE)}\.(\d+)\.(tmp|stale)$")
_CHECKPOINT_FILE = re.compile(r"^(model\.ckpt-\d+)\.(index|data-\d+-of-\d+)$")


# -- the lock -----------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a reused pid apart); ``None`` off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = _process_start(pid)
    return start is None or current is None or current == start


class TrainingLock:
    """``with TrainingLock(model_dir):`` holds ``model_dir/.train.lock`` while training."""

    def __init__(self, model_dir: str | os.PathLike):
        self.path = Path(model_dir) / LOCK_FILE
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                      "start": _process_start(os.getpid()),
                      "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TrainingLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        text = json.dumps(self.owner)
        for _ in range(3):
            if self._create(text):
                self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                                name="odflow-lock-heartbeat")
                self._thread.start()
                return
            holder, age = self._read()
            if holder is None:
                continue  # vanished, or being written this instant: try again
            if not self._stale(holder, age):
                raise OdflowError(
                    f"{self.path.parent} is in use by another training (pid {holder.get('pid')} "
                    f"on {holder.get('host')} since {holder.get('since')}); wait for it to end. "
                    f"If it is no longer running, delete {self.path}")
            log.warning("taking over the stale lock %s of pid %s on %s (no longer running)",
                        self.path, holder.get("pid"), holder.get("host"))
            self._take_away(holder)
        raise OdflowError(f"could not acquire {self.path}; another training keeps taking it")

    def _create(self, text: str) -> bool:
        """Write the lock complete under a temporary name, then link it: all or nothing."""
        tmp = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: exclusive create instead
            return self._create_exclusive(text)
        finally:
            tmp.unlink(missing_ok=True)

    def _create_exclusive(self, text: str) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return True

    def _read(self) -> tuple[dict | None, float]:
        try:
            age = time.time() - self.path.stat().st_mtime
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, 0.0
        return (holder if isinstance(holder, dict) else {}), age

    def _stale(self, holder: dict, age: float) -> bool:
        if holder.get("host") == self.owner["host"]:
            pid = holder.get("pid")
            return not isinstance(pid, int) or not _alive(pid, holder.get("start"))
        return age > STALE_AFTER_SECONDS

    def _take_away(self, holder: dict) -> None:
        """Move the stale lock aside, and only if it is still the one judged stale."""
        aside = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}.stale")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if json.loads(aside.read_text(encoding="utf-8")) != holder:  # a new owner: put back
                with contextlib.suppress(FileExistsError):
                    os.link(aside, self.path)
        except (OSError, ValueError):
            pass
        aside.unlink(missing_ok=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        holder, _ = self._read()
        if holder == self.owner:
            self.path.unlink(missing_ok=True)


# -- leftovers and superseded runs ----------------------------------------------------------------


def _listed(model_dir: Path) -> set[str]:
    state = checkpoints.read_state(model_dir)
    if state is None:
        return set()
    names = set(state.all_paths) | ({state.latest} if state.latest else set())
    return {Path(name).name for name in names}


def superseded_dir(model_dir: str | os.PathLike) -> Path:
    """A new ``model_dir/superseded/<UTC time>/`` (a suffix keeps two in one second apart)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(model_dir) / SUPERSEDED
    for attempt in range(1000):
        candidate = base / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise OdflowError(f"cannot create a new directory under {base}")


def _move(paths: list[Path], model_dir: Path, destination: Path | None) -> Path:
    destination = destination or superseded_dir(model_dir)
    for path in paths:
        target = destination / path.relative_to(model_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    return destination


def remove_leftovers(model_dir: str | os.PathLike) -> None:
    """Clean what a killed run left in ``model_dir`` (see the module docstring)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return
    listed = _listed(model_dir)
    unlisted: list[Path] = []
    for entry in sorted(model_dir.iterdir()):
        if any(pattern.match(entry.name) for pattern in _TEMPORARY):
            log.info("removing %s, left by an interrupted run", entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            continue
        lock_temp = _LOCK_TEMPORARY.match(entry.name)
        if lock_temp and not _alive(int(lock_temp.group(1)), None):
            entry.unlink(missing_ok=True)
            continue
        match = _CHECKPOINT_FILE.match(entry.name)
        if match and match.group(1) not in listed:
            unlisted.append(entry)
    if unlisted:
        destination = _move(unlisted, model_dir, None)
        log.warning("moved %s to %s: checkpoint files the state file %s does not list (left by "
                    "a save or clean-up that was killed)", ", ".join(p.name for p in unlisted),
                    destination, model_dir / checkpoints.STATE_FILE)


def training_files(model_dir: str | os.PathLike) -> list[Path]:
    """What a training run wrote: checkpoints, state file, events (also eval's), fingerprint."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = [p for p in model_dir.iterdir()
             if _CHECKPOINT_FILE.match(p.name) or p.name in (checkpoints.STATE_FILE,
                                                             FINGERPRINT_FILE)
             or p.name.startswith("events.out.tfevents.")]
    for name in EVAL_DIRS:
        found += list((model_dir / name).glob("events.out.tfevents.*"))
    # The best evaluation's checkpoint (odflow.train.best) belongs to the same run.
    found += list((model_dir / BEST_DIR).iterdir()) if (model_dir / BEST_DIR).is_dir() else []
    return sorted(p for p in found if p.is_file())


def has_checkpoints(model_dir: str | os.PathLike) -> bool:
    model_dir = Path(model_dir)
    return (model_dir / checkpoints.STATE_FILE).is_file() or any(
        _CHECKPOINT_FILE.match(p.name) for p in model_dir.iterdir())


def supersede(model_dir: str | os.PathLike) -> Path | None:
    """Move every training file of ``model_dir`` to a new ``superseded/<time>/``; its path."""
    model_dir = Path(model_dir)
    files = training_files(model_dir)
    return _move(files, model_dir, None) if files else None
