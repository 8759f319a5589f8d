"""Geometry on ``[ymin, xmin, ymax, xmax]`` boxes, batch-friendly.

Every pairwise function takes ``boxes1 [..., N, 4]`` and ``boxes2 [..., M, 4]`` with the same
(or broadcastable) leading dimensions and returns ``[..., N, M]``: the target assigner compares
a whole batch of padded groundtruth against the anchors in one op instead of a loop per image.
The ``matched_*`` functions compare boxes elementwise (``[..., 4]`` with ``[..., 4]``).

Degenerate cases follow the TF Object Detection API: an IoU whose intersection is zero is 0
(even when the union is zero too), so empty padded boxes never produce NaN.
"""

from __future__ import annotations

import tensorflow as tf


def _unstack(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    return ymin, xmin, ymax, xmax


def area(boxes: tf.Tensor) -> tf.Tensor:
    """``[..., N, 4] -> [..., N]``; negative for inverted boxes (callers test ``> 0``)."""
    ymin, xmin, ymax, xmax = _unstack(boxes)
    return (ymax - ymin) * (xmax - xmin)


def intersection(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection areas ``[..., N, M]``."""
    ymin1, xmin1, ymax1, xmax1 = (c[..., :, None] for c in _unstack(boxes1))
    ymin2, xmin2, ymax2, xmax2 = (c[..., None, :] for c in _unstack(boxes2))
    heights = tf.maximum(0.0, tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2))
    widths = tf.maximum(0.0, tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2))
    return heights * widths


def iou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection over union ``[..., N, M]`` (0 where the intersection is 0)."""
    inter = intersection(boxes1, boxes2)
    unions = area(boxes1)[..., :, None] + area(boxes2)[..., None, :] - inter
    return tf.where(inter > 0.0, tf.math.divide_no_nan(inter, unions), tf.zeros_like(inter))


def ioa(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Pairwise intersection over the area of ``boxes2`` ``[..., N, M]`` (not symmetric).

    The API's ``ioa_similarity`` calls it with groundtruth as ``boxes1`` and anchors as
    ``boxes2``: the fraction of each anchor covered by a groundtruth box.
    """
    inter = intersection(boxes1, boxes2)
    return tf.math.divide_no_nan(inter, area(boxes2)[..., None, :])


def neg_sq_dist(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Pairwise negative squared Euclidean distance between the 4-vectors ``[..., N, M]``."""
    diff = boxes1[..., :, None, :] - boxes2[..., None, :, :]
    return -tf.reduce_sum(tf.square(diff), axis=-1)


def _matched_intersection_and_union(boxes1: tf.Tensor,
                                    boxes2: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    ymin1, xmin1, ymax1, xmax1 = _unstack(boxes1)
    ymin2, xmin2, ymax2, xmax2 = _unstack(boxes2)
    heights = tf.maximum(0.0, tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2))
    widths = tf.maximum(0.0, tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2))
    inter = heights * widths
    return inter, area(boxes1) + area(boxes2) - inter


def matched_iou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Elementwise IoU of ``[..., 4]`` and ``[..., 4]`` -> ``[...]`` (0 for empty unions)."""
    inter, unions = _matched_intersection_and_union(boxes1, boxes2)
    return tf.math.divide_no_nan(inter, unions)


def matched_giou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Elementwise generalised IoU (IoU minus the empty fraction of the enclosing box)."""
    inter, unions = _matched_intersection_and_union(boxes1, boxes2)
    iou_ = tf.math.divide_no_nan(inter, unions)
    ymin1, xmin1, ymax1, xmax1 = _unstack(boxes1)
    ymin2, xmin2, ymax2, xmax2 = _unstack(boxes2)
    hull = (tf.maximum(ymax1, ymax2) - tf.minimum(ymin1, ymin2)) * (
        tf.maximum(xmax1, xmax2) - tf.minimum(xmin1, xmin2)
    )
    penalty = tf.where(hull > 0.0, tf.math.divide_no_nan(hull - unions, hull), iou_)
    return iou_ - penalty


def clip_to_window(boxes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Clip ``[..., N, 4]`` boxes to ``window`` ``[..., 4]`` (one window per leading index)."""
    wymin, wxmin, wymax, wxmax = (w[..., None] for w in _unstack(window))
    ymin, xmin, ymax, xmax = _unstack(boxes)
    ymin = tf.clip_by_value(ymin, wymin, wymax)
    ymax = tf.clip_by_value(ymax, wymin, wymax)
    xmin = tf.clip_by_value(xmin, wxmin, wxmax)
    xmax = tf.clip_by_value(xmax, wxmin, wxmax)
    return tf.stack([ymin, xmin, ymax, xmax], axis=-1)


def change_coordinate_frame(boxes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Express ``[..., N, 4]`` boxes relative to ``window`` ``[..., 4]`` (window -> [0,0,1,1])."""
    wymin, wxmin, wymax, wxmax = (w[..., None, None] for w in _unstack(window))
    height = wymax - wymin
    width = wxmax - wxmin
    origin = tf.concat([wymin, wxmin, wymin, wxmin], axis=-1)
    size = tf.concat([height, width, height, width], axis=-1)
    return (boxes - origin) / size


def center_size(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """``[..., 4]`` corners -> (ycenter, xcenter, height, width), each ``[...]``."""
    ymin, xmin, ymax, xmax = _unstack(boxes)
    height = ymax - ymin
    width = xmax - xmin
    return ymin + 0.5 * height, xmin + 0.5 * width, height, width


def corners(ycenter: tf.Tensor, xcenter: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`center_size`: ``[..., 4]`` corner boxes."""
    return tf.stack(
        [ycenter - 0.5 * height, xcenter - 0.5 * width, ycenter + 0.5 * height, xcenter + 0.5 * width],
        axis=-1,
    )
