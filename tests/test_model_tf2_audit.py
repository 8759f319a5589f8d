"""Audit of the TF2 zoo families that have no reference outputs (SSD MobileNet V1 FPN,
FPNLite 640, SSD ResNet50/101/152 V1 FPN, EfficientDet D1-D7) against the TF2 Object Detection
API's code.  Each expected value is worked by hand from upstream's rules (named in each test),
never taken from odflow."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from odflow.model.bifpn import BiFpn
from odflow.model.hyperparams import BatchNormParams, ConvHyperparams, InitializerParams


def _swish_hyperparams() -> ConvHyperparams:
    return ConvHyperparams(initializer=InitializerParams("truncated_normal", stddev=0.03),
                           activation="swish", regularizer_weight=4e-5, force_use_bias=True,
                           batch_norm=BatchNormParams(decay=0.99, scale=True))


def _two_input_node(method: str):
    bifpn = BiFpn("t/bifpn", {3: 4, 4: 8}, 3, 4, 1, 4, method, _swish_hyperparams())
    return bifpn, bifpn.nodes[0]


def test_bifpn_attention_is_upstreams_softmax_over_a_single_column() -> None:
    """``BiFPNCombineLayer._combine_attention`` calls ``tf.nn.softmax`` on the ``[inputs, 1]``
    weights without an axis: over the last axis, of size 1, so every normalised weight is 1
    and the node is the plain sum of its inputs whatever the stored weights (a softmax over
    the inputs would give 2 * e^2 / (e^2 + 1) + ... instead)."""
    bifpn, node = _two_input_node("attention")
    ones = tf.ones([1, 2, 2, 4])
    node.combine_weights.assign([[2.0], [0.0]])
    np.testing.assert_allclose(bifpn._combine(node, [ones, 3 * ones]).numpy(), 4.0, rtol=1e-6)


def test_bifpn_sum_has_no_weights_and_adds() -> None:
    """D6/D7 (``combine_method: 'sum'``): a Keras ``Add`` and no ``bifpn_combine_weights``
    (the D6/D7 key lists hold none: 0 of 1574 keys)."""
    bifpn, node = _two_input_node("sum")
    assert all(n.combine_weights is None for n in bifpn.nodes)
    ones = tf.ones([1, 2, 2, 4])
    np.testing.assert_allclose(bifpn._combine(node, [ones, 3 * ones]).numpy(), 4.0)
