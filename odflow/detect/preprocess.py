"""The model's own resize, for runners whose file starts after it (TFLite).

The frozen graph, the SavedModel and the ONNX model resize inside the graph with
``tf.compat.v1.image.resize(..., align_corners=False)``; a TFLite client must feed the resized
image, and resizing it any other way (PIL, OpenCV) shifts boxes by a fraction of a pixel.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_METHODS = {
    "bilinear": tf.compat.v1.image.ResizeMethod.BILINEAR,
    "nearest_neighbor": tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR,
    "bicubic": tf.compat.v1.image.ResizeMethod.BICUBIC,
    "area": tf.compat.v1.image.ResizeMethod.AREA,
}


def resize_images(images: np.ndarray, size: tuple[int, int],
                  method: str = "bilinear") -> np.ndarray:
    """uint8 or float ``[B, H, W, 3]`` -> float32 ``[B, h, w, 3]`` in ``[0, 255]``."""
    images = np.asarray(images, np.float32)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    resized = tf.compat.v1.image.resize(images, list(size), method=_METHODS[method.lower()],
                                        align_corners=False)
    return np.asarray(resized, np.float32)
