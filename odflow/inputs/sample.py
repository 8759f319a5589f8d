"""What every augmentation takes and returns, and how it draws its random numbers.

An augmentation is a function ``(sample, seed) -> sample``.  ``seed`` is a stateless RNG seed
(int64 ``[2]``) that the pipeline derives from the run's seed and the example's position in the
stream, so a given seed reproduces the same augmented images whatever order the parallel map
finishes them in.  Stateful RNGs (``tf.random.uniform``) could not promise that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf


class Sample(NamedTuple):
    """One image and its boxes while it passes through the augmentations.

    ``image`` is ``[H, W, 3]``, uint8 or float32 in [0, 255] (geometric operations keep uint8,
    which is cheaper to move around; colour operations turn it into float32); ``boxes`` float32
    ``[N, 4]`` normalised ``ymin, xmin, ymax, xmax``; ``classes`` int32 ``[N]``.
    """

    image: tf.Tensor
    boxes: tf.Tensor
    classes: tf.Tensor


Augmentation = Callable[[Sample, tf.Tensor], Sample]


def split_seed(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    """``count`` independent seeds from one, so that each random draw of an operation has its own."""
    seeds = tf.random.experimental.stateless_split(seed, count)
    return [seeds[i] for i in range(count)]


def uniform(seed: tf.Tensor, minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
    """A float32 scalar drawn uniformly from ``[minval, maxval)``."""
    return tf.random.stateless_uniform([], seed=seed, minval=minval, maxval=maxval)


def as_float(image: tf.Tensor) -> tf.Tensor:
    """The image as float32 in [0, 255] (a no-op if it is float32 already)."""
    return image if image.dtype == tf.float32 else tf.cast(image, tf.float32)
