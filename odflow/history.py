"""A run's curves as one declared file: ``ckpt/history.json``.

Training writes TensorBoard event files (``model_dir`` for losses and the learning rate,
``model_dir/eval_0`` for the COCO metrics), which no rule can declare: their names carry a
host and a time, and a resumed run adds files.  After training, the train rule writes every
scalar of those events to ``history.json``, a declared output that the plots and the
experiments summary read, so every file a rule reads is one of its inputs.

    {"train": {tag: [[step, value, wall_time], ...]}, "eval": {tag: [...]}}
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odflow.errors import OdflowError
from odflow.evaluation.coco import EVAL_SUBDIR
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli, setup_logging

History = dict[str, dict[str, list[list[float]]]]


def collect(model_dir: str | os.PathLike) -> History:
    """Every scalar in the event files of ``model_dir`` ("train") and its eval_0 ("eval")."""
    from odflow.plots import read_scalars

    folder = Path(model_dir)
    if not folder.is_dir():
        raise OdflowError(f"model_dir {folder} does not exist or is not a directory")
    evaluation = folder / EVAL_SUBDIR
    return {"train": read_scalars(folder, with_time=True),
            "eval": read_scalars(evaluation, with_time=True) if evaluation.is_dir() else {}}


def write(model_dir: str | os.PathLike, path: str | os.PathLike) -> History:
    history = collect(model_dir)
    atomic_write_text(path, json.dumps(history, indent=1) + "\n")
    return history


def load(path: str | os.PathLike) -> History:
    """A history file as written by ``write``; a clear error if it is not one."""
    try:
        history: Any = json.loads(Path(path).read_text())
        if not all(isinstance(history[part], dict) for part in ("train", "eval")):
            raise TypeError("train and eval must be mappings")
    except FileNotFoundError:
        raise OdflowError(f"{path}: no such history file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise OdflowError(f"{path}: not a training history file ({error}); rebuild it with "
                          "the train rule") from None
    return history


def series(history: History, part: str) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of one part ("train" or "eval")."""
    return {tag: [(int(point[0]), float(point[1])) for point in points]
            for tag, points in history[part].items()}


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the scalars of a training run's event files to one JSON file.")
    parser.add_argument("--model_dir", required=True, help="the training directory (e.g. ckpt)")
    parser.add_argument("--output", required=True, help="the JSON file to write")
    parser.add_argument("--log_file", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    write(args.model_dir, args.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
