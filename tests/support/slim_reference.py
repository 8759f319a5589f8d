"""Deterministic weights and inputs shared by ``tools/slim_inception_v2_reference.py`` (which
ran TF-slim's own ``inception_v2_base`` on them once) and the test that compares odflow's
network with the saved outputs.  Each value depends only on the variable's name and shape, so
the two sides need no common variable order."""

from __future__ import annotations

import zlib

import numpy as np

DEPTH_MULTIPLIER = 0.25
MIN_DEPTH = 16
IMAGE_SHAPE = (2, 97, 75, 3)  # odd sizes: SAME padding is asymmetric at every stride 2
EPSILON = 0.001


def weight_value(name: str, shape: list[int]) -> np.ndarray:
    """Batch-norm statistics in range and fan-in-scaled weights, so activations neither
    vanish nor all saturate through the 40-odd layers."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith("moving_variance"):
        value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("moving_mean"):
        value = rng.normal(0.0, 0.1, shape)
    elif name.endswith("gamma"):
        value = rng.uniform(0.8, 1.2, shape)
    elif name.endswith("beta"):
        value = rng.normal(0.0, 0.1, shape)
    else:
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        value = rng.normal(0.0, 1.5 / np.sqrt(fan_in), shape)
    return value.astype(np.float32)


def image() -> np.ndarray:
    return np.random.default_rng(123).uniform(-1.0, 1.0, IMAGE_SHAPE).astype(np.float32)
