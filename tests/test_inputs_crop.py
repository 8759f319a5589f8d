"""Geometry of the SSD random crop: which boxes survive, where they go, and its randomness."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.inputs import ssd_random_crop as crops
from odflow.inputs.augment import build_augmentation
from odflow.inputs.sample import Sample
from odflow.protos import pipeline_pb2

WINDOW = [0.0, 0.0, 0.5, 0.5]


def _crop(boxes, overlap_thresh, clip_boxes=True, window=WINDOW):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.arange(1, len(boxes) + 1, dtype=np.int32)
    out_boxes, out_classes = crops.crop_boxes_to_window(boxes, classes, window,
                                                        overlap_thresh, clip_boxes)
    return out_boxes.numpy(), out_classes.numpy()


def test_box_inside_window_is_moved_to_its_frame():
    boxes, classes = _crop([[0.1, 0.1, 0.2, 0.3]], 1.0)
    np.testing.assert_allclose(boxes, [[0.2, 0.2, 0.4, 0.6]], atol=1e-6)
    assert classes.tolist() == [1]


def test_box_kept_when_overlap_reaches_threshold_and_clipped():
    half_inside = [0.375, 0.125, 0.625, 0.25]  # half of its area is inside the window
    boxes, classes = _crop([half_inside], 0.5)
    np.testing.assert_allclose(boxes, [[0.75, 0.25, 1.0, 0.5]], atol=1e-6)
    assert classes.tolist() == [1]
    boxes, _ = _crop([half_inside], 0.7)
    assert boxes.shape == (0, 4)


def test_unclipped_box_extends_past_the_window():
    boxes, _ = _crop([[0.375, 0.125, 0.625, 0.25]], 0.5, clip_boxes=False)
    np.testing.assert_allclose(boxes, [[0.75, 0.25, 1.25, 0.5]], atol=1e-6)


def test_boxes_outside_or_touching_the_window_are_dropped_even_at_zero_threshold():
    boxes, classes = _crop([[0.6, 0.6, 0.9, 0.9],    # outside
                            [0.5, 0.1, 0.7, 0.2],    # touches the bottom edge only
                            [0.1, 0.1, 0.3, 0.3]],   # inside
                           0.0)
    assert classes.tolist() == [3]
    np.testing.assert_allclose(boxes, [[0.2, 0.2, 0.6, 0.6]], atol=1e-6)


def test_classes_follow_their_boxes():
    _, classes = _crop([[0.6, 0.6, 0.9, 0.9], [0.1, 0.1, 0.2, 0.2], [0.45, 0.1, 0.9, 0.2]], 0.5)
    assert classes.tolist() == [2]


def _painted_sample(box, height=120, width=160):
    """A black image with the box painted white, so the crop can be checked on pixels."""
    image = np.zeros((height, width, 3), np.uint8)
    ymin, xmin, ymax, xmax = box
    image[round(ymin * height):round(ymax * height), round(xmin * width):round(xmax * width)] = 255
    return Sample(tf.constant(image), tf.constant([box], tf.float32), tf.constant([1], tf.int32))


def _white_extent(image):
    """Normalised [ymin, xmin, ymax, xmax] of the white pixels."""
    rows = np.where(image[..., 0].max(axis=1) > 127)[0]
    cols = np.where(image[..., 0].max(axis=0) > 127)[0]
    h, w = image.shape[:2]
    return np.array([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])


@pytest.mark.parametrize("seed", range(6))
def test_crop_covering_the_whole_box_keeps_it_where_the_pixels_are(seed):
    sample = _painted_sample([0.25, 0.3, 0.75, 0.6])
    op = crops.CropOperation(min_object_covered=1.0, aspect_ratio_range=(0.5, 2.0),
                             area_range=(0.1, 1.0), overlap_thresh=1.0, random_coef=0.0)
    out = crops.random_crop(sample, tf.constant([seed, 3], tf.int64), op)
    image = out.image.numpy()
    assert out.boxes.shape == (1, 4)
    box = out.boxes.numpy()[0]
    assert np.all(box >= 0) and np.all(box <= 1)
    pixel_tolerance = 1.5 / min(image.shape[:2])
    np.testing.assert_allclose(box, _white_extent(image), atol=pixel_tolerance)


def test_random_coef_one_never_crops():
    sample = _painted_sample([0.25, 0.3, 0.75, 0.6])
    op = crops.CropOperation(min_object_covered=0.1, random_coef=1.0)
    for seed in range(5):
        out = crops.random_crop(sample, tf.constant([seed, 0], tf.int64), op)
        np.testing.assert_array_equal(out.image.numpy(), sample.image.numpy())
        np.testing.assert_array_equal(out.boxes.numpy(), sample.boxes.numpy())


def test_default_operations_are_the_apis_seven():
    values = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    ops = crops.DEFAULT_SSD_OPERATIONS
    assert [op.min_object_covered for op in ops] == values
    assert [op.overlap_thresh for op in ops] == values
    assert {(op.aspect_ratio_range, op.area_range, op.clip_boxes, op.random_coef) for op in ops} \
        == {((0.5, 2.0), (0.1, 1.0), True, 0.15)}


def _boxes_sample(num_boxes=3):
    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(0, 1, (num_boxes, 2, 2)), axis=1)
    boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    return Sample(tf.constant(image), tf.constant(boxes, tf.float32),
                  tf.constant(np.arange(1, num_boxes + 1), tf.int32))


def test_ssd_random_crop_defaults_crop_most_images_and_keep_boxes_valid():
    sample = _boxes_sample()
    unchanged = 0
    for seed in range(40):
        out = crops.ssd_random_crop(sample, tf.constant([seed, 1], tf.int64))
        boxes = out.boxes.numpy()
        assert np.all(boxes >= 0) and np.all(boxes <= 1)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert len(out.classes.numpy()) == len(boxes)
        assert out.image.shape[0] <= 90 and out.image.shape[1] <= 120
        unchanged += out.image.shape[:2] == (90, 120)
    assert 0 < unchanged < 20  # 15% are left alone on purpose; most are cropped


def test_ssd_random_crop_is_deterministic_for_a_seed():
    sample = _boxes_sample()
    seed = tf.constant([5, 9], tf.int64)
    first = crops.ssd_random_crop(sample, seed)
    second = crops.ssd_random_crop(sample, seed)
    np.testing.assert_array_equal(first.image.numpy(), second.image.numpy())
    np.testing.assert_array_equal(first.boxes.numpy(), second.boxes.numpy())


def test_image_without_boxes_can_be_cropped():
    sample = Sample(tf.zeros([50, 60, 3], tf.uint8), tf.zeros([0, 4]), tf.zeros([0], tf.int32))
    out = crops.ssd_random_crop(sample, tf.constant([0, 0], tf.int64))
    assert out.boxes.shape == (0, 4) and out.image.shape[2] == 3


def _step(text):
    return text_format.Parse(text, pipeline_pb2.PreprocessingStep())


def test_explicit_operations_from_the_config():
    step = _step("""ssd_random_crop { operations { min_object_covered: 1.0 min_aspect_ratio: 0.5
        max_aspect_ratio: 2.0 min_area: 0.1 max_area: 1.0 overlap_thresh: 1.0 random_coef: 0.0 } }""")
    augment = build_augmentation(step, "train_config.data_augmentation_options[0]")
    sample = _painted_sample([0.25, 0.3, 0.75, 0.6])
    for seed in range(4):
        out = augment(sample, tf.constant([seed, 0], tf.int64))
        # The window covers the whole box, so overlap_thresh 1.0 keeps it.
        assert out.boxes.shape == (1, 4)
        tolerance = 1.5 / min(out.image.shape[:2])
        np.testing.assert_allclose(out.boxes.numpy()[0], _white_extent(out.image.numpy()),
                                   atol=tolerance)


def test_operations_with_different_ranges_are_picked_among():
    wide = crops.CropOperation(min_object_covered=0.0, aspect_ratio_range=(2.5, 3.0),
                               area_range=(0.1, 0.3), overlap_thresh=0.0)
    tall = crops.CropOperation(min_object_covered=0.0, aspect_ratio_range=(0.3, 0.4),
                               area_range=(0.1, 0.3), overlap_thresh=0.0)
    sample = Sample(tf.zeros([200, 200, 3], tf.uint8), tf.zeros([0, 4]), tf.zeros([0], tf.int32))
    shapes = {crops.ssd_random_crop(sample, tf.constant([s, 0], tf.int64), (wide, tall))
              .image.shape[:2] for s in range(12)}
    assert {h > w for h, w in shapes} == {True, False}  # both operations were used


def test_invalid_operation_names_its_field():
    step = _step("ssd_random_crop { operations { min_area: 0.5 max_area: 0.2 "
                 "min_aspect_ratio: 1 max_aspect_ratio: 1 } }")
    with pytest.raises(OdflowError, match=r"options\[2\]\.ssd_random_crop\.operations\[0\]"):
        build_augmentation(step, "train_config.data_augmentation_options[2]")
