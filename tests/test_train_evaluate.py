"""Evaluation plumbing with a stand-in model: pixel scaling, checkpoint resolution, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from odflow import checkpoints as ck
from odflow.errors import OdflowError
from odflow.train import evaluate as evaluation
from tests.support.training import make_config

BOX = [0.25, 0.25, 0.75, 0.75]


class PerfectModel:
    """Detects exactly the box every test image holds, with score 0.9."""

    def preprocess(self, images):
        return images, tf.tile(tf.constant([[96, 96, 3]]), [tf.shape(images)[0], 1])

    def predict(self, preprocessed, training=False):
        return {"batch": tf.shape(preprocessed)[0]}

    def postprocess(self, predictions, true_shapes):
        batch = predictions["batch"]
        boxes = tf.tile(tf.constant([[BOX] + [[0.0] * 4] * 2]), [batch, 1, 1])
        return {"detection_boxes": boxes,
                "detection_scores": tf.tile(tf.constant([[0.9, 0.0, 0.0]]), [batch, 1]),
                "detection_classes": tf.tile(tf.constant([[1.0, 0.0, 0.0]]), [batch, 1]),
                "num_detections": tf.fill([batch], 1.0)}


def write_big_images(path, count=2, height=600, width=800):
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    with RecordWriter(path) as writer:
        for i in range(count):
            buffer = io.BytesIO()
            Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buffer, format="JPEG")
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"{i}.jpg",
                source_id=f"big{i}", height=height, width=width, boxes=np.array([BOX]),
                class_texts=["thing"], class_ids=[1]))


def test_boxes_are_scaled_to_the_original_image_size(tmp_path):
    """A 300x400 px box is COCO 'large' only when measured on the 600x800 original."""
    write_big_images(tmp_path / "val.record")
    cfg = make_config(tmp_path, num_train=1)
    coco = evaluation.Evaluator(PerfectModel(), cfg).run()
    metrics = evaluation.report(coco, step=3, model_dir=tmp_path / "events",
                                metrics_json=tmp_path / "m.json", checkpoint=None)
    assert coco.num_images == 2
    assert metrics["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP (large)"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP (medium)"] == -1.0
    assert (tmp_path / "m.json").exists()
    assert list((tmp_path / "events" / "eval_0").glob("events.out.tfevents.*"))


def test_resolve_checkpoint_forms(tmp_path):
    prefix = tmp_path / "model.ckpt-5"
    ck.write_bundle(prefix, {"global_step": np.int64(5)})
    assert evaluation.resolve_checkpoint(str(prefix), None) == str(prefix)
    assert evaluation.resolve_checkpoint(f"{prefix}.index", None) == str(prefix)
    with pytest.raises(OdflowError, match="not a directory"):
        evaluation.resolve_checkpoint(None, str(tmp_path / "nope"))
    with pytest.raises(OdflowError, match="give --checkpoint_dir or --checkpoint_path"):
        evaluation.resolve_checkpoint(None, None)


def test_eval_config_checks(tmp_path):
    cfg = make_config(tmp_path)
    cfg.eval_config.metrics_set.append("pascal_voc_detection_metrics")
    with pytest.raises(OdflowError, match="eval_config.metrics_set"):
        evaluation.check_eval_config(cfg)
    cfg = make_config(tmp_path, use_moving_average=False, eval_use_moving_averages=True)
    with pytest.raises(OdflowError, match="use_moving_averages"):
        evaluation.check_eval_config(cfg)
    cfg = make_config(tmp_path)
    cfg.eval_input_reader[0].label_map_path = ""
    with pytest.raises(OdflowError, match="eval_input_reader.label_map_path"):
        evaluation.eval_reader(cfg)


def _write_crowd_records(path, crowd_flag):
    """Two images, each with the box the stand-in model finds and a second, undetected box
    flagged (or not) as a crowd."""
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    with RecordWriter(path) as writer:
        for i in range(2):
            buffer = io.BytesIO()
            Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(buffer, format="JPEG")
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"{i}.jpg",
                source_id=f"crowd{i}", height=96, width=96,
                boxes=np.array([BOX, [0.0, 0.0, 0.2, 0.2]]), class_texts=["thing"] * 2,
                class_ids=[1, 1], is_crowd=[0, crowd_flag]))


@pytest.mark.parametrize("crowd_flag, expected_ap", [
    # Crowd: the undetected box is ignored, every real box is found at precision 1.
    (1, 1.0),
    # Not crowd: recall reaches 0.5 at precision 1 and no further; COCO's 101-point
    # interpolated precision is 1 at recalls 0, 0.01, ..., 0.50 (51 points), then 0.
    (0, 51 / 101),
])
def test_crowd_flags_in_the_records_reach_the_coco_evaluation(tmp_path, crowd_flag, expected_ap):
    _write_crowd_records(tmp_path / "val.record", crowd_flag)
    cfg = make_config(tmp_path, num_train=1)
    coco = evaluation.Evaluator(PerfectModel(), cfg).run()
    metrics = coco.evaluate()
    assert metrics["DetectionBoxes_Precision/mAP@.50IOU"] == pytest.approx(expected_ap)
    assert metrics["DetectionBoxes_Recall/AR@100"] == pytest.approx(1.0 if crowd_flag else 0.5)
