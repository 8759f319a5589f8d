"""The ground-truth boxes of record files, read without decoding a single image.

Coverage and the anchor fit need only the boxes, so records are parsed in batches for their
box and class lists alone (``tf.io.parse_example``: C++, fast even for WIDER FACE's 160,000
training boxes).  Like the training pipeline (``odflow.inputs.pipeline``), boxes whose class is
outside ``1..num_classes`` are left out: training never sees them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from odflow.data import example as ex
from odflow.data import records
from odflow.errors import OdflowError

_BATCH = 512


@dataclass(frozen=True)
class GroundTruth:
    """Boxes (normalised ``[ymin, xmin, ymax, xmax]`` ``[N, 4]``), their classes ``[N]``, the
    number of boxes of each image ``[images]``, the record files they came from, and each
    box's image ``(height, width)`` ``[N, 2]`` as the record states it (0 when it does not)."""

    boxes: np.ndarray
    classes: np.ndarray
    boxes_per_image: np.ndarray
    files: list[str]
    image_sizes: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.boxes_per_image)


def read_boxes(paths: str | os.PathLike | Sequence[str | os.PathLike], num_classes: int
               ) -> GroundTruth:
    """Every box of the records (files, globs or sharded patterns) whose class the model has."""
    import tensorflow as tf

    files = records.expand_record_paths(paths)
    spec = {key: tf.io.VarLenFeature(tf.float32) for key in (ex.YMIN, ex.XMIN, ex.YMAX, ex.XMAX)}
    spec[ex.CLASS_LABEL] = tf.io.VarLenFeature(tf.int64)
    for key in (ex.HEIGHT, ex.WIDTH):
        spec[key] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    boxes, classes, counts, sizes = [], [], [], []
    for path in files:
        try:
            for batch in tf.data.TFRecordDataset(path).batch(_BATCH):
                parsed = tf.io.parse_example(batch, spec)
                lengths = [parsed[k].indices[:, 0] for k in (ex.YMIN, ex.XMIN, ex.YMAX, ex.XMAX,
                                                             ex.CLASS_LABEL)]
                rows = [np.bincount(np.asarray(rows_of), minlength=int(batch.shape[0]))
                        for rows_of in lengths]
                if any(not np.array_equal(rows[0], other) for other in rows[1:]):
                    raise OdflowError(f"{path}: a record's bbox and class/label lists have "
                                      "different lengths; check it with `odflow data inspect "
                                      f"{path}`")
                box = np.stack([parsed[k].values.numpy() for k in
                                (ex.YMIN, ex.XMIN, ex.YMAX, ex.XMAX)], axis=1)
                label = parsed[ex.CLASS_LABEL].values.numpy()
                image = np.repeat(np.arange(len(rows[0])), rows[0])
                known = (label >= 1) & (label <= num_classes)
                boxes.append(box[known])
                classes.append(label[known])
                counts.append(np.bincount(image[known], minlength=len(rows[0])))
                size = np.stack([parsed[ex.HEIGHT].numpy(), parsed[ex.WIDTH].numpy()], axis=1)
                sizes.append(size[image[known]])
        except tf.errors.OpError as error:
            raise OdflowError(f"{path}: cannot read the records ({error.message.splitlines()[0]});"
                              f" check them with `odflow data inspect {path}`") from None
    if not counts:
        return GroundTruth(np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                           np.zeros(0, np.int64), files, np.zeros((0, 2), np.int64))
    return GroundTruth(np.concatenate(boxes).astype(np.float32).reshape(-1, 4),
                       np.concatenate(classes), np.concatenate(counts), files,
                       np.concatenate(sizes).reshape(-1, 2))


def require_boxes(groundtruth: GroundTruth, num_classes: int) -> None:
    """``OdflowError`` when the records hold no box the model could learn from.

    Coverage of zero boxes prints a meaningless "0 % of 0 boxes", and a fit on them has
    nothing to fit: empty records, or records of other classes, are a mistake to name.
    """
    if len(groundtruth.boxes):
        return
    files = ", ".join(groundtruth.files) or "(no files)"
    raise OdflowError(f"{files}: no boxes of classes 1..{num_classes} in {groundtruth.num_images} "
                      "image(s); build the training records first (an empty or all-negative "
                      "record file has nothing to measure), or check them with "
                      "`odflow data inspect`")


def subsample(boxes: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` boxes, evenly spread over the whole list (deterministic): records are
    often in folder order (WIDER FACE's events), so the first ``limit`` would be biased."""
    if limit <= 0 or len(boxes) <= limit:
        return boxes
    return boxes[np.linspace(0, len(boxes) - 1, limit).round().astype(np.int64)]
