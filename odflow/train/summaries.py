"""TensorBoard event files with the tags the API wrote, in the directories it used.

Training scalars go to ``model_dir``, evaluation scalars to ``model_dir/eval_0`` (so
``tensorboard --logdir=ckpt`` shows the tutorial's mAP, AR and loss pages).  Plain
``tf.summary.scalar`` events, which ``odflow.plots`` reads back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import tensorflow as tf

EVAL_SUBDIR = "eval_0"
TRAIN_IMAGES_TAG = "train_input_images"


class SummaryWriter:
    """A thin wrapper so the loop writes python floats without caring about default writers."""

    def __init__(self, directory: str | os.PathLike):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._writer = tf.summary.create_file_writer(str(directory))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        with self._writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value), step=int(step))
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
        with self._writer.as_default():
            tf.summary.image(tag, drawn, step=int(step), max_outputs=max_images)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
