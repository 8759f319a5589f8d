"""Plumbing shared by odflow's command-line entry points."""

from __future__ import annotations

import argparse
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


def true_or_false(text: str) -> bool:
    """argparse type of the boolean flags the workflow passes as ``--flag true|false``."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() == "true"


def add_clip_before_nms_flag(parser: argparse.ArgumentParser) -> None:
    """``--clip_before_nms [true|false]`` for the commands that run the model's NMS (train's
    evaluations, eval, export): the pipeline config cannot say the clipping order, see
    ``odflow.model.postprocess``; the workflow passes ``postprocess.clip_before_nms``."""
    parser.add_argument(
        "--clip_before_nms", type=true_or_false, nargs="?", const=True, default=False,
        metavar="true|false",
        help="clip boxes to the image before non-max suppression, as the zoo's 2018 graphs "
             "did (alone or true); default false: suppress first and clip the survivors, as "
             "the API's final TF1 and its TF2 releases do")
