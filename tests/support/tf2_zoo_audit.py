"""Full-size check of TF2 zoo configs too slow for CI (D3-D7, the 1024x1024 ResNets):
build at the config's size, key coverage, ``write_v2`` -> ``restore_v2`` round trip, predict
on a non-square image, postprocess; anchors against the hand-worked counts of
``tests/test_model_tf2_audit_families.py``.

    PYTHONPATH=. python -m tests.support.tf2_zoo_audit ssd_efficientdet_d7_1536x1536_coco17_tpu-32

Prints one line per config (times are of a shared machine: compare nothing across runs) and
exits 1 if any check fails.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from odflow import config as config_io
from odflow.model import builder
from odflow.model.tf2_checkpoint import key_mapping, restore_v2, write_v2
from tests.support import tf2_zoo
from tests.test_model_tf2_audit_families import ANCHORS


def audit(name: str, folder: str) -> list[str]:
    """The failed checks of one config (empty: all passed)."""
    failures = []
    size, _, total = ANCHORS[name]
    pipeline = config_io.load(tf2_zoo.FIXTURES / "configs" / f"{name}.config")
    start = time.time()
    source = builder.build(pipeline.model, is_training=False)
    mapping = key_mapping(source)
    built = time.time()
    prefix = write_v2(source, f"{folder}/{name}/ckpt-0")
    target = builder.build(pipeline.model, is_training=False)
    report = restore_v2(target, prefix, "full")
    if sorted(report.restored) != sorted(mapping.variables):
        failures.append("restore did not fill every variable")
    restored = time.time()
    image = tf.random.uniform([1, size, size - 128, 3], 0, 255, seed=5)
    preprocessed, true_shapes = target.preprocess(image)
    prediction = target.predict(preprocessed, training=False)
    predicted = time.time()
    detections = target.postprocess(prediction, true_shapes)
    if prediction["anchors"].shape != (total, 4):
        failures.append(f"anchors {prediction['anchors'].shape}, expected ({total}, 4)")
    boxes = detections["detection_boxes"][0].numpy()
    if float(detections["num_detections"][0]) != 100 or boxes.min() < 0 or boxes.max() > 1:
        failures.append("postprocess: not 100 detections inside [0, 1]")
    if not np.all(np.isfinite(prediction["box_encodings"].numpy())):
        failures.append("non-finite box encodings")
    print(f"{name}: build {built - start:.0f}s, round trip {restored - built:.0f}s, predict "
          f"{predicted - restored:.0f}s; {len(mapping.variables)} variables, "
          f"{len(mapping.skipped)} keys skipped, {total} anchors: "
          + ("ok" if not failures else "FAILED " + "; ".join(failures)), flush=True)
    return failures


def main(names: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        failed = [name for name in names or sorted(ANCHORS) if audit(name, folder)]
    return int(bool(failed))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
