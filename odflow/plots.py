"""PNG plots of the training and evaluation curves, like the tutorial's TensorBoard screenshots.

The tutorial shows mAP, AR and loss curves from TensorBoard; a workflow run (on a cluster,
in CI) has no browser, so the same curves are drawn to files from the event files the
trainer and evaluator write: ``model_dir/events.out.tfevents.*`` for training scalars and
``model_dir/eval_0/`` for the twelve COCO numbers.  Scalars may be stored either as legacy
``simple_value`` or as TF2 tensor summaries; both are read.  Plots are drawn even before any
evaluation has run (saying so), because Snakemake expects every declared PNG.

    python -m odflow.plots --model_dir ckpt --output_dir plots
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from odflow.errors import OdflowError
from odflow.evaluation.coco import EVAL_SUBDIR, METRIC_KEYS
from odflow.utils.atomic import atomic_output
from odflow.utils.cli import run_cli, setup_logging

logger = logging.getLogger(__name__)

LOSS_TAGS = ("Loss/classification_loss", "Loss/localization_loss", "Loss/regularization_loss",
             "Loss/total_loss", "learning_rate")
PRECISION_TAGS = METRIC_KEYS[:6]
RECALL_TAGS = METRIC_KEYS[6:]
SMOOTHING = 0.6  # TensorBoard's default smoothing weight

Series = list[tuple[int, float]]

_RAW_COLOUR = "#f4a582"
_LINE_COLOUR = "#d6604d"


def read_scalars(directory: str | os.PathLike, with_time: bool = False) -> dict[str, Series]:
    """Every scalar in the event files directly in ``directory``: tag -> [(step, value)]
    (with ``with_time``, [step, value, wall_time] lists, for odflow.history).

    A step logged twice (a resumed run repeats steps after its last checkpoint) keeps the
    value written last.  A truncated final record (a writer still running, or killed) ends
    that file's reading with a warning instead of an error.
    """
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    folder = Path(directory)
    records: list[tuple[float, int, int, str, int, float]] = []
    for file_index, path in enumerate(sorted(folder.glob("events.out.tfevents.*"))):
        order = 0
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(record.numpy())
                for value in event.summary.value:
                    number = _scalar(value, tf)
                    if number is not None:
                        records.append((event.wall_time, file_index, order, value.tag,
                                        int(event.step), number))
                        order += 1
        except tf.errors.DataLossError:
            logger.warning("event file %s ends with a truncated record; using what was read", path)
    series: dict[str, dict[int, tuple[float, float]]] = {}
    for wall_time, _, _, tag, step, number in sorted(records):
        series.setdefault(tag, {})[step] = (number, wall_time)
    if with_time:
        return {tag: [[step, number, wall_time]
                      for step, (number, wall_time) in sorted(values.items())]
                for tag, values in series.items()}
    return {tag: [(step, number) for step, (number, _) in sorted(values.items())]
            for tag, values in series.items()}


def _scalar(value, tf) -> float | None:
    """The number in a summary value, or None when it is not a scalar (images, text...)."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        dtype = tf.dtypes.as_dtype(value.tensor.dtype)
        if not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
            return None
        array = tf.make_ndarray(value.tensor)
        if array.size == 1:
            return float(array.reshape(()))
    return None


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """TensorBoard's debiased exponential moving average, so the curves look the same."""
    result, last = [], 0.0
    for count, value in enumerate(values, start=1):
        last = last * weight + (1 - weight) * value
        result.append(last / (1 - weight ** count))
    return result


def plot_training_curves(model_dir: str | os.PathLike, output_dir: str | os.PathLike
                         ) -> list[Path]:
    """Write ``mAP.png``, ``AR.png`` and ``loss.png`` to ``output_dir``; returns their paths."""
    model_path = Path(model_dir)
    if not model_path.is_dir():
        raise OdflowError(f"model_dir {model_path} does not exist or is not a directory; "
                          "pass the directory training writes its checkpoints and events to")
    training = read_scalars(model_path)
    eval_path = model_path / EVAL_SUBDIR
    evaluation = read_scalars(eval_path) if eval_path.is_dir() else {}
    return draw_curves(training, evaluation, output_dir, str(model_path))


def draw_curves(training: dict[str, Series], evaluation: dict[str, Series],
                output_dir: str | os.PathLike, source: str) -> list[Path]:
    """The three PNGs from training and evaluation scalars (tag -> [(step, value)])."""
    output = Path(output_dir)
    if not any(tag in evaluation for tag in METRIC_KEYS):
        logger.warning("no evaluation results in %s yet; mAP.png and AR.png say so", source)
    if not any(tag in training for tag in LOSS_TAGS):
        logger.warning("no training losses in %s yet; loss.png says so", source)
    written = [
        _draw(output / "mAP.png", "Evaluation: COCO box precision", PRECISION_TAGS, evaluation,
              empty="no evaluation yet", lines_only=False),
        _draw(output / "AR.png", "Evaluation: COCO box recall", RECALL_TAGS, evaluation,
              empty="no evaluation yet", lines_only=False),
        _draw(output / "loss.png", "Training losses and learning rate", LOSS_TAGS, training,
              empty="no training events yet", lines_only=True),
    ]
    for path in written:
        logger.info("wrote %s", path)
    return written


def _draw(path: Path, title: str, tags: Sequence[str], series: dict[str, Series], empty: str,
          lines_only: bool) -> Path:
    figure = Figure(figsize=(13, 7), dpi=100, layout="constrained")
    figure.suptitle(title, fontsize=14)
    if not any(tag in series for tag in tags):
        axes = figure.subplots()
        axes.set_axis_off()
        axes.text(0.5, 0.5, empty, ha="center", va="center", fontsize=24, color="0.4",
                  transform=axes.transAxes)
    else:
        grid = figure.subplots(2, 3, squeeze=False).ravel()
        for axes in grid[len(tags):]:
            axes.set_axis_off()
        for axes, tag in zip(grid, tags):
            _panel(axes, tag, series.get(tag, []), lines_only)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def _panel(axes, tag: str, points: Series, lines_only: bool) -> None:
    axes.set_title(tag, fontsize=10, loc="left")
    axes.grid(True, color="0.9")
    axes.set_xlabel("step")
    if not points:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", color="0.5",
                  transform=axes.transAxes)
        return
    steps = [step for step, _ in points]
    values = [value for _, value in points]
    if lines_only and len(points) >= 10:
        axes.plot(steps, values, color=_RAW_COLOUR, linewidth=1, alpha=0.6)
        axes.plot(steps, smooth(values), color=_LINE_COLOUR, linewidth=1.5)
    else:
        axes.plot(steps, values, color=_LINE_COLOUR, linewidth=1.5, marker="o", markersize=4)
    axes.ticklabel_format(axis="x", style="plain", useOffset=False)
    last_step, last_value = points[-1]
    axes.annotate(f"{last_value:.4g} @ {last_step}", xy=(1, 1), xycoords="axes fraction",
                  ha="right", va="bottom", fontsize=8, color="0.3")


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m odflow.plots",
        description="Draw mAP.png, AR.png and loss.png from a training run's TensorBoard "
                    "event files (model_dir and model_dir/eval_0).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model_dir", help="the training directory (e.g. ckpt)")
    source.add_argument("--history", help="a training history file (ckpt/history.json, "
                                          "odflow.history) instead of the event files")
    parser.add_argument("--output_dir", required=True, help="where to write the PNGs")
    parser.add_argument("--log_file", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    if args.history:
        from odflow import history

        loaded = history.load(args.history)
        draw_curves(history.series(loaded, "train"), history.series(loaded, "eval"),
                    args.output_dir, args.history)
    else:
        plot_training_curves(args.model_dir, args.output_dir)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
