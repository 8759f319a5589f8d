"""``random_scale_crop_and_pad_to_square`` (EfficientDet's augmentation) on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.inputs.augment import build_augmentation
from odflow.inputs.sample import Sample
from odflow.protos import pipeline_pb2


def _augmentation(text: str):
    step = text_format.Parse(text, pipeline_pb2.PreprocessingStep())
    return build_augmentation(step, "train_config.data_augmentation_options[1]")


def _sample(height: int, width: int, boxes) -> Sample:
    image = tf.fill([height, width, 3], tf.constant(200, tf.uint8))
    boxes = tf.constant(boxes, tf.float32)
    return Sample(image, boxes, tf.range(1, boxes.shape[0] + 1, dtype=tf.int32))


SEED = tf.constant([1, 2], tf.int64)


def test_scale_one_shrinks_into_the_top_left_and_pads() -> None:
    # 100x200 at scale 1 with output 64: the longer side becomes 64, so 32x64, no crop; the
    # 32 rows below are zero.  A box over the whole image now covers rows 0..0.5.
    augment = _augmentation("random_scale_crop_and_pad_to_square "
                            "{ output_size: 64 scale_min: 1.0 scale_max: 1.0 }")
    out = augment(_sample(100, 200, [[0, 0, 1, 1], [0.5, 0.5, 1, 1]]), SEED)
    assert out.image.shape == (64, 64, 3)
    np.testing.assert_allclose(out.image[:32].numpy(), 200.0)
    np.testing.assert_array_equal(out.image[32:].numpy(), 0.0)
    np.testing.assert_allclose(out.boxes.numpy(), [[0, 0, 0.5, 1], [0.25, 0.5, 0.5, 1]])
    np.testing.assert_array_equal(out.classes.numpy(), [1, 2])


def test_scale_two_crops_drops_boxes_outside_and_clips_the_rest() -> None:
    # 100x100 at scale 2 with output 64: 128x128, a 64x64 crop at a random offset in 0..64.
    # The image is a ramp (channel 0 = row, 1 = column), so the crop's first pixel tells the
    # offset: TF1 bilinear maps scaled pixel i to source i * 100 / 128, exactly on a ramp.
    rows, cols = np.meshgrid(np.arange(100), np.arange(100), indexing="ij")
    image = tf.constant(np.stack([rows, cols, rows], axis=-1).astype(np.uint8))
    boxes = tf.constant([[0, 0, 1, 1], [0.5, 0.5, 0.51, 0.51], [0.0, 0.0, 0.01, 0.01]],
                        tf.float32)
    augment = _augmentation("random_scale_crop_and_pad_to_square "
                            "{ output_size: 64 scale_min: 2.0 scale_max: 2.0 }")
    for seed in ([1, 2], [3, 4], [5, 6], [7, 8]):
        out = augment(Sample(image, boxes, tf.constant([1, 2, 3])), tf.constant(seed, tf.int64))
        assert out.image.shape == (64, 64, 3)
        offset = np.rint(out.image[0, 0, :2].numpy() * 128 / 100)
        expected = {1: [0, 0, 1, 1]}
        for label, box in ((2, [0.5, 0.5, 0.51, 0.51]), (3, [0.0, 0.0, 0.01, 0.01])):
            moved = (np.array(box) * 128 - np.tile(offset, 2)) / 64
            if moved[0] < 1 and moved[1] < 1 and moved[2] > 0 and moved[3] > 0:
                expected[label] = np.clip(moved, 0, 1)
        got = dict(zip(out.classes.numpy().tolist(), out.boxes.numpy()))
        assert sorted(got) == sorted(expected), (seed, offset)
        for label, box in expected.items():
            np.testing.assert_allclose(got[label], box, atol=1e-5)


def test_same_seed_same_result_and_bad_ranges_name_the_field() -> None:
    augment = _augmentation("random_scale_crop_and_pad_to_square { output_size: 32 }")
    sample = _sample(40, 60, [[0.1, 0.1, 0.9, 0.9]])
    first, second = augment(sample, SEED), augment(sample, SEED)
    np.testing.assert_array_equal(first.image.numpy(), second.image.numpy())
    with pytest.raises(OdflowError, match=r"random_scale_crop_and_pad_to_square: scale_min"):
        _augmentation("random_scale_crop_and_pad_to_square { scale_min: 2.0 scale_max: 1.0 }")
    with pytest.raises(OdflowError, match=r"output_size"):
        _augmentation("random_scale_crop_and_pad_to_square { output_size: 0 }")
