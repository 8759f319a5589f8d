"""Resize images to the model's input size, as the config's ``image_resizer`` says.

``fixed_shape_resizer`` (the TF1 SSD configs): every image becomes
``height x width`` whatever its aspect ratio, so normalised boxes stay valid unchanged and the
whole image is the "true" image (no padding).  The resize is TF1's (``tf.compat.v1.image.resize``,
``align_corners=False``, no half-pixel centres), as in the API and in ``SSDMetaArch.preprocess``,
which resizes exported-model inputs: training and inference must see the same pixels.
``keep_aspect_ratio_resizer`` with ``pad_to_max_dimension`` (the TF2 zoo's EfficientDet):
``PaddedKeepAspectRatioResizer``, whose padding moves the boxes (``realign_boxes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

_V1 = tf.compat.v1.image.ResizeMethod
_METHODS = {
    pipeline_pb2.BILINEAR: _V1.BILINEAR,
    pipeline_pb2.NEAREST_NEIGHBOR: _V1.NEAREST_NEIGHBOR,
    pipeline_pb2.BICUBIC: _V1.BICUBIC,
    pipeline_pb2.AREA: _V1.AREA,
}


@dataclass(frozen=True)
class FixedShapeResizer:
    height: int = 300
    width: int = 300
    method: int = _V1.BILINEAR
    convert_to_grayscale: bool = False

    def __call__(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``image`` ``[H, W, 3]`` -> (float32 ``[height, width, 3]`` in [0, 255], true shape)."""
        resized = tf.compat.v1.image.resize(image, [self.height, self.width], method=self.method,
                                            align_corners=False)
        resized = tf.cast(resized, tf.float32)
        if self.method == _V1.BICUBIC:
            resized = tf.clip_by_value(resized, 0.0, 255.0)  # bicubic overshoots at edges
        if self.convert_to_grayscale:
            resized = tf.tile(tf.image.rgb_to_grayscale(resized), [1, 1, 3])
        resized = tf.ensure_shape(resized, [self.height, self.width, 3])
        true_shape = tf.constant([self.height, self.width, 3], tf.int32)
        return resized, true_shape


@dataclass(frozen=True)
class PaddedKeepAspectRatioResizer:
    """``keep_aspect_ratio_resizer`` with ``pad_to_max_dimension`` (EfficientDet): the image
    scaled as the API's ``resize_to_range`` (``odflow.model.image_resizer``, the same code as
    the model's own preprocessing) and zero-padded at the bottom/right to ``max_dimension``
    squared.  Normalised boxes are then relative to the unpadded part: ``realign_boxes`` moves
    them into the padded frame, as the TF2 API's input pipeline does (``change_coordinate_frame``
    with window ``[0, 0, max/h, max/w]``)."""

    min_dimension: int
    max_dimension: int
    method: str = "BILINEAR"
    per_channel_pad_value: tuple[float, ...] = (0.0, 0.0, 0.0)

    def __call__(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        from odflow.model.image_resizer import KeepAspectRatioResizer

        resizer = KeepAspectRatioResizer(self.min_dimension, self.max_dimension, self.method,
                                         True, self.per_channel_pad_value)
        resized, true_shape = resizer(tf.cast(image, tf.float32)[tf.newaxis])
        if self.method == "BICUBIC":
            resized = tf.clip_by_value(resized, 0.0, 255.0)
        size = self.max_dimension
        return tf.ensure_shape(resized[0], [size, size, 3]), true_shape[0]

    def realign_boxes(self, boxes: tf.Tensor, true_shape: tf.Tensor) -> tf.Tensor:
        scale = tf.cast(true_shape[:2], tf.float32) / float(self.max_dimension)
        return boxes * tf.tile(scale, [2])


def build_resizer(image_resizer: pipeline_pb2.ImageResizer,
                  field: str = "model.ssd.image_resizer"
                  ) -> FixedShapeResizer | PaddedKeepAspectRatioResizer:
    """The resizer of the config; ``OdflowError`` naming the field for any other kind."""
    kind = image_resizer.WhichOneof("image_resizer_oneof")
    if kind == "keep_aspect_ratio_resizer":
        config = image_resizer.keep_aspect_ratio_resizer
        where = f"{field}.keep_aspect_ratio_resizer"
        if not config.pad_to_max_dimension:
            raise OdflowError(f"{where}.pad_to_max_dimension: odflow needs it true (one input "
                              "size for the batch)")
        if not 0 < config.min_dimension <= config.max_dimension:
            raise OdflowError(f"{where}: min_dimension must be positive and at most "
                              "max_dimension")
        return PaddedKeepAspectRatioResizer(
            config.min_dimension, config.max_dimension,
            pipeline_pb2.ResizeType.Name(config.resize_method),
            tuple(config.per_channel_pad_value) or (0.0, 0.0, 0.0))
    if kind != "fixed_shape_resizer":
        found = f"{kind!r} is" if kind else "no resizer is"
        raise OdflowError(f"{field}: {found} set; odflow supports only fixed_shape_resizer "
                          "(e.g. fixed_shape_resizer { height: 300 width: 300 })")
    config = image_resizer.fixed_shape_resizer
    where = f"{field}.fixed_shape_resizer"
    for name in ("height", "width"):
        if getattr(config, name) < 1:
            raise OdflowError(f"{where}.{name}: must be positive, got {getattr(config, name)}")
    if config.resize_method not in _METHODS:
        raise OdflowError(f"{where}.resize_method: unknown value {config.resize_method}")
    return FixedShapeResizer(height=config.height, width=config.width,
                             method=_METHODS[config.resize_method],
                             convert_to_grayscale=config.convert_to_grayscale)
