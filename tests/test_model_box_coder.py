"""faster_rcnn_box_coder: a hand example, the round trip, and batch broadcasting."""

import math

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.box_coder import FasterRcnnBoxCoder, build_box_coder
from odflow.protos import pipeline_pb2


def test_hand_example():
    anchor = [[0.0, 0.0, 0.2, 0.4]]  # centre (0.1, 0.2), h 0.2, w 0.4
    box = [[0.1, 0.1, 0.5, 0.5]]  # centre (0.3, 0.3), h 0.4, w 0.4
    codes = FasterRcnnBoxCoder().encode(tf.constant(box), tf.constant(anchor)).numpy()
    expected = [10 * 0.2 / 0.2, 10 * 0.1 / 0.4, 5 * math.log(2.0), 0.0]
    np.testing.assert_allclose(codes[0], expected, rtol=1e-5, atol=1e-5)


def test_round_trip_and_broadcast():
    rng = np.random.default_rng(0)
    ymin, xmin = rng.uniform(0, 0.5, (2, 3, 5))
    boxes = np.stack([ymin, xmin, ymin + rng.uniform(0.05, 0.5, (3, 5)),
                      xmin + rng.uniform(0.05, 0.5, (3, 5))], axis=-1).astype(np.float32)
    anchors = boxes[0] * 0.9 + 0.03
    coder = FasterRcnnBoxCoder((10, 10, 5, 5))
    codes = coder.encode(boxes, anchors[None])
    assert codes.shape == (3, 5, 4)
    np.testing.assert_allclose(coder.decode(codes, anchors).numpy(), boxes, atol=1e-5)


def test_degenerate_box_stays_finite():
    codes = FasterRcnnBoxCoder().encode(tf.constant([[0.2, 0.2, 0.2, 0.3]]),
                                        tf.constant([[0.0, 0.0, 0.5, 0.5]]))
    assert np.all(np.isfinite(codes.numpy()))


def test_builder():
    proto = pipeline_pb2.BoxCoder()
    proto.faster_rcnn_box_coder.y_scale = 8.0
    assert build_box_coder(proto).scale_factors == (8.0, 10.0, 5.0, 5.0)
    with pytest.raises(OdflowError, match="mean_stddev_box_coder"):
        build_box_coder(pipeline_pb2.BoxCoder(mean_stddev_box_coder={}))
    with pytest.raises(OdflowError, match="positive"):
        FasterRcnnBoxCoder((10, 0, 5, 5))


def test_unequal_scale_factors_hand_computed():
    """Each scale factor multiplies its own coordinate: a swapped or reused factor changes codes.

    anchor centre (0.3, 0.4), size 0.2 x 0.4; box centre (0.35, 0.5), size 0.1 x 0.8.
    ty = 2 * 0.05 / 0.2, tx = 3 * 0.1 / 0.4, th = 7 * ln(0.5), tw = 11 * ln(2), worked by hand.
    """
    coder = FasterRcnnBoxCoder((2.0, 3.0, 7.0, 11.0))
    anchor = tf.constant([[0.2, 0.2, 0.4, 0.6]])
    box = tf.constant([[0.3, 0.1, 0.4, 0.9]])
    codes = coder.encode(box, anchor).numpy()[0]
    expected = [0.5, 0.75, 7 * math.log(0.5), 11 * math.log(2.0)]
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)
    decoded = coder.decode(tf.constant([expected], tf.float32), anchor).numpy()[0]
    np.testing.assert_allclose(decoded, [0.3, 0.1, 0.4, 0.9], atol=1e-6)


def test_no_scale_factors_gives_raw_codes():
    """``scale_factors=None`` (the proto allows it) leaves the codes unscaled."""
    coder = FasterRcnnBoxCoder(None)
    codes = coder.encode(tf.constant([[0.3, 0.1, 0.4, 0.9]]), tf.constant([[0.2, 0.2, 0.4, 0.6]]))
    np.testing.assert_allclose(codes.numpy()[0], [0.25, 0.25, math.log(0.5), math.log(2.0)],
                               rtol=1e-5, atol=1e-6)


def test_scale_factors_below_one_are_valid_and_messages_name_the_fields():
    assert FasterRcnnBoxCoder((0.5, 1.0, 1.0, 1.0)).scale_factors == (0.5, 1.0, 1.0, 1.0)
    with pytest.raises(OdflowError, match="faster_rcnn_box_coder: y_scale, x_scale, "
                       "height_scale and width_scale must all be positive"):
        FasterRcnnBoxCoder((1.0, 1.0, 1.0))
    with pytest.raises(OdflowError, match="box_coder: nothing is set; odflow supports "
                       "faster_rcnn_box_coder"):
        build_box_coder(pipeline_pb2.BoxCoder())


@pytest.mark.parametrize("axis", [0, 1])
def test_degenerate_anchor_and_box_encode_to_exact_finite_codes(axis):
    """EPSILON is *added* to every size: a zero-size side of the anchor and of the box gives
    (0 / eps, log(eps / eps)) = (0, 0) there, and the other side is coded as usual:
    centres 0.1 apart on a 0.2 side -> 10 * 0.5 = 5, equal sides -> 0."""
    box = np.array([0.1, 0.2, 0.1, 0.4], np.float32)  # zero height, width 0.2
    anchor = np.array([0.1, 0.1, 0.1, 0.3], np.float32)  # zero height, width 0.2
    expected = np.array([0.0, 5.0, 0.0, 0.0], np.float32)
    if axis == 1:  # the same with y and x swapped
        box, anchor, expected = box[[1, 0, 3, 2]], anchor[[1, 0, 3, 2]], expected[[1, 0, 3, 2]]
    codes = FasterRcnnBoxCoder().encode(tf.constant([box]), tf.constant([anchor])).numpy()
    np.testing.assert_allclose(codes[0], expected, atol=1e-5)


def test_decode_with_unknown_code_dimension_in_a_graph():
    """Exported graphs may see codes of shape [None, None]; unstacking needs num=4 there."""
    coder = FasterRcnnBoxCoder((2.0, 3.0, 7.0, 11.0))
    anchors = tf.constant([[0.2, 0.2, 0.4, 0.6]])
    decode = tf.function(lambda codes: coder.decode(codes, anchors),
                         input_signature=[tf.TensorSpec([None, None], tf.float32)])
    codes = [[0.5, 0.75, 7 * math.log(0.5), 11 * math.log(2.0)]]
    np.testing.assert_allclose(decode(tf.constant(codes)).numpy()[0], [0.3, 0.1, 0.4, 0.9],
                               atol=1e-6)
