"""Train-step speed of EfficientDet-D0 against Keras' EfficientNetB0.

Rows, all forward + backward at D0's 512x512 on the same synthetic batch, interleaved in rounds
in this process (the fastest round is the least disturbed on a shared machine):

* ``keras EfficientNetB0 + trivial head``: ``keras.applications.EfficientNetB0`` (no weights,
  no top) with one 1x1 conv: the nearest Keras application, the backbone's own cost.
* ``odflow EfficientNet-b0 + trivial head``: odflow's backbone (``odflow.model.efficientnet``,
  all 16 blocks to level 5) with the same head: the implementation against Keras'.
* ``odflow EfficientDet-D0 full train step``: the zoo config's model (90 classes, BiFPN of 3
  iterations, separable weight-shared heads on 49,104 anchors, targets, focal loss).
* ``odflow EfficientDet-D0 network only``: the same network with a trivial loss.

    python benchmarks/efficientdet_step.py [--batch 2] [--steps 1] [--rounds 4] \
        [--output benchmarks/efficientdet_step.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import tensorflow as tf
from _step_timing import gradient_step, interleaved_rounds
from model_step import ssd_losses

from odflow import config as config_io
from odflow.model import builder, efficientnet
from odflow.utils.atomic import atomic_write_text

ZOO_CONFIG = (Path(__file__).resolve().parents[1] / "tests/fixtures/tf2_zoo/configs"
              / "ssd_efficientdet_d0_512x512_coco17_tpu-8.config")
SIZE = 512
NUM_CLASSES = 90
BASELINE = "keras EfficientNetB0 + trivial head (baseline)"
BACKBONE = "odflow EfficientNet-b0 + trivial head"
FULL = "odflow EfficientDet-D0 full train step"
NETWORK = "odflow EfficientDet-D0 network only, trivial loss"


def synthetic_batch(batch: int, max_boxes: int = 10, size: int = SIZE,
                    num_classes: int = NUM_CLASSES) -> dict[str, tf.Tensor]:
    """Random pixels and 1..``max_boxes`` random boxes per image, the same for every seed-0
    call (so all rows of a benchmark train on one batch)."""
    rng = np.random.default_rng(0)
    counts = rng.integers(1, max_boxes + 1, size=batch)
    centres = rng.uniform(0.15, 0.85, size=(batch, max_boxes, 2))
    sizes = rng.uniform(0.05, 0.5, size=(batch, max_boxes, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1).clip(0, 1)
    classes = rng.integers(1, num_classes + 1, size=(batch, max_boxes))
    valid = np.arange(max_boxes)[None, :] < counts[:, None]
    return {
        "image": tf.constant(rng.uniform(0, 255, size=(batch, size, size, 3)), tf.float32),
        "groundtruth_boxes": tf.constant(boxes * valid[..., None], tf.float32),
        "groundtruth_classes": tf.constant(classes * valid, tf.int32),
        "num_groundtruth_boxes": tf.constant(counts, tf.int32),
    }


def odflow_steps(batch: dict[str, tf.Tensor]):
    config = config_io.load(ZOO_CONFIG)
    model = builder.build(config.model, is_training=True)
    full, network = ssd_losses(model, batch)
    variables = model.trainable_variables
    return gradient_step(variables, full), gradient_step(variables, network)


def _trivial_head(channels: int) -> tf.keras.layers.Layer:
    head = tf.keras.layers.Conv2D(4 + NUM_CLASSES, 1)
    head.build((None, SIZE // 32, SIZE // 32, channels))
    return head


def keras_trivial_step(batch: dict[str, tf.Tensor]):
    backbone = tf.keras.applications.EfficientNetB0(weights=None, include_top=False,
                                                    input_shape=(SIZE, SIZE, 3))
    head = _trivial_head(backbone.output_shape[-1])

    def loss():
        return tf.reduce_mean(tf.square(head(backbone(batch["image"], training=True))))

    return gradient_step(backbone.trainable_variables + head.trainable_variables, loss)


def odflow_backbone_step(batch: dict[str, tf.Tensor]):
    backbone = efficientnet.EfficientNet("efficientnet-b0", 5, 5)
    head = _trivial_head(backbone.out_depths[5])
    variables = [v for layer in backbone.layers for v in layer.weights().values()
                 if v.trainable] + head.trainable_variables

    def loss():
        images = (batch["image"] / 255.0 - 0.45) / 0.225
        return tf.reduce_mean(tf.square(head(backbone(images, training=True)[5])))

    return gradient_step(variables, loss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    batch = synthetic_batch(args.batch)
    full, network = odflow_steps(batch)
    steps = {BASELINE: keras_trivial_step(batch), BACKBONE: odflow_backbone_step(batch),
             FULL: full, NETWORK: network}
    rounds = interleaved_rounds(steps, args.rounds, args.steps)  # a busy spell hits all
    lines = rounds.table(args.batch)
    ratio = rounds.ratio_text

    lines += ["", (f"- odflow EfficientDet-D0 full step / Keras EfficientNetB0 + trivial head: "
              f"**{ratio(FULL, BASELINE)}**"),
              (f"- odflow EfficientNet-b0 / Keras EfficientNetB0 (same trivial head): "
              f"**{ratio(BACKBONE, BASELINE)}**"),
              (f"- odflow D0 network only / Keras EfficientNetB0 + trivial head: "
              f"**{ratio(NETWORK, BASELINE)}**")]
    table = "\n".join(lines)
    print(table)
    if args.output:
        text = (
            "# EfficientDet-D0 train step vs Keras EfficientNetB0\n\n"
            f"`python benchmarks/efficientdet_step.py --batch {args.batch} --steps {args.steps} "
            f"--rounds {args.rounds} --output {args.output}`\n\n"
            f"Batch {args.batch}, {SIZE}x{SIZE}, forward + backward (gradients of all trainable "
            "variables), float32, CPU "
            f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
            f"TensorFlow {tf.__version__}.\n\n{table}\n"
        )
        atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
