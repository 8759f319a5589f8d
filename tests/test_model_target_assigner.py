"""Target assignment on a padded batch, checked against hand-built expectations."""

import math

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.box_coder import FasterRcnnBoxCoder
from odflow.model.matcher import ArgMaxMatcher
from odflow.model.target_assigner import (
    TargetAssigner,
    batch_assign_targets,
    build_target_assigner,
    unmatched_class_label,
)
from odflow.protos import pipeline_pb2

ANCHORS = np.array([[0.0, 0.0, 0.5, 0.5],
                    [0.5, 0.5, 1.0, 1.0],
                    [0.0, 0.5, 0.5, 1.0],
                    [0.1, 0.1, 0.45, 0.45]], np.float32)


def _inputs():
    gt_boxes = np.zeros([2, 3, 4], np.float32)
    gt_boxes[0, 0] = [0.0, 0.0, 0.5, 0.5]  # exactly anchor 0; IoU with anchor 3 is 0.49
    gt_boxes[0, 1] = [0.55, 0.55, 0.95, 0.95]  # inside anchor 1 (IoU 0.64)
    gt_boxes[0, 2] = [0.0, 0.5, 0.5, 1.0]  # padding: equal to anchor 2 but must not match
    gt_boxes[1, 0] = [0.6, 0.0, 0.7, 0.1]  # tiny box, IoU < 0.5 with everything
    gt_classes = np.array([[2, 3, 1], [1, 0, 0]], np.int32)
    return gt_boxes, gt_classes, np.array([2, 1], np.int32)


def test_padded_batch():
    gt_boxes, gt_classes, num = _inputs()
    assigner = TargetAssigner(matcher=ArgMaxMatcher(0.5, 0.5, True, False),
                              negative_class_weight=0.5)
    out = assigner.assign(ANCHORS, gt_boxes, gt_classes, num, num_classes=3)
    match = out["match"].numpy()
    assert match.tolist() == [[0, 1, -1, -1], [-1, -1, -1, -1]]
    cls_targets = out["cls_targets"].numpy()
    assert cls_targets.shape == (2, 4, 4)
    np.testing.assert_array_equal(cls_targets[0], [[0, 0, 1, 0], [0, 0, 0, 1],
                                                   [1, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(cls_targets[1], np.tile([1, 0, 0, 0], (4, 1)))
    np.testing.assert_array_equal(out["cls_weights"].numpy(), [[1, 1, 0.5, 0.5], [0.5] * 4])
    np.testing.assert_array_equal(out["reg_weights"].numpy(), [[1, 1, 0, 0], [0] * 4])
    reg = out["reg_targets"].numpy()
    np.testing.assert_allclose(reg[0, 0], [0, 0, 0, 0], atol=1e-5)
    # Same centre as anchor 1, 0.8 of its size: (0, 0, 5 ln .8, 5 ln .8) by hand.
    np.testing.assert_allclose(reg[0, 1], [0, 0, 5 * math.log(0.8), 5 * math.log(0.8)],
                               atol=2e-5)
    assert np.all(reg[0, 2:] == 0) and np.all(reg[1] == 0)


def test_force_match_and_ignored_weights():
    gt_boxes, gt_classes, num = _inputs()
    assigner = TargetAssigner(matcher=ArgMaxMatcher(0.6, 0.3, True, True))
    out = assigner.assign(ANCHORS, gt_boxes, gt_classes, num, num_classes=3)
    match = out["match"].numpy()
    # Anchor 3 (IoU 0.49 with gt 0) falls in the ignored band; the tiny box of image 1 is
    # forced onto its best anchor (anchor 0 has IoU 0 ... all 0: argmax picks anchor 0).
    assert match[0].tolist() == [0, 1, -1, -2]
    assert match[1, 0] == 0 and (match[1, 1:] == -1).all()
    np.testing.assert_array_equal(out["cls_weights"].numpy()[0], [1, 1, 1, 0])
    np.testing.assert_array_equal(out["reg_weights"].numpy()[1], [1, 0, 0, 0])
    np.testing.assert_array_equal(out["cls_targets"].numpy()[1, 0], [0, 1, 0, 0])


def test_background_as_zeros_and_gt_weights():
    gt_boxes, gt_classes, num = _inputs()
    label = unmatched_class_label(3, encode_background_as_zeros=True)
    out = batch_assign_targets(ANCHORS, gt_boxes, gt_classes, num, 3,
                               unmatched_class_label=label,
                               gt_weights=np.array([[0.25, 1, 1], [1, 1, 1]], np.float32))
    assert not out["cls_targets"].numpy()[0, 2:].any()
    assert out["reg_weights"].numpy()[0, 0] == pytest.approx(0.25)


def test_class_out_of_range_is_reported():
    gt_boxes, gt_classes, num = _inputs()
    gt_classes[0, 0] = 7
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes"):
        batch_assign_targets(ANCHORS, gt_boxes, gt_classes, num, 3)


def test_tf_function_dynamic_shapes():
    gt_boxes, gt_classes, num = _inputs()
    fn = tf.function(lambda b, c, n: batch_assign_targets(ANCHORS, b, c, n, 3)["match"],
                     input_signature=[tf.TensorSpec([None, None, 4]),
                                      tf.TensorSpec([None, None], tf.int32),
                                      tf.TensorSpec([None], tf.int32)])
    assert fn(gt_boxes, gt_classes, num).numpy().tolist() == [[0, 1, -1, -1], [0, -1, -1, -1]]


def test_builder_from_ssd_config():
    ssd = pipeline_pb2.Ssd()
    ssd.similarity_calculator.iou_similarity.SetInParent()
    ssd.matcher.argmax_matcher.force_match_for_each_row = True
    ssd.box_coder.faster_rcnn_box_coder.SetInParent()
    ssd.negative_class_weight = 0.5
    assigner = build_target_assigner(ssd)
    assert assigner.negative_class_weight == 0.5
    ssd.similarity_calculator.thresholded_iou_similarity.SetInParent()
    with pytest.raises(OdflowError, match="thresholded_iou_similarity"):
        build_target_assigner(ssd)


def test_hand_worked_targets_with_unequal_scales():
    """Every number below is worked out by hand (no odflow code computes an expectation).

    anchors: a0 [0, 0, .4, .4], a1 [.2, .2, .6, .6], a2 [.6, .6, 1, 1] (matches nothing).
    gt row 0 = [.2, .25, .6, .6] class 2: IoU .875 with a1 (.14 / .16), .111 with a0.
    gt row 1 = [0, 0, .4, .5] class 1: IoU .8 with a0 (.16 / .2), .2 with a1.
    So a0 <- row 1, a1 <- row 0; with scales (2, 3, 7, 11):
    a0: centre (.2, .2) size .4 x .4 vs (.2, .25) .4 x .5: (0, 3 * .05 / .4, 0, 11 ln 1.25)
    a1: centre (.4, .4) size .4 x .4 vs (.4, .425) .4 x .35: (0, 3 * .025 / .4, 0, 11 ln .875)
    """
    anchors = np.array([[0, 0, .4, .4], [.2, .2, .6, .6], [.6, .6, 1, 1]], np.float32)
    gt_boxes = np.array([[[.2, .25, .6, .6], [0, 0, .4, .5]]], np.float32)
    assigner = TargetAssigner(matcher=ArgMaxMatcher(0.5, 0.5, True, False),
                              box_coder=FasterRcnnBoxCoder((2, 3, 7, 11)),
                              negative_class_weight=0.25)
    out = assigner.assign(anchors, gt_boxes, np.array([[2, 1]], np.int32),
                          np.array([2], np.int32), num_classes=2,
                          gt_weights=np.array([[0.5, 2.0]], np.float32))
    assert out["match"].numpy().tolist() == [[1, 0, -1]]
    np.testing.assert_array_equal(out["cls_targets"].numpy()[0],
                                  [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(out["reg_targets"].numpy()[0], [
        [0, 0.375, 0, 11 * math.log(1.25)],
        [0, 0.1875, 0, 11 * math.log(0.875)],
        [0, 0, 0, 0]], atol=2e-5)
    # Weights follow the matched row (row 1 weighs 2, row 0 weighs 0.5).
    np.testing.assert_allclose(out["reg_weights"].numpy()[0], [2.0, 0.5, 0.0])
    np.testing.assert_allclose(out["cls_weights"].numpy()[0], [2.0, 0.5, 0.25])



def test_unmatched_class_label_values():
    label = unmatched_class_label(3)
    assert label.dtype == tf.float32 and label.numpy().tolist() == [1, 0, 0, 0]
    zeros = unmatched_class_label(3, encode_background_as_zeros=True)
    assert zeros.dtype == tf.float32 and zeros.numpy().tolist() == [0, 0, 0, 0]


def test_builder_passes_matcher_box_coder_and_weight_through():
    ssd = pipeline_pb2.Ssd()
    ssd.similarity_calculator.iou_similarity.SetInParent()
    ssd.matcher.argmax_matcher.matched_threshold = 0.65
    ssd.matcher.argmax_matcher.unmatched_threshold = 0.35
    ssd.box_coder.faster_rcnn_box_coder.y_scale = 8.0
    ssd.negative_class_weight = 0.0  # allowed: unmatched anchors then weigh nothing
    assigner = build_target_assigner(ssd)
    assert assigner.matcher.matched_threshold == pytest.approx(0.65)
    assert assigner.matcher.unmatched_threshold == pytest.approx(0.35)
    assert assigner.box_coder.scale_factors == (8.0, 10.0, 5.0, 5.0)
    assert assigner.negative_class_weight == 0.0
    ssd.negative_class_weight = -0.5
    with pytest.raises(OdflowError, match="model.ssd.negative_class_weight must not be negative"):
        build_target_assigner(ssd)
    ssd.ClearField("matcher")
    with pytest.raises(OdflowError, match="model.ssd.matcher is not set"):
        build_target_assigner(ssd)


def test_zero_weight_box_matches_nothing():
    """A groundtruth row with weight 0 is not a valid row (as upstream: valid_rows =
    weights > 0): the anchor it equals stays unmatched and weighs negative_class_weight."""
    gt_boxes, gt_classes, num = _inputs()
    assigner = TargetAssigner(matcher=ArgMaxMatcher(0.5, 0.5, True, False),
                              negative_class_weight=0.5)
    out = assigner.assign(ANCHORS, gt_boxes, gt_classes, num, num_classes=3,
                          gt_weights=np.array([[0.0, 1, 1], [1, 1, 1]], np.float32))
    assert out["match"].numpy()[0].tolist() == [-1, 1, -1, -1]
    np.testing.assert_array_equal(out["cls_weights"].numpy()[0], [0.5, 1, 0.5, 0.5])
    np.testing.assert_array_equal(out["cls_targets"].numpy()[0, 0], [1, 0, 0, 0])


def test_default_matcher_is_the_zoo_one():
    matcher = TargetAssigner().matcher
    assert (matcher.matched_threshold, matcher.unmatched_threshold,
            matcher.negatives_lower_than_unmatched, matcher.force_match_for_each_row) == (
        0.5, 0.5, True, True)


def test_float64_inputs_give_the_float32_targets():
    """numpy's default float64 for anchors, boxes and the unmatched label is read as float32:
    the targets equal those of float32 inputs, in float32."""
    gt_boxes, gt_classes, num = _inputs()
    label = np.array([1.0, 0, 0, 0])  # float64
    want = batch_assign_targets(ANCHORS, gt_boxes, gt_classes, num, 3,
                                unmatched_class_label=label.astype(np.float32))
    got = batch_assign_targets(ANCHORS.astype(np.float64), gt_boxes.astype(np.float64),
                               gt_classes, num, 3, unmatched_class_label=label)
    for key, value in got.items():
        assert value.dtype == want[key].dtype, key
        np.testing.assert_array_equal(value.numpy(), want[key].numpy(), err_msg=key)
    assert got["cls_targets"].dtype == tf.float32


def test_float64_anchors_alone_are_read_as_float32():
    gt_boxes, gt_classes, num = _inputs()
    got = batch_assign_targets(ANCHORS.astype(np.float64), gt_boxes, gt_classes, num, 3)
    assert got["reg_targets"].dtype == tf.float32
    assert got["match"].numpy().tolist() == [[0, 1, -1, -1], [0, -1, -1, -1]]


def test_float64_boxes_alone_are_read_as_float32():
    gt_boxes, gt_classes, num = _inputs()
    got = batch_assign_targets(ANCHORS, gt_boxes.astype(np.float64), gt_classes, num, 3)
    assert got["reg_targets"].dtype == tf.float32
    assert got["match"].numpy().tolist() == [[0, 1, -1, -1], [0, -1, -1, -1]]


def test_negative_class_weight_message():
    ssd = pipeline_pb2.Ssd()
    ssd.similarity_calculator.iou_similarity.SetInParent()
    ssd.matcher.argmax_matcher.SetInParent()
    ssd.box_coder.faster_rcnn_box_coder.SetInParent()
    ssd.negative_class_weight = -1.0
    with pytest.raises(OdflowError) as error:
        build_target_assigner(ssd)
    assert str(error.value) == "model.ssd.negative_class_weight must not be negative"
