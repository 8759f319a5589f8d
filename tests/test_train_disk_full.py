"""A full disk while a checkpoint is saved: a message naming the checkpoint and what to do, a
non-zero exit, the previous checkpoint still loadable and nothing half-written left behind.

The disk fills in three ways: TF's ``SaveV2`` raising what it raises on ENOSPC (seen on a full
tmpfs: ``ResourceExhaustedError`` "...; No space left on device [Op:SaveV2]"), the state file's
write failing with ``OSError(ENOSPC)``, and a real 256 KiB tmpfs where this test may mount one.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow import checkpoints as ck
from odflow.errors import OdflowError
from odflow.train import cli as train_cli
from tests.support.training import write_config

REAL_SAVE = tf.raw_ops.SaveV2


def fill_disk_on(monkeypatch: pytest.MonkeyPatch, doomed: str) -> None:
    """Make ``SaveV2`` of a prefix containing ``doomed`` write part of its data, then fail as
    TF does on a full disk; other saves are real."""

    def save(prefix, tensor_names, shape_and_slices, tensors, name=None):
        if doomed not in str(prefix):
            return REAL_SAVE(prefix=prefix, tensor_names=tensor_names,
                             shape_and_slices=shape_and_slices, tensors=tensors, name=name)
        Path(f"{prefix}{ck.DATA_SUFFIX}.tempstate8231").write_bytes(b"\0" * 100)
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{prefix}{ck.DATA_SUFFIX}.tempstate8231; No space left on device")

    monkeypatch.setattr(tf.raw_ops, "SaveV2", save)


def one_checkpoint_left(model_dir: Path, tensors: dict[str, np.ndarray]) -> None:
    """model.ckpt-1 is the state file's latest, loads with its values, and is all there is."""
    assert sorted(os.listdir(model_dir)) == [
        "checkpoint", "model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index"]
    assert ck.latest_checkpoint(model_dir) == str(model_dir / "model.ckpt-1")
    loaded = ck.read_bundle(model_dir / "model.ckpt-1")
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value)


TENSORS = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "global_step": np.int64(1)}


def test_full_disk_in_the_bundle_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "ckpt"
    manager = ck.CheckpointManager(model_dir)
    manager.save(TENSORS, 1)
    fill_disk_on(monkeypatch, "model.ckpt-2")
    with pytest.raises(OdflowError) as error:
        manager.save({**TENSORS, "global_step": np.int64(2)}, 2)
    assert str(error.value).startswith(
        f"no space left on device while saving {model_dir}/model.ckpt-2; free space and rerun")
    one_checkpoint_left(model_dir, TENSORS)


def test_out_of_memory_is_not_called_a_full_disk(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """TF raises the same class for memory; that error stays TF's own."""

    def save(**kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(tf.raw_ops, "SaveV2", save)
    with pytest.raises(tf.errors.ResourceExhaustedError, match="OOM"):
        ck.CheckpointManager(tmp_path).save(TENSORS, 1)
    assert os.listdir(tmp_path) == []


def test_full_disk_in_the_state_file_write(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "ckpt"
    manager = ck.CheckpointManager(model_dir)
    manager.save(TENSORS, 1)

    def no_space(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ck, "atomic_write_text", no_space)
    with pytest.raises(OdflowError, match=(
            f"^no space left on device while saving {model_dir}/model.ckpt-2; free space and "
            "rerun")):
        manager.save({**TENSORS, "global_step": np.int64(2)}, 2)
    one_checkpoint_left(model_dir, TENSORS)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs, where this machine lets the test mount one (root, as in CI)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                              str(mount_point)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_really_full_disk(tiny_disk: Path) -> None:
    model_dir = tiny_disk / "ckpt"
    manager = ck.CheckpointManager(model_dir)
    manager.save(TENSORS, 1)
    with pytest.raises(OdflowError, match=(
            f"^no space left on device while saving {model_dir}/model.ckpt-2; free space")):
        manager.save({"w": np.zeros(400_000, np.float32), "global_step": np.int64(2)}, 2)
    one_checkpoint_left(model_dir, TENSORS)


@pytest.mark.slow
def test_training_stops_with_the_message_and_exit_2(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path, num_steps=2, augment=False)
    model_dir = tmp_path / "ckpt"
    fill_disk_on(monkeypatch, "model.ckpt-2")
    code = train_cli.main(["--model_dir", str(model_dir), "--pipeline_config_path", str(config),
                           "--checkpoint_every_steps", "1", "--checkpoint_every_minutes", "0",
                           "--eval_every", "-1", "--seed", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"error: no space left on device while saving {model_dir}/model.ckpt-2; free space "
            "and rerun") in err
    assert "Traceback" not in err
    assert ck.latest_checkpoint(model_dir) == str(model_dir / "model.ckpt-1")
    assert int(ck.read_bundle(model_dir / "model.ckpt-1")["global_step"]) == 1
    assert not [name for name in os.listdir(model_dir)
                if "model.ckpt-2" in name or ".tmp" in name]
