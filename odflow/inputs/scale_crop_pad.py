"""``random_scale_crop_and_pad_to_square``: EfficientDet's training augmentation (the TF2 zoo's
EfficientDet configs use it, with ``output_size`` their input size and scales 0.1..2.0).

Facts (the TF Object Detection API's ``core/preprocessor.py``, after the EfficientDet paper):
a scale is drawn uniformly from ``[scale_min, scale_max)``; the image is resized (TF1 bilinear)
so that its longer side is ``scale * output_size`` (each side truncated to an integer); when
that is larger than ``output_size``, an ``output_size`` square is cut at a uniformly random
offset (truncated to whole pixels); the result is zero-padded at the bottom/right to
``output_size`` squared.  Boxes move into the crop's frame; boxes entirely outside it are
dropped and the rest clipped to it.  The two offsets are drawn independently here (the API
passed one op seed to both draws).
"""

from __future__ import annotations

import tensorflow as tf

from odflow.inputs.sample import Sample, as_float, split_seed, uniform


def random_scale_crop_and_pad_to_square(sample: Sample, seed: tf.Tensor, output_size: int = 512,
                                        scale_min: float = 0.1, scale_max: float = 2.0
                                        ) -> Sample:
    scale_seed, y_seed, x_seed = split_seed(seed, 3)
    scale = uniform(scale_seed, scale_min, scale_max) if scale_min < scale_max \
        else tf.constant(float(scale_min))
    shape = tf.cast(tf.shape(sample.image)[:2], tf.float32)
    target = scale * float(output_size) * shape / tf.reduce_max(shape)
    scaled = tf.maximum(tf.cast(target, tf.int32), 1)
    spare = tf.cast(tf.maximum(scaled - output_size, 0), tf.float32)
    offset = tf.cast(spare * tf.stack([uniform(y_seed), uniform(x_seed)]), tf.int32)
    image = tf.compat.v1.image.resize(as_float(sample.image), scaled,
                                      method=tf.compat.v1.image.ResizeMethod.BILINEAR,
                                      align_corners=False)
    image = image[offset[0]:offset[0] + output_size, offset[1]:offset[1] + output_size]
    image = tf.image.pad_to_bounding_box(image, 0, 0, output_size, output_size)

    # The crop window in the scaled image's normalised frame, then the boxes in its frame.
    size = tf.cast(scaled, tf.float32)
    start = tf.cast(offset, tf.float32) / size
    extent = float(output_size) / size
    origin = tf.tile(start, [2])
    boxes = (sample.boxes - origin) / tf.tile(extent, [2])
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    inside = (ymin < 1.0) & (xmin < 1.0) & (ymax > 0.0) & (xmax > 0.0)
    boxes = tf.clip_by_value(tf.boolean_mask(boxes, inside), 0.0, 1.0)
    return Sample(image, boxes, tf.boolean_mask(sample.classes, inside))
