"""model_dir housekeeping: the lock, leftovers of killed runs, superseding; damaged checkpoints;
export staging leftovers."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from odflow import checkpoints as ck
from odflow.errors import OdflowError
from odflow.train import workdir


def _write_lock(model_dir, **owner):
    path = model_dir / workdir.LOCK_FILE
    path.write_text(json.dumps(owner))
    return path


def test_a_second_training_is_refused_while_the_first_holds_the_lock(tmp_path):
    with workdir.TrainingLock(tmp_path):
        holder = json.loads((tmp_path / workdir.LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OdflowError, match=rf"in use by another training \(pid {os.getpid()}"
                                              rf".*delete .*{workdir.LOCK_FILE}"):
            workdir.TrainingLock(tmp_path).acquire()
    assert not (tmp_path / workdir.LOCK_FILE).exists()  # released


def test_lock_of_a_live_process_is_respected_and_of_a_dead_one_taken_over(tmp_path, caplog):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path, pid=sleeper.pid, host=socket.gethostname(),
                    start=workdir._process_start(sleeper.pid))
        with pytest.raises(OdflowError, match=f"pid {sleeper.pid}"):
            workdir.TrainingLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    with caplog.at_level(logging.WARNING), workdir.TrainingLock(tmp_path):
        assert json.loads((tmp_path / workdir.LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"stale lock {tmp_path / workdir.LOCK_FILE} of pid {sleeper.pid}" in caplog.text


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    # our own pid, but another process start time: the pid was reused after the owner died
    _write_lock(tmp_path, pid=os.getpid(), host=socket.gethostname(), start="1")
    with workdir.TrainingLock(tmp_path):
        pass


def test_lock_of_another_host_is_stale_only_without_heartbeat(tmp_path):
    path = _write_lock(tmp_path, pid=1, host="elsewhere.example", start=None)
    with pytest.raises(OdflowError, match="elsewhere.example"):
        workdir.TrainingLock(tmp_path).acquire()
    old = time.time() - workdir.STALE_AFTER_SECONDS - 10
    os.utime(path, (old, old))
    with workdir.TrainingLock(tmp_path):
        pass


def _bundle(prefix, step: int) -> None:
    ck.write_bundle(prefix, {"w": np.full([1000], step, np.float32),
                             "global_step": np.int64(step)})


def test_leftovers_of_a_killed_run_are_removed_or_moved(tmp_path, caplog):
    manager = ck.CheckpointManager(tmp_path)
    for step in (1, 2):
        manager.save({"w": np.zeros([3], np.float32), "global_step": np.int64(step)}, step)
    ours = [".checkpoint.ab12cd.tmp", ".model.ckpt-3.tmp-0a1b2c3d.index",
            ".model.ckpt-3.tmp-0a1b2c3d.data-00000-of-00001", ".fingerprint.json.x1.tmp"]
    for name in ours:
        (tmp_path / name).write_bytes(b"partial")
    _bundle(tmp_path / "model.ckpt-3", 3)  # renamed into place, state file not yet updated
    (tmp_path / "model.ckpt-4.data-00000-of-00001").write_bytes(b"half a save")
    with caplog.at_level(logging.INFO):
        workdir.remove_leftovers(tmp_path)
    for name in ours:
        assert not (tmp_path / name).exists()
    assert ck.checkpoint_exists(tmp_path / "model.ckpt-2")  # listed: kept
    assert not list(tmp_path.glob("model.ckpt-[34]*"))
    moved = sorted(p.name for p in (tmp_path / workdir.SUPERSEDED).rglob("model.ckpt-*"))
    assert moved == ["model.ckpt-3.data-00000-of-00001", "model.ckpt-3.index",
                     "model.ckpt-4.data-00000-of-00001"]
    assert "does not list" in caplog.text


def test_supersede_moves_training_files_but_not_the_fine_tune_checkpoint(tmp_path):
    _bundle(tmp_path / "model.ckpt", 0)  # the fine-tune checkpoint lives in ckpt/ too
    (tmp_path / "pipeline.config").write_text("model {}\n")
    manager = ck.CheckpointManager(tmp_path)
    manager.save({"w": np.zeros([3], np.float32)}, 5)
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"e")
    (tmp_path / "eval_0").mkdir()
    (tmp_path / "eval_0" / "events.out.tfevents.2.host").write_bytes(b"e")
    (tmp_path / "fingerprint.json").write_text("{}")
    assert workdir.has_checkpoints(tmp_path)
    moved = workdir.supersede(tmp_path)
    assert moved.parent == tmp_path / workdir.SUPERSEDED
    assert sorted(str(p.relative_to(moved)) for p in moved.rglob("*") if p.is_file()) == [
        "checkpoint", "eval_0/events.out.tfevents.2.host", "events.out.tfevents.1.host",
        "fingerprint.json", "model.ckpt-5.data-00000-of-00001", "model.ckpt-5.index"]
    assert ck.checkpoint_exists(tmp_path / "model.ckpt")
    assert (tmp_path / "pipeline.config").exists() and not workdir.has_checkpoints(tmp_path)
    assert ck.latest_checkpoint(moved) == str(moved / "model.ckpt-5")  # still usable there
    assert workdir.supersede(tmp_path) is None  # nothing left to move
    assert workdir.superseded_dir(tmp_path) != workdir.superseded_dir(tmp_path)


def test_truncated_data_file_falls_back_to_the_previous_checkpoint(tmp_path, caplog):
    manager = ck.CheckpointManager(tmp_path)
    for step in (1, 2):
        manager.save({"w": np.full([1000], step, np.float32),
                      "global_step": np.int64(step)}, step)
    data = tmp_path / f"model.ckpt-2{ck.DATA_SUFFIX}"
    size = data.stat().st_size
    assert size == 1000 * 4 + 8  # raw tensor bytes: the expected size is computable
    with open(data, "r+b") as handle:
        handle.truncate(size // 2)
    assert ck.checkpoint_problem(tmp_path / "model.ckpt-2") == \
        f"{data} is truncated ({size // 2} bytes; its index lists {size})"
    with caplog.at_level(logging.WARNING):
        assert ck.latest_checkpoint(tmp_path) == str(tmp_path / "model.ckpt-1")
    assert "is truncated" in caplog.text and "newest intact" in caplog.text
    from odflow.train.evaluate import resolve_checkpoint

    with pytest.raises(OdflowError, match=rf"checkpoint .*model.ckpt-2 is incomplete or damaged: {data} is trunc"):
        resolve_checkpoint(str(tmp_path / "model.ckpt-2"), None)  # evaluate/export's input
    with open(tmp_path / f"model.ckpt-1{ck.DATA_SUFFIX}", "r+b") as handle:
        handle.truncate(10)
    with pytest.raises(OdflowError, match=rf"{data} is truncated.*no older checkpoint"):
        ck.latest_checkpoint(tmp_path)


def test_export_removes_staging_left_by_a_killed_export(tmp_path):
    from odflow.export.staging import staged_directory

    target = tmp_path / "exported_model"
    killed = tmp_path / ".exported_model.k1ll3d.tmp"
    (killed / "saved_model").mkdir(parents=True)
    holder = tmp_path / ".exported_model.h0ld3r.old"
    (holder / "exported_model").mkdir(parents=True)
    keep = tmp_path / ".other.x.tmp"
    keep.mkdir()
    with staged_directory(target) as staging:
        (staging / "frozen_inference_graph.pb").write_bytes(b"g")
    assert not killed.exists() and not holder.exists() and keep.exists()
    assert (target / "frozen_inference_graph.pb").exists()


def test_lock_without_hard_links(tmp_path, monkeypatch):
    def no_links(*args):
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(workdir.os, "link", no_links)
    with workdir.TrainingLock(tmp_path):
        with pytest.raises(OdflowError, match="in use by another training"):
            workdir.TrainingLock(tmp_path).acquire()
    assert not list(tmp_path.iterdir())
