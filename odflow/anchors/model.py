"""The model's anchors and matcher threshold, from a pipeline config alone (no weights).

The anchors depend on the feature maps' sizes, which the feature extractor computes from the
input size (its layers are made but never run, well under a second); the anchor generator
then tiles them exactly as the detector does (``odflow.model.anchors``), so coverage is
measured on the very anchors training matches against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

_SSD = "model.ssd"


@dataclass(frozen=True)
class ModelAnchors:
    """Anchors (normalised ``[A, 4]``) of one generator config at the model's input size."""

    anchors: np.ndarray
    image_size: tuple[int, int]
    feature_map_shapes: list[tuple[int, int]]
    anchors_per_location: list[int]
    matched_threshold: float


def input_size(config: pipeline_pb2.TrainEvalPipelineConfig) -> tuple[int, int]:
    """The model's input ``(height, width)``: the fixed-shape resizer's, or the padded square
    of a ``keep_aspect_ratio_resizer`` (EfficientDet)."""
    resizer = config.model.ssd.image_resizer
    which = resizer.WhichOneof("image_resizer_oneof")
    if which == "keep_aspect_ratio_resizer":
        from odflow.model.efficientdet_builder import keep_aspect_ratio_size

        return tuple(keep_aspect_ratio_size(config.model.ssd)[0])
    if which != "fixed_shape_resizer":
        raise OdflowError(f"{_SSD}.image_resizer: anchor coverage needs a fixed_shape_resizer "
                          f"or keep_aspect_ratio_resizer (odflow's SSD resizers), not {which}")
    return (resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width)


def boxes_at_input(config: pipeline_pb2.TrainEvalPipelineConfig, boxes: np.ndarray,
                   image_sizes: np.ndarray) -> np.ndarray:
    """Normalised record boxes ``[N, 4]`` in the model input's frame, where anchors live.

    A fixed-shape resizer stretches the whole image to the input: the frame is the image's.
    A ``keep_aspect_ratio_resizer`` with padding scales the longer side to the square input
    and pads the rest, so a box of an ``H x W`` image shrinks along the shorter side by
    ``H / max(H, W)`` (or ``W / max(H, W)``), measured from the top-left corner.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if config.model.ssd.image_resizer.WhichOneof("image_resizer_oneof") != \
            "keep_aspect_ratio_resizer":
        return boxes
    sizes = np.asarray(image_sizes, np.float32).reshape(-1, 2)
    longest = np.maximum(sizes.max(axis=1, keepdims=True), 1.0)
    fraction = np.where(sizes > 0, sizes / longest, 1.0)  # [N, (h, w)]
    return boxes * np.concatenate([fraction, fraction], axis=1)


def matched_threshold(config: pipeline_pb2.TrainEvalPipelineConfig) -> float:
    """``model.ssd.matcher.argmax_matcher.matched_threshold`` (0.5 for a bipartite matcher,
    which pairs every box with one anchor whatever the IoU: 0.5 is the usual quality bar)."""
    matcher = config.model.ssd.matcher
    if matcher.WhichOneof("matcher_oneof") == "argmax_matcher":
        argmax = matcher.argmax_matcher
        if argmax.ignore_thresholds:
            return 0.5
        return float(np.float32(argmax.matched_threshold))
    return 0.5


def feature_map_shapes(config: pipeline_pb2.TrainEvalPipelineConfig) -> list[tuple[int, int]]:
    """The feature maps' ``(height, width)`` at the input size (builds the extractor only)."""
    from odflow.model.builder import FEATURE_EXTRACTORS

    ssd = config.model.ssd
    if config.model.WhichOneof("model") != "ssd":
        raise OdflowError("model: anchor coverage is for SSD models (model.ssd)")
    kind = ssd.feature_extractor.type
    if kind not in FEATURE_EXTRACTORS:
        raise OdflowError(f"{_SSD}.feature_extractor.type: {kind!r} is not one odflow builds; "
                          f"use one of {', '.join(sorted(FEATURE_EXTRACTORS))}")
    height, width = input_size(config)
    extractor = FEATURE_EXTRACTORS[kind](ssd)
    return [(int(h), int(w)) for h, w in extractor.feature_map_shapes(height, width)]


def anchors_for(generator_config: pipeline_pb2.AnchorGenerator, shapes: list[tuple[int, int]],
                image_size: tuple[int, int], threshold: float) -> ModelAnchors:
    """The anchors of ``generator_config`` on feature maps of ``shapes``."""
    from odflow.model.anchors import build_anchor_generator

    generator = build_anchor_generator(generator_config)
    anchors = np.asarray(generator.generate(shapes, *image_size), np.float32)
    return ModelAnchors(anchors, tuple(image_size), list(shapes),
                        generator.num_anchors_per_location(), threshold)


def model_anchors(config: pipeline_pb2.TrainEvalPipelineConfig) -> ModelAnchors:
    """The anchors the detector of ``config`` matches ground truth against."""
    return anchors_for(config.model.ssd.anchor_generator, feature_map_shapes(config),
                       input_size(config), matched_threshold(config))
