"""The SSD paper's random crop (``ssd_random_crop``) and the single-window ``random_crop_image``.

A crop window is sampled with ``tf.image.stateless_sample_distorted_bounding_box`` so that it
covers at least ``min_object_covered`` of one of the ground-truth boxes; the boxes are then kept
when their intersection with the window is at least ``overlap_thresh`` of their own area,
moved into the window's frame, and clipped to it.  ``ssd_random_crop`` picks one of several
such operations per image (the paper's "min IoU 0.1, 0.3, ..." choices); with no operations in
the config it uses the API's seven defaults, which is what the seed tutorial trains with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from odflow.inputs.sample import Sample, split_seed, uniform

# How many windows the sampler tries before giving up and returning the whole image (the API's).
_MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class CropOperation:
    """One way to crop; ``random_coef`` is the chance to leave the image uncropped."""

    min_object_covered: float = 1.0
    aspect_ratio_range: tuple[float, float] = (0.75, 1.33)
    area_range: tuple[float, float] = (0.1, 1.0)
    overlap_thresh: float = 0.3
    clip_boxes: bool = True
    random_coef: float = 0.0


#: ``ssd_random_crop {}`` without operations: the API's seven defaults.
DEFAULT_SSD_OPERATIONS: tuple[CropOperation, ...] = tuple(
    CropOperation(min_object_covered=value, aspect_ratio_range=(0.5, 2.0), area_range=(0.1, 1.0),
                  overlap_thresh=value, clip_boxes=True, random_coef=0.15)
    for value in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0))


def crop_boxes_to_window(boxes: tf.Tensor, classes: tf.Tensor, window: tf.Tensor,
                         overlap_thresh: float | tf.Tensor, clip_boxes: bool
                         ) -> tuple[tf.Tensor, tf.Tensor]:
    """The boxes (and their classes) that survive a crop to ``window``, in the window's frame.

    A box survives when it is not entirely outside the window and its intersection with the
    window is at least ``overlap_thresh`` of its own area.  Clipping then removes boxes left
    with no area (degenerate boxes of the input).
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    window = tf.convert_to_tensor(window, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    wymin, wxmin, wymax, wxmax = tf.unstack(window, num=4)
    outside = (ymin >= wymax) | (xmin >= wxmax) | (ymax <= wymin) | (xmax <= wxmin)
    inter_h = tf.maximum(tf.minimum(ymax, wymax) - tf.maximum(ymin, wymin), 0.0)
    inter_w = tf.maximum(tf.minimum(xmax, wxmax) - tf.maximum(xmin, wxmin), 0.0)
    area = (ymax - ymin) * (xmax - xmin)
    overlap = tf.math.divide_no_nan(inter_h * inter_w, area)
    keep = tf.logical_not(outside) & (overlap >= overlap_thresh)
    boxes = tf.boolean_mask(boxes, keep)
    classes = tf.boolean_mask(classes, keep)

    height, width = wymax - wymin, wxmax - wxmin
    boxes = (boxes - tf.stack([wymin, wxmin, wymin, wxmin])) / tf.stack(
        [height, width, height, width])
    if clip_boxes:
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes = tf.boolean_mask(boxes, has_area)
        classes = tf.boolean_mask(classes, has_area)
    return boxes, classes


def _crop(sample: Sample, seed: tf.Tensor, op: CropOperation,
          min_object_covered: float | tf.Tensor, overlap_thresh: float | tf.Tensor) -> Sample:
    image = sample.image
    # The sampler rejects boxes outside [0, 1]; clipping here only affects the window search.
    hints = tf.clip_by_value(sample.boxes, 0.0, 1.0)[tf.newaxis]
    begin, size, window = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=hints, seed=seed,
        min_object_covered=min_object_covered,
        aspect_ratio_range=list(op.aspect_ratio_range), area_range=list(op.area_range),
        max_attempts=_MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    cropped = tf.slice(image, begin, size)
    boxes, classes = crop_boxes_to_window(sample.boxes, sample.classes, window[0, 0],
                                          overlap_thresh, op.clip_boxes)
    return Sample(cropped, boxes, classes)


def _maybe_crop(sample: Sample, seed: tf.Tensor, op: CropOperation,
                min_object_covered: float | tf.Tensor, overlap_thresh: float | tf.Tensor,
                random_coef: float | tf.Tensor) -> Sample:
    coin_seed, crop_seed = split_seed(seed, 2)
    if isinstance(random_coef, (int, float)):
        if random_coef <= 0.0:
            return _crop(sample, crop_seed, op, min_object_covered, overlap_thresh)
        if random_coef >= 1.0:
            return sample
    do_crop = uniform(coin_seed) >= random_coef
    # cond_v2 relaxes the image's static shape to [None, None, 3] where the branches differ.
    return tf.cond(do_crop,
                   lambda: _crop(sample, crop_seed, op, min_object_covered, overlap_thresh),
                   lambda: sample)


def random_crop(sample: Sample, seed: tf.Tensor, op: CropOperation) -> Sample:
    """Crop with probability ``1 - op.random_coef``, as the API's ``random_crop_image``."""
    return _maybe_crop(sample, seed, op, op.min_object_covered, op.overlap_thresh,
                       op.random_coef)


def ssd_random_crop(sample: Sample, seed: tf.Tensor,
                    operations: Sequence[CropOperation] = DEFAULT_SSD_OPERATIONS) -> Sample:
    """Pick one of ``operations`` uniformly at random and apply it (``random_crop``)."""
    if len(operations) == 1:
        return random_crop(sample, seed, operations[0])
    choice_seed, op_seed = split_seed(seed, 2)
    index = tf.random.stateless_uniform([], seed=choice_seed, minval=0, maxval=len(operations),
                                        dtype=tf.int32)
    if len({(op.aspect_ratio_range, op.area_range, op.clip_boxes) for op in operations}) == 1:
        # The operations differ only in values the ops take as tensors (the defaults do):
        # one graph with the picked values is several times faster to build than N branches.
        def pick(name: str) -> tf.Tensor:
            values = tf.constant([getattr(op, name) for op in operations], tf.float32)
            return tf.gather(values, index)

        return _maybe_crop(sample, op_seed, operations[0], pick("min_object_covered"),
                           pick("overlap_thresh"), pick("random_coef"))
    branches = [lambda op=op: random_crop(sample, op_seed, op) for op in operations]
    return tf.switch_case(index, branches)
