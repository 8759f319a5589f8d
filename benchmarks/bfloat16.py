"""Would bfloat16 make the step faster here?  A MobileNet v1 body in float32 against bfloat16.

The step is bound by oneDNN's convolution, batch-norm and ReLU6 kernels (``train_step.md``), so
the one lever left is less arithmetic or memory per image.  This CPU has AVX512_BF16, and
``train_config.use_bfloat16`` exists upstream; before building it into the model this probe asks
whether oneDNN's bfloat16 kernels are faster at all at our shapes: the 14 separable layers of
MobileNet v1 (depthwise 3x3, pointwise 1x1, fused batch norm, ReLU6), forward and backward, at
the demo's (depth 0.25, 256 px, batch 16) and the tutorial's (depth 1, 300 px, batch 8) sizes.
Variables stay float32 and are cast per use (Keras' ``mixed_bfloat16`` policy does the same).

    python benchmarks/bfloat16.py [--rounds 2] [--calls 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import tensorflow as tf

# MobileNet v1's separable layers: (pointwise output channels at depth 1, depthwise stride).
MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
                (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
SIZES = {"demo": (0.25, 256, 16), "tutorial": (1.0, 300, 8)}  # depth, image size, batch


class Body:
    """MobileNet v1's stem and separable layers, computing in ``dtype`` on float32 variables."""

    def __init__(self, dtype: tf.DType, depth: float, size: int, batch: int) -> None:
        def channels(c: int) -> int:
            return max(8, int(c * depth))

        rng = tf.random.Generator.from_seed(1)
        self.dtype = dtype
        self.stem = tf.Variable(rng.normal([3, 3, 3, channels(32)]) * 0.1)
        self.layers, width = [], channels(32)
        for out, stride in MOBILENET_V1:
            out = channels(out)
            self.layers.append((tf.Variable(rng.normal([3, 3, width, 1]) * 0.1),
                                tf.Variable(rng.normal([1, 1, width, out]) * 0.1),
                                tf.Variable(tf.ones([out])), tf.Variable(tf.zeros([out])),
                                stride))
            width = out
        self.variables = [self.stem] + [v for layer in self.layers for v in layer[:4]]
        self.images = rng.normal([batch, size, size, 3])

    def __call__(self) -> tf.Tensor:
        dtype = self.dtype
        x = tf.nn.relu6(tf.nn.conv2d(tf.cast(self.images, dtype), tf.cast(self.stem, dtype), 2,
                                     "SAME"))
        for depthwise, pointwise, scale, offset, stride in self.layers:
            x = tf.nn.depthwise_conv2d(x, tf.cast(depthwise, dtype), [1, stride, stride, 1],
                                       "SAME")
            x = tf.nn.conv2d(x, tf.cast(pointwise, dtype), 1, "SAME")
            x = tf.raw_ops.FusedBatchNormV3(x=x, scale=scale, offset=offset, mean=tf.zeros([0]),
                                            variance=tf.zeros([0]), epsilon=1e-3,
                                            is_training=True)[0]
            x = tf.nn.relu6(x)
        return tf.cast(x, tf.float32)


def body_step(dtype: tf.DType, depth: float, size: int, batch: int):
    """A ``tf.function`` of one forward + backward pass of the body in ``dtype``."""
    body = Body(dtype, depth, size, batch)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(body())
        return tape.gradient(loss, body.variables)

    return step


def median_seconds(step, calls: int) -> float:
    step()  # trace
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    print("| model body | round | float32 ms | bfloat16 ms | float32 / bfloat16 |")
    print("|---|---|---|---|---|")
    for name, (depth, size, batch) in SIZES.items():
        for round_ in range(1, args.rounds + 1):
            f32 = median_seconds(body_step(tf.float32, depth, size, batch), args.calls)
            b16 = median_seconds(body_step(tf.bfloat16, depth, size, batch), args.calls)
            print(f"| {name} ({depth} x, {size} px, batch {batch}) | {round_} | {f32 * 1e3:.1f} "
                  f"| {b16 * 1e3:.1f} | **{f32 / b16:.2f}** |", flush=True)


if __name__ == "__main__":
    main()
