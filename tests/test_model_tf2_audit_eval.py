"""EfficientDet's evaluation frame: with ``keep_aspect_ratio_resizer { pad_to_max_dimension }``
the input pipeline moves the ground truth into the padded square, while the detections are
relative to the true (unpadded) image; the TF2 API's evaluation
(``eval_util.result_dict_for_batched_example``) brings the ground truth back to the true image
(window ``[0, 0, h / H, w / W]``) before scaling both to the original pixels.  Expected values
are worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow.train import evaluate as evaluation
from tests.support.training import make_config
from tests.test_train_evaluate import BOX, write_big_images


def test_groundtruth_returns_from_the_padded_square_to_the_true_image() -> None:
    # A 48x64 true image in a 64x64 input: the window is [0, 0, 0.75, 1].
    padded = np.array([[[0.375, 0.25, 0.75, 0.5], [0.0, 0.0, 0.75, 1.0]]], np.float32)
    out = evaluation.groundtruth_in_true_image_frame(padded, np.array([[48, 64, 3]]), (64, 64))
    np.testing.assert_allclose(out, [[[0.5, 0.25, 1.0, 0.5], [0.0, 0.0, 1.0, 1.0]]])
    assert out.dtype == np.float32
    # Unpadded (fixed_shape_resizer: true shape = input size): unchanged.
    same = evaluation.groundtruth_in_true_image_frame(padded, np.array([[64, 64, 3]]), (64, 64))
    np.testing.assert_array_equal(same, padded)


class TrueFramePerfectModel:
    """Detects BOX relative to the true image, as SSD's postprocess gives it after
    change_coordinate_frame (so whatever the padding)."""

    def preprocess(self, images):
        return images, tf.tile(tf.constant([[72, 96, 3]]), [tf.shape(images)[0], 1])

    def predict(self, preprocessed, training=False):
        return {"batch": tf.shape(preprocessed)[0]}

    def postprocess(self, predictions, true_shapes):
        batch = predictions["batch"]
        return {"detection_boxes": tf.tile(tf.constant([[BOX]]), [batch, 1, 1]),
                "detection_scores": tf.fill([batch, 1], 0.9),
                "detection_classes": tf.ones([batch, 1]),
                "num_detections": tf.fill([batch], 1.0)}


def test_padded_evaluation_scores_a_perfect_detector_1(tmp_path) -> None:
    """600x800 originals resize to 72x96 inside a 96x96 input.  The ground truth box
    [0.25, 0.75] of the image lies at [0.1875, 0.5625] of the padded square in y; measured
    in that frame against the detection, IoU would be 0.556 (x is not padded): a match at the
    IoU thresholds 0.5 and 0.55 only, mAP 0.2; in the true frame it is the same box: mAP 1, and it is COCO 'large'
    (300x400 px)."""
    write_big_images(tmp_path / "val.record")
    cfg = make_config(tmp_path, num_train=1)
    resizer = cfg.model.ssd.image_resizer
    resizer.keep_aspect_ratio_resizer.min_dimension = 96
    resizer.keep_aspect_ratio_resizer.max_dimension = 96
    resizer.keep_aspect_ratio_resizer.pad_to_max_dimension = True
    metrics = evaluation.Evaluator(TrueFramePerfectModel(), cfg).run().evaluate()
    assert metrics["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP (large)"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP (medium)"] == -1.0
