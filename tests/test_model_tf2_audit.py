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


def _tower_output(feature_type: str, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """The box tower of the weight-shared predictor the builder makes for ``feature_type``
    with ``activation`` in its conv_hyperparams, its 1x1 conv the identity and batch norm
    neutral: (tower output, its input / sqrt(1 + epsilon))."""
    from google.protobuf import text_format

    from odflow.model import builder
    from odflow.protos import pipeline_pb2

    config = pipeline_pb2.Ssd()
    text_format.Parse(f"""
        num_classes: 1
        feature_extractor {{ type: '{feature_type}' }}
        box_predictor {{ weight_shared_convolutional_box_predictor {{
          depth: 2 num_layers_before_predictor: 1 kernel_size: 1
          conv_hyperparams {{ activation: {activation}
            regularizer {{ l2_regularizer {{}} }} initializer {{ truncated_normal_initializer {{}} }}
            batch_norm {{ epsilon: 0.001 }} }} }} }}""", config)
    predictor = builder._weight_shared_box_predictor(config, [2], [1])
    tower = predictor.box_tower
    tower.convs[0].weights.assign(tf.eye(2)[tf.newaxis, tf.newaxis])
    x = tf.constant([[[[-3.0, -0.5], [0.5, 7.0]]]])  # [1, 1, 2, 2]
    return tower(x, 0, False).numpy(), x.numpy() / np.sqrt(1.001)


def test_keras_weight_shared_towers_apply_the_configs_activation() -> None:
    """The TF2 API's Keras ``WeightSharedConvolutionalBoxPredictor`` puts
    ``conv_hyperparams.build_activation_layer`` after each tower batch norm (TF1's slim
    predictor hard-coded ReLU6): SWISH gives x * sigmoid(x), for the ``*_keras`` extractors
    (ResNet / MobileNet FPN) as for EfficientDet."""
    got, x = _tower_output("ssd_resnet50_v1_fpn_keras", "SWISH")
    np.testing.assert_allclose(got, x / (1 + np.exp(-x)), rtol=1e-5)
    got, x = _tower_output("ssd_mobilenet_v1_fpn_keras", "RELU_6")
    np.testing.assert_allclose(got, np.clip(x, 0, 6), rtol=1e-5)


def test_tf1_weight_shared_towers_keep_relu6() -> None:
    """TF1's ``ssd_resnet50_v1_fpn`` (slim) hard-coded ``tf.nn.relu6`` whatever the config."""
    got, x = _tower_output("ssd_resnet50_v1_fpn", "SWISH")
    np.testing.assert_allclose(got, np.clip(x, 0, 6), rtol=1e-5)
