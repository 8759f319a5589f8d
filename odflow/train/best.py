"""The best checkpoint: kept beside the pruned ones, and chosen for export.

A fine-tune often peaks before its last step (over-fitting a small dataset, a schedule that
ends too hot), and ``keep_checkpoint_max`` would soon delete the peak.  So every evaluation
during training (every ``eval_every`` steps, and the final one) is compared with the best so
far on ``DetectionBoxes_Precision/mAP``; a better one is copied (hard-linked where the file
system allows: no extra space) into ``<model_dir>/best/`` with its metrics JSON.  Pruning
works on ``model_dir`` itself and never looks there.  A tie keeps the earlier step (the same
score from less training).

``best/`` holds, besides the step-named copy (``model.ckpt-N.*``, which survives a resume),
the same checkpoint under the fixed prefix ``best/model.ckpt`` that ``publish`` links at the
end of a run, so the workflow can declare it; Snakemake deletes that declared copy before
rerunning training, the step-named one stays.  When the inputs change and training starts
again, ``best/`` moves to ``superseded/`` with the other checkpoints (``odflow.train.workdir``).

``choose_metrics`` writes ``eval/metrics.json`` for ``export.checkpoint``: the last or the
best evaluation's metrics, saying which step was exported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odflow import checkpoints
from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli, setup_logging

log = logging.getLogger(__name__)

BEST_DIR = "best"
METRICS_FILE = "metrics.json"
#: What "best" means: COCO's primary metric, AP averaged over IoU 0.5:0.95.
METRIC = "DetectionBoxes_Precision/mAP"
#: The fixed prefix ``publish`` links the best checkpoint to (declared by the workflow).
PUBLISHED = "model.ckpt"
CHOICES = ("last", "best")


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s content, atomically (hard link, else a copy)."""
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:  # another file system, or no hard links: copy
        shutil.copy2(source, temporary)
    os.replace(temporary, target)


def _copy_checkpoint(prefix: str | os.PathLike, target_prefix: Path) -> None:
    """The checkpoint's files under ``target_prefix``: data first, the index last (readers
    look for the index)."""
    index, data = checkpoints.checkpoint_files(prefix)
    target_index, target_data = checkpoints.checkpoint_files(target_prefix)
    _link_or_copy(data, target_data)
    _link_or_copy(index, target_index)


class BestCheckpoint:
    """``<model_dir>/best/``: the checkpoint of the best evaluation so far and its metrics."""

    def __init__(self, model_dir: str | os.PathLike):
        self.directory = Path(model_dir) / BEST_DIR
        self.step: int | None = None
        self.value: float | None = None
        for leftover in self.directory.glob(".*.tmp"):  # a kill -9 during a copy
            leftover.unlink(missing_ok=True)
        payload = self._read()
        if payload is not None:
            self.step, self.value = payload["global_step"], payload["metrics"][METRIC]

    @property
    def metrics_path(self) -> Path:
        return self.directory / METRICS_FILE

    def prefix(self, step: int) -> Path:
        return self.directory / f"{checkpoints.PREFIX}-{step}"

    def _read(self) -> dict[str, Any] | None:
        """The kept best's metrics JSON, ``None`` when absent or its checkpoint is gone."""
        try:
            payload = json.loads(self.metrics_path.read_text(encoding="utf-8"))
            step, value = int(payload["global_step"]), float(payload["metrics"][METRIC])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring %s (%s): the best checkpoint is chosen afresh",
                        self.metrics_path, error)
            return None
        problem = checkpoints.checkpoint_problem(self.prefix(step))
        if problem is not None:
            log.warning("ignoring %s: its checkpoint %s (%s); the best checkpoint is chosen "
                        "afresh", self.metrics_path, self.prefix(step), problem)
            return None
        payload["global_step"], payload["metrics"][METRIC] = step, value
        return payload

    def consider(self, step: int, metrics: dict[str, float], checkpoint: str,
                 evaluator) -> bool:
        """Keep ``checkpoint`` (evaluated at ``step``) if it beats the best; True if kept.

        ``evaluator`` (the filled ``CocoEvaluator``) writes its metrics JSON beside the copy,
        in ``eval/metrics.json``'s layout.
        """
        value = float(metrics[METRIC])
        if self.value is not None and value <= self.value:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = self.step
        target = self.prefix(step)
        _copy_checkpoint(checkpoint, target)
        evaluator.write_json(self.metrics_path, extra={
            "global_step": int(step), "checkpoint": str(target),
            "trained_checkpoint": str(checkpoint)})
        if previous is not None and previous != step:  # only once the JSON names the new one
            for path in checkpoints.checkpoint_files(self.prefix(previous)):
                path.unlink(missing_ok=True)
        log.info("best checkpoint so far: step %d, %s %.4f%s; kept as %s", step, METRIC, value,
                 "" if self.value is None else f" (was {self.value:.4f} at step {previous})",
                 target)
        self.step, self.value = step, value
        return True

    def publish(self, metrics_json: str | os.PathLike) -> Path:
        """Link the best checkpoint to ``best/model.ckpt`` and copy its metrics JSON to
        ``metrics_json``; the published prefix."""
        payload = self._read()
        if payload is None:
            raise OdflowError(f"no evaluation was kept in {self.directory} (training evaluated "
                              "nothing: --eval_every -1?), so there is no best checkpoint")
        published = self.directory / PUBLISHED
        _copy_checkpoint(self.prefix(payload["global_step"]), published)
        atomic_write_text(metrics_json, json.dumps(payload, indent=2) + "\n")
        log.info("the best evaluation was at step %d (%s %.4f): %s", payload["global_step"],
                 METRIC, payload["metrics"][METRIC], published)
        return published


# -- eval/metrics.json for export.checkpoint ---------------------------------------------------


def _load(path: str | os.PathLike) -> dict[str, Any]:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        int(payload["global_step"])
        payload["metrics"][METRIC]
    except FileNotFoundError:
        raise OdflowError(f"{path}: metrics file not found") from None
    except (ValueError, KeyError, TypeError) as error:
        raise OdflowError(f"{path}: not an odflow metrics JSON ({error!r} missing or "
                          "wrong); train again to write it") from None
    return payload


def choose_metrics(last: str | os.PathLike, best: str | os.PathLike, checkpoint: str,
                   output: str | os.PathLike) -> dict[str, Any]:
    """Write ``output``: the ``checkpoint`` ("last" or "best") evaluation's metrics JSON with
    ``exported`` = which checkpoint and step the export holds, and the last and best steps."""
    if checkpoint not in CHOICES:
        raise OdflowError(f"export.checkpoint must be one of {', '.join(CHOICES)}, "
                          f"got {checkpoint!r}")
    runs = {"last": _load(last), "best": _load(best)}
    chosen = dict(runs[checkpoint])
    chosen["exported"] = {
        "checkpoint": checkpoint,
        "global_step": int(chosen["global_step"]),
        "last_step": int(runs["last"]["global_step"]),
        "best_step": int(runs["best"]["global_step"]),
        "best_mAP": runs["best"]["metrics"][METRIC],
    }
    atomic_write_text(output, json.dumps(chosen, indent=2) + "\n")
    log.info("%s: the %s checkpoint, step %d (%s %.4f)", output, checkpoint,
             chosen["global_step"], METRIC, chosen["metrics"][METRIC])
    return chosen


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="exported_metrics.py",
        description="Write eval/metrics.json for the exported checkpoint (export.checkpoint): "
                    "the last or the best evaluation's COCO metrics, naming its step.")
    parser.add_argument("--last", required=True, help="metrics JSON of the final evaluation")
    parser.add_argument("--best", required=True, help="metrics JSON of the best evaluation")
    parser.add_argument("--checkpoint", required=True, choices=CHOICES)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    setup_logging(None)
    choose_metrics(args.last, args.best, args.checkpoint, args.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
