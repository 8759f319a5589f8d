"""Resize images to the model's input size, as the config's ``image_resizer`` says.

Only ``fixed_shape_resizer`` is implemented (the SSD configs use it): every image becomes
``height x width`` whatever its aspect ratio, so normalised boxes stay valid unchanged and the
whole image is the "true" image (no padding).  The resize is TF1's (``tf.compat.v1.image.resize``,
``align_corners=False``, no half-pixel centres), as in the API and in ``SSDMetaArch.preprocess``,
which resizes exported-model inputs: training and inference must see the same pixels.
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


def build_resizer(image_resizer: pipeline_pb2.ImageResizer,
                  field: str = "model.ssd.image_resizer") -> FixedShapeResizer:
    """The resizer of the config; ``OdflowError`` naming the field for any other kind."""
    kind = image_resizer.WhichOneof("image_resizer_oneof")
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
