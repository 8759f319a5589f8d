"""Name-based ``model.ckpt-<step>`` bundles and the crash-safe ``checkpoint`` state file."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from odflow import checkpoints as ck
from odflow.errors import OdflowError


def tensors(step: int) -> dict:
    return {"FeatureExtractor/MobilenetV1/Conv2d_0/weights": np.full([3, 3, 3, 4], step,
                                                                      np.float32),
            "FeatureExtractor/MobilenetV1/Conv2d_0/weights/RMSProp": np.ones([3, 3, 3, 4],
                                                                             np.float32),
            "global_step": np.int64(step)}


def test_bundle_is_readable_by_tf_with_names_and_dtypes(tmp_path):
    ck.write_bundle(tmp_path / "model.ckpt-7", tensors(7))
    listed = dict(tf.train.list_variables(str(tmp_path / "model.ckpt-7")))
    assert listed == {"FeatureExtractor/MobilenetV1/Conv2d_0/weights": [3, 3, 3, 4],
                      "FeatureExtractor/MobilenetV1/Conv2d_0/weights/RMSProp": [3, 3, 3, 4],
                      "global_step": []}
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-7"))
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    assert ck.read_bundle(tmp_path / "model.ckpt-7")["global_step"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.ckpt-7.data-00000-of-00001", "model.ckpt-7.index"]  # no temporary left


def test_manager_keeps_last_n_and_tf_finds_the_latest(tmp_path):
    manager = ck.CheckpointManager(tmp_path, max_to_keep=2)
    for step in (1, 2, 3):
        manager.save(tensors(step), step)
    assert not ck.checkpoint_exists(tmp_path / "model.ckpt-1")
    assert ck.checkpoint_exists(tmp_path / "model.ckpt-2")
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "model.ckpt-3"\n'
        'all_model_checkpoint_paths: "model.ckpt-2"\n'
        'all_model_checkpoint_paths: "model.ckpt-3"\n')
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-3")
    assert ck.latest_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-3")
    # A new manager (a resumed run) continues the rotation from the state file.
    ck.CheckpointManager(tmp_path, max_to_keep=2).save(tensors(4), 4)
    assert not ck.checkpoint_exists(tmp_path / "model.ckpt-2")
    assert ck.read_state(tmp_path).all_paths == ["model.ckpt-3", "model.ckpt-4"]


def test_crash_during_save_leaves_state_on_previous_checkpoint(tmp_path, monkeypatch):
    manager = ck.CheckpointManager(tmp_path)
    manager.save(tensors(1), 1)
    real_replace = os.replace

    def crash_on_index(src, dst):
        if str(dst).endswith(".index"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_index)
    with pytest.raises(OSError, match="disk full"):
        manager.save(tensors(2), 2)
    monkeypatch.setattr(os, "replace", real_replace)
    assert ck.latest_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-1")
    assert not ck.checkpoint_exists(tmp_path / "model.ckpt-2")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temporaries removed


def test_zoo_prefix_has_no_step_and_missing_files_are_reported(tmp_path):
    assert ck.step_of("ckpt/model.ckpt") is None
    assert ck.step_of("ckpt/model.ckpt-41471") == 41471
    assert ck.latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-9"\n')
    with pytest.raises(OdflowError, match="model.ckpt-9.*missing"):
        ck.latest_checkpoint(tmp_path)


def test_latest_falls_back_to_newest_complete_listed_checkpoint(tmp_path, caplog):
    manager = ck.CheckpointManager(tmp_path)
    for step in (1, 2, 3):
        manager.save(tensors(step), step)
    (tmp_path / "model.ckpt-3.index").unlink()  # what Snakemake does to a rule's output
    assert ck.latest_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-2")
    assert "model.ckpt-3.index missing; using" in caplog.text


def test_state_file_with_tf2_fields_and_garbage(tmp_path):
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "/abs/model.ckpt-5"\n'
        'all_model_checkpoint_paths: "/abs/model.ckpt-5"\n'
        'all_model_checkpoint_timestamps: 1700000000.5\n'
        'last_preserved_timestamp: 1700000000.1\n')
    state = ck.read_state(tmp_path)
    assert state.latest == "/abs/model.ckpt-5"
    (tmp_path / "checkpoint").write_text("garbage here\n")
    with pytest.raises(OdflowError, match=r"checkpoint:1: cannot read"):
        ck.read_state(tmp_path)


def test_assign_from_checks_names_and_shapes(tmp_path):
    ck.write_bundle(tmp_path / "model.ckpt-1", {"a": np.ones([2], np.float32)})
    a = tf.Variable(np.zeros([2], np.float32))
    assert ck.assign_from(tmp_path / "model.ckpt-1", {"a": a}) == []
    np.testing.assert_array_equal(a.numpy(), [1, 1])
    with pytest.raises(OdflowError, match="lacks 1 variable"):
        ck.assign_from(tmp_path / "model.ckpt-1", {"b": tf.Variable(0.0)})
    assert ck.assign_from(tmp_path / "model.ckpt-1", {"b": tf.Variable(0.0)},
                          required=False) == ["b"]
    with pytest.raises(OdflowError, match="has shape"):
        ck.assign_from(tmp_path / "model.ckpt-1", {"a": tf.Variable(np.zeros([3], np.float32))})


def test_keep_at_least_one(tmp_path):
    with pytest.raises(OdflowError, match="keep_checkpoint_max"):
        ck.CheckpointManager(tmp_path, max_to_keep=0)


def test_find_checkpoint_forms_and_errors(tmp_path):
    """One finder for evaluation, export and fine-tuning: every form a user gives."""
    prefix = tmp_path / "model.ckpt-7"
    ck.write_bundle(prefix, {"global_step": np.int64(7)})
    for given in (prefix, f"{prefix}.index", f"{prefix}{ck.DATA_SUFFIX}", tmp_path):
        assert ck.find_checkpoint(given) == str(prefix)  # the directory: its only *.index
    with pytest.raises(OdflowError, match=r"^--x: checkpoint .*model.ckpt-8 does not exist .*model.ckpt-7"):
        ck.find_checkpoint(tmp_path / "model.ckpt-8", what="--x")
    ck.write_bundle(tmp_path / "model.ckpt-9", {"global_step": np.int64(9)})
    with pytest.raises(OdflowError, match="holds 2 checkpoints"):
        ck.find_checkpoint(tmp_path)
    (tmp_path / ck.STATE_FILE).write_text('model_checkpoint_path: "model.ckpt-7"\n')
    assert ck.find_checkpoint(tmp_path) == str(prefix)
    (tmp_path / f"model.ckpt-9{ck.DATA_SUFFIX}").unlink()
    with pytest.raises(OdflowError, match="model.ckpt-9 is incomplete or damaged: .* missing"):
        ck.find_checkpoint(tmp_path / "model.ckpt-9")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OdflowError, match="no checkpoint in"):
        ck.find_checkpoint(tmp_path / "empty")
