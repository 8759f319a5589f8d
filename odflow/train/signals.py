"""Ctrl+C and SIGTERM end training cleanly: finish the step, save it, exit 130/143.

The tutorial stops training with Ctrl+C and continues from ``model.ckpt-41471``; a SLURM job
that reaches its time limit gets SIGTERM.  A KeyboardInterrupt raised in the middle of a step or
a save would lose the work since the last checkpoint, so the handlers only record the request;
the loop checks it between steps.  A second signal while the final save runs is ignored for
that reason (the save takes seconds).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by a handled signal; the training loop polls it after every step."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell convention (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum or 0)

    def _handle(self, signum, frame) -> None:
        del frame
        if self.signum is None:
            self.signum = signum
            log.warning("%s received: finishing the current step and saving a checkpoint",
                        signal.Signals(signum).name)
        else:
            log.warning("%s received again: still saving, please wait",
                        signal.Signals(signum).name)


class Interrupted(Exception):
    """Training stopped on a signal after saving; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, checkpoint: str | None):
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum
        where = f"; saved {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {signal.Signals(signum).name}{where}")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the duration of the block (main thread only)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be set from the main thread
        return
    previous = {signum: signal.signal(signum, request._handle) for signum in HANDLED}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
