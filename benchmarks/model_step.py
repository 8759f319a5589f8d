"""Forward+backward speed of the full SSD MobileNet v1 train step against a plain Keras MobileNet.

Issue 4 asks that the whole SSD step (network, extra layers, box predictor, anchors, target
assignment, hard example miner, losses, regularisation) cost at most 15% more than a plain
``keras.applications.MobileNet`` (alpha 1, no weights, 300x300, no top) with a trivial head
(one 1x1 conv to 4 + 91 channels, mean-square loss): the detector should not pay much beyond
the backbone it is made of.  All run in this process under ``tf.function`` on the same
synthetic batch, in interleaved rounds; the fastest round is the least disturbed by other
processes on a shared machine, the median is reported too.  A third row runs the SSD network
with a trivial loss, to split the cost between the network and targets/miner/losses.

    python benchmarks/model_step.py [--batch 8] [--steps 2] [--rounds 8] \
        [--output benchmarks/model_step.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from odflow.model import builder
from odflow.protos import pipeline_pb2
from odflow.utils.atomic import atomic_write_text

ZOO_CONFIG = (Path(__file__).resolve().parents[1] / "tests/fixtures/reference/model_zoo"
              / "ssd_mobilenet_v1_coco_2018_01_28/pipeline.config")
SIZE = 300


def synthetic_batch(batch: int, max_boxes: int = 10) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    counts = rng.integers(1, max_boxes + 1, size=batch)
    centres = rng.uniform(0.15, 0.85, size=(batch, max_boxes, 2))
    sizes = rng.uniform(0.05, 0.5, size=(batch, max_boxes, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1).clip(0, 1)
    classes = rng.integers(1, 91, size=(batch, max_boxes))
    valid = np.arange(max_boxes)[None, :] < counts[:, None]
    return {
        "image": tf.constant(rng.uniform(0, 255, size=(batch, SIZE, SIZE, 3)), tf.float32),
        "groundtruth_boxes": tf.constant(boxes * valid[..., None], tf.float32),
        "groundtruth_classes": tf.constant(classes * valid, tf.int32),
        "num_groundtruth_boxes": tf.constant(counts, tf.int32),
    }


def gradient_step(variables, loss_fn):
    """A ``tf.function`` train step without the update: loss and gradients of ``variables``
    (the gradient sum keeps every gradient computed)."""
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            total = loss_fn()
        gradients = tape.gradient(total, variables)
        return total, tf.add_n([tf.reduce_sum(g) for g in gradients])
    return step


def ssd_losses(model, batch: dict[str, tf.Tensor]):
    """(the full SSD loss, a trivial loss on the network's outputs) of ``model`` on ``batch``:
    the full train step, and the network alone for comparing with a Keras network."""
    def full():
        preprocessed, _ = model.preprocess(batch["image"])
        prediction = model.predict(preprocessed, training=True)
        losses = model.loss(prediction, batch)
        return tf.add_n(list(losses.values())) + model.regularization_loss()

    def network():
        preprocessed, _ = model.preprocess(batch["image"])
        prediction = model.predict(preprocessed, training=True)
        return (tf.reduce_mean(tf.square(prediction["box_encodings"]))
                + tf.reduce_mean(tf.square(prediction["class_predictions_with_background"])))

    return full, network


def ssd_step_fns(batch: dict[str, tf.Tensor]):
    """(full train step, network-only step with a trivial loss) for the zoo's 90-class model."""
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse(ZOO_CONFIG.read_text(), config)
    model = builder.build(config.model, is_training=True)
    full, network = ssd_losses(model, batch)
    return (gradient_step(model.trainable_variables, full),
            gradient_step(model.trainable_variables, network))


def keras_step_fn(batch: dict[str, tf.Tensor]):
    backbone = tf.keras.applications.MobileNet(weights=None, alpha=1.0, include_top=False,
                                               input_shape=(SIZE, SIZE, 3))
    head = tf.keras.layers.Conv2D(4 + 91, 1)
    head.build((None, 10, 10, 1024))
    variables = backbone.trainable_variables + head.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            images = batch["image"] * (2.0 / 255.0) - 1.0
            total = tf.reduce_mean(tf.square(head(backbone(images, training=True))))
        gradients = tape.gradient(total, variables)
        return total, tf.add_n([tf.reduce_sum(g) for g in gradients])

    return step


def time_steps(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        result = step()
    float(result[0])
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    batch = synthetic_batch(args.batch)
    ssd_step, ssd_network_step = ssd_step_fns(batch)
    steps = {"keras MobileNet + trivial head (baseline)": keras_step_fn(batch),
             "odflow SSD full train step": ssd_step,
             "odflow SSD network only, trivial loss": ssd_network_step}
    for step in steps.values():  # trace and warm up
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):  # interleaved, so a busy spell hits all of them
        for name, step in steps.items():
            times[name].append(time_steps(step, args.steps))
    lines = [
        "| step | s/step min | s/step median | images/s (min) | per round |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} | "
                     f"{args.batch / min(values):.1f} | {rounds} |")
    baseline, ssd = times[next(iter(times))], times["odflow SSD full train step"]
    lines.append("")
    lines.append(f"SSD full step over the baseline: **{min(ssd) / min(baseline) - 1:+.1%}** "
                 f"by the fastest round, {statistics.median(ssd) / statistics.median(baseline) - 1:+.1%} "
                 "by the median (goal <= +15%)")
    table = "\n".join(lines)
    print(table)
    if args.output:
        text = (
            "# Model train step: SSD vs plain Keras MobileNet\n\n"
            f"`python benchmarks/model_step.py --batch {args.batch} --steps {args.steps} "
            f"--rounds {args.rounds} --output {args.output}`\n\n"
            f"Batch {args.batch}, 300x300, forward + backward (gradients of all trainable "
            "variables), float32, CPU "
            f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
            f"TensorFlow {tf.__version__}.\n\n{table}\n"
        )
        atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
