"""The fixed-shape resizer and the errors for the resizers odflow does not implement."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.inputs.resize import build_resizer
from odflow.protos import pipeline_pb2


def _resizer(text):
    return build_resizer(text_format.Parse(text, pipeline_pb2.ImageResizer()))


def _image():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))


@pytest.mark.parametrize("method", ["BILINEAR", "NEAREST_NEIGHBOR", "BICUBIC", "AREA"])
def test_fixed_shape_resizer_gives_the_model_size(method):
    resizer = _resizer(f"fixed_shape_resizer {{ height: 20 width: 30 resize_method: {method} }}")
    image, true_shape = resizer(_image())
    assert image.dtype == tf.float32 and image.shape == (20, 30, 3)
    assert 0.0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 255.0
    assert true_shape.numpy().tolist() == [20, 30, 3]


def test_bilinear_is_tf1s_resize_as_in_the_models_preprocess():
    image, _ = _resizer("fixed_shape_resizer { height: 20 width: 30 }")(_image())
    expected = tf.compat.v1.image.resize(tf.cast(_image(), tf.float32), [20, 30],
                                         align_corners=False)
    np.testing.assert_allclose(image.numpy(), expected.numpy(), atol=1e-4)


def test_defaults_are_300_by_300():
    image, _ = _resizer("fixed_shape_resizer {}")(_image())
    assert image.shape == (300, 300, 3)


def test_grayscale_keeps_three_channels():
    image, _ = _resizer("fixed_shape_resizer { height: 8 width: 8 convert_to_grayscale: true }")(
        _image())
    assert image.shape == (8, 8, 3)
    np.testing.assert_array_equal(image[..., 0].numpy(), image[..., 1].numpy())


@pytest.mark.parametrize("text, expected", [
    # (keep_aspect_ratio_resizer with padding: test_model_efficientdet_parts.py)
    ("keep_aspect_ratio_resizer { min_dimension: 600 }",
     "keep_aspect_ratio_resizer.pad_to_max_dimension"),
    ("conditional_shape_resizer {}", "'conditional_shape_resizer' is set"),
    ("", "no resizer is set"),
    ("fixed_shape_resizer { height: 0 }", "fixed_shape_resizer.height"),
])
def test_other_resizers_are_errors_naming_the_field(text, expected):
    with pytest.raises(OdflowError, match="model.ssd.image_resizer") as error:
        _resizer(text)
    assert expected in str(error.value)
