"""Coverage of a pipeline config's training records: the one call training, the preview and
``odflow anchors coverage`` share."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from odflow.anchors.coverage import Coverage, compute_coverage
from odflow.anchors.groundtruth import GroundTruth, read_boxes, subsample
from odflow.anchors.model import ModelAnchors, boxes_at_input, model_anchors
from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

log = logging.getLogger("odflow.train")

#: Box-anchor pairs the training log's coverage line measures at most (boxes evenly sampled
#: beyond it; at least 1,000 boxes), about a second of IoUs: 20,000 boxes against
#: ssd_mobilenet_v1's 1,917 anchors at 300x300, 1,000 against a 640x640 FPN's 51,150.
TRAINING_LOG_MAX_PAIRS = 40_000_000
TRAINING_LOG_MIN_BOXES = 1_000


@dataclass(frozen=True)
class Measured:
    """The coverage, the anchors, the records' boxes, and the boxes as measured (in the model
    input's frame, sampled when asked: ``coverage.best_ious`` is per row of ``boxes``)."""

    coverage: Coverage
    anchors: ModelAnchors
    groundtruth: GroundTruth
    boxes: np.ndarray


def train_record_paths(config: pipeline_pb2.TrainEvalPipelineConfig) -> list[str]:
    """The ``train_input_reader``'s record paths (patterns as written)."""
    reader = config.train_input_reader
    paths = list(reader.tf_record_input_reader.input_path)
    if not paths:
        raise OdflowError("train_input_reader.tf_record_input_reader.input_path: not set; "
                          "name the training records (or pass --records)")
    return paths


def measure_coverage(config: pipeline_pb2.TrainEvalPipelineConfig,
                     paths: Sequence[str] | None = None, max_boxes: int = 0,
                     max_pairs: int = 0) -> Measured:
    """Coverage of the boxes of ``paths`` (default: the training records) by the config's
    anchors; with ``max_boxes`` > 0 at most that many boxes, evenly sampled; with
    ``max_pairs`` > 0 at most that many box-anchor pairs (but ``TRAINING_LOG_MIN_BOXES``)."""
    groundtruth = read_boxes(paths or train_record_paths(config), config.model.ssd.num_classes)
    anchors = model_anchors(config)
    if max_pairs > 0:
        by_pairs = max(TRAINING_LOG_MIN_BOXES, max_pairs // max(1, len(anchors.anchors)))
        max_boxes = min(max_boxes, by_pairs) if max_boxes > 0 else by_pairs
    boxes = subsample(boxes_at_input(config, groundtruth.boxes, groundtruth.image_sizes),
                      max_boxes)
    coverage = compute_coverage(boxes, anchors.anchors, anchors.matched_threshold,
                                anchors.image_size)
    return Measured(coverage, anchors, groundtruth, boxes)


def log_coverage(config: pipeline_pb2.TrainEvalPipelineConfig) -> None:
    """Log ``anchor coverage: 61 % of 4,331 boxes (small 12 %)`` for the training records (at
    most ``TRAINING_LOG_MAX_PAIRS`` box-anchor pairs, boxes evenly sampled).  A problem
    measuring it is a warning, not an error: training reports its own problems with the same
    inputs."""
    try:
        measured = measure_coverage(config, max_pairs=TRAINING_LOG_MAX_PAIRS)
    except OdflowError as error:
        log.warning("anchor coverage: not measured (%s)", error)
        return
    line = measured.coverage.line()
    total = len(measured.groundtruth.boxes)
    if total > measured.coverage.overall.boxes:
        line += f" (an even sample of the {total:,} training boxes)"
    log.info("%s at IoU >= %g; odflow anchors fit searches for better anchors", line,
             measured.coverage.threshold)
