"""ssd_mobilenet_v1_fpn: the zoo's variables, one-class patching, restore, config errors,
and the pyramid's pieces on hand-worked values.  (Numerics against the zoo's TF1 graph:
tests/test_model_tf1_fpn.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model.fpn import nearest_neighbor_upsampling
from odflow.model.restore import restore_fine_tune_checkpoint
from odflow.protos import pipeline_pb2
from tests.support import zoo

FOLDER = "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03"
ZOO = zoo.ZOO / FOLDER
WS = "WeightSharedConvolutionalBoxPredictor"


def zoo_config(*changes: str) -> pipeline_pb2.DetectionModel:
    return zoo.pipeline(FOLDER, *changes).model


def zoo_index() -> dict[str, tuple[list[int], str]]:
    """name -> (shape, dtype) from the zoo's variables.txt (read from its model.ckpt.index)."""
    return zoo.variables(FOLDER)


@pytest.fixture(scope="module")
def zoo_model():
    return builder.build(zoo_config(), is_training=True)


def test_variables_equal_the_zoo_index(zoo_model):
    expected = zoo_index()
    assert expected.pop("global_step") == ([], "int64")
    assert len(expected) == 333
    named = zoo_model.named_variables()
    assert sorted(named) == sorted(expected)
    for name, variable in named.items():
        assert (variable.shape.as_list(), variable.dtype.name) == expected[name], name
    non_trainable = {n for n, v in named.items() if not v.trainable}
    assert non_trainable == {n for n in named if n.endswith(("moving_mean", "moving_variance"))}


def test_zoo_initial_values_follow_the_config(zoo_model):
    named = zoo_model.named_variables()
    # class_prediction_bias_init: -4.6 (RetinaNet's prior of 0.01), box biases 0.
    np.testing.assert_allclose(named[f"{WS}/ClassPredictor/biases"].numpy(), -4.6, rtol=1e-6)
    np.testing.assert_array_equal(named[f"{WS}/BoxPredictor/biases"].numpy(), 0.0)
    # random_normal_initializer stddev 0.01 for the base too (override_base_...: true).
    weights = named["FeatureExtractor/MobilenetV1/Conv2d_13_pointwise/weights"].numpy()
    assert abs(weights.std() - 0.01) < 0.001


def test_one_class_changes_only_the_class_predictor():
    one = builder.build(zoo_config("ssd { num_classes: 1 }"), is_training=False)
    shapes = {n: v.shape.as_list() for n, v in one.named_variables().items()}
    expected = zoo_index()
    expected.pop("global_step")
    changed = {n for n in shapes if shapes[n] != expected[n][0]}
    assert changed == {f"{WS}/ClassPredictor/weights", f"{WS}/ClassPredictor/biases"}
    assert shapes[f"{WS}/ClassPredictor/weights"] == [3, 3, 256, 6 * 2]


@pytest.mark.slow
def test_anchors_and_outputs_per_level(zoo_model):
    images = tf.zeros([1, 640, 640, 3])
    out = zoo_model.predict(images, training=False)
    assert [tuple(f.shape[1:3]) for f in out["feature_maps"]] == [
        (80, 80), (40, 40), (20, 20), (10, 10), (5, 5)]
    num_anchors = 6 * (80 * 80 + 40 * 40 + 20 * 20 + 10 * 10 + 5 * 5)
    assert out["anchors"].shape == [num_anchors, 4]
    assert out["box_encodings"].shape == [1, num_anchors, 4]
    assert out["class_predictions_with_background"].shape == [1, num_anchors, 91]
    # First anchor: level 3 (stride 8), cell (0, 0) centred at 4 px, aspect 1, scale 1:
    # 4 * 8 = 32 px wide, normalised by 640.
    np.testing.assert_allclose(out["anchors"][0].numpy(),
                               np.array([4 - 16, 4 - 16, 4 + 16, 4 + 16]) / 640, atol=1e-6)


def test_nearest_neighbor_upsampling_repeats_each_value_in_a_block():
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
    expected = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    np.testing.assert_array_equal(nearest_neighbor_upsampling(x, 2)[0, :, :, 0], expected)


def test_towers_share_weights_but_not_batch_norm(zoo_model):
    """Level j's tower uses the one conv2d_i weight and its own BatchNorm/feature_j."""
    named = zoo_model.named_variables()
    predictor = zoo_model.box_predictor
    # Give level 1's statistics a different mean: only that level's output may change.
    maps = [tf.random.stateless_normal([1, s, s, 256], seed=[1, s]) for s in (8, 4, 2)]
    predictor_maps = maps + [maps[-1], maps[-1]]
    before = predictor.box_tower(predictor_maps[1], 1, False).numpy()
    other = predictor.box_tower(predictor_maps[2], 2, False).numpy()
    named[f"{WS}/BoxPredictionTower/conv2d_3/BatchNorm/feature_1/moving_mean"].assign(
        tf.fill([256], 100.0))
    try:
        assert not np.allclose(predictor.box_tower(predictor_maps[1], 1, False), before)
        np.testing.assert_array_equal(predictor.box_tower(predictor_maps[2], 2, False), other)
    finally:
        named[f"{WS}/BoxPredictionTower/conv2d_3/BatchNorm/feature_1/moving_mean"].assign(
            tf.zeros([256]))


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> str:
    """A name-based checkpoint as TF1's Saver wrote it."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return str(prefix)


@pytest.mark.slow
def test_detection_and_classification_restore_with_the_zoo_names(tmp_path, caplog):
    """A checkpoint laid out as the zoo's index (90 classes) into a one-class model."""
    rng = np.random.default_rng(0)
    index = zoo_index()
    tensors = {n: (np.int64(5) if dtype == "int64" else
                   rng.normal(size=shape).astype(np.float32))
               for n, (shape, dtype) in index.items()}
    prefix = write_checkpoint(tmp_path / "model.ckpt", tensors)
    model = builder.build(zoo_config("ssd { num_classes: 1 }"), is_training=True)
    named = model.named_variables()

    report = restore_fine_tune_checkpoint(model, prefix, "detection")
    features = sorted(n for n in named if n.startswith("FeatureExtractor/"))
    assert sorted(report.restored) == features and len(features) == 135 + 26
    assert not report.skipped_missing and not report.skipped_shape
    np.testing.assert_array_equal(named["FeatureExtractor/MobilenetV1/fpn/smoothing_1/weights"],
                                  tensors["FeatureExtractor/MobilenetV1/fpn/smoothing_1/weights"])

    report = restore_fine_tune_checkpoint(model, prefix, "detection",
                                          load_all_detection_checkpoint_vars=True)
    assert report.skipped_shape == [f"{WS}/ClassPredictor/biases", f"{WS}/ClassPredictor/weights"]
    assert len(report.restored) == 333 - 2

    # An ImageNet MobileNet v1 checkpoint names the backbone MobilenetV1/...: the pyramid is
    # new (skipped, each with a warning), the backbone restores.
    imagenet = {n[len("FeatureExtractor/"):]: tensors[n] for n in index
                if n.startswith("FeatureExtractor/MobilenetV1/Conv2d_")}
    prefix = write_checkpoint(tmp_path / "imagenet.ckpt", imagenet)
    with caplog.at_level(logging.WARNING, logger="odflow.model.restore"):
        report = restore_fine_tune_checkpoint(model, prefix, "classification")
    assert len(report.restored) == 135
    assert sorted(report.skipped_missing) == sorted(n for n in features if "/fpn/" in n)
    assert "MobilenetV1/fpn/smoothing_1/weights" in caplog.text


@pytest.mark.parametrize("change, message", [
    ("ssd { image_resizer { fixed_shape_resizer { height: 300 width: 300 } } }",
     "cannot add the pyramid levels of a 300x300 image; use a multiple of 32, e.g. 320x320"),
    ("ssd { feature_extractor { fpn { min_level: 3 max_level: 6 } } }",
     "anchor_generator describes 5 layers but the feature extractor gives 4"),
    ("ssd { feature_extractor { fpn { min_level: 1 } } }", "min_level must be 2..5"),
    ("ssd { feature_extractor { use_depthwise: true } }", "use_depthwise is not supported"),
    ("ssd { box_predictor { weight_shared_convolutional_box_predictor { depth: 0 } } }",
     "depth must be positive"),
    ("ssd { feature_extractor { type: 'ssd_mobilenet_v9' } }",
     "'ssd_mobilenet_v9' is not supported; odflow supports 'ssd_mobilenet_v1'"),
])
def test_config_errors_name_the_field(change, message):
    with pytest.raises(OdflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        builder.build(zoo_config(change), is_training=False)


def test_fpn_levels_follow_the_config():
    model = builder.build(zoo_config(
        "ssd { feature_extractor { fpn { min_level: 2 max_level: 6 additional_layer_depth: 64 } }"
        " anchor_generator { multiscale_anchor_generator { min_level: 2 max_level: 6 } }"
        " image_resizer { fixed_shape_resizer { height: 128 width: 96 } } }"), is_training=False)
    shapes = {n: v.shape.as_list() for n, v in model.named_variables().items()}
    fpn = "FeatureExtractor/MobilenetV1/fpn"
    assert shapes[f"{fpn}/projection_1/weights"] == [1, 1, 128, 64]  # Conv2d_3_pointwise
    assert shapes[f"{fpn}/projection_4/weights"] == [1, 1, 1024, 64]
    assert f"{fpn}/smoothing_3/weights" in shapes and f"{fpn}/smoothing_4/weights" not in shapes
    assert f"{fpn}/bottom_up_Conv2d_14/weights" in shapes
    assert f"{fpn}/bottom_up_Conv2d_15/weights" not in shapes
    out = model.predict(tf.zeros([1, 128, 96, 3]), training=False)
    assert [tuple(f.shape[1:3]) for f in out["feature_maps"]] == [
        (32, 24), (16, 12), (8, 6), (4, 3), (2, 2)]
    assert model.feature_extractor.feature_map_shapes(128, 96) == [
        (32, 24), (16, 12), (8, 6), (4, 3), (2, 2)]


SAMPLES = Path(__file__).parent / "fixtures/reference/sample_configs"


def sample_config(name: str, *changes: str) -> pipeline_pb2.DetectionModel:
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse((SAMPLES / f"{name}.config").read_text(), config)
    for text in changes:
        text_format.Merge(text, config.model)
    return config.model


@pytest.mark.slow
def test_resnet50_fpn_names_follow_slim():
    """No zoo index exists for this tarball: names and counts from slim's resnet_v1_50 (conv1,
    16 bottleneck units, a shortcut conv in each block's first unit) and the API's FPN."""
    model = builder.build(sample_config(
        "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync",
        "ssd { num_classes: 1 }"), is_training=False)
    shapes = {n: v.shape.as_list() for n, v in model.named_variables().items()}
    convs = 1 + 3 * (3 + 4 + 6 + 3) + 4
    assert len(shapes) == 5 * convs + 26 + 2 * 4 * (1 + 5 * 4) + 4
    r = "FeatureExtractor/resnet_v1_50"
    expected = {
        f"{r}/conv1/weights": [7, 7, 3, 64],
        f"{r}/conv1/BatchNorm/gamma": [64],
        f"{r}/block1/unit_1/bottleneck_v1/shortcut/weights": [1, 1, 64, 256],
        f"{r}/block1/unit_3/bottleneck_v1/conv2/weights": [3, 3, 64, 64],
        f"{r}/block2/unit_1/bottleneck_v1/conv1/weights": [1, 1, 256, 128],
        f"{r}/block3/unit_6/bottleneck_v1/conv3/weights": [1, 1, 256, 1024],
        f"{r}/block4/unit_1/bottleneck_v1/shortcut/weights": [1, 1, 1024, 2048],
        f"{r}/fpn/projection_1/weights": [1, 1, 512, 256],  # block2 (level 3)
        f"{r}/fpn/projection_3/weights": [1, 1, 2048, 256],  # block4 (level 5)
        f"{r}/fpn/smoothing_2/weights": [3, 3, 256, 256],
        f"{r}/fpn/bottom_up_block5/weights": [3, 3, 256, 256],
        f"{r}/fpn/bottom_up_block6/BatchNorm/moving_variance": [256],
        f"{WS}/ClassPredictor/weights": [3, 3, 256, 12],
    }
    assert {n: shapes.get(n) for n in expected} == expected
    assert f"{r}/block1/unit_2/bottleneck_v1/shortcut/weights" not in shapes
    # VGG-style input: channel means subtracted, not scaled to [-1, 1].
    preprocessed, _ = model.preprocess(tf.fill([1, 640, 640, 3], 123.68))
    np.testing.assert_allclose(preprocessed[0, 0, 0].numpy(), [0, 123.68 - 116.779,
                                                               123.68 - 103.939], atol=1e-4)
    out = model.predict(tf.zeros([1, 640, 640, 3]), training=False)
    assert [tuple(f.shape[1:3]) for f in out["feature_maps"]] == [
        (80, 80), (40, 40), (20, 20), (10, 10), (5, 5)]


def test_mobilenet_v1_ppn_pools_from_conv2d_11():
    """No zoo index: MobileNet v1's 27 layers, one shared 1x1 PredictionTower layer with batch
    norm per level, and max-pooled levels 19, 10, 5, 3, 2, 1 at 300x300."""
    model = builder.build(sample_config(
        "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync"), is_training=False)
    shapes = {n: v.shape.as_list() for n, v in model.named_variables().items()}
    assert len(shapes) == 27 * 5 + (1 + 6 * 4) + 4
    assert shapes[f"{WS}/PredictionTower/conv2d_0/weights"] == [1, 1, 512, 512]
    assert shapes[f"{WS}/PredictionTower/conv2d_0/BatchNorm/feature_5/beta"] == [512]
    assert shapes[f"{WS}/ClassPredictor/weights"] == [1, 1, 512, 6 * 91]
    assert "FeatureExtractor/MobilenetV1/Conv2d_13_pointwise/weights" in shapes
    images = tf.random.stateless_uniform([1, 300, 300, 3], seed=[0, 1]) * 2 - 1
    out = model.predict(images, training=False)
    maps = out["feature_maps"]
    assert [tuple(f.shape[1:3]) for f in maps] == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2),
                                                   (1, 1)]
    # Level 1 is the 2x2 max of level 0 (SAME: the last row/column pools alone).
    level0 = maps[0][0].numpy()
    np.testing.assert_array_equal(maps[1][0, 0, 0], level0[:2, :2].max(axis=(0, 1)))
    np.testing.assert_array_equal(maps[1][0, 9, 9], level0[18, 18])
    assert out["anchors"].shape == [6 * (361 + 100 + 25 + 9 + 4 + 1), 4]
