"""The roofline figures the speed benchmarks print (issue 20): a model's float operations by
TF's cost model, and the machine's float32 matmul rate measured in the same process.

A step's FLOPs per second over the matmul GFLOP/s says how much of the CPU's practical peak the
model reaches, a figure that holds on a machine shared with other jobs better than images/s:
both are measured under the same load, a moment apart.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import tensorflow as tf

MATMUL_SIZE = 1024


def matmul_rate(repeats: int = 5, size: int = MATMUL_SIZE) -> float:
    """GFLOP/s of a float32 ``size``-square matmul, the best of ``repeats`` (after one warm-up)."""
    a = tf.random.normal([size, size])
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    product().numpy()
    best = min(_timed(lambda: product().numpy()) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forward_flops(model, height: int, width: int, training: bool = False) -> float:
    """Float ops of ``preprocess -> predict`` on one ``height`` x ``width`` image, by TF's cost
    model (``ProfileOptionBuilder.float_operation``: convolutions, matmuls, elementwise ops
    with registered statistics; the box decoding and NMS after ``predict`` are not counted)."""
    spec = tf.TensorSpec([1, height, width, 3], tf.float32)

    @tf.function
    def forward(images):
        preprocessed, _ = model.preprocess(images)
        return model.predict(preprocessed, training=training)

    graph = forward.get_concrete_function(spec).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One forward convolution of a traced graph: NHWC input, HWIO (or HW,C,multiplier)
    kernel, output, strides and padding."""

    input_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    depthwise: bool

    @property
    def kind(self) -> str:
        if self.depthwise:
            return "depthwise"
        return "1x1" if self.kernel_shape[:2] == (1, 1) else "kxk"

    @property
    def flops(self) -> float:
        """Multiply-adds x 2 of the forward pass; each gradient (input, filter) costs the same."""
        n, h, w, _ = self.output_shape
        kh, kw, cin, cout = self.kernel_shape  # depthwise: cout is the multiplier
        return 2.0 * n * h * w * kh * kw * cin * cout

    @property
    def needs_input_gradient(self) -> bool:
        """The image layer's input gradient is never computed (no variable is upstream)."""
        return self.input_shape[-1] != 3


def conv_layers(graph: tf.Graph) -> list[ConvLayer]:
    """The forward ``Conv2D`` and ``DepthwiseConv2dNative`` ops of a traced graph, with their
    static shapes (the ``gradient_tape/...`` backward ops are not forward convolutions)."""
    layers = []
    for op in graph.get_operations():
        if op.type not in ("Conv2D", "DepthwiseConv2dNative") or "gradient" in op.name:
            continue
        layers.append(ConvLayer(
            tuple(op.inputs[0].shape.as_list()), tuple(op.inputs[1].shape.as_list()),
            tuple(op.outputs[0].shape.as_list()), tuple(op.get_attr("strides")),
            op.get_attr("padding").decode(), op.type == "DepthwiseConv2dNative"))
    return layers


DIRECTIONS = ("forward", "input gradient", "filter gradient")


def _kernel_fns(layer: ConvLayer) -> dict[str, Callable[[], tf.Tensor]]:
    """One ``tf.function`` per direction, each running TF's own kernel (oneDNN on CPU) on
    random data of the layer's shapes and reducing the result to a scalar."""
    x = tf.random.normal(layer.input_shape)
    k = tf.random.normal(layer.kernel_shape)
    dy = tf.random.normal(layer.output_shape)
    strides, padding = list(layer.strides), layer.padding
    ops = tf.raw_ops
    if layer.depthwise:
        forward = lambda: tf.nn.depthwise_conv2d(x, k, strides, padding)
        data = lambda: ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=tf.shape(x), filter=k, out_backprop=dy, strides=strides, padding=padding)
        weights = lambda: ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=tf.shape(k), out_backprop=dy, strides=strides, padding=padding)
    else:
        forward = lambda: tf.nn.conv2d(x, k, strides, padding)
        data = lambda: ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=k, out_backprop=dy, strides=strides, padding=padding)
        weights = lambda: ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(k), out_backprop=dy, strides=strides, padding=padding)
    fns = {"forward": forward, "input gradient": data, "filter gradient": weights}
    if not layer.needs_input_gradient:
        del fns["input gradient"]
    return {d: tf.function(lambda f=f: tf.reduce_sum(f())) for d, f in fns.items()}


def kernel_times(layers: list[ConvLayer], repeats: int = 5
                 ) -> dict[tuple[str, str], tuple[float, float]]:
    """Seconds and FLOPs per (layer kind, direction), summed over ``layers``: each kernel
    alone, the best of ``repeats`` calls after a warm-up (the least disturbed by other
    processes), so the sum is what the convolutions cost with nothing else running."""
    totals: dict[tuple[str, str], list[float]] = {}
    for layer in layers:
        for direction, fn in _kernel_fns(layer).items():
            fn().numpy()
            best = min(_timed(lambda f=fn: f().numpy()) for _ in range(repeats))
            entry = totals.setdefault((layer.kind, direction), [0.0, 0.0])
            entry[0] += best
            entry[1] += layer.flops
    return {key: (seconds, flops) for key, (seconds, flops) in totals.items()}
