"""Train-step speed of SSD Inception v2 against a plain Keras InceptionV3, in one process.

Issue 10 asks that each zoo network's SSD train step cost at most 15 % more than the nearest
Keras application; for Inception v2 (not in keras.applications) that is InceptionV3 (no
weights, 300x300, no top) with a trivial head (one 1x1 conv to 4 + 91 channels, mean-square
loss).  The SSD step is the whole one (network, extra layers, box predictor, targets, hard
example miner, losses, regularisation) of the zoo's own ``ssd_inception_v2_coco`` config
(90 classes).  Same synthetic batch and method as ``model_step.py``: interleaved rounds under
``tf.function``, fastest round and median reported.

    python benchmarks/inception_step.py [--batch 8] [--steps 2] [--rounds 6] \
        [--output benchmarks/inception_step.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tensorflow as tf
from google.protobuf import text_format
from model_step import SIZE, gradient_step, ssd_losses, synthetic_batch, time_steps

from odflow.model import builder
from odflow.protos import pipeline_pb2
from odflow.utils.atomic import atomic_write_text

ZOO_CONFIG = (Path(__file__).resolve().parents[1] / "tests/fixtures/reference/model_zoo"
              / "ssd_inception_v2_coco_2018_01_28/pipeline.config")


def ssd_step_fn(batch: dict[str, tf.Tensor]):
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse(ZOO_CONFIG.read_text(), config)
    model = builder.build(config.model, is_training=True)
    full, _ = ssd_losses(model, batch)
    return gradient_step(model.trainable_variables, full)


def keras_step_fn(batch: dict[str, tf.Tensor]):
    backbone = tf.keras.applications.InceptionV3(weights=None, include_top=False,
                                                 input_shape=(SIZE, SIZE, 3))
    head = tf.keras.layers.Conv2D(4 + 91, 1)
    head.build((None, 8, 8, 2048))
    variables = backbone.trainable_variables + head.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            images = batch["image"] * (2.0 / 255.0) - 1.0
            total = tf.reduce_mean(tf.square(head(backbone(images, training=True))))
        gradients = tape.gradient(total, variables)
        return total, tf.add_n([tf.reduce_sum(g) for g in gradients])

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    batch = synthetic_batch(args.batch)
    steps = {"keras InceptionV3 + trivial head (baseline)": keras_step_fn(batch),
             "odflow SSD Inception v2 full train step": ssd_step_fn(batch)}
    for step in steps.values():  # trace and warm up
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):  # interleaved, so a busy spell hits both
        for name, step in steps.items():
            times[name].append(time_steps(step, args.steps))
    lines = ["| step | s/step min | s/step median | images/s (min) | per round |",
             "|---|---|---|---|---|"]
    for name, values in times.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} | "
                     f"{args.batch / min(values):.1f} | {rounds} |")
    baseline, ssd = times.values()
    fastest = min(ssd) / min(baseline) - 1
    median = statistics.median(ssd) / statistics.median(baseline) - 1
    summary = (f"SSD step over the baseline: **{fastest:+.1%}** by the fastest round, "
               f"{median:+.1%} by the median (goal <= +15%); load average "
               f"{os.getloadavg()[0]:.1f}")
    lines += ["", summary]
    table = "\n".join(lines)
    print(table)
    if args.output:
        atomic_write_text(args.output, (
            "# Train step: SSD Inception v2 vs plain Keras InceptionV3\n\n"
            f"`python benchmarks/inception_step.py --batch {args.batch} --steps {args.steps} "
            f"--rounds {args.rounds} --output {args.output}`\n\n"
            f"Batch {args.batch}, 300x300, forward + backward (gradients of all trainable "
            f"variables), float32, CPU ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores), TensorFlow {tf.__version__}.\n\n{table}\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
