"""The exported ``model.ckpt``: the zoo tarball's layout, so an export can seed a new fine-tune.

Name-based (``FeatureExtractor/MobilenetV1/Conv2d_0/weights``, ...), model variables only plus
``global_step`` (int64), and a ``checkpoint`` state file naming it: exactly what the zoo's
``ssd_mobilenet_v1_coco_2018_01_28/`` holds, which every odflow and API tool already reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from odflow import checkpoints
from odflow.export.weights import GLOBAL_STEP

CHECKPOINT_NAME = checkpoints.PREFIX  # "model.ckpt", as in the zoo tarball


def write_export_checkpoint(directory: Path, values: Mapping[str, np.ndarray],
                            global_step: int) -> str:
    """Write ``directory/model.ckpt.{index,data-00000-of-00001}`` and ``directory/checkpoint``."""
    prefix = directory / CHECKPOINT_NAME
    tensors = dict(values)
    tensors[GLOBAL_STEP] = np.asarray(global_step, dtype=np.int64)
    checkpoints.write_bundle(prefix, tensors)
    state = checkpoints.CheckpointState(latest=CHECKPOINT_NAME, all_paths=[CHECKPOINT_NAME])
    (directory / checkpoints.STATE_FILE).write_text(state.render(), encoding="utf-8")
    return str(prefix)
