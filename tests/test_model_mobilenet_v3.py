"""MobileNet v3 pieces checked by hand against slim's definitions (mobilenet_v3.py,
conv_blocks.py), and the builder's refusals for what odflow does not build."""

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
