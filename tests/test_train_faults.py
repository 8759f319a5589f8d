"""Faults around a real ``model_main.py`` process: a signal while it waits for data, a second
training on the same model_dir, and what ``kill -9`` leaves behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from odflow import checkpoints as ck
from odflow.train import workdir
from tests.support.training import MODEL_MAIN, REPO, subprocess_env, wait_for_log, write_config

pytestmark = pytest.mark.slow

# model_main.py with a training input that never yields a batch (a stalled file system).
_STALLED = """
import sys, time
import tensorflow as tf
from odflow.train import loop

def stalled(config, seed, strategy, start):
    def forever():
        while True:
            time.sleep(3600)
        yield 0
    return tf.data.Dataset.from_generator(forever, output_signature=tf.TensorSpec([], tf.int32))

loop._train_dataset = stalled
from odflow.train.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _command(config, model_dir, log_path, *extra):
    return [f"--model_dir={model_dir}", f"--pipeline_config_path={config}", "--log_every=1",
            "--checkpoint_every_steps=2", "--checkpoint_every_minutes=0", "--eval_every=-1",
            "--seed=1", f"--log_file={log_path}", *extra]


def test_sigterm_stops_training_that_waits_for_data(tmp_path):
    config = write_config(tmp_path, num_steps=10, augment=False)
    log_path = tmp_path / "train.log"
    process = subprocess.Popen(
        [sys.executable, "-c", _STALLED, *_command(config, tmp_path / "ckpt", log_path)],
        env=subprocess_env(), cwd=str(REPO), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for_log(process, log_path, "training from step 0", timeout=240)
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = process.wait(timeout=60)
        stopped_after = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 143, process.stderr.read()
    assert stopped_after < 30
    text = log_path.read_text()
    assert "SIGTERM received" in text and "stopped by SIGTERM" in text
    assert "Traceback" not in process.stderr.read()
    assert not (tmp_path / "ckpt" / workdir.LOCK_FILE).exists()


def test_second_training_is_refused_and_kill_9_leftovers_are_cleaned(tmp_path):
    config = write_config(tmp_path, num_steps=100000, augment=False)
    model_dir = tmp_path / "ckpt"
    log_path = tmp_path / "first.log"
    first = subprocess.Popen([sys.executable, str(MODEL_MAIN),
                              *_command(config, model_dir, log_path)],
                             env=subprocess_env(), cwd=str(REPO),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_log(first, log_path, "saved checkpoint", timeout=240)
        second = subprocess.run(
            [sys.executable, str(MODEL_MAIN),
             *_command(config, model_dir, tmp_path / "second.log")],
            env=subprocess_env(), cwd=str(REPO), capture_output=True, text=True, timeout=300,
            check=False)
        assert second.returncode == 2, second.stderr
        assert f"is in use by another training (pid {first.pid} on" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    lock = json.loads((model_dir / workdir.LOCK_FILE).read_text())
    assert lock["pid"] == first.pid  # kill -9 leaves the lock behind
    reached = ck.step_of(ck.latest_checkpoint(model_dir))
    # what a kill during a save leaves: a temporary state file, an unlisted checkpoint
    (model_dir / ".checkpoint.k1ll3d.tmp").write_text("partial")
    (model_dir / f".model.ckpt-{reached + 1}.tmp-0a1b2c3d.index").write_bytes(b"partial")
    (model_dir / "model.ckpt-999999.data-00000-of-00001").write_bytes(b"half")

    log3 = tmp_path / "third.log"
    third = subprocess.run(
        [sys.executable, str(MODEL_MAIN), *_command(config, model_dir, log3),
         f"--num_train_steps={reached + 1}"],
        env=subprocess_env(), cwd=str(REPO), capture_output=True, text=True, timeout=300,
        check=False)
    assert third.returncode == 0, third.stderr
    text = log3.read_text()
    assert f"taking over the stale lock {model_dir / workdir.LOCK_FILE} of pid {first.pid}" \
        in text
    assert f"resumed from {model_dir / f'model.ckpt-{reached}'} at step {reached}" in text
    assert not list(model_dir.glob(".*.tmp*")) and not (model_dir / workdir.LOCK_FILE).exists()
    assert not (model_dir / "model.ckpt-999999.data-00000-of-00001").exists()
    assert list((model_dir / workdir.SUPERSEDED).rglob("model.ckpt-999999.*"))
    assert ck.latest_checkpoint(model_dir) == str(model_dir / f"model.ckpt-{reached + 1}")
