"""odflow's ssd_mobilenet_v2, as a model and as an exported frozen graph, computes what the
zoo's TF1 graph computes.

The zoo's own MetaGraph (ssd_mobilenet_v2_coco_2018_03_29/model.ckpt.meta, copied to the
fixtures) is imported with tf.compat.v1, its variables get seeded synthetic values, and its
exporter outputs (detection_boxes/scores/classes) are the expected values; odflow's model built
from the same pipeline.config with the same values must give the same top-10 detections.
The 2018 graph clips boxes to the image before its NMS, so odflow's side selects that order
(``clip_before_nms=True``; odflow's default suppresses first, as the API's later releases).
"""

from __future__ import annotations

import numpy as np
import pytest

from odflow.export.exporter import export_model
from odflow.model import builder
from tests.support import tf1_meta, zoo

FOLDER = "ssd_mobilenet_v2_coco_2018_03_29"


def _images() -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:240, 0:320]
    smooth = np.stack([(x * 0.8) % 256, (y * 1.1) % 256, (x + y) % 256], -1)
    noisy = rng.integers(0, 256, (240, 320, 3))
    blocks = np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((40, 40, 1)))
    return np.stack([smooth, noisy, blocks]).astype(np.uint8)


@pytest.fixture(scope="module")
def tf1_run() -> tuple[dict, dict, np.ndarray]:
    images = _images()
    expected, values = tf1_meta.run_meta_graph(zoo.ZOO / FOLDER / "model.ckpt.meta", images)
    return expected, values, images


@pytest.mark.slow
def test_model_detections_equal_the_tf1_graph(tf1_run) -> None:
    expected, values, images = tf1_run
    model = builder.build(zoo.pipeline(FOLDER).model, is_training=False, clip_before_nms=True)
    assert set(model.named_variables()) == set(values) - {"global_step"}
    tf1_meta.assign(model.named_variables(), values)
    preprocessed, shapes = model.preprocess(images)
    got = model.postprocess(model.predict(preprocessed, training=False), shapes)
    _assert_same_top10({k: v.numpy() for k, v in got.items()}, expected)


@pytest.mark.slow
def test_exported_frozen_graph_equals_the_tf1_graph(tf1_run, tmp_path) -> None:
    """The same weights through odflow's exporter (checkpoint -> frozen_inference_graph.pb)."""
    expected, values, images = tf1_run
    prefix = tf1_meta.write_checkpoint(tmp_path / "model.ckpt", values)
    export_model(zoo.pipeline(FOLDER), prefix, tmp_path / "exported", clip_before_nms=True)
    got = tf1_meta.run_frozen_graph(tmp_path / "exported" / "frozen_inference_graph.pb", images)
    _assert_same_top10(got, expected)


def _assert_same_top10(got: dict, expected: dict) -> None:
    assert (expected["num_detections"] > 10).all()  # the comparison is not vacuous
    np.testing.assert_array_equal(got["num_detections"], expected["num_detections"])
    for image in range(len(expected["num_detections"])):
        np.testing.assert_allclose(got["detection_scores"][image, :10],
                                   expected["detection_scores"][image, :10], atol=1e-4)
        np.testing.assert_allclose(got["detection_boxes"][image, :10],
                                   expected["detection_boxes"][image, :10], atol=1e-4)
        np.testing.assert_array_equal(got["detection_classes"][image, :10],
                                      expected["detection_classes"][image, :10])
