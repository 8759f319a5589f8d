"""Progress lines, summaries and signal handling (no model involved)."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from odflow.train.progress import Progress, format_duration
from odflow.train.signals import Interrupted, stop_on_signals
from odflow.train.summaries import SummaryWriter


def test_format_duration():
    assert format_duration(5) == "0m05s"
    assert format_duration(3 * 3600 + 120) == "3h02m"
    assert format_duration(2 * 86400 + 3600) == "2d01h"


def test_log_line_every_n_steps_with_losses_lr_rate_and_eta(caplog):
    progress = Progress(start_step=0, num_steps=100, batch_size=4, log_every=10,
                        show_bar=False)
    losses = {"Loss/classification_loss": 2.5, "Loss/localization_loss": 1.25,
              "Loss/regularization_loss": 0.25, "Loss/total_loss": 4.0,
              "Loss/HardExampleMiner/NumPositives": 3.0}
    with caplog.at_level(logging.INFO, logger="odflow.train"):
        assert progress.update(1, losses, 0.004)  # the first step is always shown
        assert not progress.update(9, losses, 0.004)
        assert progress.update(10, losses, 0.004)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    line = lines[1]
    for part in ("step 10/100", "loss 4.0000", "classification 2.5000", "localization 1.2500",
                 "regularization 0.2500", "lr 0.004", "images/s", "ETA"):
        assert part in line
    assert "NumPositives" not in line
    assert progress.images_per_second > 0
    progress.close()


def test_stop_request_on_sigint_and_sigterm_then_handlers_restored():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.exit_code == 130
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal does not change the first
        assert stop.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.exit_code == 143
    error = Interrupted(signal.SIGTERM, "ckpt/model.ckpt-12")
    assert error.exit_code == 143 and "model.ckpt-12" in str(error)


def _events(directory):
    from tensorflow.core.util import event_pb2

    found = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                found[value.tag] = (event.step, value)
    return found


def test_summaries_write_scalar_and_image_events(tmp_path):
    writer = SummaryWriter(tmp_path)
    writer.scalars({"Loss/total_loss": 1.5, "learning_rate": 0.004}, step=3)
    images = tf.fill([2, 16, 16, 3], 128.0)
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5], [0, 0, 0, 0]]] * 2, tf.float32)
    writer.images_with_boxes(images, boxes, tf.constant([1, 1]), step=0)
    writer.close()
    events = _events(tmp_path)
    step, value = events["Loss/total_loss"]
    assert step == 3 and value.metadata.plugin_data.plugin_name == "scalars"
    assert float(tf.make_ndarray(value.tensor)) == pytest.approx(1.5)
    step, value = events["train_input_images"]
    assert value.metadata.plugin_data.plugin_name == "images"
    payload = tf.make_ndarray(value.tensor)
    assert payload[:2].tolist() == [b"16", b"16"] and len(payload) == 4
    decoded = tf.io.decode_png(payload[2]).numpy()
    assert decoded.shape == (16, 16, 3)
    assert not np.all(decoded == decoded[0, 0])  # a box was drawn


def test_save_clock_every_steps_or_minutes(monkeypatch):
    from odflow.train import loop

    now = [1000.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
    clock = loop._SaveClock(every_steps=5, every_minutes=2)
    assert clock.due(5) and not clock.due(6)
    now[0] += 119
    assert not clock.due(7)
    now[0] += 1
    assert clock.due(7)
    clock.saved()
    assert not clock.due(8)
    off = loop._SaveClock(every_steps=0, every_minutes=0)
    now[0] += 10**6
    assert not off.due(10)


class _Clock:
    """A hand-driven ``time.perf_counter``."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_console_line_every_few_seconds_with_rate_eta_and_loss(monkeypatch):
    import io

    from odflow.train import progress as progress_lib

    clock = _Clock()
    monkeypatch.setattr(progress_lib.time, "perf_counter", clock)
    stream = io.StringIO()
    console = progress_lib.ConsoleLine(stream, "ckpt", start_step=10, num_steps=110,
                                       batch_size=4, every=5.0)
    losses = {"Loss/total_loss": 2.5}
    progress = Progress(10, 110, 4, log_every=1000, show_bar=False, console=console)
    clock.now += 1.0
    progress.update(11, losses, 0.1)  # the first step: shown at once, no rate yet
    clock.now += 4.0
    progress.update(12, losses, 0.1)  # 4 s after the last line: not yet
    clock.now += 4.0
    progress.update(51, {"Loss/total_loss": 1.25}, 0.1)  # 40 steps x 4 images in 8 s
    lines = stream.getvalue().splitlines()
    # By hand: 160 images / 8 s = 20 images/s; 59 steps x 4 images left / 20 = 11.8 s.
    assert lines == ["ckpt: step 11/110, loss 2.5000",
                     "ckpt: step 51/110, 20.0 images/s, ETA 0m11s, loss 1.2500"]


def test_progress_fd_that_is_not_open_is_a_clear_error(capsys):
    from odflow.train.cli import main

    code = main(["--model_dir", "ckpt", "--pipeline_config_path", "x.config",
                 "--progress_fd", "97"])
    err = capsys.readouterr().err
    assert code == 2 and "--progress_fd 97" in err and "Traceback" not in err
