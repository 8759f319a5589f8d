"""Train-step speed of the TF2 zoo's SSD MobileNet V2 FPNLite against Keras' MobileNetV2.

Issue 18 asks that FPNLite's train step cost at most 25 % more than the nearest Keras
application, ``keras.applications.MobileNetV2`` at the same size.  Rows, all forward + backward
(gradients of every trainable variable, no update) on the same synthetic batch at the zoo
config's size (320x320 or 640x640), interleaved in rounds in this process
(``benchmarks/_step_timing.py``; the fastest round is the least disturbed on a shared machine):

* ``keras MobileNetV2 + trivial head`` (the baseline): ``MobileNetV2(alpha=1, weights=None,
  include_top=False)`` and one 1x1 conv to 4 + 90 channels, mean-square loss: the backbone's
  own cost, as ``efficientdet_step.py`` and ``model_step.py`` define the baseline.
* ``odflow MobileNet v2 + trivial head``: the backbone odflow's FPNLite model runs
  (``MobilenetSsdFeatureExtractor.base_endpoints`` to ``layer_19``, 1280 channels at stride 32,
  the same layers as Keras' ``out_relu``) with the same head: backbone against backbone.
* ``odflow FPNLite full train step``: the zoo config's model (90 classes, the depthwise
  pyramid of 128 channels on levels 3-7, one shared tower of 4 separable convs with batch norm
  per level, separable box and class heads, 6 anchors per cell, targets, focal loss,
  regularisation).
* ``odflow FPNLite network only``: the same network with a trivial loss.

The comparison of the goal is *whole detector step / Keras MobileNetV2 + trivial head*; the
backbone row says how much of the difference is the backbone's implementation and how much
the architecture (pyramid, heads, 12,804 anchors at 320, 51,150 at 640).

    python benchmarks/fpnlite_step.py [--size 320] [--batch 2] [--steps 1] [--rounds 4] \
        [--output benchmarks/fpnlite_step.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import tensorflow as tf
from _step_timing import Rounds, gradient_step, interleaved_rounds
from efficientdet_step import synthetic_batch
from model_step import ssd_losses

from odflow import config as config_io
from odflow.model import builder
from odflow.utils.atomic import atomic_write_text

CONFIGS = REPO / "tests/fixtures/tf2_zoo/configs"
NUM_CLASSES = 90
GOAL = 1.25  # issue 18: at most +25 % over the nearest Keras application
BASELINE = "keras MobileNetV2 + trivial head (baseline)"
BACKBONE = "odflow MobileNet v2 + trivial head"
FULL = "odflow FPNLite full train step"
NETWORK = "odflow FPNLite network only, trivial loss"


def zoo_config(size: int) -> Path:
    return CONFIGS / f"ssd_mobilenet_v2_fpnlite_{size}x{size}_coco17_tpu-8.config"


def _trivial_head(size: int) -> tf.keras.layers.Layer:
    head = tf.keras.layers.Conv2D(4 + NUM_CLASSES, 1)
    head.build((None, -(-size // 32), -(-size // 32), 1280))
    return head


def keras_trivial_step(batch: dict[str, tf.Tensor], size: int):
    backbone = tf.keras.applications.MobileNetV2(weights=None, alpha=1.0, include_top=False,
                                                 input_shape=(size, size, 3))
    head = _trivial_head(size)

    def loss():
        images = batch["image"] * (2.0 / 255.0) - 1.0
        return tf.reduce_mean(tf.square(head(backbone(images, training=True))))

    return gradient_step(backbone.trainable_variables + head.trainable_variables, loss)


def odflow_steps(batch: dict[str, tf.Tensor], size: int):
    """(full step, network-only step, backbone + trivial head step) of odflow's FPNLite."""
    config = config_io.load(zoo_config(size))
    model = builder.build(config.model, is_training=True)
    full, network = ssd_losses(model, batch)
    backbone = model.feature_extractor.backbone
    head = _trivial_head(size)
    backbone_variables = [v for v in backbone.named_variables().values() if v.trainable]

    def backbone_loss():
        images = batch["image"] * (2.0 / 255.0) - 1.0
        top = backbone.base_endpoints(images, training=True)["layer_19"]
        return tf.reduce_mean(tf.square(head(top)))

    variables = model.trainable_variables
    return (gradient_step(variables, full), gradient_step(variables, network),
            gradient_step(backbone_variables + head.trainable_variables, backbone_loss))


def report(rounds: Rounds, size: int, batch: int) -> str:
    lines = rounds.table(batch)
    fastest, median = rounds.ratio(FULL, BASELINE)
    verdict = {(True, True): "met by the fastest round and by the median",
               (True, False): "met by the fastest round, not by the median",
               (False, True): "met by the median, not by the fastest round",
               (False, False): "not met"}[(fastest <= GOAL, median <= GOAL)]
    lines += ["",
              (f"- odflow FPNLite {size} full step / Keras MobileNetV2 + trivial head: "
               f"**{rounds.ratio_text(FULL, BASELINE)}** (goal: at most {GOAL:.2f}x; {verdict})"),
              (f"- odflow MobileNet v2 / Keras MobileNetV2 (same trivial head): "
              f"**{rounds.ratio_text(BACKBONE, BASELINE)}**"),
              (f"- odflow FPNLite network only / Keras MobileNetV2 + trivial head: "
              f"**{rounds.ratio_text(NETWORK, BASELINE)}**")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[320, 640], choices=[320, 640])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    sections = []
    for size in args.size:
        batch = synthetic_batch(args.batch, size=size, num_classes=NUM_CLASSES)
        full, network, backbone = odflow_steps(batch, size)
        steps = {BASELINE: keras_trivial_step(batch, size), BACKBONE: backbone,
                 FULL: full, NETWORK: network}
        rounds = interleaved_rounds(steps, args.rounds, args.steps)
        section = f"## {size}x{size}\n\n{report(rounds, size, args.batch)}\n"
        print(section, flush=True)
        sections.append(section)
    if args.output:
        sizes = " ".join(str(s) for s in args.size)
        text = (
            "# SSD MobileNet V2 FPNLite train step vs Keras MobileNetV2\n\n"
            f"`python benchmarks/fpnlite_step.py --size {sizes} --batch {args.batch} "
            f"--steps {args.steps} --rounds {args.rounds} --output {args.output}`\n\n"
            f"Batch {args.batch}, forward + backward (gradients of all trainable variables), "
            f"float32, CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} "
            f"cores), TensorFlow {tf.__version__}; rows interleaved per round in one process.\n\n"
            + "\n".join(sections)
        )
        atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
