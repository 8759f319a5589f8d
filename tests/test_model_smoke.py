"""End to end on a tiny model: training steps lower the loss, detections have the API's
layout, and the step traces under tf.function, MirroredStrategy and graph freezing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from odflow.model import builder
from odflow.protos import pipeline_pb2

ZOO = Path(__file__).parent / "fixtures/reference/model_zoo/ssd_mobilenet_v1_coco_2018_01_28"


def tiny_config(num_classes: int = 2) -> pipeline_pb2.DetectionModel:
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse((ZOO / "pipeline.config").read_text(), config)
    text_format.Merge(
        f"ssd {{ num_classes: {num_classes} feature_extractor {{ depth_multiplier: 0.25 }} "
        "image_resizer { fixed_shape_resizer { height: 128 width: 128 } } "
        "post_processing { batch_non_max_suppression { score_threshold: 0.0 "
        "max_detections_per_class: 10 max_total_detections: 20 } } }", config.model)
    return config.model


def synthetic_batch() -> dict[str, tf.Tensor]:
    """Two images with bright rectangles where the boxes are."""
    images = np.full([2, 128, 128, 3], 40.0, np.float32)
    boxes = np.zeros([2, 3, 4], np.float32)
    boxes[0, :2] = [[0.1, 0.1, 0.5, 0.45], [0.55, 0.5, 0.95, 0.9]]
    boxes[1, :1] = [[0.2, 0.3, 0.8, 0.7]]
    for b in range(2):
        for ymin, xmin, ymax, xmax in boxes[b]:
            images[b, int(ymin * 128):int(ymax * 128), int(xmin * 128):int(xmax * 128)] = 220.0
    return {
        "image": tf.constant(images),
        "groundtruth_boxes": tf.constant(boxes),
        "groundtruth_classes": tf.constant([[1, 2, 0], [2, 0, 0]], tf.int32),
        "num_groundtruth_boxes": tf.constant([2, 1], tf.int32),
    }


def total_loss(model, batch, training=True):
    preprocessed, _ = model.preprocess(batch["image"])
    prediction = model.predict(preprocessed, training=training)
    losses = model.loss(prediction, batch["groundtruth_boxes"], batch["groundtruth_classes"],
                        batch["num_groundtruth_boxes"])
    return losses["Loss/classification_loss"] + losses["Loss/localization_loss"]


@pytest.mark.slow
def test_a_few_optimizer_steps_reduce_the_loss():
    tf.random.set_seed(7)
    model = builder.build(tiny_config(), is_training=True)
    batch = synthetic_batch()

    @tf.function
    def step():
        # Plain gradient descent: a Keras optimiser's first trace costs more than the test.
        with tf.GradientTape() as tape:
            loss = total_loss(model, batch) + model.regularization_loss()
        variables = model.trainable_variables
        for variable, gradient in zip(variables, tape.gradient(loss, variables)):
            variable.assign_sub(0.05 * gradient)
        return loss

    losses = [float(step()) for _ in range(10)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.75 * losses[0]


def test_loss_and_miner_summaries():
    model = builder.build(tiny_config(), is_training=True)
    batch = synthetic_batch()
    preprocessed, _ = model.preprocess(batch["image"])
    prediction = model.predict(preprocessed, training=True)
    losses = model.loss(prediction, batch, with_summaries=True)
    assert set(losses) == {"Loss/classification_loss", "Loss/localization_loss",
                           "Loss/HardExampleMiner/NumPositives",
                           "Loss/HardExampleMiner/NumNegatives"}
    positives = float(losses["Loss/HardExampleMiner/NumPositives"])
    negatives = float(losses["Loss/HardExampleMiner/NumNegatives"])
    assert positives >= 1.5  # each groundtruth box is force-matched to an anchor at least
    assert negatives <= 3 * positives + 1e-6
    for key in ("Loss/classification_loss", "Loss/localization_loss"):
        assert losses[key].shape == [] and float(losses[key]) > 0
    assert model.loss(prediction, batch).keys() == {"Loss/classification_loss",
                                                    "Loss/localization_loss"}


def test_postprocess_outputs_have_the_api_layout():
    model = builder.build(tiny_config(num_classes=3), is_training=False)
    preprocessed, true_shapes = model.preprocess(tf.random.uniform([2, 100, 90, 3], 0, 255))
    prediction = model.predict(preprocessed, training=False)
    detections = model.postprocess(prediction, true_shapes)
    anchors = prediction["anchors"].shape[0]
    expected = {
        "detection_boxes": [2, 20, 4], "detection_scores": [2, 20],
        "detection_classes": [2, 20], "num_detections": [2],
        "detection_multiclass_scores": [2, 20, 4],
        "raw_detection_boxes": [2, anchors, 4], "raw_detection_scores": [2, anchors, 4],
    }
    for key, shape in expected.items():
        assert detections[key].shape.as_list() == shape, key
        assert detections[key].dtype == tf.float32, key
    num = detections["num_detections"].numpy().astype(int)
    assert (num == 20).all()  # score threshold 0: every slot is used
    classes = detections["detection_classes"].numpy()
    assert classes.min() >= 1 and classes.max() <= 3  # label-map ids, 1-based
    scores = detections["detection_scores"].numpy()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # A detection's score is its class column of the multiclass scores.
    multi = detections["detection_multiclass_scores"].numpy()
    picked = np.take_along_axis(multi, classes.astype(int)[..., None], axis=2)[..., 0]
    np.testing.assert_allclose(picked, scores, rtol=1e-5)


@pytest.mark.slow
def test_mirrored_strategy_step_and_frozen_inference_graph():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = builder.build(tiny_config(), is_training=True)
        optimizer = tf.keras.optimizers.SGD(1e-3)
    batch = synthetic_batch()

    @tf.function
    def train_step():
        def replica_step():
            with tf.GradientTape() as tape:
                loss = total_loss(model, batch)
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss
        return strategy.reduce("SUM", strategy.run(replica_step), axis=None)

    assert np.isfinite(float(train_step()))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def detect(images):
        preprocessed, shapes = model.preprocess(tf.cast(images, tf.float32))
        return model.postprocess(model.predict(preprocessed, training=False), shapes)

    frozen = convert_variables_to_constants_v2(detect.get_concrete_function())
    ops = {op.type for op in frozen.graph.get_operations()}
    assert "VarHandleOp" not in ops and "ReadVariableOp" not in ops
    image = tf.cast(synthetic_batch()["image"][:1], tf.uint8)
    frozen_outputs = frozen(image)  # flat, in tf.nest order of the dict (sorted keys)
    expected = detect(image)
    assert len(frozen_outputs) == len(expected)
    for got, (key, want) in zip(frozen_outputs, sorted(expected.items())):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=key)
