"""The augmentations one by one: geometry on crafted boxes, colour ranges, seeds, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.inputs import augment as aug
from odflow.inputs.sample import Sample
from odflow.protos import pipeline_pb2

SEED = tf.constant([1, 2], tf.int64)
BOX = [0.25, 0.125, 0.5, 0.375]  # ymin, xmin, ymax, xmax on an 80x64 image: whole pixels


def _painted(box=BOX, height=80, width=64):
    image = np.zeros((height, width, 3), np.uint8)
    ymin, xmin, ymax, xmax = box
    image[round(ymin * height):round(ymax * height), round(xmin * width):round(xmax * width)] = 255
    return Sample(tf.constant(image), tf.constant([box], tf.float32), tf.constant([3], tf.int32))


def _white_extent(image):
    rows = np.where(image[..., 0].max(axis=1) > 127)[0]
    cols = np.where(image[..., 0].max(axis=0) > 127)[0]
    h, w = image.shape[:2]
    return [rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w]


def _colour_sample(seed=0):
    image = np.random.default_rng(seed).uniform(0, 255, (24, 32, 3)).astype(np.float32)
    return Sample(tf.constant(image), tf.constant([BOX]), tf.constant([1], tf.int32))


@pytest.mark.parametrize("function, expected_box, numpy_op", [
    (aug.random_horizontal_flip, [0.25, 1 - 0.375, 0.5, 1 - 0.125], np.fliplr),
    (aug.random_vertical_flip, [1 - 0.5, 0.125, 1 - 0.25, 0.375], np.flipud),
    (aug.random_rotation90, [1 - 0.375, 0.25, 1 - 0.125, 0.5], np.rot90),
])
def test_geometric_operation_moves_boxes_with_the_pixels(function, expected_box, numpy_op):
    sample = _painted()
    out = function(sample, SEED, probability=1.0)
    np.testing.assert_array_equal(out.image.numpy(), numpy_op(sample.image.numpy()))
    np.testing.assert_allclose(out.boxes.numpy(), [expected_box], atol=1e-6)
    np.testing.assert_allclose(out.boxes.numpy()[0], _white_extent(out.image.numpy()), atol=1e-6)
    assert out.classes.numpy().tolist() == [3]
    assert out.image.dtype == tf.uint8  # geometry keeps the cheap dtype


@pytest.mark.parametrize("function", [aug.random_horizontal_flip, aug.random_vertical_flip,
                                      aug.random_rotation90])
def test_probability_zero_leaves_the_sample_alone(function):
    sample = _painted()
    out = function(sample, SEED, probability=0.0)
    np.testing.assert_array_equal(out.image.numpy(), sample.image.numpy())
    np.testing.assert_array_equal(out.boxes.numpy(), sample.boxes.numpy())


def test_flip_probability_is_honoured_across_seeds():
    sample = _painted()
    flips = sum(
        float(aug.random_horizontal_flip(sample, tf.constant([s, 7], tf.int64)).boxes[0, 1])
        != BOX[1] for s in range(200))
    assert 70 < flips < 130


COLOUR_OPS = [
    (aug.random_adjust_brightness, {}),
    (aug.random_adjust_contrast, {}),
    (aug.random_adjust_hue, {}),
    (aug.random_adjust_saturation, {}),
    (aug.random_distort_color, {"color_ordering": 0}),
    (aug.random_distort_color, {"color_ordering": 1}),
    (aug.random_pixel_value_scale, {}),
    (aug.random_rgb_to_gray, {"probability": 1.0}),
]


@pytest.mark.parametrize("function, kwargs", COLOUR_OPS)
def test_colour_operation_keeps_range_shape_and_boxes(function, kwargs):
    sample = _colour_sample()
    out = function(sample, SEED, **kwargs)
    image = out.image.numpy()
    assert out.image.dtype == tf.float32 and image.shape == (24, 32, 3)
    assert image.min() >= 0.0 and image.max() <= 255.0
    assert not np.allclose(image, sample.image.numpy())
    np.testing.assert_array_equal(out.boxes.numpy(), sample.boxes.numpy())
    again = function(sample, SEED, **kwargs)
    np.testing.assert_array_equal(again.image.numpy(), image)


def test_colour_operations_with_neutral_ranges_change_nothing():
    sample = _colour_sample()
    original = sample.image.numpy()
    for out in (aug.random_adjust_brightness(sample, SEED, max_delta=0.0),
                aug.random_adjust_contrast(sample, SEED, min_delta=1.0, max_delta=1.0),
                aug.random_adjust_saturation(sample, SEED, min_delta=1.0, max_delta=1.0),
                aug.random_pixel_value_scale(sample, SEED, minval=1.0, maxval=1.0)):
        np.testing.assert_allclose(out.image.numpy(), original, atol=1e-3)


def test_brightness_works_in_unit_scale():
    sample = Sample(tf.fill([4, 4, 3], 100.0), tf.zeros([0, 4]), tf.zeros([0], tf.int32))
    out = aug.random_adjust_brightness(sample, SEED, max_delta=0.2).image.numpy()
    delta = out[0, 0, 0] - 100.0
    assert 0 < abs(delta) <= 0.2 * 255 + 1e-3
    np.testing.assert_allclose(out, 100.0 + delta, atol=1e-3)


def test_rgb_to_gray_has_three_equal_channels():
    out = aug.rgb_to_gray(_colour_sample()).image.numpy()
    assert out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_random_image_scale_resamples_the_image_only():
    sample = _painted()
    out = aug.random_image_scale(sample, SEED, min_scale_ratio=0.5, max_scale_ratio=0.5)
    assert out.image.shape == (40, 32, 3)
    np.testing.assert_array_equal(out.boxes.numpy(), sample.boxes.numpy())


def test_normalize_image_maps_the_range():
    sample = Sample(tf.constant([[[0.0, 127.5, 255.0]]]), tf.zeros([0, 4]), tf.zeros([0], tf.int32))
    out = aug.normalize_image(sample, original_minval=0, original_maxval=255, target_minval=-1,
                              target_maxval=1)
    np.testing.assert_allclose(out.image.numpy(), [[[-1.0, 0.0, 1.0]]], atol=1e-6)


def _steps(*texts):
    return [text_format.Parse(t, pipeline_pb2.PreprocessingStep()) for t in texts]


def test_augmenter_from_the_tutorial_config_is_deterministic_per_seed():
    augment = aug.build_augmenter(_steps("random_horizontal_flip {}", "ssd_random_crop {}",
                                         "random_adjust_brightness {}", "random_distort_color {}"))
    sample = _colour_sample()
    first = augment(sample, SEED)
    second = augment(sample, SEED)
    np.testing.assert_array_equal(first.image.numpy(), second.image.numpy())
    np.testing.assert_array_equal(first.boxes.numpy(), second.boxes.numpy())
    other = [augment(sample, tf.constant([s, 0], tf.int64)).image.numpy() for s in range(3)]
    assert any(o.shape != first.image.shape or not np.array_equal(o, first.image.numpy())
               for o in other)


def test_no_steps_means_no_augmenter():
    assert aug.build_augmenter([]) is None


def test_every_step_odflow_claims_to_support_builds():
    for name in aug.SUPPORTED:
        text = f"{name} {{}}"
        if name == "normalize_image":
            text = "normalize_image { original_minval: 0 original_maxval: 255 }"
        assert aug.build_augmenter(_steps(text)) is not None


def test_unsupported_step_is_named_with_its_index():
    steps = _steps("random_horizontal_flip {}", "random_jitter_boxes {}")
    with pytest.raises(OdflowError) as error:
        aug.build_augmenter(steps)
    message = str(error.value)
    assert "train_config.data_augmentation_options[1]" in message
    assert "'random_jitter_boxes' is not supported" in message
    assert "ssd_random_crop" in message  # lists what is supported


@pytest.mark.parametrize("text, field", [
    ("random_horizontal_flip { probability: 1.5 }", "random_horizontal_flip.probability"),
    ("random_distort_color { color_ordering: 2 }", "random_distort_color.color_ordering"),
    ("random_adjust_contrast { min_delta: 2 max_delta: 1 }", "random_adjust_contrast"),
    ("random_adjust_brightness { max_delta: -0.1 }", "random_adjust_brightness.max_delta"),
    ("normalize_image { target_maxval: 1 }", "normalize_image.original_minval"),
    ("random_image_scale { min_scale_ratio: 0 }", "random_image_scale"),
])
def test_invalid_parameters_name_the_field(text, field):
    with pytest.raises(OdflowError, match=rf"data_augmentation_options\[0\]\.{field}"):
        aug.build_augmenter(_steps(text))
