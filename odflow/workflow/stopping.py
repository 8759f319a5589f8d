"""Stop the workflow's training jobs when Snakemake itself is asked to stop.

A SIGINT or SIGTERM sent to the ``snakemake`` process alone (``kill <pid>``, a supervisor, a
CI runner; unlike Ctrl+C in a terminal, which reaches the whole process group) never reaches
its jobs: Snakemake 9's local executor waits for running jobs on SIGTERM ("exit after
finishing currently running jobs") and, on SIGINT, shuts its thread pool down, which also
waits. Training then ran to its last step after Snakemake had given up on the job, so the job
stayed marked incomplete and the next ``--rerun-incomplete`` run deleted the finished
checkpoint (a declared output) and trained its last steps again.

``forward_stop_signals()`` (called from the Snakefile's ``onstart``, i.e. after Snakemake has
installed its own handlers) chains a handler in front of Snakemake's: it sends SIGTERM to the
training processes this Snakemake started (descendants of this process running
``model_main.py``), which save a checkpoint at the step they reached and exit, and then lets
Snakemake's handler do what it did before. Only descendants are signalled, found through
``/proc`` (Linux); elsewhere, or for jobs a cluster runs (not our descendants; the cluster's
own cancel reaches them), nothing is sent.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

#: The training entry point whose processes are stopped (scripts/model_main.py).
TRAIN_SCRIPT = "model_main.py"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROC = Path("/proc")


def _parent_of(pid: int, proc: Path) -> int | None:
    """The parent pid from /proc/<pid>/stat (the field after the parenthesised name, which
    may itself hold spaces and parentheses), or None if the process is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (ValueError, IndexError):
        return None


def descendants(root: int, proc: Path = PROC) -> list[int]:
    """Every process below ``root`` (children, their children, ...), sorted."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name), proc)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def _argv(pid: int, proc: Path) -> list[str]:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_training(argv: Iterable[str]) -> bool:
    """A Python process running the training script (``python .../model_main.py ...``);
    the shells that started it name the script too, but only inside one ``-c`` string."""
    argv = list(argv)
    return (len(argv) >= 2 and "python" in os.path.basename(argv[0])
            and os.path.basename(argv[1]) == TRAIN_SCRIPT)


def training_processes(root: int, proc: Path = PROC) -> list[int]:
    """The training processes among ``root``'s descendants."""
    return [pid for pid in descendants(root, proc) if is_training(_argv(pid, proc))]


def stop_training(root: int, proc: Path = PROC) -> list[int]:
    """SIGTERM to each training process below ``root``; the pids signalled."""
    stopped = []
    for pid in training_processes(root, proc):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:  # finished in the meantime
            continue
        stopped.append(pid)
    return stopped


Handler = Callable[[int, FrameType | None], object] | int | None


def _chained(previous: Handler) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stopped = stop_training(os.getpid())
        if stopped:
            log.warning("%s: asked training (pid %s) to save its checkpoint and stop",
                        signal.Signals(signum).name, ", ".join(map(str, stopped)))
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
    return handler


def forward_stop_signals() -> None:
    """Put ``stop_training`` in front of the current SIGINT and SIGTERM handlers (call it in
    the main thread, after Snakemake has installed its own)."""
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if previous == signal.SIG_IGN:
            continue
        signal.signal(signum, _chained(previous))
