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
    # The built suppressor suppresses first (the API's final TF1 and TF2 order); asked to, it
    # clips first as the zoo's 2018 graphs did: see test_clip_before_nms_as_the_2018_zoo_graphs.
    assert nms(BOXES, SCORES)["num_detections"].numpy().tolist() == [5.0]
    nms_2018, _ = build_postprocessing(config, clip_before_nms=True)
    assert nms_2018(BOXES, SCORES)["num_detections"].numpy().tolist() == [4.0]
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


# Two straddling pairs, worked by hand (window [0, 0, 1, 1], IoU threshold 0.5).  Class 0:
#   a [0.6, 0, 1.4, 0.5] (0.9, reaches below the window; area 0.4, clipped [0.6, 0, 1, 0.5]: 0.2)
#   b [0.4, 0, 1.0, 0.5] (0.8; area 0.3)
#   unclipped: a & b = 0.4 x 0.5 = 0.2, union 0.4 + 0.3 - 0.2 = 0.5, IoU 0.4: both kept;
#   clipped:   a & b = 0.2, union 0.2 + 0.3 - 0.2 = 0.3, IoU 0.67: a suppresses b.
# Class 1:
#   c [0, 0.6, 0.5, 1.6] (0.7, reaches right; area 0.5, clipped [0, 0.6, 0.5, 1]: 0.2)
#   d [0, 0.9, 0.5, 1.7] (0.6; area 0.4, clipped [0, 0.9, 0.5, 1]: 0.05)
#   unclipped: c & d = 0.7 x 0.5 = 0.35, union 0.5 + 0.4 - 0.35 = 0.55, IoU 0.64: c suppresses d;
#   clipped:   c & d = 0.1 x 0.5 = 0.05, union 0.2 + 0.05 - 0.05 = 0.2, IoU 0.25: both kept.
STRADDLING = np.array([[[0.6, 0.0, 1.4, 0.5], [0.4, 0.0, 1.0, 0.5],
                        [0.0, 0.6, 0.5, 1.6], [0.0, 0.9, 0.5, 1.7]]], np.float32)
STRADDLING_SCORES = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.0, 0.6]]], np.float32)


@pytest.mark.parametrize(("clip_before_nms", "anchors", "scores", "classes", "boxes"), [
    # The API's final TF1 and TF2 order (the default): NMS on the raw boxes, then each survivor
    # clipped (_clip_window_prune_boxes): a, b and c; d was suppressed by c.
    (None, [0, 1, 2], [0.9, 0.8, 0.7], [0, 0, 1],
     [[0.6, 0.0, 1.0, 0.5], [0.4, 0.0, 1.0, 0.5], [0.0, 0.6, 0.5, 1.0]]),
    # The zoo's 2018 graphs: clipped first, so a suppresses b and c no longer suppresses d.
    (True, [0, 2, 3], [0.9, 0.7, 0.6], [0, 1, 1],
     [[0.6, 0.0, 1.0, 0.5], [0.0, 0.6, 0.5, 1.0], [0.0, 0.9, 0.5, 1.0]]),
])
def test_built_suppressor_clips_after_nms_unless_asked(clip_before_nms, anchors, scores,
                                                       classes, boxes):
    config = pipeline_pb2.PostProcessing(batch_non_max_suppression={
        "score_threshold": 0.1, "iou_threshold": 0.5, "max_detections_per_class": 10,
        "max_total_detections": 5})
    nms, _ = (build_postprocessing(config) if clip_before_nms is None
              else build_postprocessing(config, clip_before_nms=clip_before_nms))
    out = {key: value.numpy()[0] for key, value in nms(STRADDLING, STRADDLING_SCORES).items()}
    assert out["num_detections"] == 3.0
    assert out["detection_anchor_indices"][:3].tolist() == anchors
    np.testing.assert_allclose(out["detection_scores"], scores + [0.0, 0.0], rtol=1e-6)
    assert out["detection_classes"][:3].tolist() == classes
    np.testing.assert_allclose(out["detection_boxes"][:3], boxes, atol=1e-6)
    np.testing.assert_array_equal(out["detection_boxes"][3:], 0.0)


def test_soft_nms_decays_overlapping_scores():
    """soft_nms_sigma > 0: Gaussian soft-NMS (Bodla et al., as tf.image's kernel): a box
    overlapping a kept one with IoU u keeps score * exp(-u**2 / (2 sigma)) instead of being
    dropped.  Boxes 0 and 1: IoU 0.5 exactly (1 x 2 and 1 x 1 inside it)."""
    boxes = np.array([[[0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.25], [0.0, 0.75, 1.0, 1.0]]],
                     np.float32)
    scores = np.array([[[0.9], [0.8], [0.3]]], np.float32)
    out = batch_multiclass_non_max_suppression(boxes, scores, iou_threshold=1.0,
                                               max_per_class=3, max_total=3, soft_nms_sigma=0.5)
    decayed = 0.8 * np.exp(-0.25 / (2 * 0.5))
    np.testing.assert_allclose(out["detection_scores"].numpy()[0], [0.9, decayed, 0.3],
                               rtol=1e-5)
    assert out["detection_anchor_indices"].numpy()[0].tolist() == [0, 1, 2]
    hard = batch_multiclass_non_max_suppression(boxes, scores, iou_threshold=0.4,
                                                max_per_class=3, max_total=3)
    assert hard["num_detections"].numpy().tolist() == [2.0]


def test_window_as_one_box_and_absolute_frame():
    """A [4] clip window applies to every image; change_coordinate_frame False keeps the
    boxes in image coordinates (clipped), True expresses them relative to the window."""
    boxes = np.array([[[0.1, 0.1, 0.3, 0.6]], [[0.2, 0.0, 0.4, 0.2]]], np.float32)
    scores = np.array([[[0.9]], [[0.8]]], np.float32)
    window = np.array([0.0, 0.0, 0.5, 0.5])  # float64, read as float32
    absolute = batch_multiclass_non_max_suppression(
        boxes, scores, max_per_class=1, max_total=1, clip_window=window,
        change_coordinate_frame=False)
    np.testing.assert_allclose(absolute["detection_boxes"].numpy()[:, 0],
                               [[0.1, 0.1, 0.3, 0.5], [0.2, 0.0, 0.4, 0.2]], atol=1e-6)
    relative = batch_multiclass_non_max_suppression(
        boxes, scores, max_per_class=1, max_total=1, clip_window=window)
    np.testing.assert_allclose(relative["detection_boxes"].numpy()[:, 0],
                               [[0.2, 0.2, 0.6, 1.0], [0.4, 0.0, 0.8, 0.4]], atol=1e-6)


def test_class_agnostic_keeps_up_to_max_total_not_max_per_class():
    """Class-agnostic NMS is one box set per image, capped by max_total (the API)."""
    out = batch_multiclass_non_max_suppression(
        BOXES, SCORES, score_threshold=0.15, iou_threshold=0.5, max_per_class=1, max_total=4,
        use_class_agnostic_nms=True)
    assert out["num_detections"].numpy().tolist() == [3.0]
    assert out["detection_anchor_indices"].numpy()[0, :3].tolist() == [2, 0, 3]


def test_two_dimensional_additional_field_and_int_inputs():
    """A [B, A] additional field comes back [B, max_total], zero past num_detections."""
    ids = np.array([[10, 11, 12, 13, 14]], np.int32)
    out = batch_multiclass_non_max_suppression(
        BOXES.astype(np.float64), SCORES.astype(np.float64), score_threshold=0.15,
        iou_threshold=0.5, max_per_class=10, max_total=6, additional_fields={"ids": ids})
    assert out["ids"].numpy().tolist() == [[12, 10, 11, 13, 12, 0]]
    assert out["detection_scores"].dtype == tf.float32


def test_unknown_anchor_count_and_class_axis():
    """Graph construction only (nothing runs): the anchor axis may be unknown, the class axis
    may not."""
    with tf.Graph().as_default():
        boxes = tf.compat.v1.placeholder(tf.float32, [None, None, 4])
        out = batch_multiclass_non_max_suppression(
            boxes, tf.compat.v1.placeholder(tf.float32, [None, None, 2]), 0.15, 0.5, 10, 6)
        assert out["detection_boxes"].shape.as_list() == [None, 6, 4]
        with pytest.raises(ValueError, match="^the class axis of scores must have a static "
                           "size$"):
            batch_multiclass_non_max_suppression(
                boxes, tf.compat.v1.placeholder(tf.float32, [None, None, None]))


def test_identity_converter_and_converter_errors():
    config = pipeline_pb2.PostProcessing(logit_scale=4.0)  # IDENTITY is the default
    np.testing.assert_allclose(build_score_converter(config)(np.array([[2.0, -8.0]])).numpy(),
                               [[0.5, -2.0]])
    default = build_score_converter(pipeline_pb2.PostProcessing(
        score_converter=pipeline_pb2.PostProcessing.SIGMOID))
    assert float(default(np.zeros([1, 1]))[0, 0]) == 0.5
    for bad in (0.0, -1.0):
        with pytest.raises(OdflowError, match=f"^post_processing.logit_scale must be positive, "
                           f"got {bad}$"):
            build_score_converter(pipeline_pb2.PostProcessing(logit_scale=bad))
    config.calibration_config.sigmoid_calibration.SetInParent()
    with pytest.raises(OdflowError, match="^post_processing.calibration_config is set but odflow "
                       "does not implement score calibration; remove it$"):
        build_score_converter(config)

    class FutureConfig:  # a converter enum value odflow does not know
        score_converter, logit_scale = 3, 1.0

        def HasField(self, name):
            return False

    with pytest.raises(OdflowError, match="^post_processing.score_converter 3 is unknown$"):
        build_score_converter(FutureConfig())


def test_nms_builder_reads_every_field():
    config = pipeline_pb2.BatchNonMaxSuppression(
        score_threshold=0.25, iou_threshold=0.75, max_detections_per_class=7,
        max_total_detections=9, change_coordinate_frame=False, use_class_agnostic_nms=True,
        soft_nms_sigma=0.5, use_static_shapes=True, use_cpu_nms=True)
    nms, _ = build_postprocessing(pipeline_pb2.PostProcessing(batch_non_max_suppression=config))
    assert nms.func is batch_multiclass_non_max_suppression
    assert nms.keywords == {
        "score_threshold": 0.25, "iou_threshold": 0.75, "max_per_class": 7, "max_total": 9,
        "change_coordinate_frame": False, "use_class_agnostic_nms": True, "soft_nms_sigma": 0.5,
        "clip_before_nms": False}
    nms_2018, _ = build_postprocessing(
        pipeline_pb2.PostProcessing(batch_non_max_suppression=config), clip_before_nms=True)
    assert nms_2018.keywords == {**nms.keywords, "clip_before_nms": True}
    defaults, _ = build_postprocessing(pipeline_pb2.PostProcessing(
        batch_non_max_suppression={}))
    assert defaults.keywords["change_coordinate_frame"] is True
    assert defaults.keywords["use_class_agnostic_nms"] is False


WHERE = "^post_processing.batch_non_max_suppression"


@pytest.mark.parametrize("fields, message", [
    ({"use_partitioned_nms": True}, WHERE + ".use_partitioned_nms is set but odflow does not "
     "implement it; remove it$"),
    ({"use_hard_nms": True}, WHERE + ".use_hard_nms is set"),
    ({"max_classes_per_detection": 2}, WHERE + ".max_classes_per_detection: odflow supports "
     "only 1$"),
    ({"iou_threshold": -0.5}, WHERE + r".iou_threshold must lie in \[0, 1\], got -0.5$"),
    ({"iou_threshold": 1.5}, WHERE + r".iou_threshold must lie in \[0, 1\], got 1.5$"),
    ({"max_detections_per_class": 0}, WHERE + ": max_detections_per_class and "
     "max_total_detections must be >= 1$"),
    ({"max_total_detections": 0}, WHERE + ": max_detections_per_class and "),
    ({"soft_nms_sigma": -0.5}, WHERE + ".soft_nms_sigma must not be negative$"),
])
def test_nms_builder_errors(fields, message):
    config = pipeline_pb2.PostProcessing(
        batch_non_max_suppression=pipeline_pb2.BatchNonMaxSuppression(**fields))
    with pytest.raises(OdflowError, match=message):
        build_postprocessing(config)


def test_nms_builder_accepts_the_bounds():
    for iou, count in ((0.0, 1), (1.0, 1)):
        config = pipeline_pb2.PostProcessing(batch_non_max_suppression={
            "iou_threshold": iou, "max_detections_per_class": count,
            "max_total_detections": count})
        assert build_postprocessing(config)[0].keywords["iou_threshold"] == iou
    with pytest.raises(OdflowError, match="^post_processing.batch_non_max_suppression is not "
                       "set$"):
        build_postprocessing(pipeline_pb2.PostProcessing())


def test_defaults_are_the_proto_defaults():
    """score_threshold 0, iou_threshold 0.6, 100 per class, 100 in all, coordinates relative
    to the window (BatchNonMaxSuppression's defaults).  Two boxes with IoU 2/3 (> 0.6): one
    is suppressed; a score of 0.001 passes the threshold 0."""
    boxes = np.array([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.75], [0.6, 0.6, 0.8, 0.8]]],
                     np.float32)
    scores = np.array([[[0.9], [0.8], [0.001]]], np.float32)
    out = batch_multiclass_non_max_suppression(boxes, scores, clip_window=[0.0, 0.0, 0.5, 1.0])
    assert out["detection_scores"].shape == (1, 100)
    assert out["num_detections"].numpy().tolist() == [1.0]  # the third lies outside the window
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 0], [0.0, 0.0, 1.0, 0.5])
    out = batch_multiclass_non_max_suppression(boxes, scores)
    assert out["num_detections"].numpy().tolist() == [2.0]
    assert out["detection_anchor_indices"].numpy()[0, :2].tolist() == [0, 2]


def test_max_per_class_default_caps_one_class_at_100():
    """101 disjoint boxes of one class, max_total 150: the default per-class cap keeps 100."""
    x = np.arange(101, dtype=np.float32) / 101
    boxes = np.stack([np.zeros(101), x, np.full(101, 0.5), x + 0.005], -1)[None]
    scores = np.linspace(1.0, 0.5, 101, dtype=np.float32)[None, :, None]
    out = batch_multiclass_non_max_suppression(boxes.astype(np.float32), scores, max_total=150)
    assert out["num_detections"].numpy().tolist() == [100.0]
    assert out["detection_anchor_indices"].numpy()[0, :100].tolist() == list(range(100))
