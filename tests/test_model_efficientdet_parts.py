"""EfficientDet's pieces on hand-worked cases: the BiFPN graph and its resampling and fusion,
the keep-aspect-ratio resizer, EfficientNet's scaling rules and drop-connect, and the
builder's refusals.  (The whole model against the TF2 API: test_model_efficientdet_refs.py;
the variables against its key lists: test_model_efficientdet_keys.py.)"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow import config as config_io
from odflow.errors import OdflowError
from odflow.model import builder, efficientnet
from odflow.model.bifpn import BiFpn, _InputBlock, nearest_upsample, node_specs
from odflow.model.hyperparams import BatchNormParams, ConvHyperparams, InitializerParams
from odflow.model.image_resizer import KeepAspectRatioResizer, new_size
from odflow.train.loop import check_train_config

FIXTURES = Path(__file__).parent / "fixtures" / "tf2_zoo"
D0 = "ssd_efficientdet_d0_512x512_coco17_tpu-8"


def _hyperparams() -> ConvHyperparams:
    return ConvHyperparams(initializer=InitializerParams("truncated_normal", stddev=0.03),
                           activation="swish", regularizer_weight=4e-5, force_use_bias=True,
                           batch_norm=BatchNormParams(decay=0.99, scale=True))


def test_bifpn_nodes_are_the_tf2_apis() -> None:
    """Node names and input counts as the TF2 API's D0 checkpoint names them (the Keras names
    ``node_NN/<name>/`` and the combine weights' shapes ``[inputs, 1]``)."""
    names, inputs = {}, {}
    with gzip.open(FIXTURES / "variables" / f"{D0}.txt.gz", "rt") as f:
        for line in f:
            match = re.search(r"bifpn/node_(\d\d)/(\w+)/", line)
            if match:
                names[int(match.group(1))] = match.group(2)
            match = re.search(r"\[(\d), 1\] float32 \S+node_(\d\d)/", line)
            if match:
                inputs[int(match.group(2))] = int(match.group(1))
    specs = node_specs(num_iterations=3, min_level=3, max_level=7, input_max_level=5)
    assert len(specs) == 26  # nodes 0, 1 make levels 6, 7 from 5
    # node 1 (0_up_lvl_7, max-pooled from node 0) has no variables, so no name in the list
    assert {i: s.name for i, s in enumerate(specs) if i != 1} == names
    assert {i: len(s.inputs) for i, s in enumerate(specs) if s.combine} == inputs
    by_name = {s.name: s.inputs for s in specs}
    assert by_name["0_up_lvl_6"] == ["0_up_lvl_5"]
    assert by_name["1_dn_lvl_6"] == ["0_up_lvl_6", "0_up_lvl_7"]
    assert by_name["1_dn_lvl_3"] == ["0_up_lvl_3", "1_dn_lvl_4"]
    # after the first iteration the lowest level continues from the previous top-down node
    assert by_name["2_dn_lvl_3"] == ["1_dn_lvl_3", "2_dn_lvl_4"]
    assert by_name["2_up_lvl_4"] == ["1_up_lvl_4", "2_dn_lvl_4", "2_dn_lvl_3"]
    assert by_name["3_up_lvl_7"] == ["2_up_lvl_7", "3_up_lvl_6"]


def test_resampling_nearest_up_and_max_pool_down() -> None:
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])[tf.newaxis, :, :, tf.newaxis]
    up = nearest_upsample(x, 2)[0, :, :, 0].numpy()
    np.testing.assert_array_equal(up, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    grid = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
    # 3x3 windows, stride 2, 'same': the padding row/column is at the bottom/right, so the
    # windows are rows/columns {0,1,2} and {2,3}.
    down = _InputBlock(source=0, from_level=3, to_level=4)(grid, False)[0, :, :, 0].numpy()
    np.testing.assert_array_equal(down, [[10, 11], [14, 15]])


def test_fast_attention_fusion() -> None:
    bifpn = BiFpn("t/bifpn", {3: 4, 4: 8}, 3, 4, 1, 4, "fast_attention", _hyperparams())
    node = next(n for n in bifpn.nodes if n.combine_weights is not None)
    ones = tf.ones([1, 2, 2, 4])
    node.combine_weights.assign([[2.0], [1.0]])
    got = bifpn._combine(node, [ones, 3 * ones]).numpy()
    np.testing.assert_allclose(got, (2 * 1 + 1 * 3) / (3 + 1e-4), rtol=1e-6)
    node.combine_weights.assign([[1.0], [-2.0]])  # negative weights count as 0
    np.testing.assert_allclose(bifpn._combine(node, [ones, 3 * ones]).numpy(),
                               1 / (1 + 1e-4), rtol=1e-6)
    # the backbone inputs always get a 1x1 conv (+ batch norm); BiFPN nodes of num_filters
    # channels never do
    # (levels 3..4 all from the backbone: the first top-down node takes level 4's input map)
    first, second = bifpn.nodes
    assert (first.spec.name, first.spec.inputs) == ("1_dn_lvl_3", ["0_up_lvl_3", "0_up_lvl_4"])
    assert [b.conv is not None for b in first.inputs] == [True, True]
    assert second.spec.name == "1_up_lvl_4"
    assert [b.conv is not None for b in second.inputs] == [True, False]
    out = bifpn({3: tf.ones([1, 4, 4, 4]), 4: tf.ones([1, 2, 2, 8])})
    assert [o.shape.as_list() for o in out] == [[1, 4, 4, 4], [1, 2, 2, 4]]


@pytest.mark.parametrize("size, expected", [
    ((480, 640), (384, 512)),    # the longer side would pass max: it becomes max
    ((416, 416), (512, 512)),
    ((100, 1000), (51, 512)),    # 51.2 rounds to 51
    ((600, 300), (512, 256)),
])
def test_keep_aspect_ratio_size(size, expected) -> None:
    assert new_size(*size, 512, 512) == expected


def test_keep_aspect_ratio_resizer_pads_bottom_right_and_reports_true_shape() -> None:
    resizer = KeepAspectRatioResizer(64, 64, pad_to_max_dimension=True)
    images = tf.fill([2, 30, 40, 3], 200.0)
    resized, shapes = resizer(images)
    assert resized.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(shapes.numpy(), [[48, 64, 3], [48, 64, 3]])
    np.testing.assert_allclose(resized[:, :48].numpy(), 200.0)
    np.testing.assert_array_equal(resized[:, 48:].numpy(), 0.0)
    # unknown sizes (an exported graph's input) take the same path in TF ops
    dynamic = tf.function(resizer, input_signature=[tf.TensorSpec([None, None, None, 3])])
    resized_dynamic, shapes_dynamic = dynamic(images)
    np.testing.assert_array_equal(shapes_dynamic.numpy(), shapes.numpy())
    np.testing.assert_allclose(resized_dynamic.numpy(), resized.numpy())


def test_input_pipeline_resizer_pads_and_moves_the_boxes_into_the_padded_frame() -> None:
    """The TF2 API's input pipeline: the padded image's boxes are relative to the padded
    square (a box over the whole 30x40 image covers rows 0..48 of 64)."""
    from odflow.inputs.resize import build_resizer
    from odflow.protos import pipeline_pb2

    config = pipeline_pb2.ImageResizer()
    config.keep_aspect_ratio_resizer.min_dimension = 64
    config.keep_aspect_ratio_resizer.max_dimension = 64
    config.keep_aspect_ratio_resizer.pad_to_max_dimension = True
    resizer = build_resizer(config)
    image, true_shape = resizer(tf.fill([30, 40, 3], tf.constant(7, tf.uint8)))
    assert image.shape == (64, 64, 3) and image.dtype == tf.float32
    np.testing.assert_array_equal(true_shape.numpy(), [48, 64, 3])
    np.testing.assert_allclose(image[:48].numpy(), 7.0)
    np.testing.assert_array_equal(image[48:].numpy(), 0.0)
    boxes = resizer.realign_boxes(tf.constant([[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 1.0, 0.5]]),
                                  true_shape)
    np.testing.assert_allclose(boxes.numpy(), [[0, 0, 0.75, 1], [0.375, 0.25, 0.75, 0.5]])


def test_efficientnet_scaling_rules() -> None:
    # EfficientNet-B7's stem and top (64, 2560), B6's stem (56), B4's (48) and the repeats of
    # B7's 4-block stack (ceil(4 * 3.1) = 13), as published with the paper's models.
    assert efficientnet.round_filters(32, 2.0) == 64
    assert efficientnet.round_filters(1280, 2.0) == 2560
    assert efficientnet.round_filters(32, 1.8) == 56
    assert efficientnet.round_filters(32, 1.4) == 48
    assert efficientnet.round_repeats(4, 3.1) == 13
    specs = efficientnet.block_specs("efficientnet-b0")
    assert len(specs) == 16
    assert specs[-1].drop_rate == pytest.approx(0.2 * 15 / 16)
    assert specs[0].se_filters == 8 and specs[1].se_filters == 4  # 0.25 x block input


def test_drop_connect_only_in_training() -> None:
    tf.random.set_seed(1)
    net = efficientnet.EfficientNet("efficientnet-b0", 2, 2)
    assert [b.spec.prefix for b in net.blocks][-1] == "stack_1/block_1/"
    x = tf.random.uniform([4, 32, 32, 3])
    inference = [net(x, training=False)[2].numpy() for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    # stack_1/block_1 has a residual with drop rate 0.2 * 2 / 16: some examples lose the
    # residual branch; batch norm stays in inference mode here, so only drop-connect differs
    training = [net(x, training=True, bn_training=False)[2].numpy() for _ in range(8)]
    assert any(not np.allclose(t, inference[0]) for t in training)


def _d0() -> object:
    return config_io.load(FIXTURES / "configs" / f"{D0}.config")


@pytest.mark.parametrize("edit, field", [
    (lambda m: setattr(m.ssd.feature_extractor.bifpn, "num_iterations", 0),
     "bifpn.num_iterations"),
    (lambda m: setattr(m.ssd.feature_extractor.bifpn, "combine_method", "max"),
     "bifpn.combine_method"),
    (lambda m: setattr(m.ssd.image_resizer.keep_aspect_ratio_resizer, "pad_to_max_dimension",
                       False), "pad_to_max_dimension"),
    (lambda m: (setattr(m.ssd.image_resizer.keep_aspect_ratio_resizer, "min_dimension", 300),
                setattr(m.ssd.image_resizer.keep_aspect_ratio_resizer, "max_dimension", 300)),
     "divisible by 128"),
    (lambda m: setattr(m.ssd.feature_extractor, "use_depthwise", True), "use_depthwise"),
    (lambda m: (setattr(m.ssd.feature_extractor, "type", "ssd_mobilenet_v1"),
                setattr(m.ssd, "add_background_class", True),
                m.ssd.feature_extractor.ClearField("bifpn")),
     "keep_aspect_ratio_resizer is supported only"),
])
def test_builder_refuses_with_the_field(edit, field) -> None:
    model = _d0().model
    edit(model)
    with pytest.raises(OdflowError, match=re.escape(field)):
        builder.build(model, is_training=True)


def test_use_bfloat16_is_accepted_and_logged(caplog) -> None:
    train_config = _d0().train_config
    assert train_config.use_bfloat16
    with caplog.at_level(logging.INFO):
        check_train_config(train_config)
    assert "use_bfloat16" in caplog.text and "float32" in caplog.text


@pytest.mark.slow
def test_padded_input_detections_are_clipped_to_the_true_image_and_relative_to_it() -> None:
    """A 128x256 image becomes 128x256 inside a 256x256 input (the starter's small D0): the
    clip window is [0, 0, 0.5, 1], and each detection is its anchor's decoded box clipped to
    it and expressed in its frame (y / 0.5), as the TF2 API's change_coordinate_frame does."""
    from odflow.config import loads
    from odflow.workflow import starter

    text = starter.starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=2,
                                         architecture="ssd_efficientnet-b0_bifpn_keras")
    tf.random.set_seed(3)
    model = builder.build(loads(text).model, is_training=False)
    assert not model.add_background_class
    images = tf.random.uniform([1, 128, 256, 3], 0, 255, seed=4)
    preprocessed, shapes = model.preprocess(images)
    assert preprocessed.shape == (1, 256, 256, 3)
    np.testing.assert_array_equal(shapes.numpy(), [[128, 256, 3]])
    prediction = model.predict(preprocessed, training=False)
    assert prediction["class_predictions_with_background"].shape[-1] == 2  # no background
    detections = model.postprocess(prediction, shapes)
    decoded = model.decode(prediction["box_encodings"], prediction["anchors"])[0].numpy()
    count = int(detections["num_detections"][0])
    assert count > 0
    for i in range(min(count, 5)):
        anchor = int(detections["detection_anchor_indices"][0, i])
        ymin, xmin, ymax, xmax = np.clip(decoded[anchor], 0.0, [0.5, 1.0, 0.5, 1.0])
        expected = [ymin / 0.5, xmin, ymax / 0.5, xmax]
        np.testing.assert_allclose(detections["detection_boxes"][0, i].numpy(), expected,
                                   atol=1e-6)
    classes = detections["detection_classes"][0, :count].numpy()
    assert set(classes) <= {1.0, 2.0}  # label ids
