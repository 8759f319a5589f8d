"""odflow.plots: curves from TF2 tensor summaries and legacy simple_value events."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
from tensorflow.core.framework import summary_pb2
from tensorflow.core.util import event_pb2

from odflow import plots
from odflow.errors import OdflowError
from odflow.evaluation import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[1]


def scalar_summary(tag: str, value: float, step: int) -> None:
    """What ``tf.summary.scalar`` writes (a float32 tensor + the scalars plugin's metadata).

    ``tf.summary.scalar`` itself lives in the tensorboard package, which is not installed
    here; ``tf.summary.write`` is TensorFlow's own op underneath it.
    """
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


def write_training_events(model_dir: Path, steps: range) -> None:
    """TF2 writer: tensor summaries, plus an image-like string summary that must be skipped."""
    writer = tf.summary.create_file_writer(str(model_dir))
    with writer.as_default():
        for step in steps:
            scalar_summary("Loss/classification_loss", 5.0 / (1 + step), step)
            scalar_summary("Loss/localization_loss", 2.0 / (1 + step) + 0.1, step)
            scalar_summary("Loss/regularization_loss", 0.3, step)
            scalar_summary("Loss/total_loss", 7.4 / (1 + step) + 0.4, step)
            scalar_summary("learning_rate", 0.004, step)
        tf.summary.write("train_input_images", tf.constant(["8", "8", "png bytes"]),
                         step=steps[0])
    writer.close()


def write_legacy_events(directory: Path, values: dict[str, list[tuple[int, float]]],
                        name: str = "events.out.tfevents.1000.host",
                        wall_time: float = 1000.0) -> Path:
    """TF1-style events (``simple_value``), written record by record as TF1's FileWriter did."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
                     .SerializeToString())
        for tag, points in values.items():
            for step, number in points:
                wall_time += 1
                summary = summary_pb2.Summary(
                    value=[summary_pb2.Summary.Value(tag=tag, simple_value=number)])
                writer.write(event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
                             .SerializeToString())
    return path


def eval_values(steps=(100, 200, 300)) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(step, 0.1 * (i + 1) + 0.01 * k) for i, step in enumerate(steps)]
            for k, tag in enumerate(METRIC_KEYS)}


def check_png(path: Path) -> tuple[int, int]:
    assert path.is_file()
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_read_scalars_reads_both_encodings_and_later_writes_win(tmp_path):
    write_training_events(tmp_path, range(5))
    write_legacy_events(tmp_path, {"Loss/total_loss": [(3, 42.0), (7, 1.5)]},
                        name="events.out.tfevents.0.host", wall_time=time.time() + 60)
    scalars = plots.read_scalars(tmp_path)
    assert set(scalars) == set(plots.LOSS_TAGS)  # the image summary is not a scalar
    assert scalars["learning_rate"] == [(step, pytest.approx(0.004)) for step in range(5)]
    total = dict(scalars["Loss/total_loss"])
    assert sorted(total) == [0, 1, 2, 3, 4, 7]
    assert total[3] == 42.0  # the resumed run's value (written later) replaces the first one
    assert total[1] == pytest.approx(7.4 / 2 + 0.4)


def test_truncated_event_file_is_read_up_to_the_damage(tmp_path, caplog):
    path = write_legacy_events(tmp_path, {"learning_rate": [(1, 0.1), (2, 0.2)]})
    path.write_bytes(path.read_bytes()[:-7])  # a writer killed mid-record
    with caplog.at_level(logging.WARNING):
        scalars = plots.read_scalars(tmp_path)
    assert scalars["learning_rate"] == [(1, pytest.approx(0.1))]
    assert "truncated" in caplog.text


def test_plots_from_training_and_eval_events(tmp_path):
    model_dir = tmp_path / "ckpt"
    write_training_events(model_dir, range(0, 200, 10))
    write_legacy_events(model_dir / "eval_0", eval_values())
    first = plots.plot_training_curves(model_dir, tmp_path / "plots")
    assert [p.name for p in first] == ["mAP.png", "AR.png", "loss.png"]
    for path in first:
        assert check_png(path) == (1300, 700)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == \
        ["AR.png", "loss.png", "mAP.png"]  # no temporary files left behind
    again = plots.plot_training_curves(model_dir, tmp_path / "again")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]  # deterministic


def test_missing_evaluation_gives_placeholder_plots(tmp_path, caplog):
    model_dir = tmp_path / "ckpt"
    write_training_events(model_dir, range(3))
    with caplog.at_level(logging.WARNING):
        written = plots.plot_training_curves(model_dir, tmp_path / "plots")
    assert "no evaluation results" in caplog.text
    for path in written:
        check_png(path)
    # A placeholder looks different from a real plot of the same size.
    (model_dir / "eval_0").mkdir()
    write_legacy_events(model_dir / "eval_0", eval_values())
    real = plots.plot_training_curves(model_dir, tmp_path / "real")
    assert real[0].read_bytes() != written[0].read_bytes()
    assert real[2].read_bytes() == written[2].read_bytes()


def test_partial_tags_and_empty_model_dir(tmp_path, caplog):
    model_dir = tmp_path / "ckpt"
    write_legacy_events(model_dir / "eval_0",
                        {"DetectionBoxes_Precision/mAP": [(10, 0.5)]})
    with caplog.at_level(logging.WARNING):
        written = plots.plot_training_curves(model_dir, tmp_path / "plots")
    assert "no training losses" in caplog.text
    assert "no evaluation results" not in caplog.text
    for path in written:
        check_png(path)


def test_smoothing_matches_tensorboard():
    assert plots.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert plots.smooth([1.0, 0.0], weight=0.5) == pytest.approx([1.0, 0.5 * 0.5 / 0.75])


def test_cli(tmp_path, capsys):
    model_dir = tmp_path / "ckpt"
    write_training_events(model_dir, range(3))
    code = plots.main(["--model_dir", str(model_dir), "--output_dir",
                                str(tmp_path / "out"), "--log_file", str(tmp_path / "log.txt")])
    assert code == 0
    assert (tmp_path / "out" / "loss.png").is_file()
    assert "wrote" in (tmp_path / "log.txt").read_text()
    code = plots.main(["--model_dir", str(tmp_path / "missing"), "--output_dir",
                                str(tmp_path / "out")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(OdflowError):
        plots.plot_training_curves(tmp_path / "missing", tmp_path / "out")


def test_cli_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "odflow.plots", "--help"], check=False,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--model_dir" in result.stdout


def test_history_file_holds_the_events_scalars_and_draws_the_same_plots(tmp_path, capsys):
    from odflow import history

    model_dir = tmp_path / "ckpt"
    write_legacy_events(model_dir, {"Loss/total_loss": [(1, 3.0), (2, 2.0)]}, wall_time=500.0)
    write_legacy_events(model_dir / "eval_0", {"DetectionBoxes_Precision/mAP": [(2, 0.25)]},
                        wall_time=600.0)
    path = tmp_path / "history.json"
    assert history.main(["--model_dir", str(model_dir), "--output", str(path)]) == 0
    loaded = history.load(path)
    # wall times: the file's first event is at 500, each value one second later
    assert loaded["train"] == {"Loss/total_loss": [[1, 3.0, 501.0], [2, 2.0, 502.0]]}
    assert loaded["eval"] == {"DetectionBoxes_Precision/mAP": [[2, 0.25, 601.0]]}
    code = plots.main(["--history", str(path), "--output_dir", str(tmp_path / "out")])
    assert code == 0
    for name in ("mAP.png", "AR.png", "loss.png"):
        check_png(tmp_path / "out" / name)
    path.write_text("{}")
    code = plots.main(["--history", str(path), "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert "not a training history file" in capsys.readouterr().err
