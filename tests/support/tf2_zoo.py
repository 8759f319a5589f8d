"""The TF2 zoo fixtures (tests/fixtures/tf2_zoo: configs and checkpoint key lists, see its
SOURCE.md) and the numerical references in ../shared/reference/tf2_zoo/refs (read in place)."""

from __future__ import annotations

import ast
import gzip
import os
from pathlib import Path

import pytest
from google.protobuf import text_format

from odflow.model.tf2_checkpoint import KEY_SUFFIX
from odflow.protos import pipeline_pb2

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tf2_zoo"
REPO = Path(__file__).parent.parent.parent
# ../shared/reference/tf2_zoo relative to the repository root; ODFLOW_TF2_ZOO_REFERENCE points
# elsewhere (a checkout that does not sit beside ../shared, e.g. a git worktree).
SHARED = Path(os.environ.get("ODFLOW_TF2_ZOO_REFERENCE",
                             REPO.parent / "shared" / "reference" / "tf2_zoo"))
BOOKKEEPING = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter")

# The 10 SSD MobileNet / ResNet configs -> the key list that holds their keys (identical
# lists are stored once, see SOURCE.md).
CONFIGS = {
    "ssd_mobilenet_v2_320x320_coco17_tpu-8": "ssd_mobilenet_v2_320x320_coco17_tpu-8",
    "ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8": "ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8",
    "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8":
        "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8",
    "ssd_mobilenet_v2_fpnlite_640x640_coco17_tpu-8":
        "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8",
    "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8": "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet50_v1_fpn_1024x1024_coco17_tpu-8": "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet101_v1_fpn_640x640_coco17_tpu-8": "ssd_resnet101_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet101_v1_fpn_1024x1024_coco17_tpu-8": "ssd_resnet101_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet152_v1_fpn_640x640_coco17_tpu-8": "ssd_resnet152_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet152_v1_fpn_1024x1024_coco17_tpu-8": "ssd_resnet152_v1_fpn_640x640_coco17_tpu-8",
}


def pipeline(name: str, *overrides: str) -> pipeline_pb2.TrainEvalPipelineConfig:
    """The config as shipped (loaded by odflow.config) with text overrides merged into
    ``model``."""
    from odflow import config as odflow_config
    loaded = odflow_config.load(FIXTURES / "configs" / f"{name}.config")
    for text in overrides:
        text_format.Merge(text, loaded.model)
    return loaded


def keys(name: str) -> dict[str, tuple[list[int], str]]:
    """Checkpoint key (without the suffix) -> (shape, dtype), bookkeeping keys included."""
    path = FIXTURES / "variables" / f"{CONFIGS.get(name, name)}.txt.gz"
    listed = {}
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        key, rest = line.split(" ", 1)
        shape, after = rest.split("] ", 1)
        listed[key.removesuffix(KEY_SUFFIX)] = (ast.literal_eval(shape + "]"),
                                                after.split(" ")[0])
    return listed


def _require(path: Path) -> Path:
    """``path`` if it exists; else skip the test, or fail it on CI (``ODFLOW_CI`` set)."""
    if not path.is_file():
        message = f"TF2 zoo reference file {path} is missing"
        if os.environ.get("ODFLOW_CI"):
            pytest.fail(message + " (ODFLOW_CI is set: the references must be present)")
        pytest.skip(message)
    return path


def refs(name: str) -> Path:
    """``../shared/reference/tf2_zoo/refs/<name>`` (skipped when missing, failed on CI)."""
    folder = SHARED / "refs" / name
    _require(folder / "refs.npz")
    _require(folder / "checkpoint" / "ckpt-0.index")
    return folder


def image(name: str):
    """``refs/images/<name>`` as decoded uint8 [H, W, 3]."""
    import tensorflow as tf
    path = _require(SHARED / "refs" / "images" / name)
    return tf.io.decode_png(tf.io.read_file(str(path)), channels=3)
