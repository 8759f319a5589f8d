"""ssd_mobilenet_v1_fpn against the zoo's own TF1 graph (model.ckpt.meta), same weights.

odflow's side is its frozen export (the graph ``frozen_inference_graph.pb`` holds), so the
comparison covers preprocessing, network, anchors, decoding and NMS as users run them.

The TF1 MetaGraph is the independent source: it holds the API's FPN (nearest-neighbour
upsampling, projections, smoothing), the weight-shared predictor with per-level batch norm,
the multiscale anchors, the box decoding and the NMS as the 2018 zoo built them.  Both get the
same seeded synthetic weights (batch-norm statistics chosen to keep activations in range) and
must give the same top-10 detections.  That graph clips the boxes to the image before its NMS,
so odflow's model is built with ``clip_before_nms=True`` (its default suppresses first, as the
API's later releases do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.export.frozen_graph import freeze
from odflow.model import builder
from odflow.protos import pipeline_pb2

ZOO = (Path(__file__).parent
       / "fixtures/reference/model_zoo/ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03")
OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def synthetic_values(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """He-scaled weights, batch-norm statistics near identity, class biases around -3 so
    scores spread over (0, 1) and the 0.3 threshold keeps the full 100 detections."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        shape = shapes[name]
        leaf = name.rsplit("/", 1)[-1]
        if leaf in ("weights", "depthwise_weights"):
            fan_in = int(np.prod(shape[:-1])) if leaf == "weights" else int(np.prod(shape[:2]))
            # He scaling keeps the ReLU6 towers alive; the two output convs get less, so
            # scores spread over (0, 1) instead of saturating.
            gain = {"BoxPredictor": 1.0, "ClassPredictor": 0.5}.get(name.split("/")[-2], 2.0)
            value = rng.normal(0.0, np.sqrt(gain / fan_in), shape)
        elif leaf == "gamma":
            value = rng.uniform(0.8, 1.2, shape)
        elif leaf == "beta":
            value = rng.normal(0.1, 0.1, shape)
        elif leaf == "moving_mean":
            value = rng.normal(0.0, 0.1, shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.8, 1.2, shape)
        elif leaf == "biases" and "ClassPredictor" in name:
            value = rng.normal(-3.0, 0.5, shape)
        elif leaf == "biases":
            value = rng.normal(0.0, 0.1, shape)
        else:
            raise AssertionError(f"unexpected variable {name}")
        values[name] = value.astype(np.float32)
    return values


def images(batch: int = 2, seed: int = 1) -> np.ndarray:
    """Smooth random images (blurred noise), so features vary over space like real ones."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (batch, 20, 20, 3)).astype(np.float32)
    big = tf.image.resize(small, [640, 640], method="bicubic").numpy()
    return np.clip(big, 0, 255).astype(np.uint8)


def run_tf1(values: dict[str, np.ndarray], image_batch: np.ndarray) -> dict[str, np.ndarray]:
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(ZOO / "model.ckpt.meta"), clear_devices=True)
        variables = {op.name: op for op in graph.get_operations() if op.type == "VariableV2"}
        # Every consumer reads through "<name>/read": feeding those sets the weights.
        feed = {graph.get_tensor_by_name(f"{name}/read:0"): values[name]
                for name in variables if name != "global_step"}
        feed[graph.get_tensor_by_name("image_tensor:0")] = image_batch
        fetches = {key: graph.get_tensor_by_name(f"{key}:0") for key in OUTPUTS}
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetches, feed)


def tf1_variable_shapes() -> dict[str, list[int]]:
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(ZOO / "model.ckpt.meta"), clear_devices=True)
    return {op.name: tf.TensorShape(op.get_attr("shape")).as_list()
            for op in graph.get_operations()
            if op.type == "VariableV2" and op.name != "global_step"}


def run_odflow_export(values: dict[str, np.ndarray], image_batch: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """odflow's model with these weights, frozen as the exporter writes it, run as TF1 clients
    run a frozen_inference_graph.pb."""
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse((ZOO / "pipeline.config").read_text(), config)
    # The 2018 graph clips boxes before its NMS: odflow's order for it (not the default).
    model = builder.build(config.model, is_training=False, clip_before_nms=True)
    named = model.named_variables()
    assert sorted(named) == sorted(values)
    for name, variable in named.items():
        variable.assign(values[name])
    graph_def = freeze(model, "image_tensor")
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
        fetches = {key: graph.get_tensor_by_name(f"{key}:0") for key in OUTPUTS}
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetches, {graph.get_tensor_by_name("image_tensor:0"): image_batch})


@pytest.mark.slow
def test_detections_equal_the_tf1_graph():
    shapes = tf1_variable_shapes()
    assert len(shapes) == 333
    values = synthetic_values(shapes)
    batch = images()
    expected = run_tf1(values, batch)
    got = run_odflow_export(values, batch)
    for b in range(batch.shape[0]):
        assert expected["num_detections"][b] > 10  # the comparison is not vacuous
        assert got["num_detections"][b] == expected["num_detections"][b]
        np.testing.assert_allclose(got["detection_scores"][b, :10],
                                   expected["detection_scores"][b, :10], atol=1e-4)
        np.testing.assert_allclose(got["detection_boxes"][b, :10],
                                   expected["detection_boxes"][b, :10], atol=1e-4)
        np.testing.assert_array_equal(got["detection_classes"][b, :10],
                                      expected["detection_classes"][b, :10])
        # Beyond the top 10 (order may differ on near-equal scores): the same classes.
        np.testing.assert_array_equal(np.sort(got["detection_classes"][b]),
                                      np.sort(expected["detection_classes"][b]))
