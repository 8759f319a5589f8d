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
``model_main.py``) that have not saved their final checkpoint yet, which save a checkpoint at
the step they reached and exit, and then lets Snakemake exit after its running jobs, so it
records how they ended. Only descendants are signalled, found through
``/proc`` (Linux); elsewhere, or for jobs a cluster runs (not our descendants; the cluster's
own cancel reaches them), nothing is sent.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

#: The training entry point whose processes are stopped (scripts/model_main.py).
TRAIN_SCRIPT = "model_main.py"
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


def model_dir_of(argv: Sequence[str]) -> str | None:
    """The ``--model_dir`` a training command line names (``--model_dir X`` or ``=X``)."""
    for index, word in enumerate(argv):
        if word == "--model_dir" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--model_dir="):
            return word.removeprefix("--model_dir=")
    return None


def training_processes(root: int, proc: Path = PROC) -> dict[int, str | None]:
    """The training processes among ``root``'s descendants -> the model dir each trains."""
    found = {}
    for pid in descendants(root, proc):
        argv = _argv(pid, proc)
        if is_training(argv):
            found[pid] = model_dir_of(argv)
    return found


Finished = Callable[[str], bool]


def stop_training(root: int, finished: Finished | None = None,
                  proc: Path = PROC) -> list[int]:
    """SIGTERM to each training process below ``root``; the pids signalled.

    ``finished(model_dir)`` says a training has already saved its final checkpoint (the
    declared output): it is left to end on its own (final evaluation, history), since a job
    stopped then fails and Snakemake deletes that checkpoint with the failed job's outputs.
    """
    stopped = []
    for pid, model_dir in training_processes(root, proc).items():
        if finished is not None and model_dir is not None and finished(model_dir):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:  # ended in the meantime
            continue
        stopped.append(pid)
    return stopped


Handler = Callable[[int, FrameType | None], object] | int | None


def _stop_and_log(signum: int, finished: Finished | None) -> None:
    stopped = stop_training(os.getpid(), finished)
    if stopped:
        log.warning("%s: asked training (pid %s) to save its checkpoint and stop",
                    signal.Signals(signum).name, ", ".join(map(str, stopped)))


def _call(handler: Handler, signum: int, frame: FrameType | None) -> None:
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def forward_stop_signals(finished: Finished | None = None) -> None:
    """Put ``stop_training`` in front of the current SIGINT and SIGTERM handlers (call it in
    the main thread, after Snakemake has installed its own).

    SIGTERM then goes on to Snakemake's handler ("exit after finishing running jobs"). The
    first SIGINT goes there too, instead of Snakemake's KeyboardInterrupt: its local executor
    waits for running jobs either way, but only the graceful path records how they ended, so
    a job that finished is not left marked incomplete (and deleted by the next run). A second
    SIGINT is Snakemake's own KeyboardInterrupt, for those who do not want to wait.
    """
    previous_int = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)
    interrupts = 0

    def on_term(signum: int, frame: FrameType | None) -> None:
        _stop_and_log(signum, finished)
        _call(previous_term, signum, frame)

    def on_int(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        _stop_and_log(signum, finished)
        if interrupts == 1 and callable(previous_term):
            log.warning("SIGINT: finishing the running jobs (they stop at a saved step); "
                        "interrupt again to stop waiting")
            previous_term(signum, frame)
        else:
            _call(previous_int, signum, frame)

    if previous_term != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, on_term)
    if previous_int != signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_int)
