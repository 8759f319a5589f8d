"""The config's ``data_augmentation_options`` as functions on one image and its boxes.

Each operation follows the TF Object Detection API's semantics (probabilities, ranges and
defaults come from the same proto fields), written afresh on stateless RNGs so that a seed
reproduces a run.  Colour operations work, as the API's do, on the image scaled to [0, 1] and
return it clipped to [0, 255].  ``build_augmenter`` turns the config's list into one function
and rejects, before any data is read, every step odflow does not implement: silently skipping
an augmentation would train a different model than the config says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.inputs import ssd_random_crop as crops
from odflow.inputs.sample import Augmentation, Sample, as_float, split_seed, uniform
from odflow.inputs.scale_crop_pad import random_scale_crop_and_pad_to_square

DEFAULT_FIELD = "train_config.data_augmentation_options"


# --- geometry -------------------------------------------------------------------------------

def flip_boxes_left_right(boxes: tf.Tensor) -> tf.Tensor:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1)


def flip_boxes_up_down(boxes: tf.Tensor) -> tf.Tensor:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    return tf.stack([1.0 - ymax, xmin, 1.0 - ymin, xmax], axis=1)


def rot90_boxes(boxes: tf.Tensor) -> tf.Tensor:
    """Boxes after ``tf.image.rot90(image, k=1)`` (90 degrees anticlockwise)."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    return tf.stack([1.0 - xmax, ymin, 1.0 - xmin, ymax], axis=1)


def _with_probability(sample: Sample, seed: tf.Tensor, probability: float,
                      apply: Callable[[Sample], Sample]) -> Sample:
    if probability <= 0.0:
        return sample
    if probability >= 1.0:
        return apply(sample)
    return tf.cond(uniform(seed) < probability, lambda: apply(sample), lambda: sample)


def random_horizontal_flip(sample: Sample, seed: tf.Tensor, probability: float = 0.5) -> Sample:
    return _with_probability(sample, seed, probability, lambda s: Sample(
        tf.image.flip_left_right(s.image), flip_boxes_left_right(s.boxes), s.classes))


def random_vertical_flip(sample: Sample, seed: tf.Tensor, probability: float = 0.5) -> Sample:
    return _with_probability(sample, seed, probability, lambda s: Sample(
        tf.image.flip_up_down(s.image), flip_boxes_up_down(s.boxes), s.classes))


def random_rotation90(sample: Sample, seed: tf.Tensor, probability: float = 0.5) -> Sample:
    return _with_probability(sample, seed, probability, lambda s: Sample(
        tf.image.rot90(s.image, k=1), rot90_boxes(s.boxes), s.classes))


def random_image_scale(sample: Sample, seed: tf.Tensor, min_scale_ratio: float = 0.5,
                       max_scale_ratio: float = 2.0) -> Sample:
    """Resample the image by one random factor; normalised boxes do not move."""
    factor = uniform(seed, min_scale_ratio, max_scale_ratio)
    size = tf.cast(tf.cast(tf.shape(sample.image)[:2], tf.float32) * factor, tf.int32)
    image = tf.image.resize(as_float(sample.image), tf.maximum(size, 1))
    return Sample(image, sample.boxes, sample.classes)


# --- colour ---------------------------------------------------------------------------------

def _in_unit_range(sample: Sample, adjust: Callable[[tf.Tensor], tf.Tensor]) -> Sample:
    image = adjust(as_float(sample.image) / 255.0) * 255.0
    return Sample(tf.clip_by_value(image, 0.0, 255.0), sample.boxes, sample.classes)


def random_adjust_brightness(sample: Sample, seed: tf.Tensor, max_delta: float = 0.2) -> Sample:
    delta = uniform(seed, -max_delta, max_delta)
    return _in_unit_range(sample, lambda image: tf.image.adjust_brightness(image, delta))


def random_adjust_contrast(sample: Sample, seed: tf.Tensor, min_delta: float = 0.8,
                           max_delta: float = 1.25) -> Sample:
    factor = uniform(seed, min_delta, max_delta)
    return _in_unit_range(sample, lambda image: tf.image.adjust_contrast(image, factor))


def random_adjust_hue(sample: Sample, seed: tf.Tensor, max_delta: float = 0.02) -> Sample:
    delta = uniform(seed, -max_delta, max_delta)
    return _in_unit_range(sample, lambda image: tf.image.adjust_hue(image, delta))


def random_adjust_saturation(sample: Sample, seed: tf.Tensor, min_delta: float = 0.8,
                             max_delta: float = 1.25) -> Sample:
    factor = uniform(seed, min_delta, max_delta)
    return _in_unit_range(sample, lambda image: tf.image.adjust_saturation(image, factor))


def random_distort_color(sample: Sample, seed: tf.Tensor, color_ordering: int = 0) -> Sample:
    """The API's two fixed chains of stronger colour jitter (ordering 0 or 1)."""
    brightness = functools.partial(random_adjust_brightness, max_delta=32.0 / 255.0)
    saturation = functools.partial(random_adjust_saturation, min_delta=0.5, max_delta=1.5)
    hue = functools.partial(random_adjust_hue, max_delta=0.2)
    contrast = functools.partial(random_adjust_contrast, min_delta=0.5, max_delta=1.5)
    if color_ordering == 0:
        chain = (brightness, saturation, hue, contrast)
    elif color_ordering == 1:
        chain = (brightness, contrast, saturation, hue)
    else:
        raise ValueError(f"color_ordering must be 0 or 1, got {color_ordering}")
    for op, op_seed in zip(chain, split_seed(seed, len(chain))):
        sample = op(sample, op_seed)
    return sample


def random_pixel_value_scale(sample: Sample, seed: tf.Tensor, minval: float = 0.9,
                             maxval: float = 1.1) -> Sample:
    """Multiply every pixel value by its own random factor."""
    image = as_float(sample.image)
    factors = tf.random.stateless_uniform(tf.shape(image), seed=seed, minval=minval,
                                          maxval=maxval)
    return Sample(tf.clip_by_value(image * factors, 0.0, 255.0), sample.boxes, sample.classes)


def rgb_to_gray(sample: Sample, seed: tf.Tensor | None = None) -> Sample:
    """Grey image, still three channels (the model's input has three)."""
    gray = tf.image.rgb_to_grayscale(as_float(sample.image))
    return Sample(tf.tile(gray, [1, 1, 3]), sample.boxes, sample.classes)


def random_rgb_to_gray(sample: Sample, seed: tf.Tensor, probability: float = 0.1) -> Sample:
    return _with_probability(sample, seed, probability, rgb_to_gray)


def normalize_image(sample: Sample, seed: tf.Tensor | None = None, *, original_minval: float,
                    original_maxval: float, target_minval: float = 0.0,
                    target_maxval: float = 1.0) -> Sample:
    """Map ``[original_minval, original_maxval]`` linearly to the target range.

    Note that this leaves the [0, 255] convention: the model's own preprocessing then sees
    other values, exactly as in the API when a config asks for it.
    """
    image = as_float(sample.image)
    scale = (target_maxval - target_minval) / (original_maxval - original_minval)
    image = (image - original_minval) * scale + target_minval
    return Sample(image, sample.boxes, sample.classes)


# --- from the config ------------------------------------------------------------------------

def _values(message, *names: str) -> dict:
    """The named fields of the message (their defaults when unset), by name."""
    return {name: getattr(message, name) for name in names}


def _require(condition: bool, field: str, what: str) -> None:
    if not condition:
        raise OdflowError(f"{field}: {what}")


def _check_probability(value: float, field: str) -> None:
    _require(0.0 <= value <= 1.0, field, f"must be between 0 and 1, got {value}")


def _check_range(low: float, high: float, field: str, low_name: str, high_name: str,
                 positive: bool = False) -> None:
    _require(low <= high, field, f"{low_name} ({low}) must not exceed {high_name} ({high})")
    if positive:
        _require(low > 0, field, f"{low_name} must be positive, got {low}")


def _crop_operation(message, field: str) -> crops.CropOperation:
    op = crops.CropOperation(
        min_object_covered=message.min_object_covered,
        aspect_ratio_range=(message.min_aspect_ratio, message.max_aspect_ratio),
        area_range=(message.min_area, message.max_area),
        overlap_thresh=message.overlap_thresh,
        clip_boxes=message.clip_boxes,
        random_coef=message.random_coef)
    _check_probability(op.min_object_covered, f"{field}.min_object_covered")
    _check_probability(op.random_coef, f"{field}.random_coef")
    _check_range(*op.aspect_ratio_range, field, "min_aspect_ratio", "max_aspect_ratio",
                 positive=True)
    _check_range(*op.area_range, field, "min_area", "max_area", positive=True)
    _require(op.area_range[1] <= 1.0, f"{field}.max_area", "must be at most 1")
    return op


def _ssd_random_crop(message, field: str) -> Augmentation:
    if not message.operations:
        return crops.ssd_random_crop
    operations = tuple(_crop_operation(op, f"{field}.operations[{i}]")
                       for i, op in enumerate(message.operations))
    return functools.partial(crops.ssd_random_crop, operations=operations)


def _random_crop_image(message, field: str) -> Augmentation:
    return functools.partial(crops.random_crop, op=_crop_operation(message, field))


def _flip_like(function):
    def build(message, field: str) -> Augmentation:
        _check_probability(message.probability, f"{field}.probability")
        return functools.partial(function, probability=message.probability)
    return build


def _min_max(function, low: str, high: str, positive: bool = False):
    def build(message, field: str) -> Augmentation:
        _check_range(getattr(message, low), getattr(message, high), field, low, high, positive)
        return functools.partial(function, **_values(message, low, high))
    return build


def _max_delta(function):
    def build(message, field: str) -> Augmentation:
        _require(message.max_delta >= 0, f"{field}.max_delta",
                 f"must not be negative, got {message.max_delta}")
        return functools.partial(function, max_delta=message.max_delta)
    return build


def _distort_color(message, field: str) -> Augmentation:
    _require(message.color_ordering in (0, 1), f"{field}.color_ordering",
             f"must be 0 or 1, got {message.color_ordering}")
    return functools.partial(random_distort_color, color_ordering=message.color_ordering)


def _random_rgb_to_gray(message, field: str) -> Augmentation:
    _check_probability(message.probability, f"{field}.probability")
    return functools.partial(random_rgb_to_gray, probability=message.probability)


def _normalize_image(message, field: str) -> Augmentation:
    for name in ("original_minval", "original_maxval"):
        _require(message.HasField(name), f"{field}.{name}", "must be set")
    _require(message.original_maxval > message.original_minval, field,
             "original_maxval must be greater than original_minval")
    return functools.partial(normalize_image, **_values(
        message, "original_minval", "original_maxval", "target_minval", "target_maxval"))


def _scale_crop_pad(message, field: str) -> Augmentation:
    _require(message.output_size > 0, f"{field}.output_size",
             f"must be positive, got {message.output_size}")
    _check_range(message.scale_min, message.scale_max, field, "scale_min", "scale_max",
                 positive=True)
    return functools.partial(random_scale_crop_and_pad_to_square,
                             **_values(message, "output_size", "scale_min", "scale_max"))


_BUILDERS: dict[str, Callable[[object, str], Augmentation]] = {
    "random_horizontal_flip": _flip_like(random_horizontal_flip),
    "random_vertical_flip": _flip_like(random_vertical_flip),
    "random_rotation90": _flip_like(random_rotation90),
    "ssd_random_crop": _ssd_random_crop,
    "random_crop_image": _random_crop_image,
    "random_adjust_brightness": _max_delta(random_adjust_brightness),
    "random_adjust_contrast": _min_max(random_adjust_contrast, "min_delta", "max_delta"),
    "random_adjust_hue": _max_delta(random_adjust_hue),
    "random_adjust_saturation": _min_max(random_adjust_saturation, "min_delta", "max_delta"),
    "random_distort_color": _distort_color,
    "random_pixel_value_scale": _min_max(random_pixel_value_scale, "minval", "maxval"),
    "random_image_scale": _min_max(random_image_scale, "min_scale_ratio", "max_scale_ratio",
                                   positive=True),
    "random_rgb_to_gray": _random_rgb_to_gray,
    "rgb_to_gray": lambda message, field: rgb_to_gray,
    "normalize_image": _normalize_image,
    "random_scale_crop_and_pad_to_square": _scale_crop_pad,
}

#: The ``PreprocessingStep`` kinds odflow implements.
SUPPORTED = tuple(sorted(_BUILDERS))


def build_augmentation(step, field: str) -> Augmentation:
    """One ``PreprocessingStep`` as a function; ``OdflowError`` naming ``field`` if unsupported."""
    kind = step.WhichOneof("preprocessing_step")
    if kind is None:
        raise OdflowError(f"{field}: empty data_augmentation_options entry; "
                          f"name one of: {', '.join(SUPPORTED)}")
    if kind not in _BUILDERS:
        raise OdflowError(f"{field}: {kind!r} is not supported by odflow; remove it from the "
                          f"config or use one of: {', '.join(SUPPORTED)}")
    return _BUILDERS[kind](getattr(step, kind), f"{field}.{kind}")


def build_augmenter(steps: Sequence, field: str = DEFAULT_FIELD) -> Augmentation | None:
    """All steps in config order as one function, or ``None`` when there are none.

    Every step gets its own seed derived from the example's, so adding a step does not change
    the random numbers of the steps before it.
    """
    augmentations = [build_augmentation(step, f"{field}[{i}]") for i, step in enumerate(steps)]
    if not augmentations:
        return None

    def augment(sample: Sample, seed: tf.Tensor) -> Sample:
        for index, augmentation in enumerate(augmentations):
            sample = augmentation(sample, tf.random.experimental.stateless_fold_in(seed, index))
        return sample

    return augment
