"""Restoring TF2 (object-based) checkpoints by key, with the TF2 API's
``fine_tune_checkpoint_type`` semantics, on checkpoints odflow writes (``write_v2``).

Counts hand-derived from the SSD MobileNet v2 key list (tests/fixtures/tf2_zoo): the Keras
MobileNet v2 has 52 conv layers (Conv1, 2 + 16 x 3 in the 17 blocks, Conv_1), each with a
kernel and a 4-variable batch norm: 260 backbone keys; 4 extra maps x 2 convs x 5 = 40 more
under ``_feature_extractor``; 6 levels x 2 heads x (kernel, bias) = 24 box predictor keys,
12 of them the class head's.  So classification 260, detection 300, full 324 (the README's
table for the TF2 API itself: 300 / 324 and 260 / 324)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow import checkpoints
from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model.tf2_checkpoint import (
    KEY_SUFFIX,
    is_object_based,
    key_mapping,
    restore_for_version,
    restore_v2,
    write_v2,
)
from tests.support import tf2_zoo

NAME = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
SMALL = "ssd { image_resizer { fixed_shape_resizer { height: 128 width: 128 } } }"
BACKBONE, FEATURE_EXTRACTOR, BOX_PREDICTOR, CLASS_HEAD = 260, 40, 24, 12
pytestmark = pytest.mark.slow  # each builds a MobileNet v2 SSD (about 2 s)


def _model(*overrides: str):
    return builder.build(tf2_zoo.pipeline(NAME, SMALL, *overrides).model, is_training=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 90-class model and its checkpoints in both layouts."""
    folder = tmp_path_factory.mktemp("tf2ckpt")
    model = _model()
    detection = write_v2(model, f"{folder}/detection/ckpt-0")
    classification = write_v2(model, f"{folder}/classification/ckpt-1", layout="classification")
    return model, detection, classification


def _values(model) -> dict[str, np.ndarray]:
    return {key: v.numpy() for key, v in key_mapping(model).variables.items()}


def test_written_checkpoint_has_the_tf2_api_keys(source):
    _, detection, classification = source
    assert is_object_based(detection) and is_object_based(classification)
    written = dict(tf.train.list_variables(detection))
    expected = tf2_zoo.keys(NAME)
    expected.pop("save_counter")  # the API's CheckpointManager counts saves; write_v2 does not
    assert sorted(written) == sorted(k if k == "_CHECKPOINTABLE_OBJECT_GRAPH" else k + KEY_SUFFIX
                                     for k in expected)
    for key, (shape, _) in expected.items():
        suffix = "" if key == "_CHECKPOINTABLE_OBJECT_GRAPH" else KEY_SUFFIX
        assert written[key + suffix] == shape, key
    backbone = [k for k, _ in tf.train.list_variables(classification)]
    assert len([k for k in backbone if k.startswith("feature_extractor/")]) == BACKBONE


def test_full_restores_everything(source):
    model, detection, _ = source
    target = _model()
    report = restore_v2(target, detection, "full")
    assert len(report.restored) == BACKBONE + FEATURE_EXTRACTOR + BOX_PREDICTOR
    assert report.skipped_missing == report.skipped_shape == []
    assert report.unused == {}
    want, got = _values(model), _values(target)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_detection_restores_all_but_the_box_predictor_whatever_the_classes(source):
    model, detection, _ = source
    target = _model("ssd { num_classes: 1 }")
    before = _values(target)
    report = restore_v2(target, detection, "detection")
    assert len(report.restored) == BACKBONE + FEATURE_EXTRACTOR
    assert len(report.unused) == BOX_PREDICTOR
    assert all(reason.startswith("box_predictor: not restored")
               for reason in report.unused.values())
    want, got = _values(model), _values(target)
    for key in got:
        expected = want[key] if key.startswith("model/_feature_extractor/") else before[key]
        np.testing.assert_array_equal(got[key], expected, err_msg=key)


def test_full_into_one_class_skips_the_class_head(source, caplog):
    _, detection, _ = source
    target = _model("ssd { num_classes: 1 }")
    report = restore_v2(target, detection, "full")
    assert len(report.skipped_shape) == CLASS_HEAD
    assert all("class_predictions_with_background" in k for k in report.skipped_shape)
    assert len(report.restored) == BACKBONE + FEATURE_EXTRACTOR + BOX_PREDICTOR - CLASS_HEAD
    assert "checkpoint has [1, 1, 576, 273] float32, model needs [1, 1, 576, 6]" in caplog.text


def test_classification_restores_the_backbone_from_a_classification_checkpoint(source):
    model, _, classification = source
    target = _model("ssd { num_classes: 1 }")
    report = restore_v2(target, classification, "classification")
    assert len(report.restored) == BACKBONE
    assert all("/classification_backbone/" in k for k in report.restored)
    want, got = _values(model), _values(target)
    for key in report.restored:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_classification_from_a_detection_checkpoint_says_to_use_detection(source):
    _, detection, _ = source
    with pytest.raises(OdflowError, match="set fine_tune_checkpoint_type: detection"):
        restore_v2(_model(), detection, "classification")


def test_version_must_match_the_checkpoint(source, tmp_path):
    _, detection, _ = source
    model = _model()
    with pytest.raises(OdflowError, match="fine_tune_checkpoint_version: V2"):
        restore_for_version(model, detection, "detection", version=1)
    name_based = tmp_path / "model.ckpt"
    checkpoints.write_bundle(name_based, {n: v.numpy() for n, v in
                                          model.named_variables().items()})
    with pytest.raises(OdflowError, match="fine_tune_checkpoint_version: V1"):
        restore_for_version(model, name_based, "detection", version=2)
    # V1 with a name-based checkpoint: today's reader.
    report = restore_for_version(model, name_based, "detection", version=1)
    assert len(report.restored) == BACKBONE + FEATURE_EXTRACTOR


def test_nothing_restored_is_an_error(tmp_path):
    other = tf.Module()
    other.weights = tf.Variable(tf.zeros([3]))
    prefix = tf.train.Checkpoint(model=other).write(str(tmp_path / "other"))
    with pytest.raises(OdflowError, match="nothing restored"):
        restore_v2(_model(), prefix, "full")


def _train_config(prefix, version: str, checkpoint_type: str = "detection"):
    from google.protobuf import text_format

    from odflow.protos import pipeline_pb2
    return text_format.Parse(
        f'fine_tune_checkpoint: "{prefix}" fine_tune_checkpoint_type: "{checkpoint_type}" '
        f"fine_tune_checkpoint_version: {version}", pipeline_pb2.TrainConfig())


def test_training_checks_the_version_before_building_the_model(source):
    from odflow.train import loop
    _, detection, _ = source
    accepted = _train_config(detection, "V2")  # V2 is accepted (it used to be refused)
    accepted.optimizer.adam_optimizer.learning_rate.constant_learning_rate.learning_rate = 0.1
    loop.check_train_config(accepted)
    loop._check_fine_tune(_train_config(detection, "V2"))
    with pytest.raises(OdflowError, match="train_config.fine_tune_checkpoint_version: V2"):
        loop._check_fine_tune(_train_config(detection, "V1"))


def test_training_restores_a_v2_checkpoint(source, caplog):
    from types import SimpleNamespace

    from odflow.train import loop
    model, detection, _ = source
    target = _model("ssd { num_classes: 1 }")
    with caplog.at_level("INFO"):
        loop._restore_fine_tune(SimpleNamespace(model=target), _train_config(detection, "V2"))
    assert f"restored {BACKBONE + FEATURE_EXTRACTOR} of {BACKBONE + FEATURE_EXTRACTOR} " \
           "variables" in caplog.text
    key = "model/_feature_extractor/classification_backbone/layer_with_weights-0/kernel"
    np.testing.assert_array_equal(key_mapping(target).variables[key].numpy(),
                                  key_mapping(model).variables[key].numpy())
