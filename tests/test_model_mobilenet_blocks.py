"""MobileNet v2/v3 pieces checked by hand against slim's definitions (mobilenet_v3.py,
conv_blocks.py, mobilenet.py: hard-swish, the squeeze-excite gate and placement, depth
rounding), and the builder's refusals for what odflow does not build."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model.hyperparams import ConvHyperparams, InitializerParams
from odflow.model.inverted_residual import ExpandedConv, make_divisible
from odflow.model.layers import _activate
from tests.support import zoo

PLAIN = ConvHyperparams(initializer=InitializerParams("truncated_normal", stddev=0.1),
                        activation="relu6", regularizer="none")


def test_hard_swish_and_the_squeeze_excite_gate_by_hand() -> None:
    x = tf.constant([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0])
    # hard_swish(x) = x * relu6(x + 3) / 6: 0 below -3, x above 3.
    np.testing.assert_allclose(_activate(x, "hard_swish").numpy(),
                               [0.0, 0.0, -0.375, 0.0, 1.125, 3.0, 4.0], rtol=1e-6)
    # slim's gate is relu6(x + 3) * 0.16667 (not exactly / 6): 1.00002 at saturation.
    np.testing.assert_allclose(_activate(x, "hard_sigmoid").numpy(),
                               [0.0, 0.0, 0.250005, 0.50001, 0.750015, 1.00002, 1.00002],
                               rtol=1e-6)


def test_make_divisible_rounds_as_slim() -> None:
    assert make_divisible(72 / 4) == 24  # 18 -> 16 is more than 10 % down -> 24
    assert make_divisible(120 / 4) == 32
    assert make_divisible(16 / 4) == 8  # at least the divisor
    assert make_divisible(184 / 80 * 80) == 184
    assert make_divisible(32 * 0.35, 8, 16) == 16  # min_depth


def test_squeeze_excite_sits_between_depthwise_and_project() -> None:
    """One block, 2 input channels expanded to 8, no batch norm: computed here with numpy in
    slim's order (expand, relu, depthwise, relu, SE on the depthwise output, project, residual
    absent since depth changes)."""
    tf.random.set_seed(3)
    block = ExpandedConv("b", 2, 3, 8, 3, 1, "relu", PLAIN, squeeze_excite=True)
    assert [u.scope for u in block.units()] == [
        "b/expand", "b/depthwise", "b/squeeze_excite/Conv", "b/squeeze_excite/Conv_1",
        "b/project"]
    assert block.se.squeeze.weights.shape == [1, 1, 8, 8]  # make_divisible(8 / 4) = 8
    for unit in block.units():  # non-zero biases, so a misplaced bias would show
        unit.biases.assign(np.linspace(-0.2, 0.3, unit.biases.shape[0]).astype(np.float32))
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 2)).astype(np.float32)
    got, expansion = block(tf.constant(x))

    def conv1x1(a, unit):
        return a @ unit.weights.numpy()[0, 0] + unit.biases.numpy()

    expanded = np.maximum(conv1x1(x, block.expand), 0)
    padded = np.pad(expanded, [(0, 0), (1, 1), (1, 1), (0, 0)])
    kernel = block.depthwise.weights.numpy()[..., 0]
    depthwise = np.zeros_like(expanded)
    for i in range(5):
        for j in range(5):
            depthwise[0, i, j] = (padded[0, i:i + 3, j:j + 3] * kernel).sum((0, 1))
    depthwise = np.maximum(depthwise + block.depthwise.biases.numpy(), 0)
    pooled = depthwise.mean((1, 2), keepdims=True)
    squeeze = np.maximum(conv1x1(pooled, block.se.squeeze), 0)
    gate = np.clip(conv1x1(squeeze, block.se.excite) + 3, 0, 6) * 0.16667
    want = conv1x1(depthwise * gate, block.project)
    np.testing.assert_allclose(expansion.numpy(), expanded, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_feature_map_sizes_of_v3_large_at_320() -> None:
    model = builder.build(zoo.pipeline("ssd_mobilenet_v3_large_coco_2020_01_14").model, False)
    shapes = model.feature_extractor.feature_map_shapes(320, 320)
    assert shapes == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    maps = model.feature_extractor(tf.zeros([1, 320, 320, 3]))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (20, 20, 672), (10, 10, 480), (5, 5, 512), (3, 3, 256), (2, 2, 256), (1, 1, 128)]


@pytest.mark.parametrize("folder", ["ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18",
                                    "ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03"])
def test_quantized_configs_fail_at_build_time_naming_the_field(folder: str) -> None:
    config = zoo.pipeline(folder)
    with pytest.raises(OdflowError, match=r"graph_rewriter\.quantization is set .* "
                                          "quantization-aware"):
        builder.build_pipeline(config, is_training=True)


def test_unknown_feature_extractor_lists_the_supported_ones() -> None:
    config = zoo.pipeline("ssd_mobilenet_v2_coco_2018_03_29",
                          "ssd { feature_extractor { type: 'ssd_mobilenet_v4' } }")
    with pytest.raises(OdflowError) as error:
        builder.build(config.model, is_training=False)
    message = str(error.value)
    assert "feature_extractor.type 'ssd_mobilenet_v4'" in message
    for name in ("ssd_mobilenet_v1", "ssd_mobilenet_v2", "ssd_mobilenet_v3_large",
                 "ssd_mobilenet_v3_small"):
        assert repr(name) in message


def test_v3_refuses_a_number_of_layers_other_than_six() -> None:
    config = zoo.pipeline("ssd_mobilenet_v3_large_coco_2020_01_14",
                          "ssd { feature_extractor { num_layers: 4 } }")
    with pytest.raises(OdflowError, match="feature_extractor.num_layers: ssd_mobilenet_v3_large"):
        builder.build(config.model, is_training=False)


def test_v2_depth_multiplier_rounds_depths_as_slim() -> None:
    """Depth multiplier 0.35, min_depth 16, worked by hand with slim's rules: block outputs
    make_divisible(d * 0.35, 8, min_depth), expansions make_divisible(input * 6, 8), extra
    layers max(int(d * 0.35), min_depth)."""
    config = zoo.pipeline("ssd_mobilenet_v2_coco_2018_03_29",
                          "ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.35 } }")
    model = builder.build(config.model, is_training=False)
    shapes = {n: v.shape.as_list() for n, v in model.named_variables().items()}
    fe = "FeatureExtractor/MobilenetV2"
    assert shapes[f"{fe}/Conv/weights"] == [3, 3, 3, 16]  # 11.2 -> 16 (min_depth)
    assert f"{fe}/expanded_conv/expand/weights" not in shapes
    assert shapes[f"{fe}/expanded_conv_1/expand/weights"] == [1, 1, 16, 96]
    assert shapes[f"{fe}/expanded_conv_6/project/weights"] == [1, 1, 96, 24]  # 22.4 -> 24
    assert shapes[f"{fe}/expanded_conv_10/project/weights"] == [1, 1, 144, 32]  # 33.6 -> 32
    assert shapes[f"{fe}/expanded_conv_13/expand/weights"] == [1, 1, 32, 192]
    assert shapes[f"{fe}/expanded_conv_16/project/weights"] == [1, 1, 336, 112]
    assert shapes[f"{fe}/Conv_1/weights"] == [1, 1, 112, 448]
    assert shapes[f"{fe}/layer_19_1_Conv2d_2_1x1_89/weights"] == [1, 1, 448, 89]
    assert shapes[f"{fe}/layer_19_2_Conv2d_2_3x3_s2_179/weights"] == [1, 1, 89, 179]
    assert shapes[f"{fe}/layer_19_2_Conv2d_5_3x3_s2_44_depthwise/depthwise_weights"] == [
        3, 3, 22, 1]
    assert shapes["BoxPredictor_0/BoxEncodingPredictor/weights"] == [3, 3, 192, 12]
    assert model.feature_extractor.feature_depths == [192, 448, 179, 89, 89, 44]


def test_v2_explicit_padding_keeps_the_map_sizes() -> None:
    config = zoo.pipeline("ssd_mobilenet_v2_coco_2018_03_29",
                          "ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.35 "
                          "use_explicit_padding: true } }")
    model = builder.build(config.model, is_training=False)
    maps = model.feature_extractor(tf.zeros([1, 300, 300, 3]))
    assert [tuple(m.shape[1:3]) for m in maps] == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2),
                                                   (1, 1)]
    assert model.feature_extractor.feature_map_shapes(300, 300) == [
        tuple(m.shape[1:3]) for m in maps]
