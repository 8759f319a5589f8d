"""``keep_aspect_ratio_resizer``: the TF Object Detection API's ``resize_to_range``.

Facts (tensorflow/models ``core/preprocessor.py``): the image is scaled so its shorter side is
``min_dimension``, unless its longer side would then pass ``max_dimension``, in which case the
longer side becomes ``max_dimension`` (each side ``round(side * factor)``, half to even);
resized with TF1's ``resize_images`` (``align_corners=False``, no half-pixel centres); with
``pad_to_max_dimension`` zero-padded at the bottom and right (in pixel values, before the
feature extractor's normalisation; ``per_channel_pad_value`` otherwise) to
``max_dimension`` x ``max_dimension``.  The true image shape ``[h, w, 3]`` (the resized image
inside the padding) bounds the detections' clip window.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

_METHODS = {
    "BILINEAR": tf.compat.v1.image.ResizeMethod.BILINEAR,
    "NEAREST_NEIGHBOR": tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR,
    "BICUBIC": tf.compat.v1.image.ResizeMethod.BICUBIC,
    "AREA": tf.compat.v1.image.ResizeMethod.AREA,
}


def new_size(height: int, width: int, min_dimension: int, max_dimension: int
             ) -> tuple[int, int]:
    """The resized (height, width) for a static image size (``_compute_new_static_size``)."""
    factor = min_dimension / float(min(height, width))
    size = (int(round(height * factor)), int(round(width * factor)))
    if max_dimension and max(size) > max_dimension:
        factor = max_dimension / float(max(height, width))
        size = (int(round(height * factor)), int(round(width * factor)))
    return size


def _dynamic_size(height: tf.Tensor, width: tf.Tensor, min_dimension: int,
                  max_dimension: int) -> tf.Tensor:
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    factor = min_dimension / tf.minimum(h, w)
    large = tf.cast(tf.round(tf.stack([h * factor, w * factor])), tf.int32)
    if not max_dimension:
        return large
    factor = max_dimension / tf.maximum(h, w)
    small = tf.cast(tf.round(tf.stack([h * factor, w * factor])), tf.int32)
    return tf.where(tf.reduce_max(large) > max_dimension, small, large)


class KeepAspectRatioResizer:
    """``__call__(images float [B, H, W, 3]) -> (resized [B, h, w, 3], true shapes [B, 3])``;
    every image of a batch has the input's size, so one size serves the batch."""

    def __init__(self, min_dimension: int, max_dimension: int, method: str = "BILINEAR",
                 pad_to_max_dimension: bool = False,
                 per_channel_pad_value: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.min_dimension = int(min_dimension)
        self.max_dimension = int(max_dimension)
        self.method = method
        self.pad_to_max_dimension = pad_to_max_dimension
        self.pad_value = tf.constant(list(per_channel_pad_value) or [0.0, 0.0, 0.0], tf.float32)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """The fixed output size (with padding), or None when it depends on the image."""
        if self.pad_to_max_dimension:
            return (self.max_dimension, self.max_dimension)
        return None

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        h, w = images.shape[1], images.shape[2]
        if h is not None and w is not None:
            size = tf.constant(new_size(int(h), int(w), self.min_dimension, self.max_dimension))
        else:
            shape = tf.shape(images)
            size = _dynamic_size(shape[1], shape[2], self.min_dimension, self.max_dimension)
        resized = tf.compat.v1.image.resize(images, size, method=_METHODS[self.method],
                                            align_corners=False)
        if self.pad_to_max_dimension:
            resized = tf.image.pad_to_bounding_box(resized - self.pad_value, 0, 0,
                                                   self.max_dimension,
                                                   self.max_dimension) + self.pad_value
        batch = tf.shape(images)[0]
        true_shape = tf.concat([size, [3]], axis=0)
        return resized, tf.tile(true_shape[tf.newaxis], [batch, 1])
