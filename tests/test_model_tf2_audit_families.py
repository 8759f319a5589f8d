"""The 15 TF2 zoo configs without reference outputs: anchors per level, and per family a
build at the config's size, a ``write_v2`` -> ``restore_v2`` round trip with exact key
coverage, ``predict`` and ``postprocess``.

Anchor counts, worked by hand from the TF2 API's ``multiscale_anchor_generator`` (levels 3..7,
level l a grid of ceil(size / 2**l) cells, 'same' stride-2 steps rounding up; per cell
len(aspect_ratios) x scales_per_octave anchors: 3 x 2 = 6 for the SSD FPN/ResNet configs,
3 x 3 = 9 for EfficientDet):

- 640: 80^2 + 40^2 + 20^2 + 10^2 + 5^2 = 8525 cells: 51150 (x 6), 76725 (x 9, D1)
- 768: 96^2 + 48^2 + 24^2 + 12^2 + 6^2 = 12276 cells: 110484 (D2)
- 896: 112^2 + 56^2 + 28^2 + 14^2 + 7^2 = 16709 cells: 150381 (D3)
- 1024: 128^2 + 64^2 + 32^2 + 16^2 + 8^2 = 21824 cells: 130944 (x 6), 196416 (D4)
- 1280: 160^2 + 80^2 + 40^2 + 20^2 + 10^2 = 34100 cells: 306900 (D5)
- 1408: 176^2 + 88^2 + 44^2 + 22^2 + 11^2 = 41261 cells: 371349 (D6)
- 1536: 192^2 + 96^2 + 48^2 + 24^2 + 12^2 = 49104 cells: 441936 (D7)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from odflow import config as config_io
from odflow.model import builder
from odflow.model.anchors import build_anchor_generator
from odflow.model.tf2_checkpoint import key_mapping, restore_v2, write_v2
from tests.support import tf2_zoo

ANCHORS = {
    "ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8": (640, 6, 51150),
    "ssd_mobilenet_v2_fpnlite_640x640_coco17_tpu-8": (640, 6, 51150),
    "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8": (640, 6, 51150),
    "ssd_resnet101_v1_fpn_640x640_coco17_tpu-8": (640, 6, 51150),
    "ssd_resnet152_v1_fpn_640x640_coco17_tpu-8": (640, 6, 51150),
    "ssd_resnet50_v1_fpn_1024x1024_coco17_tpu-8": (1024, 6, 130944),
    "ssd_resnet101_v1_fpn_1024x1024_coco17_tpu-8": (1024, 6, 130944),
    "ssd_resnet152_v1_fpn_1024x1024_coco17_tpu-8": (1024, 6, 130944),
    "ssd_efficientdet_d1_640x640_coco17_tpu-8": (640, 9, 76725),
    "ssd_efficientdet_d2_768x768_coco17_tpu-8": (768, 9, 110484),
    "ssd_efficientdet_d3_896x896_coco17_tpu-32": (896, 9, 150381),
    "ssd_efficientdet_d4_1024x1024_coco17_tpu-32": (1024, 9, 196416),
    "ssd_efficientdet_d5_1280x1280_coco17_tpu-32": (1280, 9, 306900),
    "ssd_efficientdet_d6_1408x1408_coco17_tpu-32": (1408, 9, 371349),
    "ssd_efficientdet_d7_1536x1536_coco17_tpu-32": (1536, 9, 441936),
}


def _pipeline(name: str):
    return config_io.load(tf2_zoo.FIXTURES / "configs" / f"{name}.config")


def _input_size(ssd) -> int:
    resizer = ssd.image_resizer
    if resizer.HasField("fixed_shape_resizer"):
        assert resizer.fixed_shape_resizer.height == resizer.fixed_shape_resizer.width
        return resizer.fixed_shape_resizer.height
    assert resizer.keep_aspect_ratio_resizer.pad_to_max_dimension
    return resizer.keep_aspect_ratio_resizer.max_dimension


@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_anchor_count_per_config(name: str) -> None:
    size, per_cell, total = ANCHORS[name]
    ssd = _pipeline(name).model.ssd
    assert _input_size(ssd) == size
    generator = build_anchor_generator(ssd.anchor_generator)
    assert generator.num_anchors_per_location() == [per_cell] * 5
    shapes = [(math.ceil(size / 2 ** level),) * 2 for level in range(3, 8)]
    assert generator.generate(shapes, size, size).shape == (total, 4)


def test_d7_level_7_anchors_by_hand() -> None:
    """D7 at 1536: level 7 (stride 128, 12x12 cells, base 4 x 128 = 512 px) starts after
    9 x (192^2 + 96^2 + 48^2 + 24^2) = 440640 anchors.  Per cell the aspect ratio is the outer
    loop and the octave scale 2**(i/3) the inner (upstream's meshgrid), centres at
    (i + 0.5) x 128 (1536 is a multiple of 128); height = base * scale / sqrt(ratio),
    width = base * scale * sqrt(ratio), normalised by 1536."""
    ssd = _pipeline("ssd_efficientdet_d7_1536x1536_coco17_tpu-32").model.ssd
    shapes = [(1536 // 2 ** level,) * 2 for level in range(3, 8)]
    anchors = build_anchor_generator(ssd.anchor_generator).generate(shapes, 1536, 1536).numpy()
    first = anchors[440640]  # cell (0, 0), ratio 1, scale 1: 512 x 512 around (64, 64)
    np.testing.assert_allclose(first, np.array([-192, -192, 320, 320]) / 1536, atol=1e-6)
    scale, ratio = 2 ** (2 / 3), 0.5  # the last of the cell's 9: ratio 0.5, scale 2^(2/3)
    h, w = 512 * scale / math.sqrt(ratio), 512 * scale * math.sqrt(ratio)
    centre = 11.5 * 128
    np.testing.assert_allclose(
        anchors[-1], np.array([centre - h / 2, centre - w / 2, centre + h / 2, centre + w / 2])
        / 1536, atol=1e-6)


# One config per family at its zoo size (the others differ only in depth or size: their
# variables are checked by shape in test_model_tf2_keys.py / test_model_efficientdet_keys.py,
# their anchors above).
FAMILIES = ["ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8",
            "ssd_mobilenet_v2_fpnlite_640x640_coco17_tpu-8",
            "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8",
            "ssd_efficientdet_d1_640x640_coco17_tpu-8"]


@pytest.mark.slow  # a zoo-size model built twice and run once: 10-30 s
@pytest.mark.parametrize("name", FAMILIES)
def test_family_round_trip_predict_and_postprocess(name: str, tmp_path) -> None:
    pipeline = _pipeline(name)
    size, _, total = ANCHORS[name]
    source = builder.build(pipeline.model, is_training=False)
    mapping = key_mapping(source)
    listed = tf2_zoo.keys(name) if name in tf2_zoo.CONFIGS else None
    if listed is not None:  # SSD families: the TF2 API's key list, exactly
        expected = sorted(k for k in listed if k not in tf2_zoo.BOOKKEEPING)
        assert sorted(mapping.variables) == expected
    prefix = write_v2(source, tmp_path / "ckpt-0")
    target = builder.build(pipeline.model, is_training=False)
    report = restore_v2(target, prefix, "full")
    assert sorted(report.restored) == sorted(mapping.variables)
    assert report.skipped_missing == report.skipped_shape == []
    theirs = key_mapping(target).variables
    for key, variable in mapping.variables.items():
        np.testing.assert_array_equal(theirs[key].numpy(), variable.numpy(), err_msg=key)
    # A non-square image: fixed_shape_resizer stretches it, EfficientDet pads it.
    image = tf.random.uniform([1, size, size - 128, 3], 0, 255, seed=5)
    preprocessed, true_shapes = target.preprocess(image)
    assert preprocessed.shape == (1, size, size, 3)
    prediction = target.predict(preprocessed, training=False)
    classes = 90 if "efficientdet" in name else 91  # no background column for EfficientDet
    assert prediction["anchors"].shape == (total, 4)
    assert prediction["box_encodings"].shape == (1, total, 4)
    assert prediction["class_predictions_with_background"].shape == (1, total, classes)
    detections = target.postprocess(prediction, true_shapes)
    assert float(detections["num_detections"][0]) == 100
    boxes = detections["detection_boxes"][0].numpy()
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    scores = detections["detection_scores"][0].numpy()
    assert np.all(np.diff(scores) <= 0)
