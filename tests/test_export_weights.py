"""Choosing the checkpoint and the values (raw or moving averages) that go into the export."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow.checkpoints import find_checkpoint, write_bundle
from odflow.errors import OdflowError
from odflow.export.checkpoint import write_export_checkpoint
from odflow.export.weights import load_weights

W = "FeatureExtractor/MobilenetV1/Conv2d_0/weights"
MEAN = "FeatureExtractor/MobilenetV1/Conv2d_0/BatchNorm/moving_mean"


def _variables() -> dict[str, tf.Variable]:
    return {W: tf.Variable(tf.zeros([2, 3])),
            MEAN: tf.Variable(tf.zeros([3]), trainable=False)}


def _training_checkpoint(prefix, step=12, with_ema=True, w_shape=(2, 3)):
    tensors = {W: np.full(w_shape, 1.0, np.float32), MEAN: np.full([3], 5.0, np.float32),
               f"{W}/RMSProp": np.full(w_shape, 9.0, np.float32),
               "global_step": np.int64(step)}
    if with_ema:
        tensors[f"{W}/ExponentialMovingAverage"] = np.full(w_shape, 2.0, np.float32)
    write_bundle(prefix, tensors)
    return str(prefix)


def test_missing_prefix_names_it_and_lists_the_checkpoints(tmp_path):
    for step in (100, 2000, 300):
        _training_checkpoint(tmp_path / f"model.ckpt-{step}", step)
    with pytest.raises(OdflowError) as error:
        find_checkpoint(str(tmp_path / "model.ckpt-41471"))
    message = str(error.value)
    assert f"{tmp_path}/model.ckpt-41471" in message
    assert "model.ckpt-100, model.ckpt-300, model.ckpt-2000" in message


def test_missing_prefix_in_a_directory_without_checkpoints(tmp_path):
    with pytest.raises(OdflowError, match="no checkpoints"):
        find_checkpoint(str(tmp_path / "model.ckpt-5"))


def test_prefix_without_data_file_is_incomplete(tmp_path):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-5")
    for data in tmp_path.glob("model.ckpt-5.data-*"):
        data.unlink()
    with pytest.raises(OdflowError, match="incomplete"):
        find_checkpoint(prefix)


def test_directory_means_its_latest_checkpoint(tmp_path):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-5")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    assert find_checkpoint(str(tmp_path)) == prefix


@pytest.mark.parametrize("mode, config_wants, expected_w, averaged", [
    ("auto", True, 2.0, 1), ("auto", False, 1.0, 0),
    ("true", False, 2.0, 1), ("false", True, 1.0, 0)])
def test_moving_average_modes(tmp_path, mode, config_wants, expected_w, averaged):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-12")
    variables = _variables()
    loaded = load_weights(variables, prefix, mode, config_wants)
    assert loaded.num_moving_averages == averaged
    assert loaded.global_step == 12
    np.testing.assert_array_equal(variables[W].numpy(), np.full([2, 3], expected_w))
    np.testing.assert_array_equal(loaded.values[W], np.full([2, 3], expected_w))
    np.testing.assert_array_equal(loaded.values[MEAN], np.full([3], 5.0))  # never averaged
    assert sorted(loaded.values) == sorted(variables)


def test_auto_without_averages_in_checkpoint_uses_raw_values(tmp_path):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-3", with_ema=False)
    loaded = load_weights(_variables(), prefix, "auto", True)
    assert loaded.num_moving_averages == 0
    np.testing.assert_array_equal(loaded.values[W], np.full([2, 3], 1.0))


def test_true_without_averages_is_an_error(tmp_path):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-3", with_ema=False)
    with pytest.raises(OdflowError, match="no '\\*/ExponentialMovingAverage'"):
        load_weights(_variables(), prefix, "true", False)


def test_shape_mismatch_names_the_variable(tmp_path):
    prefix = _training_checkpoint(tmp_path / "model.ckpt-3", w_shape=(2, 4))
    with pytest.raises(OdflowError, match=rf"{W} has shape \[2, 4\].*needs \[2, 3\]"):
        load_weights(_variables(), prefix, "false", False)


def test_missing_variable_is_an_error(tmp_path):
    prefix = tmp_path / "model.ckpt-1"
    write_bundle(prefix, {W: np.zeros([2, 3], np.float32)})
    with pytest.raises(OdflowError, match="lacks 1 of the model's 2 variables"):
        load_weights(_variables(), str(prefix), "auto", False)


def test_step_from_the_prefix_when_the_checkpoint_has_none(tmp_path):
    prefix = tmp_path / "model.ckpt-77"
    write_bundle(prefix, {W: np.zeros([2, 3], np.float32), MEAN: np.zeros([3], np.float32)})
    assert load_weights(_variables(), str(prefix), "auto", False).global_step == 77


def test_export_checkpoint_has_the_zoo_layout(tmp_path):
    values = {W: np.full([2, 3], 2.0, np.float32), MEAN: np.full([3], 5.0, np.float32)}
    prefix = write_export_checkpoint(tmp_path, values, 41471)
    assert prefix == str(tmp_path / "model.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "model.ckpt"\nall_model_checkpoint_paths: "model.ckpt"\n')
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
    reader = tf.train.load_checkpoint(prefix)
    assert sorted(reader.get_variable_to_shape_map()) == sorted([W, MEAN, "global_step"])
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    assert int(reader.get_tensor("global_step")) == 41471
    np.testing.assert_array_equal(reader.get_tensor(W), values[W])
