"""The roofline figures the speed benchmarks print (issue 20): a model's float operations by
TF's cost model, and the machine's float32 matmul rate measured in the same process.

A step's FLOPs per second over the matmul GFLOP/s says how much of the CPU's practical peak the
model reaches, a figure that holds on a machine shared with other jobs better than images/s:
both are measured under the same load, a moment apart.
"""

from __future__ import annotations

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
