"""TensorBoard event files with the tags the API wrote, in the directories it used.

Training scalars go to ``model_dir``, evaluation scalars to ``model_dir/eval_0`` (so
``tensorboard --logdir=ckpt`` shows the tutorial's mAP, AR and loss pages).

``tf.summary.scalar``/``image`` live in the ``tensorboard`` package, which odflow does not
require (a training node needs no web server).  So the events are written with core TF's
``tf.summary.write`` in exactly the layout those functions use (a float32 scalar tensor with the
``scalars`` plugin's metadata; for images a string tensor ``[width, height, png...]`` with the
``images`` plugin's), which TensorBoard and ``odflow.plots`` read as ordinary scalar and image
summaries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

TRAIN_IMAGES_TAG = "train_input_images"


def _metadata(plugin: str) -> bytes:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    ).SerializeToString()


_SCALARS = _metadata("scalars")
_IMAGES = _metadata("images")


class SummaryWriter:
    """A thin wrapper so the loop writes python floats without caring about default writers."""

    def __init__(self, directory: str | os.PathLike):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._writer = tf.summary.create_file_writer(str(directory))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        with self._writer.as_default():
            for tag, value in values.items():
                tf.summary.write(tag, tf.constant(float(value), tf.float32), step=int(step),
                                 metadata=_SCALARS)
        self._writer.flush()

    def images_with_boxes(self, images: tf.Tensor, boxes: tf.Tensor, num_boxes: tf.Tensor,
                          step: int, max_images: int = 3, tag: str = TRAIN_IMAGES_TAG) -> None:
        """A few input images (float in [0, 255]) with their ground-truth boxes drawn."""
        images = tf.convert_to_tensor(images)[:max_images]
        boxes = tf.convert_to_tensor(boxes)[:max_images]
        counts = tf.convert_to_tensor(num_boxes)[:max_images]
        # Padding boxes are zeros; mask them so they are not drawn as a dot in a corner.
        valid = tf.sequence_mask(counts, tf.shape(boxes)[1])
        boxes = tf.where(valid[..., None], boxes, tf.zeros_like(boxes))
        unit = tf.clip_by_value(tf.cast(images, tf.float32) / 255.0, 0.0, 1.0)
        colors = np.array([[1.0, 0.2, 0.2, 1.0], [0.2, 1.0, 0.2, 1.0]], np.float32)
        drawn = tf.image.draw_bounding_boxes(unit, boxes, colors)
        pngs = tf.map_fn(lambda image: tf.io.encode_png(tf.image.convert_image_dtype(
            image, tf.uint8, saturate=True)), drawn, fn_output_signature=tf.string)
        shape = tf.shape(drawn)
        tensor = tf.concat([[tf.strings.as_string(shape[2]), tf.strings.as_string(shape[1])],
                            pngs], axis=0)
        with self._writer.as_default():
            tf.summary.write(tag, tensor, step=int(step), metadata=_IMAGES)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
