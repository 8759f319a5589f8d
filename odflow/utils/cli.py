"""Plumbing shared by odflow's command-line entry points."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from odflow.errors import OdflowError


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a user error prints ``error: <message>`` and exits 2, Ctrl+C exits 130."""
    try:
        return int(main(argv) or 0)
    except OdflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to ``log_file`` too (Snakemake's ``log:``)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def exit_on_sigterm(signum: int, frame) -> None:
    """SIGTERM handler (Snakemake, SLURM): unwind like Ctrl+C, so temporary files are removed."""
    del frame
    raise SystemExit(128 + signum)


def start_job(log_file: str | None = None) -> None:
    """What a job that writes files does first: log (to ``log_file`` too), turn SIGTERM into
    an unwinding exit so its temporary files are removed, and keep TensorFlow's native
    INFO/WARNING lines out of the log unless the user chose a level."""
    import os
    import signal

    setup_logging(log_file)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
