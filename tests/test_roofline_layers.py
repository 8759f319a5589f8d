"""``benchmarks/roofline.py``'s convolution accounting (issue 20): the layers found in a traced
graph and their FLOPs, against hand-worked counts.  The timing itself is benchmark output."""

from __future__ import annotations

import tensorflow as tf

from tests.support.scripts import load_script


def _roofline():
    return load_script("benchmarks/roofline.py")


def test_conv_layers_and_flops_of_a_traced_graph() -> None:
    roofline = _roofline()
    image = tf.Variable(tf.zeros([2, 8, 8, 3]))
    stem = tf.Variable(tf.zeros([3, 3, 3, 4]))
    depthwise = tf.Variable(tf.zeros([3, 3, 4, 1]))
    pointwise = tf.Variable(tf.zeros([1, 1, 4, 6]))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            x = tf.nn.conv2d(image, stem, 2, "SAME")  # 8x8 -> 4x4
            x = tf.nn.depthwise_conv2d(x, depthwise, [1, 1, 1, 1], "SAME")
            y = tf.reduce_sum(tf.nn.conv2d(x, pointwise, 1, "VALID"))
        return tape.gradient(y, [stem, depthwise, pointwise])

    layers = roofline.conv_layers(step.get_concrete_function().graph)
    # The gradient ops (Conv2DBackprop*, DepthwiseConv2dNativeBackprop*) are not layers.
    assert [layer.kind for layer in layers] == ["kxk", "depthwise", "1x1"]
    first, middle, last = layers
    assert first.output_shape == (2, 4, 4, 4) and first.strides == (1, 2, 2, 1)
    assert first.padding == "SAME" and not first.needs_input_gradient  # reads the image
    # 2 FLOPs per multiply-add: outputs (2*4*4 positions) x kernel taps x in x out channels.
    assert first.flops == 2 * (2 * 4 * 4) * (3 * 3 * 3) * 4 == 6912
    assert middle.flops == 2 * (2 * 4 * 4) * (3 * 3) * 4 == 2304  # one filter per channel
    assert last.flops == 2 * (2 * 4 * 4) * 4 * 6 == 1536
    assert middle.needs_input_gradient and last.padding == "VALID"
