"""``benchmarks/bfloat16.py`` times the same network in both precisions.

The probe's verdict (bfloat16 slower on the demo's layers, 1.21x on the tutorial's) only means
something if its bfloat16 body computes what its float32 body computes (its backward pass is
TF's gradient of that same forward).  The float32 body is the reference: same seeded weights and
images, so the bfloat16 output must agree to bfloat16's ~3 significant digits.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tests.support.scripts import load_script

probe = load_script("benchmarks/bfloat16.py")


def _cosine(a: tf.Tensor, b: tf.Tensor) -> float:
    a, b = a.numpy().ravel(), b.numpy().ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_both_precisions_compute_the_same_body():
    f32 = probe.Body(tf.float32, depth=0.25, size=64, batch=4)
    b16 = probe.Body(tf.bfloat16, depth=0.25, size=64, batch=4)
    want, got = f32(), b16()
    assert want.shape == got.shape == (4, 2, 2, 256)  # five stride-2 layers, 1024 x 0.25
    assert _cosine(want, got) > 0.99


def test_the_check_tells_other_weights_apart():
    """Guards the threshold above: the same body with other weights fails it."""
    f32 = probe.Body(tf.float32, depth=0.25, size=64, batch=4)
    other = probe.Body(tf.float32, depth=0.25, size=64, batch=4)
    other.layers[-1][1].assign(-other.layers[-1][1])  # flip the last pointwise layer
    assert _cosine(f32(), other()) < 0.99


def test_the_step_returns_a_gradient_per_variable():
    grads = probe.body_step(tf.bfloat16, depth=0.25, size=32, batch=2)()
    assert len(grads) == 1 + 4 * len(probe.MOBILENET_V1)
    assert all(g is not None and bool(tf.reduce_all(tf.math.is_finite(tf.cast(g, tf.float32))))
               for g in grads)
