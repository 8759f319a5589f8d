"""Detections from decoded boxes and class scores: score conversion and multi-class NMS.

``batch_multiclass_non_max_suppression`` follows the API's ``batch_non_max_suppression``: per
image and per class, NMS (boxes scoring ``> score_threshold``, up to ``max_per_class``); the
survivors of all classes are sorted by score (ties: lower class first, then NMS order), clipped
to the clip window (boxes left with zero area are dropped), optionally expressed relative to the
window, and the best ``max_total`` kept.  Outputs are padded with zeros to ``max_total``.

Clipping order.  That is the order of the API's ``multiclass_non_max_suppression`` from late
2018 on, in its final TF1 releases and in TF2 (``_clip_window_prune_boxes`` after the
suppression): odflow's default.  The API's early-2018 releases, which made the zoo's exported
graphs (``*_2018_*/frozen_inference_graph.pb``, ``model.ckpt.meta``), clipped each class's
boxes to the window (dropping those left with zero area) *before* the suppression;
``clip_before_nms=True`` selects that order, to reproduce those graphs.  The two differ only
when boxes reach outside the window: clipping changes their overlaps, so which of them suppress
each other.  (The TFLite export's ``TFLite_Detection_PostProcess`` op does not clip at all;
odflow's TFLite runner clips its survivors, which is the later order.)

Classes here are **0-based indices into the scores' class axis, which has no background
column**: the meta-architecture adds 1 to get label-map ids for ``detection_classes``.

Built from standard TF ops only (``tf.image.non_max_suppression_with_scores`` in ``tf.map_fn``,
``tf.math.top_k``) so it runs eagerly, in ``tf.function`` and in exported graphs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import box_ops

NmsFn = Callable[..., dict[str, tf.Tensor]]
ScoreConverter = Callable[[tf.Tensor], tf.Tensor]


def _nms_one(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_size: int,
    iou_threshold: float,
    score_threshold: float,
    soft_nms_sigma: float,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Padded NMS of one box set: (indices [max_size] int32, scores [max_size], valid count)."""
    indices, selected_scores = tf.image.non_max_suppression_with_scores(
        boxes,
        scores,
        max_size,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        soft_nms_sigma=soft_nms_sigma,
    )
    count = tf.size(indices)
    pad = [[0, max_size - count]]
    return tf.pad(indices, pad), tf.pad(selected_scores, pad), count


def batch_multiclass_non_max_suppression(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    score_threshold: float = 0.0,
    iou_threshold: float = 0.6,
    max_per_class: int = 100,
    max_total: int = 100,
    clip_window: tf.Tensor | None = None,
    change_coordinate_frame: bool = True,
    use_class_agnostic_nms: bool = False,
    soft_nms_sigma: float = 0.0,
    additional_fields: Mapping[str, tf.Tensor] | None = None,
    clip_before_nms: bool = False,
) -> dict[str, tf.Tensor]:
    """``boxes [B, A, 4]`` (decoded, normalised), ``scores [B, A, C]`` (converted, no background).

    ``clip_window [B, 4]`` (or ``[4]``) defaults to the whole image ``[0, 0, 1, 1]``.
    ``additional_fields`` maps names to ``[B, A, ...]`` tensors returned gathered at the kept
    anchors under the same names (e.g. ``detection_multiclass_scores``).
    ``clip_before_nms`` clips the boxes to the window (dropping those left with zero area)
    before the suppression instead of after it: the order of the API's 2018 releases, which
    the zoo's exported graphs have.  It matters when boxes reach outside the window: their
    overlaps, and so which of them suppress each other, change with clipping.

    Returns ``detection_boxes [B, max_total, 4]``, ``detection_scores [B, max_total]``,
    ``detection_classes [B, max_total]`` (float32, 0-based, see the module docstring),
    ``num_detections [B]`` float32 and ``detection_anchor_indices [B, max_total]`` int32;
    entries past ``num_detections`` are 0.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    batch = tf.shape(boxes)[0]
    num_anchors = boxes.shape[1]  # None when known only at run time
    num_classes = scores.shape[2]
    if num_classes is None:
        raise ValueError("the class axis of scores must have a static size")

    if clip_window is None:
        clip_window = tf.constant([0.0, 0.0, 1.0, 1.0])
    clip_window = tf.convert_to_tensor(clip_window, tf.float32)
    if clip_window.shape.rank == 1:
        clip_window = tf.broadcast_to(clip_window[None], [batch, 4])
    if clip_before_nms:
        boxes = box_ops.clip_to_window(boxes, clip_window)
        # The API pruned boxes left with no area: none of them may be kept or suppress.
        scores = tf.where((box_ops.area(boxes) > 0.0)[..., None], scores, tf.float32.min)

    if use_class_agnostic_nms:
        nms_scores = tf.reduce_max(scores, axis=2)[..., None]  # [B, A, 1]
        agnostic_classes = tf.argmax(scores, axis=2)  # [B, A], cast to float32 below
        per_set = max_total
    else:
        nms_scores = scores
        per_set = max_per_class
    if num_anchors is not None:
        per_set = min(per_set, num_anchors)
    num_sets = nms_scores.shape[2]

    # One NMS per (image, class): [B*S] box sets over the image's boxes.
    set_scores = tf.reshape(tf.transpose(nms_scores, [0, 2, 1]), [-1, tf.shape(boxes)[1]])
    set_images = tf.repeat(tf.range(batch), num_sets)
    nms = functools.partial(
        _nms_one,
        max_size=per_set,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        soft_nms_sigma=soft_nms_sigma,
    )
    indices, kept_scores, counts = tf.map_fn(
        lambda args: nms(tf.gather(boxes, args[0]), args[1]),
        (set_images, set_scores),
        fn_output_signature=(
            tf.TensorSpec([per_set], tf.int32),
            tf.TensorSpec([per_set], tf.float32),
            tf.TensorSpec([], tf.int32),
        ),
    )
    # Candidates per image in class-major order, [B, S * per_set].
    indices = tf.reshape(indices, [batch, num_sets * per_set])
    kept_scores = tf.reshape(kept_scores, [batch, num_sets * per_set])
    valid = tf.reshape(tf.range(per_set)[None, :] < counts[:, None], [batch, num_sets * per_set])
    if use_class_agnostic_nms:
        classes = tf.gather(agnostic_classes, indices, batch_dims=1)
    else:
        classes = tf.broadcast_to(
            tf.repeat(tf.range(num_sets), per_set)[None, :], tf.shape(indices)
        )
    candidate_boxes = tf.gather(boxes, indices, batch_dims=1)

    candidate_boxes = box_ops.clip_to_window(candidate_boxes, clip_window)
    valid &= box_ops.area(candidate_boxes) > 0.0
    if change_coordinate_frame:
        candidate_boxes = box_ops.change_coordinate_frame(candidate_boxes, clip_window)

    # top_k is stable (equal scores keep index order), which preserves the class-major order.
    total = min(max_total, num_sets * per_set)
    ranked = tf.where(valid, kept_scores, tf.float32.min)
    _, order = tf.math.top_k(ranked, k=total, sorted=True)
    keep = tf.gather(valid, order, batch_dims=1)
    num_detections = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    keep_f = tf.cast(keep, tf.float32)
    pad = [[0, 0], [0, max_total - total]]

    def take(values: tf.Tensor) -> tf.Tensor:
        gathered = tf.gather(values, order, batch_dims=1)
        mask = keep
        for _ in range(gathered.shape.rank - 2):
            mask = mask[..., None]
        gathered = tf.where(mask, gathered, tf.zeros_like(gathered))
        extra = [[0, 0]] * (gathered.shape.rank - 2)
        return tf.pad(gathered, pad + extra)

    anchor_indices = take(indices)
    result = {
        "detection_boxes": take(candidate_boxes),
        "detection_scores": tf.pad(tf.gather(kept_scores, order, batch_dims=1) * keep_f, pad),
        "detection_classes": tf.cast(take(classes), tf.float32),
        "num_detections": tf.cast(num_detections, tf.float32),
        "detection_anchor_indices": anchor_indices,
    }
    for name, values in (additional_fields or {}).items():
        result[name] = take(tf.gather(values, indices, batch_dims=1))
    return result


def build_score_converter(config) -> ScoreConverter:
    """From a ``PostProcessing`` message: IDENTITY / SIGMOID / SOFTMAX of ``logits / logit_scale``."""
    if config.HasField("calibration_config"):
        raise OdflowError(
            "post_processing.calibration_config is set but odflow does not implement score "
            "calibration; remove it"
        )
    if config.logit_scale <= 0:
        raise OdflowError(f"post_processing.logit_scale must be positive, got {config.logit_scale}")
    converters = {0: tf.identity, 1: tf.sigmoid, 2: tf.nn.softmax}
    if config.score_converter not in converters:
        raise OdflowError(f"post_processing.score_converter {config.score_converter} is unknown")
    convert = converters[config.score_converter]
    logit_scale = float(config.logit_scale)

    def score_converter(logits: tf.Tensor) -> tf.Tensor:
        return convert(logits / logit_scale)

    return score_converter


# Fields that only pick an implementation (results unchanged for odflow's static shapes).
_ACCEPTED_NMS_FLAGS = ("use_static_shapes", "use_cpu_nms")
_UNSUPPORTED_NMS_FLAGS = ("use_partitioned_nms", "use_combined_nms", "use_hard_nms")


def build_non_max_suppressor(config, clip_before_nms: bool = False) -> NmsFn:
    """From a ``BatchNonMaxSuppression`` message: ``fn(boxes, scores, clip_window=None,
    additional_fields=None) -> dict`` (see :func:`batch_multiclass_non_max_suppression`).

    The pipeline config has no field for the clipping order (the API never made it one: each
    release had its own), so it comes from odflow's setting (``postprocess.clip_before_nms``,
    the ``--clip_before_nms`` flags): False (default) suppresses first as the API's final TF1
    and TF2 releases do; True clips first as the zoo's 2018 graphs do (the module docstring).
    """
    where = "post_processing.batch_non_max_suppression"
    for flag in _UNSUPPORTED_NMS_FLAGS:
        if getattr(config, flag):
            raise OdflowError(f"{where}.{flag} is set but odflow does not implement it; remove it")
    if config.max_classes_per_detection != 1:
        raise OdflowError(f"{where}.max_classes_per_detection: odflow supports only 1")
    if not 0.0 <= config.iou_threshold <= 1.0:
        raise OdflowError(f"{where}.iou_threshold must lie in [0, 1], got {config.iou_threshold}")
    if config.max_detections_per_class < 1 or config.max_total_detections < 1:
        raise OdflowError(f"{where}: max_detections_per_class and max_total_detections must be >= 1")
    if config.soft_nms_sigma < 0:
        raise OdflowError(f"{where}.soft_nms_sigma must not be negative")
    return functools.partial(
        batch_multiclass_non_max_suppression,
        score_threshold=config.score_threshold,
        iou_threshold=config.iou_threshold,
        max_per_class=config.max_detections_per_class,
        max_total=config.max_total_detections,
        change_coordinate_frame=config.change_coordinate_frame,
        use_class_agnostic_nms=config.use_class_agnostic_nms,
        soft_nms_sigma=config.soft_nms_sigma,
        clip_before_nms=clip_before_nms,
    )


def build_postprocessing(config, clip_before_nms: bool = False
                         ) -> tuple[NmsFn, ScoreConverter]:
    """From a ``PostProcessing`` message: (non-max suppressor, score converter);
    ``clip_before_nms`` as in :func:`build_non_max_suppressor`."""
    if not config.HasField("batch_non_max_suppression"):
        raise OdflowError("post_processing.batch_non_max_suppression is not set")
    return (build_non_max_suppressor(config.batch_non_max_suppression, clip_before_nms),
            build_score_converter(config))
