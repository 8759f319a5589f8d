"""Restoring name-based (TF1-style) checkpoints into the model by the zoo's names."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from odflow.checkpoints import find_checkpoint
from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model.restore import restore_fine_tune_checkpoint
from odflow.protos import pipeline_pb2

ZOO = Path(__file__).parent / "fixtures/reference/model_zoo/ssd_mobilenet_v1_coco_2018_01_28"


def small_model(num_classes: int):
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse((ZOO / "pipeline.config").read_text(), config)
    text_format.Merge(f"ssd {{ num_classes: {num_classes} feature_extractor "
                      "{ depth_multiplier: 0.25 } }", config.model)
    return builder.build(config.model, is_training=True)


def write_tf1_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> str:
    """A V2 name-based checkpoint as TF1's Saver wrote it (no object graph)."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return str(prefix)


def random_values(model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=v.shape.as_list()).astype(np.float32)
            for name, v in model.named_variables().items()}


@pytest.fixture(scope="module")
def detection_checkpoint(tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    """A 2-class detection checkpoint with the zoo's names and a global_step."""
    values = random_values(small_model(2))
    tensors = dict(values, global_step=np.int64(1234))
    prefix = tmp_path_factory.mktemp("zoo") / "model.ckpt"
    return write_tf1_checkpoint(prefix, tensors), values


def test_detection_restores_the_feature_extractor_only(detection_checkpoint, caplog):
    prefix, values = detection_checkpoint
    model = small_model(2)
    named = model.named_variables()
    box_before = named["BoxPredictor_0/ClassPredictor/weights"].numpy().copy()
    with caplog.at_level(logging.INFO, logger="odflow.model.restore"):
        report = restore_fine_tune_checkpoint(model, prefix, "detection")
    feature_names = sorted(n for n in named if n.startswith("FeatureExtractor/"))
    assert report.restored == feature_names
    assert report.skipped_missing == [] and report.skipped_shape == []
    for name in feature_names:
        np.testing.assert_array_equal(named[name].numpy(), values[name])
    np.testing.assert_array_equal(named["BoxPredictor_0/ClassPredictor/weights"].numpy(),
                                  box_before)
    assert f"restored {len(feature_names)} of {len(feature_names)} variables from {prefix}" \
        in caplog.text


def test_load_all_skips_class_predictors_of_another_shape(detection_checkpoint, caplog):
    prefix, values = detection_checkpoint
    model = small_model(1)  # class predictors: 6/12 channels instead of 9/18
    with caplog.at_level(logging.WARNING, logger="odflow.model.restore"):
        report = restore_fine_tune_checkpoint(model, prefix, "detection",
                                              load_all_detection_checkpoint_vars=True)
    class_vars = {f"BoxPredictor_{k}/ClassPredictor/{v}" for k in range(6)
                  for v in ("weights", "biases")}
    assert set(report.skipped_shape) == class_vars
    assert len(report.restored) == 199 - 12
    assert "global_step" not in report.restored
    named = model.named_variables()
    np.testing.assert_array_equal(named["BoxPredictor_2/BoxEncodingPredictor/biases"].numpy(),
                                  values["BoxPredictor_2/BoxEncodingPredictor/biases"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 12  # one line per skipped variable


def test_full_restores_everything_and_a_directory_works(detection_checkpoint, tmp_path):
    prefix, values = detection_checkpoint
    model = small_model(2)
    report = restore_fine_tune_checkpoint(model, Path(prefix).parent, "full")
    assert len(report.restored) == 199
    for name, variable in model.named_variables().items():
        np.testing.assert_array_equal(variable.numpy(), values[name])


def test_classification_maps_mobilenet_names(tmp_path, caplog):
    model = small_model(1)
    named = model.named_variables()
    base = {n: v for n, v in named.items()
            if n.startswith("FeatureExtractor/MobilenetV1/Conv2d_")
            and "_pointwise_" not in n}  # the ImageNet net has no SSD extra layers
    rng = np.random.default_rng(1)
    tensors = {n.replace("FeatureExtractor/", ""): rng.normal(size=v.shape.as_list())
               .astype(np.float32) for n, v in base.items()}
    tensors["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] = np.zeros([1, 1, 256, 1001], np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "mobilenet_v1.ckpt", tensors)
    with caplog.at_level(logging.WARNING, logger="odflow.model.restore"):
        report = restore_fine_tune_checkpoint(model, prefix, "classification")
    assert sorted(report.restored) == sorted(base)
    assert len(report.skipped_missing) == 8 * 5  # the 8 extra layers' weights + 4 BN vars
    assert all("_pointwise_" in n for n in report.skipped_missing)
    assert "Conv2d_13_pointwise_1_Conv2d_2_1x1_64" in caplog.text
    np.testing.assert_array_equal(
        named["FeatureExtractor/MobilenetV1/Conv2d_3_pointwise/weights"].numpy(),
        tensors["MobilenetV1/Conv2d_3_pointwise/weights"])


def test_nothing_restored_is_an_error(detection_checkpoint):
    prefix, _ = detection_checkpoint
    with pytest.raises(OdflowError, match="nothing restored"):
        restore_fine_tune_checkpoint(small_model(1), prefix, "classification")


def test_bad_paths_and_types_are_user_errors(tmp_path):
    model = small_model(1)
    with pytest.raises(OdflowError, match=r"model\.ckpt\.index"):
        restore_fine_tune_checkpoint(model, tmp_path / "model.ckpt", "detection")
    with pytest.raises(OdflowError, match="no checkpoint"):
        restore_fine_tune_checkpoint(model, tmp_path, "detection")
    with pytest.raises(OdflowError, match="'detection', 'classification', 'full'"):
        restore_fine_tune_checkpoint(model, tmp_path, "object")


def test_path_resolution(tmp_path):
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt-5", {"a": np.zeros(2, np.float32)})
    write_tf1_checkpoint(tmp_path / "model.ckpt-9", {"a": np.ones(2, np.float32)})
    assert find_checkpoint(prefix + ".index") == prefix
    assert find_checkpoint(prefix + ".data-00000-of-00001") == prefix
    with pytest.raises(OdflowError, match="2 checkpoints"):
        find_checkpoint(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-9"\n')
    assert find_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-9")


class OneVariableModel:
    """Stands in for the full-size model: restore only needs ``named_variables()``."""

    def __init__(self) -> None:
        self.variable = tf.Variable(tf.zeros([3, 3, 3, 32]))

    def named_variables(self) -> dict[str, tf.Variable]:
        return {"FeatureExtractor/MobilenetV1/Conv2d_0/weights": self.variable}


def test_zoo_index_without_data_file_is_a_clear_error():
    # The fixture holds the zoo's real index but not its 27 MB data file.
    with pytest.raises(OdflowError, match=r"model\.ckpt\.data-00000-of-00001 missing"):
        restore_fine_tune_checkpoint(OneVariableModel(), ZOO / "model.ckpt", "detection")
