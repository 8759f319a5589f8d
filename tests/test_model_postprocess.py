"""Multi-class NMS: padding, order, classes, clipping, indices; score converters."""

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.postprocess import (
    batch_multiclass_non_max_suppression,
    build_postprocessing,
    build_score_converter,
)
from odflow.protos import pipeline_pb2

BOXES = np.array([[[0.0, 0.0, 0.4, 0.4],
                   [0.0, 0.0, 0.4, 0.41],  # near-duplicate of box 0
                   [0.5, 0.5, 0.9, 0.9],
                   [0.5, 0.5, 1.3, 1.2],  # reaches outside: clipped
                   [1.2, 1.2, 1.5, 1.5]]], np.float32)  # outside the window: dropped
SCORES = np.array([[[0.9, 0.1],
                    [0.8, 0.7],
                    [0.2, 0.95],
                    [0.6, 0.0],
                    [0.99, 0.99]]], np.float32)


def test_padding_order_classes_and_indices():
    extra = np.arange(5 * 3, dtype=np.float32).reshape(1, 5, 3)
    out = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.15, iou_threshold=0.5, max_per_class=10, max_total=6,
        additional_fields={"detection_multiclass_scores": extra})
    assert out["num_detections"].numpy().tolist() == [5.0]
    np.testing.assert_allclose(out["detection_scores"].numpy()[0],
                               [0.95, 0.9, 0.7, 0.6, 0.2, 0.0], rtol=1e-6)
    # 0-based class index into the scores' columns (no background column).
    assert out["detection_classes"].numpy()[0].tolist() == [1, 0, 1, 0, 0, 0]
    assert out["detection_anchor_indices"].numpy()[0].tolist() == [2, 0, 1, 3, 2, 0]
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 3], [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(out["detection_boxes"].numpy()[0, 5], [0, 0, 0, 0])
    np.testing.assert_array_equal(out["detection_multiclass_scores"].numpy()[0, 0], extra[0, 2])
    np.testing.assert_array_equal(out["detection_multiclass_scores"].numpy()[0, 5], [0, 0, 0])
    for key, shape in (("detection_boxes", (1, 6, 4)), ("detection_scores", (1, 6)),
                       ("detection_classes", (1, 6)), ("num_detections", (1,))):
        assert out[key].shape == shape and out[key].dtype == tf.float32


def test_max_total_and_per_class_caps():
    out = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.0, iou_threshold=0.99, max_per_class=1, max_total=3)
    assert out["num_detections"].numpy().tolist() == [0.0]  # each class kept only box 4: outside
    out = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.0, iou_threshold=0.99, max_per_class=5, max_total=3)
    assert out["num_detections"].numpy().tolist() == [3.0]
    np.testing.assert_allclose(out["detection_scores"].numpy()[0], [0.95, 0.9, 0.8])


def test_clip_window_and_coordinate_frame_batch():
    boxes = np.concatenate([BOXES, BOXES * 0.5])
    scores = np.concatenate([SCORES, SCORES])
    window = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]], np.float32)
    out = batch_multiclass_non_max_suppression(
        boxes, scores, score_threshold=0.15, iou_threshold=0.5, max_per_class=10, max_total=8,
        clip_window=window)
    np.testing.assert_allclose(out["detection_boxes"].numpy()[1], out["detection_boxes"].numpy()[0],
                               atol=1e-6)


def test_class_agnostic():
    out = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.15, iou_threshold=0.5, max_per_class=10, max_total=4,
        use_class_agnostic_nms=True)
    assert out["num_detections"].numpy().tolist() == [3.0]
    np.testing.assert_allclose(out["detection_scores"].numpy()[0], [0.95, 0.9, 0.6, 0.0])
    assert out["detection_classes"].numpy()[0].tolist() == [1, 0, 0, 0]


def test_in_tf_function_with_unknown_batch():
    fn = tf.function(
        lambda b, s: batch_multiclass_non_max_suppression(b, s, 0.15, 0.5, 10, 6),
        input_signature=[tf.TensorSpec([None, 5, 4]), tf.TensorSpec([None, 5, 2])])
    out = fn(tf.constant(np.concatenate([BOXES] * 3)), tf.constant(np.concatenate([SCORES] * 3)))
    assert out["detection_boxes"].shape == (3, 6, 4)
    assert out["num_detections"].numpy().tolist() == [5.0] * 3


def test_score_converters_and_builder():
    config = pipeline_pb2.PostProcessing(score_converter=pipeline_pb2.PostProcessing.SIGMOID,
                                         logit_scale=2.0)
    logits = np.array([[0.0, 2.0, -4.0]], np.float32)
    np.testing.assert_allclose(build_score_converter(config)(logits).numpy(),
                               1 / (1 + np.exp(-logits / 2)), rtol=1e-6)
    config.score_converter = pipeline_pb2.PostProcessing.SOFTMAX
    e = np.exp(logits / 2)
    np.testing.assert_allclose(build_score_converter(config)(logits).numpy(),
                               e / e.sum(-1, keepdims=True), rtol=1e-6)
    config.batch_non_max_suppression.score_threshold = 0.15
    config.batch_non_max_suppression.iou_threshold = 0.5
    config.batch_non_max_suppression.max_total_detections = 6
    nms, _ = build_postprocessing(config)
    # The built suppressor clips first, as the zoo's graphs did: see the next test.
    assert nms(BOXES, SCORES)["num_detections"].numpy().tolist() == [4.0]
    config.batch_non_max_suppression.use_combined_nms = True
    with pytest.raises(OdflowError, match="use_combined_nms"):
        build_postprocessing(config)
    config.batch_non_max_suppression.use_combined_nms = False
    config.calibration_config.sigmoid_calibration.SetInParent()
    with pytest.raises(OdflowError, match="calibration_config"):
        build_postprocessing(config)


def test_clip_before_nms_as_the_2018_zoo_graphs():
    """Box 3 clipped to [0.5, 0.5, 1, 1] overlaps box 2 (area 0.16 inside it) with IoU
    0.16 / 0.25 = 0.64 > 0.5, so in class 0 it (0.6) suppresses box 2 (0.2); unclipped the
    IoU is 0.16 / 0.56 = 0.29 and both stay.  Box 4 lies outside: pruned before NMS."""
    args = {"score_threshold": 0.15, "iou_threshold": 0.5, "max_per_class": 10, "max_total": 6}
    after = batch_multiclass_non_max_suppression(BOXES, SCORES, **args)
    before = batch_multiclass_non_max_suppression(BOXES, SCORES, clip_before_nms=True, **args)
    assert after["detection_anchor_indices"].numpy()[0, :5].tolist() == [2, 0, 1, 3, 2]
    assert before["num_detections"].numpy().tolist() == [4.0]
    assert before["detection_anchor_indices"].numpy()[0, :4].tolist() == [2, 0, 1, 3]
    np.testing.assert_allclose(before["detection_scores"].numpy()[0, :4], [0.95, 0.9, 0.7, 0.6])
    np.testing.assert_allclose(before["detection_boxes"].numpy()[0, 3], [0.5, 0.5, 1.0, 1.0])
    # Per class 1 with max_per_class 1 and everything outside gone: box 2 (0.95) survives.
    capped = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.0, iou_threshold=0.99, max_per_class=1, max_total=3,
        clip_before_nms=True)
    assert capped["num_detections"].numpy().tolist() == [2.0]
    np.testing.assert_allclose(capped["detection_scores"].numpy()[0], [0.95, 0.9, 0.0])
