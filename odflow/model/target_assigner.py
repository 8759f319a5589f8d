"""Training targets for every anchor of a padded groundtruth batch, in one vectorised pass.

For each image: similarity(groundtruth, anchors) -> argmax matcher -> per anchor

- ``cls_targets [B, A, C+1]``: one-hot of the matched box's class id in column ``id`` (column 0
  is background, so label-map id ``k`` sits in column ``k``); unmatched and ignored anchors get
  ``unmatched_class_label`` (background one-hot, or all zeros with
  ``encode_background_as_zeros``);
- ``cls_weights [B, A]``: the matched box's weight, ``negative_class_weight`` for unmatched
  anchors, 0 for ignored ones (the losses broadcast it over classes);
- ``reg_targets [B, A, 4]``: the matched box encoded by the box coder against the anchor, zeros
  elsewhere;
- ``reg_weights [B, A]``: the matched box's weight, 0 elsewhere (so ``sum(reg_weights)`` is the
  number of matched anchors, the ``normalize_loss_by_num_matches`` normaliser);
- ``match [B, A]`` int32: matched row, -1 unmatched, -2 ignored (for the hard example miner).

Padded rows (index ``>= num_boxes``) are invalid rows for the matcher: they match nothing.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import box_ops
from odflow.model.box_coder import FasterRcnnBoxCoder, build_box_coder
from odflow.model.matcher import ArgMaxMatcher
from odflow.model.similarity import SimilarityFn, build_similarity_calculator


class TargetAssigner:
    def __init__(
        self,
        similarity: SimilarityFn = box_ops.iou,
        matcher: ArgMaxMatcher | None = None,
        box_coder: FasterRcnnBoxCoder | None = None,
        negative_class_weight: float = 1.0,
    ) -> None:
        self.similarity = similarity
        self.matcher = matcher or ArgMaxMatcher(0.5, 0.5, True, True)
        self.box_coder = box_coder or FasterRcnnBoxCoder()
        self.negative_class_weight = float(negative_class_weight)

    def assign(
        self,
        anchors: tf.Tensor,
        gt_boxes: tf.Tensor,
        gt_classes: tf.Tensor,
        num_boxes: tf.Tensor,
        num_classes: int,
        unmatched_class_label: tf.Tensor | None = None,
        gt_weights: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """``anchors [A, 4]``, ``gt_boxes [B, N, 4]``, int ``gt_classes [B, N]`` (1-based label
        ids), int ``num_boxes [B]``; optional ``gt_weights [B, N]`` (default 1)."""
        anchors = tf.convert_to_tensor(anchors, tf.float32)
        gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
        gt_classes = tf.cast(gt_classes, tf.int32)
        num_rows = tf.shape(gt_boxes)[1]
        valid = tf.range(num_rows)[None, :] < tf.cast(num_boxes, tf.int32)[:, None]  # [B, N]
        if gt_weights is None:
            weights = tf.cast(valid, tf.float32)
        else:
            weights = tf.where(valid, tf.cast(gt_weights, tf.float32), 0.0)
            valid = valid & (weights > 0.0)
        checked = tf.debugging.assert_equal(
            tf.reduce_all(
                tf.logical_not(valid) | ((gt_classes >= 1) & (gt_classes <= num_classes))
            ),
            True,
            message=f"groundtruth class ids must lie in [1, {num_classes}] (num_classes)",
        )
        with tf.control_dependencies([checked]):
            gt_classes = tf.identity(gt_classes)

        similarity = self.similarity(gt_boxes, anchors[None])  # [B, N, A]
        match = self.matcher.match(similarity, valid_rows=valid)  # [B, A]
        matched = match >= 0
        rows = tf.maximum(match, 0)

        matched_boxes = tf.gather(gt_boxes, rows, batch_dims=1)  # [B, A, 4]
        codes = self.box_coder.encode(matched_boxes, anchors[None])
        reg_targets = tf.where(matched[..., None], codes, 0.0)
        matched_weights = tf.gather(weights, rows, batch_dims=1)
        reg_weights = tf.where(matched, matched_weights, 0.0)
        cls_weights = tf.where(
            matched,
            matched_weights,
            tf.where(match == -1, self.negative_class_weight, 0.0),
        )

        if unmatched_class_label is None:
            unmatched_class_label = tf.one_hot(0, num_classes + 1, dtype=tf.float32)
        unmatched_class_label = tf.convert_to_tensor(unmatched_class_label, tf.float32)
        matched_classes = tf.gather(gt_classes, rows, batch_dims=1)
        one_hot = tf.one_hot(matched_classes, num_classes + 1, dtype=tf.float32)
        cls_targets = tf.where(matched[..., None], one_hot, unmatched_class_label)
        return {
            "cls_targets": cls_targets,
            "cls_weights": cls_weights,
            "reg_targets": reg_targets,
            "reg_weights": reg_weights,
            "match": match,
        }


def unmatched_class_label(num_classes: int, encode_background_as_zeros: bool = False) -> tf.Tensor:
    """Class target of an unmatched anchor: background one-hot, or all zeros (sigmoid style)."""
    if encode_background_as_zeros:
        return tf.zeros([num_classes + 1], tf.float32)
    return tf.one_hot(0, num_classes + 1, dtype=tf.float32)


def batch_assign_targets(
    anchors: tf.Tensor,
    gt_boxes: tf.Tensor,
    gt_classes: tf.Tensor,
    num_boxes: tf.Tensor,
    num_classes: int,
    *,
    target_assigner: TargetAssigner | None = None,
    unmatched_class_label: tf.Tensor | None = None,
    gt_weights: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Targets for a batch (see the module docstring); the zoo's assigner by default."""
    assigner = target_assigner or TargetAssigner()
    return assigner.assign(
        anchors, gt_boxes, gt_classes, num_boxes, num_classes, unmatched_class_label, gt_weights
    )


def build_target_assigner(ssd_config) -> TargetAssigner:
    """From an ``Ssd`` message's ``similarity_calculator``, ``matcher``, ``box_coder`` and
    ``negative_class_weight``."""
    for field in ("similarity_calculator", "matcher", "box_coder"):
        if not ssd_config.HasField(field):
            raise OdflowError(f"model.ssd.{field} is not set")
    if ssd_config.negative_class_weight < 0:
        raise OdflowError("model.ssd.negative_class_weight must not be negative")
    return TargetAssigner(
        similarity=build_similarity_calculator(ssd_config.similarity_calculator),
        matcher=ArgMaxMatcher.from_config(ssd_config.matcher),
        box_coder=build_box_coder(ssd_config.box_coder),
        negative_class_weight=ssd_config.negative_class_weight,
    )
