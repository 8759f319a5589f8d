"""The network's variables against the zoo checkpoint's index, and its layer semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.model import builder
from odflow.protos import pipeline_pb2

ZOO = Path(__file__).parent / "fixtures/reference/model_zoo/ssd_mobilenet_v1_coco_2018_01_28"
FE = "FeatureExtractor/MobilenetV1"


def zoo_model_config(**changes: str) -> pipeline_pb2.DetectionModel:
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse((ZOO / "pipeline.config").read_text(), config)
    for text in changes.values():
        text_format.Merge(text, config.model)
    return config.model


def zoo_variables() -> dict[str, tuple[list[int], tf.DType]]:
    reader = tf.train.load_checkpoint(str(ZOO / "model.ckpt"))
    dtypes = reader.get_variable_to_dtype_map()
    return {name: (shape, dtypes[name])
            for name, shape in reader.get_variable_to_shape_map().items()}


def test_variables_match_the_zoo_index_exactly():
    model = builder.build(zoo_model_config(), is_training=True)
    named = model.named_variables()
    expected = zoo_variables()
    assert expected.pop("global_step")[1] == tf.int64  # training's, not the model's
    assert len(expected) == 199
    assert sorted(named) == sorted(expected)
    for name, variable in named.items():
        assert (variable.shape.as_list(), variable.dtype) == expected[name], name
    assert len(model.trainable_variables) == 129
    non_trainable = {n for n, v in named.items() if not v.trainable}
    assert non_trainable == {n for n in named if n.endswith(("moving_mean", "moving_variance"))}


def test_one_class_changes_only_the_class_predictors():
    zoo = zoo_model_config()
    one = zoo_model_config(c="ssd { num_classes: 1 }")
    named90 = builder.build(zoo, is_training=False).named_variables()
    named1 = builder.build(one, is_training=False).named_variables()
    assert sorted(named90) == sorted(named1)
    changed = {n for n in named1 if named1[n].shape != named90[n].shape}
    assert changed == {f"BoxPredictor_{k}/ClassPredictor/{v}" for k in range(6)
                       for v in ("weights", "biases")}
    assert named1["BoxPredictor_0/ClassPredictor/biases"].shape == [6]
    assert named1["BoxPredictor_3/ClassPredictor/weights"].shape == [1, 1, 256, 12]


def test_depth_multiplier_quarter_scales_depths_with_min_depth():
    model = builder.build(zoo_model_config(
        c="ssd { feature_extractor { depth_multiplier: 0.25 min_depth: 16 } }"), False)
    shapes = {n: v.shape.as_list() for n, v in model.named_variables().items()}
    assert shapes[f"{FE}/Conv2d_0/weights"] == [3, 3, 3, 16]  # 32 * 0.25 = 8 -> 16
    assert shapes[f"{FE}/Conv2d_1_depthwise/depthwise_weights"] == [3, 3, 16, 1]
    assert shapes[f"{FE}/Conv2d_1_pointwise/weights"] == [1, 1, 16, 16]
    assert shapes[f"{FE}/Conv2d_2_pointwise/weights"] == [1, 1, 16, 32]
    assert shapes[f"{FE}/Conv2d_13_pointwise/weights"] == [1, 1, 256, 256]
    extras = {
        "Conv2d_13_pointwise_1_Conv2d_2_1x1_64": [1, 1, 256, 64],
        "Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_128": [3, 3, 64, 128],
        "Conv2d_13_pointwise_1_Conv2d_3_1x1_32": [1, 1, 128, 32],
        "Conv2d_13_pointwise_2_Conv2d_3_3x3_s2_64": [3, 3, 32, 64],
        "Conv2d_13_pointwise_1_Conv2d_4_1x1_32": [1, 1, 64, 32],
        "Conv2d_13_pointwise_2_Conv2d_4_3x3_s2_64": [3, 3, 32, 64],
        "Conv2d_13_pointwise_1_Conv2d_5_1x1_16": [1, 1, 64, 16],
        "Conv2d_13_pointwise_2_Conv2d_5_3x3_s2_32": [3, 3, 16, 32],
    }
    for name, shape in extras.items():
        assert shapes[f"{FE}/{name}/weights"] == shape, name
    inputs = [128, 256, 128, 64, 64, 32]
    for k, depth in enumerate(inputs):
        assert shapes[f"BoxPredictor_{k}/BoxEncodingPredictor/weights"][2] == depth
    assert len(shapes) == 199


def test_anchors_and_output_shapes_at_300():
    model = builder.build(zoo_model_config(
        c="ssd { num_classes: 3 feature_extractor { depth_multiplier: 0.25 } }"), False)
    images = tf.random.uniform([2, 300, 300, 3], 0.0, 255.0)
    preprocessed, true_shapes = model.preprocess(images)
    assert float(tf.reduce_min(preprocessed)) >= -1.0
    assert float(tf.reduce_max(preprocessed)) <= 1.0
    assert true_shapes.dtype == tf.int32
    np.testing.assert_array_equal(true_shapes.numpy(), [[300, 300, 3]] * 2)
    out = model.predict(preprocessed, training=False)
    assert [tuple(f.shape[1:3]) for f in out["feature_maps"]] == [
        (19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert out["anchors"].shape == [1917, 4]
    assert out["box_encodings"].shape == [2, 1917, 4]
    assert out["class_predictions_with_background"].shape == [2, 1917, 4]
    # Layer 0's first anchor: scale 0.1, ratio 1, centred in the first of 19 cells.
    c = 0.5 / 19
    np.testing.assert_allclose(out["anchors"][0].numpy(), [c - 0.05, c - 0.05, c + 0.05, c + 0.05],
                               atol=1e-6)


def test_preprocess_resizes_to_the_fixed_shape():
    model = builder.build(zoo_model_config(c=(
        "ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.25 } "
        "image_resizer { fixed_shape_resizer { height: 160 width: 128 } } }")), False)
    preprocessed, true_shapes = model.preprocess(tf.fill([1, 50, 70, 3], 255.0))
    assert preprocessed.shape == [1, 160, 128, 3]
    np.testing.assert_allclose(preprocessed.numpy(), 1.0, atol=1e-5)
    np.testing.assert_array_equal(true_shapes.numpy(), [[160, 128, 3]])
    out = model.predict(preprocessed, training=False)
    # 160x128: 10x8, 5x4, 3x2, 2x1, 1x1, 1x1 cells; 3 then 6 anchors per cell.
    assert out["anchors"].shape[0] == 3 * 80 + 6 * (20 + 6 + 2 + 1 + 1)


def test_batch_norm_training_updates_moving_statistics_only_in_training():
    model = builder.build(zoo_model_config(
        c="ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.25 } }"), True)
    mean = model.named_variables()[f"{FE}/Conv2d_0/BatchNorm/moving_mean"]
    before = mean.numpy().copy()
    images, _ = model.preprocess(tf.random.uniform([2, 300, 300, 3], 0.0, 255.0))
    model.predict(images, training=False)
    np.testing.assert_array_equal(mean.numpy(), before)
    model.predict(images, training=True)
    # TF1 slim: moving -= (moving - batch) * (1 - decay); MobileNet's own decay 0.9997.
    weights = model.named_variables()[f"{FE}/Conv2d_0/weights"]
    conv = tf.nn.conv2d(images, weights, 2, "SAME").numpy().reshape(-1, 16)
    np.testing.assert_allclose(mean.numpy(), conv.mean(0) * (1 - 0.9997), rtol=1e-3, atol=1e-9)
    variance = model.named_variables()[f"{FE}/Conv2d_0/BatchNorm/moving_variance"]
    np.testing.assert_allclose(variance.numpy(), 1 - (1 - conv.var(0, ddof=1)) * (1 - 0.9997),
                               rtol=1e-5)


def test_freeze_batchnorm_keeps_moving_statistics():
    model = builder.build(zoo_model_config(
        c="ssd { num_classes: 1 freeze_batchnorm: true feature_extractor "
          "{ depth_multiplier: 0.25 } }"), True)
    mean = model.named_variables()[f"{FE}/Conv2d_0/BatchNorm/moving_mean"]
    images, _ = model.preprocess(tf.random.uniform([2, 300, 300, 3], 0.0, 255.0))
    model.predict(images, training=True)
    np.testing.assert_array_equal(mean.numpy(), np.zeros(16))


def test_regularization_loss_is_tf1_l2_of_all_conv_weights():
    model = builder.build(zoo_model_config(
        c="ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.25 } }"), True)
    expected = 0.0
    for name, variable in model.named_variables().items():
        if name.endswith("weights"):  # weights and depthwise_weights; never biases or BN
            # MobileNet base: its own 4e-5; extras and box predictor: the config's 3.99999e-5.
            weight = 0.00004 if "pointwise_" not in name and name.startswith(FE) else 3.99999989895e-05
            expected += weight * np.sum(variable.numpy().astype(np.float64) ** 2) / 2
    assert float(model.regularization_loss()) == pytest.approx(expected, rel=1e-5)


def test_explicit_padding_and_depthwise_extras():
    model = builder.build(zoo_model_config(
        c="ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.25 "
          "use_explicit_padding: true use_depthwise: true } }"), False)
    named = model.named_variables()
    name = f"{FE}/Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_128"
    assert named[f"{name}_depthwise/depthwise_weights"].shape == [3, 3, 64, 1]
    assert named[f"{name}/weights"].shape == [1, 1, 64, 128]
    assert f"{name}_depthwise/BatchNorm/moving_mean" in named
    images, _ = model.preprocess(tf.zeros([1, 300, 300, 3]))
    assert model.predict(images, training=False)["box_encodings"].shape == [1, 1917, 4]


def test_box_predictor_layers_before_predictor_and_options():
    model = builder.build(zoo_model_config(c=(
        "ssd { num_classes: 2 feature_extractor { depth_multiplier: 0.25 } "
        "box_predictor { convolutional_box_predictor { num_layers_before_predictor: 1 "
        "min_depth: 8 max_depth: 32 kernel_size: 3 class_prediction_bias_init: -4.6 "
        "use_dropout: true } } }")), True)
    named = model.named_variables()
    assert named["BoxPredictor_0/Conv2d_0_1x1_32/weights"].shape == [1, 1, 128, 32]
    assert "BoxPredictor_0/Conv2d_0_1x1_32/BatchNorm/gamma" in named
    assert named["BoxPredictor_0/ClassPredictor/weights"].shape == [3, 3, 32, 9]
    np.testing.assert_allclose(named["BoxPredictor_5/ClassPredictor/biases"].numpy(), -4.6)
    np.testing.assert_allclose(named["BoxPredictor_5/BoxEncodingPredictor/biases"].numpy(), 0.0)
    images, _ = model.preprocess(tf.zeros([1, 300, 300, 3]))
    # Dropout only in training: inference is deterministic.
    a = model.predict(images, training=False)["class_predictions_with_background"]
    b = model.predict(images, training=False)["class_predictions_with_background"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_variance_scaling_initializer_and_l1_regularizer():
    model = builder.build(zoo_model_config(c=(
        "ssd { num_classes: 1 feature_extractor { depth_multiplier: 0.25 } "
        "box_predictor { convolutional_box_predictor { conv_hyperparams { "
        "initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } } "
        "regularizer { l1_regularizer { weight: 0.5 } } } } } }")), False)
    named = model.named_variables()
    weights = named["BoxPredictor_1/BoxEncodingPredictor/weights"].numpy()  # [1, 1, 256, 24]
    limit = np.sqrt(3.0 / ((256 + 24) / 2))
    assert np.abs(weights).max() <= limit
    assert np.abs(weights).max() > 0.9 * limit  # uniform: some values near the bound
    box_terms = sum(0.5 * np.abs(v.numpy()).sum() for n, v in named.items()
                    if n.startswith("BoxPredictor") and n.endswith("weights"))
    feature_terms = 0.00004 * sum((v.numpy().astype(np.float64) ** 2).sum() / 2
                                  for n, v in named.items()
                                  if n.startswith(FE) and n.endswith("weights"))
    assert float(model.regularization_loss()) == pytest.approx(box_terms + feature_terms,
                                                               rel=1e-4)
