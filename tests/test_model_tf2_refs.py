"""odflow's ssd_mobilenet_v2_keras and FPNLite models are numerically the TF2 API's: restored
(``full``) from the checkpoints the TF2 API wrote in ../shared/reference/tf2_zoo/refs, they
reproduce that API's preprocessed inputs, anchors, raw predictions and top-10 detections on
the two test images within the reference's tolerances (raw predictions 2e-3, the rest 1e-4,
classes equal; see its README for why).  The references are read in place: skipped when
missing, failed when ODFLOW_CI is set."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow import config as odflow_config
from odflow.model import builder
from odflow.model.tf2_checkpoint import restore_v2
from tests.support import tf2_zoo

RAW_TOLERANCE = 2e-3
TOLERANCE = 1e-4
MODELS = ("ssd_mobilenet_v2_320x320_coco17_tpu-8", "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8")


def _outputs(model, image_names) -> dict[str, np.ndarray]:
    """The refs.npz keys for odflow's model (classes made 0-based like the API's)."""
    out = {}
    for i, name in enumerate(image_names):
        image = tf2_zoo.image(str(name))
        preprocessed, shapes = model.preprocess(tf.cast(image[tf.newaxis], tf.float32))
        prediction = model.predict(preprocessed, training=False)
        detections = model.postprocess(prediction, shapes)
        out[f"img{i}/preprocessed_inputs"] = preprocessed.numpy()
        out[f"img{i}/true_image_shapes"] = shapes.numpy()
        out["predict/anchors"] = prediction["anchors"].numpy()
        for key in ("box_encodings", "class_predictions_with_background"):
            out[f"img{i}/predict/{key}"] = prediction[key].numpy()
        for key in ("detection_boxes", "detection_scores", "num_detections",
                    "detection_anchor_indices"):
            out[f"img{i}/postprocess/{key}"] = detections[key].numpy()
        out[f"img{i}/postprocess/detection_classes"] = detections["detection_classes"].numpy() - 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_matches_the_tf2_api(name):
    folder = tf2_zoo.refs(name)
    reference = np.load(folder / "refs.npz")
    model = builder.build(odflow_config.load(folder / "pipeline.config").model,
                          is_training=False)
    report = restore_v2(model, folder / "checkpoint" / "ckpt-0", "full")
    assert len(report.restored) == len(model.variables)
    assert report.unused == {"save_counter": "checkpoint bookkeeping"}
    ours = _outputs(model, reference["image_names"])
    compared = 0
    for key in reference.files:
        if reference[key].dtype.kind not in "fi":
            continue
        expected, actual = reference[key], ours[key]
        if "/postprocess/detection_" in key:
            expected, actual = expected[:, :10], actual[:, :10]
        assert actual.shape == expected.shape, key
        tolerance = RAW_TOLERANCE if "/predict/" in key else TOLERANCE
        difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
        assert difference <= tolerance, f"{key}: max |diff| {difference:.3g} > {tolerance}"
        if key.endswith(("detection_classes", "detection_anchor_indices")):
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        compared += 1
    assert compared == 19  # 2 x (2 inputs + 2 raw + 5 postprocessed) + anchors
